//! fieldauth in one screen: build a token request into a stack buffer, parse
//! the response as it arrives in small pieces, and authorize an API request.
//! No network: the response is Autotask's documented example.
//!
//! Run: `cargo run -p fieldauth --example quickstart`

// An example prints, and slices its own buffers for readability; the core's
// panic-free lints are for the library.
#![allow(clippy::print_stdout, clippy::indexing_slicing)]

use fieldauth::apply::ApiCredential;
use fieldauth::body::{BodyParser, Expect, Response, STANDARD_KEYS};
use fieldauth::http::HeadParser;
use fieldauth::request::{BodyFormat, Client, ClientAuth, Grant};
use fieldauth::url::Url;

fn main() -> Result<(), fieldauth::Error> {
    // 1. Configuration borrows the caller's strings; nothing is copied.
    let endpoint = Url::parse("https://webservices.autotask.net/ATServicesRest/oauth/token")?;
    let mut client = Client::new(endpoint, "YOUR_CLIENT_ID");
    client.client_secret = Some("YOUR_CLIENT_SECRET");
    client.auth = ClientAuth::Body;
    client.format = BodyFormat::Form;

    // 2. The request is written into a caller buffer: a complete HTTP/1.1
    //    request a device can write straight to its TLS socket.
    let mut out = [0u8; 512];
    let n = client
        .request(Grant::ClientCredentials)
        .write_http(&mut out)?;
    println!(
        "--- request ({n} bytes) ---\n{}",
        String::from_utf8_lossy(&out[..n])
    );

    // 3. The response arrives through a 16-byte "receive buffer": the head
    //    parser and the body parser both take any chunking.
    let response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 103\r\n\r\n\
{\n  \"access_token\": \"eyJhbGciOiJIUzI1NiIsInR5cCI6...\",\n  \"token_type\": \"Bearer\",\n  \"expires_in\": 3600\n}";
    let mut head: HeadParser = HeadParser::new();
    let mut storage = [0u8; 1024]; // where decoded token text lands
    let mut body: Option<BodyParser> = None;
    for chunk in response.chunks(16) {
        let chunk = match &mut body {
            Some(_) => chunk,
            None => match head.feed(chunk)? {
                None => continue,
                Some(used) => {
                    let status = head.head().map_or(0, |h| h.status);
                    body = Some(BodyParser::new(Expect::Token, status, STANDARD_KEYS));
                    &chunk[used..]
                }
            },
        };
        if let Some(p) = &mut body {
            p.feed(&mut storage, chunk)?;
        }
    }
    let outcome = body.ok_or(fieldauth::Error::WrongState)?.finish(&storage)?;

    // 4. A typed view borrows the storage. Debug output never shows tokens.
    match outcome.view(&storage) {
        Response::Token(t) => {
            println!("--- token response ---\n{t:?}");
            // 5. Authorize an API request.
            let n = ApiCredential::Bearer(t.access_token).write_header_line(&mut out)?;
            println!(
                "--- API request header ---\n{}",
                String::from_utf8_lossy(&out[..n])
            );
        }
        Response::Error(e) => println!("server said {:?}: {:?}", e.code, e.description),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}
