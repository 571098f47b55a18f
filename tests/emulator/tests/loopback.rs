//! Real sockets: `spawn` on 127.0.0.1:0 and plain `TcpStream`s.

mod common;

use std::time::Instant;

use common::*;
use fieldauth_emulator::{spawn, EmulatorConfig, Fault, FaultRule, Provider, Request};

const FN_TOKEN_BODY: &str = r#"{"grant_type":"client_credentials","client_id":"demo-client","client_secret":"demo-secret","scope":"api"}"#;

fn fn_token_request() -> Request {
    json_post("/fieldnation/authentication/api/oauth/token", FN_TOKEN_BODY)
}

#[test]
fn keep_alive_round_trip_for_every_provider() {
    let server = spawn(EmulatorConfig::default()).unwrap();
    assert!(server.addr().ip().is_loopback());
    assert_eq!(
        server.base_url(Provider::FieldNation),
        format!("http://{}/fieldnation", server.addr())
    );
    let mut client = Client::connect(server.addr());

    client.send(&fn_token_request().to_bytes());
    let token = client.read_response();
    assert_eq!(token.status, 200);
    assert!(token.complete);
    assert!(token.header("Date").unwrap().ends_with(" GMT"));
    let access = token.json()["access_token"].as_str().unwrap().to_owned();

    // Same connection (keep-alive).
    client.send(
        &Request::get(&format!(
            "/fieldnation/api/rest/v2/workorders?access_token={access}"
        ))
        .to_bytes(),
    );
    let api = client.read_response();
    assert_eq!(api.status, 200);
    assert_eq!(api.json()["results"][0]["id"], 48213);

    client.send(&bearer(Request::get("/fentu/v1/work-orders"), "fentu-demo-key").to_bytes());
    let fentu = client.read_response();
    assert_eq!(fentu.header("X-RateLimit-Limit"), Some("1000"));

    client.send(
        &form_post(
            "/autotask/ATServicesRest/oauth/token",
            "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret",
        )
        .to_bytes(),
    );
    assert_eq!(client.read_response().status, 200);

    // Pipelined: two requests in one write, two responses in order.
    let mut both = Request::get("/patchworks/core/v1/flows")
        .with_header("Authorization", "pw-demo-key")
        .to_bytes();
    both.extend(
        Request::get("/patchworks/core/v1/flows")
            .with_header("Authorization", "nope")
            .to_bytes(),
    );
    client.send(&both);
    assert_eq!(client.read_response().status, 200);
    assert_eq!(client.read_response().status, 401);

    // Connection: close is honoured.
    client.send(
        &Request::get("/")
            .with_header("Connection", "close")
            .to_bytes(),
    );
    let index = client.read_response();
    assert_eq!(index.header("Connection"), Some("close"));
    assert!(client.at_eof());

    let log = server.log();
    assert_eq!(log.len(), 7);
    assert_eq!(log[1].path, "/fieldnation/api/rest/v2/workorders");
    server.stop().unwrap();
}

#[test]
fn chunked_response_and_chunked_request() {
    let server = spawn(
        EmulatorConfig::default().with_fault(FaultRule::parse("autotask:token:chunked=5").unwrap()),
    )
    .unwrap();
    let mut client = Client::connect(server.addr());
    // A chunked *request* body, too.
    let body = "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";
    let mut raw = String::from("POST /autotask/ATServicesRest/oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n");
    for part in body.as_bytes().chunks(20) {
        raw.push_str(&format!(
            "{:x}\r\n{}\r\n",
            part.len(),
            std::str::from_utf8(part).unwrap()
        ));
    }
    raw.push_str("0\r\n\r\n");
    client.send(raw.as_bytes());
    let resp = client.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Transfer-Encoding"), Some("chunked"));
    assert!(resp.header("Content-Length").is_none());
    assert!(resp.complete);
    assert_eq!(resp.json()["token_type"], "Bearer");
    assert_eq!(
        server.log()[0].faults,
        vec![Fault::Chunked { chunk_bytes: 5 }]
    );
}

