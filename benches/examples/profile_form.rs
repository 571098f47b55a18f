//! Builds a client_credentials form body in a loop, for callgrind.
use fieldauth::request::{BodyFormat, Client, ClientAuth, Grant};
use fieldauth::url::Url;
use std::hint::black_box;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let url = Url::parse("https://webservices.autotask.net/ATServicesRest/oauth/token").unwrap();
    let mut client = Client::new(url, "fsm-handheld-fleet-eu-west-7731");
    client.client_secret = Some("q8Z+v/3kL:p%2Fw9 xR7tY!mN4sB6dF1gH0jK");
    client.auth = ClientAuth::Body;
    client.format = BodyFormat::Form;
    client.scope = Some("read:work-orders write:work-orders read:customers");
    let mut buf = [0u8; 512];
    let mut total = 0;
    for _ in 0..n {
        total += black_box(&client)
            .request(Grant::ClientCredentials)
            .write_body(&mut buf)
            .unwrap();
    }
    println!("{total}");
}
