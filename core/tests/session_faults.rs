//! Issue #19: the session's failure handling. One test per defect found by
//! driving the session with crafted responses; each failed before its fix.
//! (The model-based test over every server behaviour and clock event is
//! `model.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stderr
)]

mod common;
use common::*;

use fieldauth::preset::{self, Mode, Profile};
use fieldauth::session::{
    Action, ApiVerdict, Authorization, Config, Event, Failure, RequestKind, Session, TokenBody,
    DEFAULT_MAX_WAIT_S, EXHAUSTED_RETRY_MS, RESPONSE_TIMEOUT_MS, UNKNOWN_RESET_WAIT_S,
};
use fieldauth::{Error, SnapshotError};

const HOUR: u64 = 3600 * S;
const DAY: u64 = 24 * HOUR;
/// 2026-12-07T05:00:00Z in Unix ms.
const WALL: u64 = 1_796_619_600_000;

/// A client-credentials profile whose server also issues refresh tokens.
const CC: Profile<'static> = preset::custom();

fn config() -> Config<'static> {
    Config {
        base_url: "https://auth.example",
        client_id: "client-1",
        client_secret: "s3cret-client",
        ..Config::default()
    }
}

fn html(status: u16) -> String {
    let body = "<html><body><h1>Sign in to the hotel Wi-Fi</h1></body></html>";
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The time the session next wants a token request, polling forward.
fn next_send<A: fieldauth::session::Arena>(
    s: &mut fieldauth::session::SessionIn<A>,
    mut now: u64,
) -> u64 {
    for _ in 0..10_000 {
        match s.poll(now) {
            Action::SendTokenRequest(_) => return now,
            Action::Ready { next } => now = next.max(now + 1),
            Action::Wait { until } => now = until.max(now + 1),
            other => panic!("at {now}: {other:?}"),
        }
    }
    panic!("no token request due")
}

fn has_window_of(hay: &str, secret: &str) -> bool {
    // The secret's windows as sorted numbers; each window of the text is
    // looked up through a filter on its low 16 bits first (comparing every
    // pair of windows was most of a test's time under Miri, tests/miri.sh).
    let key = |w: &[u8]| w.iter().fold(0u64, |k, &b| k << 8 | u64::from(b));
    let mut keys: Vec<u64> = secret.as_bytes().windows(6).map(key).collect();
    keys.sort_unstable();
    let mut filter = vec![false; 1 << 16];
    for k in &keys {
        filter[(k & 0xffff) as usize] = true;
    }
    let mut k = 0u64;
    hay.bytes().enumerate().any(|(i, b)| {
        k = (k << 8 | u64::from(b)) & 0xffff_ffff_ffff;
        i >= 5 && filter[(k & 0xffff) as usize] && keys.binary_search(&k).is_ok()
    })
}

// ------------------------------------------------------------ 1. secrets

#[test]
fn the_description_of_an_old_error_never_shows_a_new_token() {
    let access = "AT-0123456789abcdefghijklmnopqrstuvwxyz-new-access-token";
    let desc = "The service is down for maintenance";
    let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
    let (_, ev) = exchange(
        &mut s,
        T0,
        &json(
            503,
            &format!(r#"{{"error":"temporarily_unavailable","error_description":"{desc}"}}"#),
        ),
    );
    assert!(matches!(ev, Event::Retrying { status: 503, .. }), "{ev:?}");
    // Right after the error: its text, not the zeroes of a wiped slot.
    assert_eq!(s.failure_description(), Some(desc));
    let t = next_send(&mut s, T0);
    exchange(
        &mut s,
        t,
        &token_json(access, 3600, Some("RT-abcdefghijklmnopqrstuvwxyz")),
    );
    // The new token was parsed into the slot the description lay in.
    let d = s.failure_description();
    assert_eq!(d, None, "the old description is gone: {d:?}");
    assert!(!has_window_of(&format!("{s:?}"), access));
}

#[test]
fn a_restart_and_a_login_do_not_expose_the_new_refresh_token() {
    let password = Profile {
        mode: Mode::Password,
        ..preset::custom()
    };
    let cfg = Config {
        username: "tech@example.com",
        password: "hunter2-but-longer",
        ..config()
    };
    let mut s = Sess::new(&password, &cfg, 5).unwrap();
    let (_, ev) = exchange(
        &mut s,
        T0,
        &json(
            401,
            r#"{"error":"invalid_client","error_description":"Client authentication failed!"}"#,
        ),
    );
    assert_eq!(ev, Event::Failed(Failure::InvalidClient));
    assert_eq!(
        s.failure_description(),
        Some("Client authentication failed!")
    );
    s.restart();
    let refresh = "RT-zyxwvutsrqponmlkjihgfedcba9876543210-refresh";
    exchange(
        &mut s,
        T0 + S,
        &json(
            200,
            &format!(
                r#"{{"token_type":"Bearer","expires_in":3600,"refresh_token":"{refresh}","access_token":"AT-short"}}"#
            ),
        ),
    );
    assert_eq!(s.failure_description(), None);
}

// ------------------------------------------------------------ 2. refresh tokens

#[test]
fn a_refresh_token_that_cannot_be_kept_is_not_claimed() {
    // A small arena: the kept refresh token does not fit after the new
    // access token in the staging slot.
    let mut s: Session<700> = Session::new(&CC, &config(), 3).unwrap();
    let at1 = "a".repeat(100);
    let rt = "r".repeat(120);
    let (_, ev) = exchange(&mut s, T0, &token_json(&at1, 3600, Some(&rt)));
    assert!(matches!(
        ev,
        Event::TokenIssued {
            refreshable: true,
            ..
        }
    ));
    let t = next_send(&mut s, T0);
    assert_eq!(s.poll(t), Action::SendTokenRequest(RequestKind::Refresh));
    let at2 = "b".repeat(240);
    let (_, ev) = exchange(&mut s, t, &token_json(&at2, 3600, None));
    let Event::TokenIssued { refreshable, .. } = ev else {
        panic!("{ev:?}")
    };
    assert!(!refreshable, "it does not fit");
    assert!(!s.status().refreshable, "status agrees with the event");
    // The next renewal uses the primary grant, and it can be written.
    let t = next_send(&mut s, t);
    assert_eq!(s.poll(t), Action::SendTokenRequest(RequestKind::Fetch));
    let (req, _) = exchange(&mut s, t, &token_json("c", 3600, None));
    assert!(req.contains("grant_type=client_credentials"), "{req}");
}

#[test]
fn a_refresh_token_that_fits_is_kept() {
    let mut s = Sess::new(&CC, &config(), 3).unwrap();
    exchange(&mut s, T0, &token_json("at-1", 3600, Some("rt-keep-me")));
    let t = next_send(&mut s, T0);
    let (_, ev) = exchange(&mut s, t, &token_json("at-2", 3600, None));
    assert!(matches!(
        ev,
        Event::TokenIssued {
            refreshable: true,
            ..
        }
    ));
    let t = next_send(&mut s, t);
    let (req, _) = exchange(&mut s, t, &token_json("at-3", 3600, None));
    assert!(req.contains("refresh_token=rt-keep-me"), "{req}");
}

#[test]
fn the_primary_grant_after_a_rejected_refresh_token_holds_none() {
    let mut s = Sess::new(&CC, &config(), 4).unwrap();
    exchange(&mut s, T0, &token_json("at-1", 3600, Some("rt-old")));
    let t = next_send(&mut s, T0);
    let (_, ev) = exchange(&mut s, t, &json(400, r#"{"error":"invalid_grant"}"#));
    assert_eq!(ev, Event::RefreshRejected);
    assert!(!s.status().refreshable, "the rejected one is dropped");
    assert_eq!(s.poll(t), Action::SendTokenRequest(RequestKind::Fetch));
    let (_, ev) = exchange(&mut s, t, &token_json("at-2", 3600, None));
    assert!(matches!(
        ev,
        Event::TokenIssued {
            refreshable: false,
            ..
        }
    ));
    assert!(!s.status().refreshable);
    let t = next_send(&mut s, t);
    // Before the fix: a refresh with an empty token, refused for good.
    assert_eq!(s.poll(t), Action::SendTokenRequest(RequestKind::Fetch));
    let mut buf = [0u8; 1024];
    assert!(s.write_token_request(t, &mut buf).is_ok());
}

// ------------------------------------------------------------ 3. 4xx during a refresh

#[test]
fn a_non_rfc_4xx_during_a_refresh_is_retried_and_the_token_served() {
    let answers = [
        html(400),
        html(403),
        html(404),
        json(400, r#"{"error":"server_error"}"#),
        json(400, r#"{"error":"temporarily_unavailable"}"#),
        json(403, ""),
        // Fentu's rate limit at the token endpoint: a code, but a 429.
        json(429, r#"{"error":"rate_limit_exceeded","status":429}"#),
        json(502, r#"{"error":"invalid_request"}"#),
    ];
    // Under Miri (tests/miri.sh) every other answer.
    for answer in answers.iter().step_by(if cfg!(miri) { 2 } else { 1 }) {
        let mut s = Sess::new(&CC, &config(), 8).unwrap();
        exchange(&mut s, T0, &token_json("valid-at", 3600, Some("rt")));
        let t = next_send(&mut s, T0);
        let (_, ev) = exchange(&mut s, t, answer);
        assert!(matches!(ev, Event::Retrying { .. }), "{answer}: {ev:?}");
        assert_eq!(s.status().failure, None, "{answer}");
        assert!(
            s.status().refreshable,
            "{answer}: the refresh token is kept"
        );
        assert_eq!(bearer(&mut s, t), "Authorization: Bearer valid-at\r\n");
        assert!(matches!(s.poll(t), Action::Ready { .. }), "{answer}");
        // The server behaves again: the refresh goes through.
        let t = next_send(&mut s, t);
        assert_eq!(s.poll(t), Action::SendTokenRequest(RequestKind::Refresh));
        exchange(&mut s, t, &token_json("fresh-at", 3600, Some("rt2")));
        assert_eq!(bearer(&mut s, t), "Authorization: Bearer fresh-at\r\n");
    }
}

#[test]
fn an_rfc_error_to_a_refresh_falls_back_to_the_primary_grant() {
    for code in [
        "invalid_request",
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "invalid_scope",
    ]
    .into_iter()
    // Under Miri (tests/miri.sh) every other code.
    .step_by(if cfg!(miri) { 2 } else { 1 })
    {
        let mut s = Sess::new(&CC, &config(), 9).unwrap();
        exchange(&mut s, T0, &token_json("valid-at", 3600, Some("rt")));
        let t = next_send(&mut s, T0);
        let (_, ev) = exchange(&mut s, t, &json(400, &format!(r#"{{"error":"{code}"}}"#)));
        assert_eq!(ev, Event::RefreshRejected, "{code}");
        assert_eq!(s.status().failure, None, "{code}");
        assert_eq!(bearer(&mut s, t), "Authorization: Bearer valid-at\r\n");
        assert_eq!(s.poll(t), Action::SendTokenRequest(RequestKind::Fetch));
        exchange(&mut s, t, &token_json("new-at", 3600, None));
        assert_eq!(bearer(&mut s, t), "Authorization: Bearer new-at\r\n");
    }
}

#[test]
fn a_final_answer_to_the_fallback_still_serves_the_valid_token() {
    let mut s = Sess::new(&CC, &config(), 10).unwrap();
    exchange(&mut s, T0, &token_json("valid-at", 3600, Some("rt")));
    let expiry = T0 + HOUR;
    let t = next_send(&mut s, T0);
    let (_, ev) = exchange(&mut s, t, &json(401, r#"{"error":"invalid_client"}"#));
    assert_eq!(ev, Event::RefreshRejected);
    let (_, ev) = exchange(&mut s, t, &json(401, r#"{"error":"invalid_client"}"#));
    assert_eq!(ev, Event::Failed(Failure::InvalidClient));
    // Final: no more requests, but the token is served to its end.
    assert_eq!(s.poll(t), Action::Ready { next: expiry });
    assert_eq!(s.status().failure, Some(Failure::InvalidClient));
    assert_eq!(
        bearer(&mut s, expiry - 1),
        "Authorization: Bearer valid-at\r\n"
    );
    assert_eq!(s.poll(expiry), Action::Failed(Failure::InvalidClient));
    assert_eq!(s.authorize(expiry), Authorization::NoCredential);
}

#[test]
fn html_at_the_primary_grant_is_retried_not_final() {
    for answer in [html(400), html(403), html(404)] {
        let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), 2).unwrap();
        let (_, ev) = exchange(&mut s, T0, &answer);
        assert!(matches!(ev, Event::Retrying { .. }), "{answer}: {ev:?}");
        let t = next_send(&mut s, T0);
        exchange(&mut s, t, &token_json("t", 3600, None));
        assert!(s.status().usable);
    }
}

// ------------------------------------------------------------ 4, 5. waits

#[test]
fn an_epoch_reset_without_a_known_now_waits_a_bounded_time() {
    let cfg = Config {
        base_url: "https://api.fentu.io",
        api_key: "k",
        ..Config::default()
    };
    let mut s = Sess::new(&preset::FENTU_API_KEY, &cfg, 0).unwrap();
    // No Date header, no wall clock: the session's "now" is unknown.
    let h = api(
        200,
        "X-RateLimit-Limit: 1000\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 1796620000\r\n",
    );
    assert_eq!(s.on_api_response(T0, &h, b""), ApiVerdict::Ok);
    let Authorization::Wait { until } = s.authorize(T0) else {
        panic!("blocked")
    };
    assert_eq!(until, T0 + 60 * S, "not 56 years");
    assert_eq!(u64::from(UNKNOWN_RESET_WAIT_S) * S, 60 * S);
    // With a wall clock the reset resolves exactly.
    let mut s = Sess::new(&preset::FENTU_API_KEY, &cfg, 0).unwrap();
    s.set_wall_clock(T0, WALL);
    s.on_api_response(T0, &h, b"");
    let reset_ms = 1_796_620_000_000 - WALL;
    assert_eq!(
        s.authorize(T0),
        Authorization::Wait {
            until: T0 + reset_ms
        }
    );
}

#[test]
fn every_server_imposed_wait_is_capped() {
    let date = "Date: Mon, 07 Dec 2026 05:00:00 GMT\r\n";
    let cap = u64::from(DEFAULT_MAX_WAIT_S) * S;
    assert_eq!(cap, HOUR);
    for extra in [
        "Retry-After: 4000000000\r\n".to_owned(),
        format!("{date}Retry-After: Fri, 31 Dec 9999 23:59:59 GMT\r\n"),
        format!("{date}X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 253402300799\r\n"),
    ] {
        // API requests.
        let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
        exchange(&mut s, T0, &token_json("t", 3600, None));
        let v = s.on_api_response(T0, &api(429, &extra), b"");
        assert_eq!(v, ApiVerdict::RateLimited { until: T0 + cap }, "{extra}");
        assert!(s.status().api_blocked_until <= T0 + cap);
        // The token endpoint.
        let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
        let raw = format!("HTTP/1.1 429 X\r\n{extra}Content-Length: 0\r\n\r\n");
        let (_, ev) = exchange(&mut s, T0, &raw);
        let Event::Retrying { at, .. } = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(at, T0 + cap, "{extra}");
        assert_eq!(s.poll(T0), Action::Wait { until: T0 + cap });
        // restart() lifts the block (what remains is Autotask's own pace of
        // one token request per 6.6 s).
        s.restart();
        assert_eq!(s.status().token_blocked_until, 0);
        assert!(matches!(s.poll(T0 + 7 * S), Action::SendTokenRequest(_)));
    }
}

#[test]
fn the_cap_is_configurable() {
    let cfg = Config {
        max_wait_s: 120,
        ..cc_config()
    };
    let mut s = Sess::new(&preset::AUTOTASK, &cfg, 1).unwrap();
    exchange(&mut s, T0, &token_json("t", 3600, None));
    let v = s.on_api_response(T0, &api(503, "Retry-After: 86400\r\n"), b"");
    assert_eq!(
        v,
        ApiVerdict::RateLimited {
            until: T0 + 120 * S
        }
    );
    let v = s.on_api_response(T0, &api(503, "Retry-After: 30\r\n"), b"");
    assert_eq!(
        v,
        ApiVerdict::RateLimited {
            until: T0 + 120 * S
        },
        "the longer stays"
    );
    assert!(format!("{cfg:?}").contains("max_wait_s: 120"));
}

// ------------------------------------------------------------ 6. clocks

#[test]
fn a_long_outage_and_a_clock_jump_of_days_do_not_latch() {
    let mut s = Sess::new(&preset::FIELD_NATION, &cc_config(), 6).unwrap();
    let mut now = T0;
    // The server fails every request for a day (under Miri, tests/miri.sh:
    // half an hour, still far past `max_attempts`).
    while now < T0 + if cfg!(miri) { HOUR / 2 } else { DAY } {
        match s.poll(now) {
            Action::SendTokenRequest(_) => {
                let (_, ev) = exchange(&mut s, now, &json(502, ""));
                assert!(matches!(ev, Event::Retrying { .. }), "{ev:?}");
            }
            Action::Wait { until } => {
                assert!(until - now <= u64::from(EXHAUSTED_RETRY_MS));
                now = until;
            }
            other => panic!("{other:?}"),
        }
    }
    // The device sleeps for ten days; the server is back.
    now += 10 * DAY;
    let t = next_send(&mut s, now);
    assert!(t - now <= u64::from(EXHAUSTED_RETRY_MS), "{}", t - now);
    exchange(&mut s, t, &token_json("back", 3600, None));
    assert!(matches!(s.authorize(t), Authorization::Send(_)));
}

#[test]
fn a_token_survives_a_forward_jump_only_until_its_expiry() {
    let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), 6).unwrap();
    exchange(&mut s, T0, &token_json("t", 3600, None));
    let later = T0 + 3 * DAY;
    assert_eq!(s.authorize(later), Authorization::NoCredential);
    assert_eq!(s.poll(later), Action::SendTokenRequest(RequestKind::Fetch));
    exchange(&mut s, later, &token_json("t2", 3600, None));
    assert!(matches!(s.authorize(later), Authorization::Send(_)));
}

#[test]
fn a_restore_with_the_wall_clock_a_year_behind_does_not_stretch_the_token() {
    let mut a = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
    exchange(&mut a, T0, &token_json("t", 3600, None));
    let mut img = vec![0u8; a.snapshot_len()];
    a.snapshot(T0 + 600 * S, WALL, &mut img).unwrap();
    // The device reboots with its RTC a year behind.
    let mut b = Sess::new(&preset::AUTOTASK, &cc_config(), 2).unwrap();
    b.restore(5_000, WALL - 365 * DAY, &img).unwrap();
    let st = b.status();
    assert!(
        st.expires_at <= 5_000 + HOUR,
        "expiry {} ms ahead",
        st.expires_at - 5_000
    );
    // No time is assumed to have passed since the image was written.
    assert_eq!(st.expires_at, 5_000 + 3000 * S);
    assert!(st.refresh_at <= st.expires_at);
}

#[test]
fn a_restore_from_the_future_is_clamped_too() {
    // An image written by a clock a year ahead, restored with the right one:
    // its deadlines say "a year from now"; the token is clamped to its
    // lifetime.
    let mut a = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
    exchange(&mut a, T0, &token_json("t", 3600, None));
    let mut img = vec![0u8; a.snapshot_len()];
    a.snapshot(T0, WALL + 365 * DAY, &mut img).unwrap();
    let mut b = Sess::new(&preset::AUTOTASK, &cc_config(), 2).unwrap();
    b.restore(5_000, WALL, &img).unwrap();
    assert!(b.status().expires_at <= 5_000 + HOUR);
}

#[test]
fn a_failed_restore_leaves_the_clock_and_the_token_as_they_were() {
    let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
    exchange(&mut s, T0, &token_json("t", 3600, None));
    let mut img = vec![0u8; s.snapshot_len()];
    s.snapshot(T0, WALL, &mut img).unwrap();
    let before = (s.status(), format!("{s:?}"), s.credential().is_some());
    // Two days later the image has expired: refused...
    let e = s.restore(T0 + 2 * DAY, WALL + 2 * DAY, &img).unwrap_err();
    assert_eq!(e, Error::Snapshot(SnapshotError::Expired));
    // ...and the session has not been moved two days ahead by the attempt.
    assert_eq!(
        (s.status(), format!("{s:?}"), s.credential().is_some()),
        before
    );
    assert!(matches!(s.poll(T0 + S), Action::Ready { .. }));
}

#[test]
fn blocks_restored_from_a_snapshot_are_capped() {
    let mut a = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
    exchange(&mut a, T0, &token_json("t", 3600, None));
    a.on_api_response(T0, &api(429, "Retry-After: 600\r\n"), b"");
    let mut img = vec![0u8; a.snapshot_len()];
    a.snapshot(T0, WALL, &mut img).unwrap();
    // A session with a shorter cap restores it.
    let cfg = Config {
        max_wait_s: 60,
        ..cc_config()
    };
    // (Same configuration strings: the cap is not part of the image's key.)
    let mut b = Sess::new(&preset::AUTOTASK, &cfg, 2).unwrap();
    b.restore(5_000, WALL, &img).unwrap();
    assert_eq!(b.status().api_blocked_until, 5_000 + 60 * S);
}

// ------------------------------------------------------------ 7. timeout vs margin

#[test]
fn a_lost_refresh_leaves_time_for_a_timeout_and_a_retry() {
    for p in [&preset::AUTOTASK, &preset::FIELD_NATION, &CC] {
        // Under Miri (tests/miri.sh) one seed per preset.
        for seed in 0..if cfg!(miri) { 1 } else { 20 } {
            let mut s = Sess::new(p, &cc_config(), seed).unwrap();
            exchange(&mut s, T0, &token_json("t", 3600, None));
            let expiry = T0 + HOUR;
            let t = next_send(&mut s, T0);
            let mut buf = [0u8; 1024];
            s.write_token_request(t, &mut buf).unwrap();
            // No answer ever comes: the session's timeout ends the wait...
            let mut now = t;
            while s.poll(now) == Action::AwaitResponse {
                now += 100;
            }
            assert_eq!(now, t + RESPONSE_TIMEOUT_MS, "{}", p.name);
            // ...and the retry still has a whole timeout before expiry.
            let retry = next_send(&mut s, now);
            assert!(
                retry + RESPONSE_TIMEOUT_MS <= expiry,
                "{}: retry at expiry - {} ms",
                p.name,
                expiry - retry
            );
        }
    }
}

// ------------------------------------------------------------ invariants

#[test]
fn no_debug_or_accessor_output_carries_a_secret() {
    let access = "AT-debug-check-0123456789";
    let mut s = Sess::new(&CC, &config(), 1).unwrap();
    exchange(
        &mut s,
        T0,
        &token_json(access, 3600, Some("RT-debug-check-9876543210")),
    );
    let t = next_send(&mut s, T0);
    let (_, ev) = exchange(
        &mut s,
        t,
        &json(
            400,
            r#"{"error":"invalid_grant","error_description":"Refresh token revoked"}"#,
        ),
    );
    let mut tb = TokenBody::new();
    let _ = s.on_token_body(t, &mut tb, b"{}");
    for text in [
        format!("{s:?}"),
        format!("{:?}", s.status()),
        format!("{ev:?}"),
        format!("{:?}", s.authorize(t)),
        format!("{:?}", s.failure_description()),
        format!("{:?}", s.granted_scope()),
        format!("{tb:?}"),
    ] {
        for secret in [access, "RT-debug-check-9876543210", "s3cret-client"] {
            assert!(!has_window_of(&text, secret), "{text}");
        }
    }
}

// ------------------------------------------------------------ found by model.rs

fn fentu_oauth_config() -> Config<'static> {
    Config {
        base_url: "https://api.fentu.io",
        client_id: "c",
        client_secret: "s",
        redirect_uri: "https://app.example/cb",
        ..Config::default()
    }
}

/// Runs the browser step and returns the `state` the session expects.
fn approve(s: &mut Sess) -> String {
    let mut url = [0u8; 512];
    let n = s
        .authorization_url(&[7u8; 32], &[9u8; 16], &mut url)
        .unwrap();
    let url = std::str::from_utf8(&url[..n]).unwrap();
    let state = url
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    state.to_string()
}

#[test]
fn a_snapshot_taken_after_a_login_restores_into_a_fresh_session() {
    // The image's configuration checksum covered the PKCE zone, whose state
    // changes with every login: every reboot lost a valid token.
    let mut a = Sess::new(&preset::FENTU_OAUTH, &fentu_oauth_config(), 1).unwrap();
    let state = approve(&mut a);
    a.set_authorization_code("code-1", &state).unwrap();
    exchange(&mut a, T0, &token_json("at-1", 3600, Some("rt-1")));
    let mut img = vec![0u8; a.snapshot_len()];
    a.snapshot(T0, WALL, &mut img).unwrap();
    let mut b = Sess::new(&preset::FENTU_OAUTH, &fentu_oauth_config(), 2).unwrap();
    b.restore(5_000, WALL, &img).unwrap();
    assert_eq!(bearer(&mut b, 5_000), "Authorization: Bearer at-1\r\n");
}

#[test]
fn a_revocation_whose_token_was_dropped_completes_instead_of_sticking() {
    // Fentu revokes with `Authorization: Bearer <access token>`.
    let mut s = Sess::new(&preset::FENTU_OAUTH, &fentu_oauth_config(), 1).unwrap();
    let state = approve(&mut s);
    s.set_authorization_code("code-1", &state).unwrap();
    exchange(&mut s, T0, &token_json("at-1", 3600, Some("rt-1")));
    s.revoke();
    assert_eq!(s.poll(T0), Action::SendTokenRequest(RequestKind::Revoke));
    // An API 401 drops the access token before the revocation goes out.
    assert_eq!(
        s.on_api_response(T0, &api(401, ""), b""),
        ApiVerdict::RetryWithNewToken
    );
    // Before the fix: SendTokenRequest(Revoke) forever, and every write
    // refused (the token's bytes were wiped).
    assert_eq!(s.poll(T0), Action::Failed(Failure::Revoked));
    assert!(!s.status().refreshable);
}

#[test]
fn a_revoke_with_a_code_pending_forgets_the_code() {
    let mut s = Sess::new(&preset::FENTU_OAUTH, &fentu_oauth_config(), 1).unwrap();
    let state = approve(&mut s);
    s.set_authorization_code("code-1", &state).unwrap();
    s.revoke(); // nothing to revoke at the server: wiped here, code included
    assert_eq!(s.poll(T0), Action::Failed(Failure::Revoked));
    s.restart();
    // Before the fix: SendTokenRequest(Fetch) with the wiped code, refused
    // forever.
    assert_eq!(s.poll(T0), Action::NeedAuthorizationCode);
}

#[cfg(feature = "device-flow")]
fn device_session() -> Sess {
    let profile = Profile {
        mode: Mode::DeviceCode,
        client_auth: fieldauth::request::ClientAuth::None,
        ..preset::custom()
    };
    let cfg = Config {
        base_url: "https://auth.example.com",
        client_id: "handheld",
        ..Config::default()
    };
    Sess::new(&profile, &cfg, 4).unwrap()
}

#[cfg(feature = "device-flow")]
const DEVICE_CODE: &str = r#"{"device_code":"dev-code-123","user_code":"WDJB-MJHT","verification_uri":"https://example.com/device","expires_in":1800,"interval":5}"#;

#[cfg(feature = "device-flow")]
#[test]
fn the_device_flow_starts_only_once_the_token_is_gone() {
    let mut s = device_session();
    exchange(&mut s, T0, &json(200, DEVICE_CODE));
    let (_, ev) = exchange(&mut s, T0 + 5 * S, &token_json("dev-at", 600, None));
    assert!(matches!(
        ev,
        Event::TokenIssued {
            refreshable: false,
            ..
        }
    ));
    // Refresh time, no refresh token: the token is served to its end, not
    // wiped by a new device authorization.
    let Action::Ready { next } = s.poll(T0 + 5 * S) else {
        panic!()
    };
    assert_eq!(s.poll(next), Action::Ready { next: T0 + 605 * S });
    assert_eq!(bearer(&mut s, next), "Authorization: Bearer dev-at\r\n");
    assert_eq!(
        s.poll(T0 + 605 * S),
        Action::SendTokenRequest(RequestKind::DeviceAuthorization)
    );
}

#[cfg(feature = "device-flow")]
#[test]
fn a_restore_during_a_device_flow_shows_no_token_as_a_user_code() {
    let mut s = device_session();
    exchange(&mut s, T0, &json(200, DEVICE_CODE));
    exchange(
        &mut s,
        T0 + 5 * S,
        &token_json("dev-at", 600, Some("dev-rt-0123456789")),
    );
    let mut img = vec![0u8; s.snapshot_len()];
    s.snapshot(T0 + 5 * S, WALL, &mut img).unwrap();
    // A new session starts a device flow, then finds the image.
    let mut b = device_session();
    exchange(&mut b, 5_000, &json(200, DEVICE_CODE));
    assert!(b.device_display().is_some());
    b.restore(6_000, WALL + S, &img).unwrap();
    assert_eq!(b.device_display(), None, "the image holds a token");
    assert_eq!(bearer(&mut b, 6_000), "Authorization: Bearer dev-at\r\n");
}

// ------------------------------------------------------------ issue #20

#[test]
fn the_status_says_what_the_token_endpoint_answered() {
    // A wrong token URL: the server's 404 page. Retried (it is not final),
    // and the status says what happened.
    let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
    assert_eq!(s.status().last_http_status, 0);
    exchange(&mut s, T0, &html(404));
    let st = s.status();
    assert_eq!((st.last_http_status, st.last_content_json), (404, false));
    assert_eq!(st.failed_attempts, 1);
    let t = next_send(&mut s, T0);
    exchange(&mut s, t, &json(401, r#"{"error":"invalid_client"}"#));
    let st = s.status();
    assert_eq!(st.failure, Some(Failure::InvalidClient));
    assert_eq!((st.last_http_status, st.last_content_json), (401, true));
    // A transport failure: no response, status 0.
    let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), 1).unwrap();
    let mut buf = [0u8; 1024];
    s.write_token_request(T0, &mut buf).unwrap();
    s.on_transport_error(T0);
    assert_eq!(s.status().last_http_status, 0);
}

// ------------------------------------------------------------ issue #14, §2.1 and §2.8

#[test]
fn short_lived_tokens_are_refreshed_before_they_expire() {
    // With whole seconds, 10 % of 5 s was 0: the refresh went out at expiry
    // and no credential was usable during the exchange.
    for (lifetime_s, earliest, latest) in [
        (5u32, T0 + 2 * S, T0 + 3 * S),
        (1, T0 + 250, T0 + 500),
        (20, T0 + 17 * S, T0 + 18 * S),
    ] {
        // Under Miri (tests/miri.sh) two seeds per lifetime.
        for seed in 0..if cfg!(miri) { 2 } else { 10 } {
            let mut s = Sess::new(&preset::FIELD_NATION, &cc_config(), seed).unwrap();
            exchange(&mut s, T0, &token_json("short", lifetime_s, None));
            let Action::Ready { next } = s.poll(T0) else {
                panic!()
            };
            assert!(
                (earliest..=latest).contains(&next),
                "{lifetime_s} s token refreshed at +{} ms",
                next - T0
            );
            // The replacement is fetched while the old token still works.
            assert_eq!(s.poll(next), Action::SendTokenRequest(RequestKind::Fetch));
            let mut buf = [0u8; 1024];
            s.write_token_request(next, &mut buf).unwrap();
            assert!(matches!(s.authorize(next + 100), Authorization::Send(_)));
        }
    }
}

#[test]
fn a_token_that_expires_during_a_rate_limit_wait_still_says_wait() {
    let mut s = Sess::new(&preset::FIELD_NATION, &cc_config(), 3).unwrap();
    exchange(&mut s, T0, &token_json("t1", 60, None));
    let v = s.on_api_response(T0 + 10 * S, &api(429, "Retry-After: 120\r\n"), b"");
    let until = T0 + 130 * S;
    assert_eq!(v, ApiVerdict::RateLimited { until });
    // The token expired at T0 + 60 s; the wait goes on (it said
    // NoCredential here before).
    assert_eq!(s.authorize(T0 + 70 * S), Authorization::Wait { until });
    // Meanwhile the session fetches a new token...
    assert_eq!(
        s.poll(T0 + 70 * S),
        Action::SendTokenRequest(RequestKind::Fetch)
    );
    exchange(&mut s, T0 + 70 * S, &token_json("t2", 3600, None));
    assert_eq!(s.authorize(T0 + 100 * S), Authorization::Wait { until });
    // ...and sends with it once the wait is over (Field Nation puts the
    // token in the query).
    let mut target = [0u8; 128];
    let Authorization::Send(c) = s.authorize(until) else {
        panic!("no credential after the wait")
    };
    let n = c.write_target("/api/v2/workorders", &mut target).unwrap();
    assert_eq!(&target[..n], b"/api/v2/workorders?access_token=t2");
    // A token rejected by the API, by contrast, is "no credential" at once.
    let v = s.on_api_response(until, &api(401, ""), b"");
    assert_eq!(v, ApiVerdict::RetryWithNewToken);
    s.on_api_response(until, &api(429, "Retry-After: 60\r\n"), b"");
    assert_eq!(s.authorize(until + S), Authorization::NoCredential);
}

// ------------------------------------------------------------ issue #14, §2.9

#[test]
fn a_late_401_for_an_older_token_leaves_the_new_one_alone() {
    use fieldauth::session::TokenId;
    let mut s = Sess::new(&preset::AUTOTASK, &cc_config(), 5).unwrap();
    exchange(&mut s, T0, &token_json("t1", 3600, None));
    bearer(&mut s, T0 + S);
    let old: TokenId = s.token_id();
    let t = next_send(&mut s, T0 + S);
    exchange(&mut s, t, &token_json("t2", 3600, None));
    let new = s.token_id();
    assert_ne!(old, new);
    let h = api(401, "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
    // The request sent with t1 comes back rejected after t2 was issued.
    assert_eq!(
        s.on_api_response_for(t + S, &h, b"", old),
        ApiVerdict::RetryWithNewToken
    );
    assert_eq!(bearer(&mut s, t + S), "Authorization: Bearer t2\r\n");
    // A rejection of t2 itself drops it, with its one retry intact.
    assert_eq!(
        s.on_api_response_for(t + 2 * S, &h, b"", new),
        ApiVerdict::RetryWithNewToken
    );
    assert_eq!(s.authorize(t + 2 * S), Authorization::NoCredential);
    // A token restored from a snapshot is a new one too.
    let mut img = vec![0u8; s.snapshot_len()];
    let mut a = Sess::new(&preset::AUTOTASK, &cc_config(), 6).unwrap();
    exchange(&mut a, T0, &token_json("t3", 3600, None));
    a.snapshot(T0, WALL, &mut img).unwrap();
    let before = a.token_id();
    a.restore(T0, WALL, &img).unwrap();
    assert_ne!(a.token_id(), before);
}

// ------------------------------------------------------------ issue #20: caller-sized storage

/// A signed JWT of `len` bytes (header.payload.signature, base64url).
fn jwt(len: usize) -> String {
    let mut t = String::from("eyJhbGciOiJSUzI1NiJ9.");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0usize;
    while t.len() < len {
        if t.len() == len / 2 {
            t.push('.');
        } else {
            t.push(alphabet[(i * 7 + 3) % 64] as char);
        }
        i += 1;
    }
    t
}

#[test]
fn a_4kb_jwt_pair_fits_caller_sized_storage() {
    use fieldauth::session::SessionIn;
    // Under Miri (tests/miri.sh) a 1.5 KB JWT and a 512-byte refresh token:
    // still more than the (there 1 KB) default arena holds.
    let access = jwt(if cfg!(miri) { 1536 } else { 4096 });
    let refresh = jwt(if cfg!(miri) { 512 } else { 1024 });
    let body = format!(
        r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":3600,"refresh_token":"{refresh}","scope":"openid profile groups"}}"#
    );
    let raw = json(200, &body);
    // The default 3 KB arena cannot hold it, and says how much is needed.
    let mut small = Sess::new(&CC, &config(), 1).unwrap();
    let mut buf = vec![0u8; 2048];
    small.write_token_request(T0, &mut buf).unwrap();
    let (head, b) = response(&raw);
    let mut tb = TokenBody::new();
    small.on_token_head(T0, &head, &mut tb).unwrap();
    match small.on_token_body(T0, &mut tb, &b) {
        Err(Error::CapacityExceeded { needed, capacity }) => {
            assert!(needed as usize >= access.len() + refresh.len(), "{needed}");
            assert_eq!(capacity as usize, small.slot_capacity());
            // The status keeps it, for bindings that report errors as codes.
            assert_eq!(small.status().slot_needed, needed);
            assert_eq!(small.status().slot_capacity, capacity);
        }
        other => panic!("{other:?}"),
    }
    // Storage sized for it: token + refresh token + scope per slot.
    let slot = access.len() + refresh.len() + 64;
    let needed = SessionIn::<&mut [u8]>::storage_needed(&CC, &config(), slot);
    let mut storage = vec![0xAAu8; needed];
    let mut s = SessionIn::with_storage(&mut storage[..], &CC, &config(), 2).unwrap();
    assert!(s.slot_capacity() >= slot);
    let (_, ev) = exchange(&mut s, T0, &raw);
    assert!(
        matches!(
            ev,
            Event::TokenIssued {
                refreshable: true,
                ..
            }
        ),
        "{ev:?}"
    );
    assert_eq!(
        bearer(&mut s, T0),
        format!("Authorization: Bearer {access}\r\n")
    );
    // The refresh carries the 1 KB refresh token.
    let t = next_send(&mut s, T0);
    let (req, _) = exchange(&mut s, t, &raw);
    assert!(req.contains(&refresh), "refresh_token sent");
    // Dropping the session wipes the caller's storage.
    drop(s);
    assert!(storage.iter().all(|&b| b == 0));
    // Too small a storage: the error names the size needed.
    let mut tiny = vec![0u8; 300];
    let r = SessionIn::with_storage(&mut tiny[..], &CC, &config(), 3);
    match r {
        Err(Error::CapacityExceeded { needed, capacity }) => {
            assert_eq!(capacity, 300);
            assert_eq!(
                needed as usize,
                SessionIn::<&mut [u8]>::storage_needed(&CC, &config(), 0)
            );
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("accepted 300 bytes"),
    };
}

// ------------------------------------------------------------ issue #14, §2.6

#[test]
fn revoking_the_access_token_alone_keeps_the_session_going() {
    use fieldauth::session::Revocation;
    let mut s = Sess::new(&CC, &config(), 1).unwrap();
    exchange(&mut s, T0, &token_json("at-1", 3600, Some("rt-1")));
    s.revoke_tokens(Revocation::Access);
    assert_eq!(s.poll(T0), Action::SendTokenRequest(RequestKind::Revoke));
    let (req, ev) = exchange(&mut s, T0, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(
        req.contains("token=at-1&token_type_hint=access_token"),
        "{req}"
    );
    assert_eq!(ev, Event::Revoked);
    let st = s.status();
    assert_eq!(st.failure, None, "the session goes on");
    assert!(!st.usable && st.refreshable);
    assert_eq!(s.authorize(T0), Authorization::NoCredential);
    assert_eq!(s.poll(T0), Action::SendTokenRequest(RequestKind::Refresh));
    exchange(&mut s, T0, &token_json("at-2", 3600, Some("rt-2")));
    assert_eq!(bearer(&mut s, T0), "Authorization: Bearer at-2\r\n");
}

#[test]
fn revoking_both_tokens_sends_two_requests_then_ends() {
    use fieldauth::session::Revocation;
    let mut s = Sess::new(&CC, &config(), 1).unwrap();
    exchange(&mut s, T0, &token_json("at-1", 3600, Some("rt-1")));
    s.revoke_tokens(Revocation::Both);
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (req, ev) = exchange(&mut s, T0, ok);
    assert!(
        req.contains("token=rt-1&token_type_hint=refresh_token"),
        "{req}"
    );
    assert_eq!(ev, Event::Revoked);
    assert_eq!(s.status().failure, None, "the access token is next");
    assert_eq!(s.poll(T0), Action::SendTokenRequest(RequestKind::Revoke));
    let (req, ev) = exchange(&mut s, T0, ok);
    assert!(
        req.contains("token=at-1&token_type_hint=access_token"),
        "{req}"
    );
    assert_eq!(ev, Event::Revoked);
    assert_eq!(s.poll(T0), Action::Failed(Failure::Revoked));
    // The default, the grant: one request naming the refresh token.
    let mut s = Sess::new(&CC, &config(), 1).unwrap();
    exchange(&mut s, T0, &token_json("at-1", 3600, Some("rt-1")));
    s.revoke();
    let (req, _) = exchange(&mut s, T0, ok);
    assert!(req.contains("token=rt-1"), "{req}");
    assert_eq!(s.poll(T0), Action::Failed(Failure::Revoked));
    // A Bearer-style endpoint (Fentu) names the access token, once.
    let mut f = Sess::new(&preset::FENTU_OAUTH, &fentu_oauth_config(), 1).unwrap();
    let state = approve(&mut f);
    f.set_authorization_code("code", &state).unwrap();
    exchange(&mut f, T0, &token_json("fat", 3600, Some("frt")));
    f.revoke_tokens(Revocation::Both);
    let (req, _) = exchange(&mut f, T0, ok);
    assert!(req.contains("Authorization: Bearer fat\r\n"), "{req}");
    assert_eq!(f.poll(T0), Action::Failed(Failure::Revoked));
}
