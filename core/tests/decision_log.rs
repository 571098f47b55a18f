//! The decision log (feature `log`, issue #16): one line per decision, with
//! no secret in any of them.
#![cfg(feature = "log")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::sync::Mutex;

use fieldauth::preset;
use fieldauth::session::{Action, ApiVerdict, Config, Event, Failure, RequestKind};

mod common;
use common::*;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        assert_eq!(record.target(), "fieldauth");
        LINES
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// The first time from `now` on at which a token request is due.
fn due(s: &mut Sess, mut now: u64) -> u64 {
    for _ in 0..10 {
        match s.poll(now) {
            Action::SendTokenRequest(_) => return now,
            Action::Wait { until } | Action::Ready { next: until } => now = until.max(now + 1),
            other => panic!("{other:?}"),
        }
    }
    panic!("no token request due")
}

#[test]
fn one_line_per_decision_and_no_secret() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let config = Config {
        base_url: "https://webservices.autotask.net",
        client_id: "CLIENT-ID-1",
        client_secret: "SECRET-42",
        ..Config::default()
    };
    let mut s = Sess::new(&preset::AUTOTASK, &config, 1).unwrap();
    // A fetch that fails with an HTML 502, then one that succeeds.
    let html =
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\noops!";
    let (_, ev) = exchange(&mut s, T0, html);
    let Event::Retrying { at, .. } = ev else {
        panic!("{ev:?}")
    };
    let at = due(&mut s, at);
    assert_eq!(s.poll(at), Action::SendTokenRequest(RequestKind::Fetch));
    exchange(&mut s, at, &token_json("TOKEN-AAA", 3600, None));
    // An API 429, then a 401 that drops the token.
    let _ = s.authorize(at + S);
    assert!(matches!(
        s.on_api_response(at + S, &api(429, "Retry-After: 5\r\n"), b""),
        ApiVerdict::RateLimited { .. }
    ));
    let _ = s.authorize(at + 10 * S);
    assert_eq!(
        s.on_api_response(at + 10 * S, &api(401, ""), b""),
        ApiVerdict::RetryWithNewToken
    );
    // A final failure: the secret is refused.
    let t = due(&mut s, at + 20 * S);
    let (_, ev) = exchange(
        &mut s,
        t,
        &json(
            401,
            r#"{"error":"invalid_client","error_description":"bad SECRET-42"}"#,
        ),
    );
    assert_eq!(ev, Event::Failed(Failure::InvalidClient));

    let lines = LINES.lock().unwrap().clone();
    let text = lines.join("\n");
    for expected in [
        "token request sent (fetch), attempt 1",
        "token request failed (HTTP 502",
        "token request sent (fetch), attempt 2",
        "token issued (fetch): lifetime 3600 s, refresh token none",
        "API rate limit (HTTP 429)",
        "the API rejected the token (HTTP 401): dropped",
        "final failure: invalid_client",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    for secret in ["SECRET-42", "TOKEN-AAA", "CLIENT-ID-1", "oops"] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
    assert!(
        lines.iter().all(|l| l.starts_with("INFO fieldauth: ")),
        "{text}"
    );
    // One line per decision: 2 sent + 1 failed + 1 issued + 429 + 401 + 1
    // sent + 1 final failure.
    assert_eq!(lines.len(), 8, "{text}");
}