#[test]
fn truncated_response_closes_mid_body() {
    let server = spawn(
        EmulatorConfig::default()
            .with_fault(FaultRule::parse("fieldnation:token:truncate=12").unwrap()),
    )
    .unwrap();
    let mut client = Client::connect(server.addr());
    client.send(&fn_token_request().to_bytes());
    let resp = client.read_response();
    assert_eq!(resp.status, 200);
    assert!(!resp.complete);
    assert_eq!(resp.body, br#"{"access_tok"#);
    let announced: usize = resp.header("Content-Length").unwrap().parse().unwrap();
    assert!(announced > 12);
    assert!(client.at_eof());
    // The token was issued server-side all the same.
    assert_eq!(
        server.with(|emu| emu.live_tokens(Provider::FieldNation, 0)),
        1
    );
}

#[test]
fn tiny_pieces_and_slow_writes_arrive_intact() {
    let server = spawn(
        EmulatorConfig::default()
            .with_fault(FaultRule::parse("patchworks:token:slow=2/64").unwrap())
            .with_fault(FaultRule::parse("fieldnation:token:pieces=1").unwrap()),
    )
    .unwrap();
    let mut client = Client::connect(server.addr());
    client.send(&fn_token_request().to_bytes());
    let resp = client.read_response();
    assert!(resp.complete);
    assert_eq!(resp.json()["expires_in"], 3600);

    let started = Instant::now();
    client.send(
        &json_post(
            "/patchworks/fabric/api/login",
            r#"{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}"#,
        )
        .with_header("Accept", "application/json")
        .to_bytes(),
    );
    let resp = client.read_response();
    assert!(resp.complete);
    assert_eq!(resp.json()["message"], "You have successfully logged in.");
    // At least body/64 pieces, 2 ms apart (the server sleeps; the client may
    // still read several pieces at once on a busy machine).
    let pieces = resp.body.len() / 64;
    assert!(pieces >= 3);
    assert!(
        started.elapsed().as_millis() >= 2 * (pieces as u128 - 1),
        "with delays between the pieces"
    );
}

#[test]
fn malformed_http_gets_400_and_close() {
    let server = spawn(EmulatorConfig::default()).unwrap();
    let mut client = Client::connect(server.addr());
    client.send(
        b"GET /fentu/v1/work-orders HTTP/1.1\r\nAuthorization: Bearer fentu-demo-key\r\n\r\n",
    );
    let resp = client.read_response();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"], "invalid_request");
    assert!(resp.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("Host"));
    assert!(client.at_eof());

    let mut client = Client::connect(server.addr());
    client.send(b"POST /fieldnation/authentication/api/oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(client.read_response().status, 400);
    assert!(client.at_eof());
    assert_eq!(server.log().len(), 2);
}

#[test]
fn expect_100_continue() {
    let server = spawn(EmulatorConfig::default()).unwrap();
    let mut client = Client::connect(server.addr());
    let req = fn_token_request()
        .with_header("Expect", "100-continue")
        .to_bytes();
    let head_end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    client.send(&req[..head_end]);
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut client.stream, &mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    client.send(&req[head_end..]);
    assert_eq!(client.read_response().status, 200);
}

#[test]
fn virtual_clock_expires_tokens_over_the_wire() {
    let server = spawn(EmulatorConfig::default().with_token_lifetime(5)).unwrap();
    let mut client = Client::connect(server.addr());
    client.send(&fn_token_request().to_bytes());
    let token = client.read_response().json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let api = Request::get(&format!(
        "/fieldnation/api/rest/v2/workorders?access_token={token}"
    ))
    .to_bytes();
    client.send(&api);
    assert_eq!(client.read_response().status, 200);
    server.with(|emu| emu.advance_clock(5_000));
    client.send(&api);
    let resp = client.read_response();
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["error_description"], "The access token expired");
}

#[test]
fn stop_is_prompt_with_an_idle_connection_open() {
    let server = spawn(EmulatorConfig::default()).unwrap();
    let _idle = Client::connect(server.addr());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let started = Instant::now();
    server.stop().unwrap();
    assert!(started.elapsed().as_millis() < 1_000);
}
