//! Helpers shared by the session tests: scripted responses, a virtual
//! clock's constants, and one call that runs a whole token exchange.
#![allow(dead_code)]

use fieldauth::http::{HeadParser, ResponseHead};
use fieldauth::session::{Arena, Authorization, Config, Event, Session, SessionIn, TokenBody};

pub const S: u64 = 1000; // one second in ms
pub const T0: u64 = 10_000_000; // virtual boot time (ms)

/// The arena of the sessions these tests build: 3 KiB, or 1 KiB under Miri
/// (tests/miri.sh), where wiping it byte by byte (zeroize's volatile
/// writes: on drop, and each token slot when it is reused) was most of a
/// token exchange's time. The tests' tokens fit both.
pub const ARENA: usize = if cfg!(miri) { 1024 } else { 3072 };

pub type Sess = Session<ARENA>;

pub fn cc_config() -> Config<'static> {
    Config {
        base_url: "https://webservices.autotask.net",
        client_id: "demo-client",
        client_secret: "demo-secret",
        ..Config::default()
    }
}

/// Parses a raw HTTP response into its head and body bytes.
pub fn response(raw: &str) -> (ResponseHead, Vec<u8>) {
    let mut p: HeadParser<256> = HeadParser::new();
    let n = p.feed(raw.as_bytes()).unwrap().expect("complete head");
    (*p.head().unwrap(), raw.as_bytes()[n..].to_vec())
}

pub fn json(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub fn token_json(token: &str, expires_in: u32, refresh: Option<&str>) -> String {
    match refresh {
        Some(r) => json(
            200,
            &format!(
                r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{expires_in},"refresh_token":"{r}"}}"#
            ),
        ),
        None => json(
            200,
            &format!(
                r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{expires_in}}}"#
            ),
        ),
    }
}

/// Sends the due token request and answers it with `raw`; returns the
/// request text and the event.
pub fn exchange<A: Arena>(s: &mut SessionIn<A>, now: u64, raw: &str) -> (String, Event) {
    let mut buf = vec![0u8; 8192];
    let n = s
        .write_token_request(now, &mut buf)
        .expect("a token request is due");
    let req = String::from_utf8(buf[..n].to_vec()).unwrap();
    let (head, body) = response(raw);
    let mut tb = TokenBody::new();
    s.on_token_head(now, &head, &mut tb).unwrap();
    // Feed the body in small pieces, as a device would.
    let mut event = None;
    for c in body.chunks(7) {
        let p = s.on_token_body(now, &mut tb, c).unwrap();
        assert_eq!(p.consumed, c.len());
        if p.event.is_some() {
            event = p.event;
        }
    }
    if body.is_empty() {
        event = s.on_token_body(now, &mut tb, &[]).unwrap().event;
    }
    (req, event.expect("response complete"))
}

pub fn bearer<A: Arena>(s: &mut SessionIn<A>, now: u64) -> String {
    match s.authorize(now) {
        Authorization::Send(c) => {
            let mut buf = vec![0u8; 8192];
            let n = c.write_header_line(&mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        }
        other => panic!("not authorized: {other:?}"),
    }
}

pub fn api(status: u16, extra: &str) -> ResponseHead {
    response(&format!(
        "HTTP/1.1 {status} X\r\n{extra}Content-Length: 0\r\n\r\n"
    ))
    .0
}
