//! End to end over real loopback sockets: a `Session` driven by the blocking
//! driver (`fieldauth::driver` over `FromStd<TcpStream>`) against the
//! provider emulator, for every preset: fetch, use, proactive refresh, 401
//! recovery, 429 backoff, chunked and tiny-piece responses, truncated
//! connections.
//!
//! Time is virtual where it would be slow: the session's clock and the
//! emulator's are fast-forwarded together (see the rig), so 60 s tokens
//! expire without sleeping and the whole file runs in about a second.
//!
//! Needs the `std` and `embedded-io` features:
//! `cargo test -p fieldauth --all-features --test e2e` (or any
//! `cargo test -p fieldauth --all-features`).
#![cfg(all(feature = "std", feature = "embedded-io"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

/// The client rig the demo uses (`tests/demo/src/rig.rs`).
#[path = "../../tests/demo/src/rig.rs"]
#[allow(dead_code)]
mod rig;

use fieldauth::preset::{self, Profile};
use fieldauth::session::{Action, ApiVerdict, Event, Failure, RequestKind, NEVER};
use fieldauth::Error;
use fieldauth_emulator::{EmulatorConfig, EndpointKind, Provider};

use rig::{Call, Rig, Step, World};

const LIFETIME_S: u32 = 60;

fn world(config: EmulatorConfig) -> World {
    World::new(fieldauth_emulator::spawn(config).expect("emulator on 127.0.0.1:0"))
}

fn short_lived() -> World {
    world(EmulatorConfig::default().with_token_lifetime(LIFETIME_S))
}

fn rig<'w>(w: &'w World, p: &'static Profile<'static>) -> Rig<'w> {
    Rig::new(w, p, None, 128, 42).expect("session")
}

fn token_presets() -> impl Iterator<Item = &'static Profile<'static>> {
    preset::ALL.into_iter().filter(|p| !rig::is_api_key(p))
}

/// Polls and acts until a credential is usable; returns the token
/// exchanges on the way.
fn ready(r: &mut Rig<'_>) -> Vec<(RequestKind, Result<Event, Error>)> {
    let mut seen = Vec::new();
    r.until_ready(|_, step| {
        if let Step::Exchanged { kind, result, .. } = step {
            seen.push((*kind, *result));
        }
    })
    .unwrap_or_else(|e| panic!("{}: {e}", r.provider));
    seen
}

/// An API call; short client-side pacing (Autotask: 600/min) is waited out
/// by fast-forwarding.
fn get(r: &mut Rig<'_>) -> Call {
    let c = r.get_api().unwrap();
    match c {
        Call::Wait(until) if until - r.world.now() < 1000 => {
            r.world.advance_to(until);
            r.get_api().unwrap()
        }
        c => c,
    }
}

/// A successful API call; returns its JSON payload.
fn get_ok(r: &mut Rig<'_>) -> serde_json::Value {
    match get(r) {
        Call::Response {
            status: 200,
            verdict: ApiVerdict::Ok,
            body,
        } => serde_json::from_slice(&body).expect("JSON payload"),
        other => panic!("{}: {other:?}", r.provider),
    }
}

fn verdict(c: &Call) -> (u16, ApiVerdict) {
    match c {
        Call::Response {
            status, verdict, ..
        } => (*status, *verdict),
        other => panic!("{other:?}"),
    }
}

/// Token-endpoint requests the emulator answered for `provider`.
fn token_requests(w: &World, provider: Provider) -> usize {
    w.server.with(|e| {
        e.log()
            .iter()
            .filter(|l| l.provider == Some(provider) && l.endpoint == Some(EndpointKind::Token))
            .count()
    })
}

fn issued(ev: &Result<Event, Error>) -> (RequestKind, bool) {
    match ev {
        Ok(Event::TokenIssued {
            kind, refreshable, ..
        }) => (*kind, *refreshable),
        other => panic!("{other:?}"),
    }
}

/// The refresh kind a preset uses once it has a token.
fn refresh_kind(p: &Profile<'_>) -> RequestKind {
    if rig::provider_of(p) == Provider::Fentu {
        RequestKind::Refresh
    } else {
        RequestKind::Fetch
    }
}

/// Fast-forwards to the planned refresh and checks the token is still valid
/// there (a proactive refresh); returns the request kind due.
fn to_refresh_time(r: &mut Rig<'_>) -> RequestKind {
    let Action::Ready { next } = r.poll() else {
        panic!("not ready")
    };
    let expires = r.session.status().expires_at;
    assert!(next < expires, "refresh planned before expiry");
    r.world.advance_to(next);
    assert!(r.session.status().usable, "still valid at the refresh time");
    match r.poll() {
        Action::SendTokenRequest(kind) => kind,
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_preset_fetches_uses_and_refreshes_proactively() {
    for p in preset::ALL {
        let w = short_lived();
        let mut r = rig(&w, p);
        let steps = ready(&mut r);
        let data = get_ok(&mut r);
        assert!(data.is_object() || data.is_array(), "{data}");
        get_ok(&mut r);
        if rig::is_api_key(p) {
            assert!(steps.is_empty());
            assert_eq!(r.poll(), Action::Ready { next: NEVER });
            w.advance_to(w.now() + 24 * 3_600_000);
            get_ok(&mut r);
            assert_eq!(token_requests(&w, r.provider), 0);
            continue;
        }
        assert_eq!(steps.len(), 1, "{}", p.name);
        let (kind, refreshable) = issued(&steps[0].1);
        assert_eq!(kind, RequestKind::Fetch);
        assert_eq!(refreshable, rig::provider_of(p) == Provider::Fentu);
        // Proactive refresh, twice (Fentu rotates its refresh tokens).
        for _ in 0..2 {
            assert_eq!(to_refresh_time(&mut r), refresh_kind(p), "{}", p.name);
            let (kind, _) = issued(&r.exchange());
            assert_eq!(kind, refresh_kind(p));
            get_ok(&mut r);
        }
        assert_eq!(token_requests(&w, r.provider), 3, "{}", p.name);
    }
}

#[test]
fn every_token_preset_recovers_from_a_server_side_revocation() {
    for p in token_presets() {
        let w = short_lived();
        let mut r = rig(&w, p);
        w.set_faults(&[&format!("{}:api:revoke-after=2", r.provider)]);
        ready(&mut r);
        get_ok(&mut r);
        get_ok(&mut r);
        let c = get(&mut r);
        assert_eq!(
            verdict(&c),
            (401, ApiVerdict::RetryWithNewToken),
            "{}",
            p.name
        );
        assert!(matches!(
            r.poll(),
            Action::SendTokenRequest(_) | Action::Wait { .. }
        ));
        let steps = ready(&mut r);
        assert_eq!(issued(&steps.last().unwrap().1).0, refresh_kind(p));
        get_ok(&mut r);
    }
}

#[test]
fn revoked_api_keys_fail_permanently() {
    for p in preset::ALL.into_iter().filter(|p| rig::is_api_key(p)) {
        let w = short_lived();
        let mut r = Rig::new(&w, p, Some("revoked-key"), 128, 1).unwrap();
        assert_eq!(verdict(&get(&mut r)), (401, ApiVerdict::InvalidKey));
        assert_eq!(r.poll(), Action::Failed(Failure::InvalidKey));
        let before = w.requests();
        assert_eq!(get(&mut r), Call::NoCredential);
        assert_eq!(w.requests(), before, "nothing sent after the failure");
    }
}

#[test]
fn api_429_blocks_until_retry_after_for_every_preset() {
    for p in preset::ALL {
        let w = short_lived();
        let mut r = rig(&w, p);
        w.set_faults(&[&format!("{}:api:429=2:first=1", r.provider)]);
        ready(&mut r);
        let at = w.now();
        let c = get(&mut r);
        let (429, ApiVerdict::RateLimited { until }) = verdict(&c) else {
            panic!("{}: {c:?}", p.name)
        };
        assert!((at + 2000..at + 2500).contains(&until), "{}", until - at);
        let before = w.requests();
        assert_eq!(r.get_api().unwrap(), Call::Wait(until));
        assert_eq!(w.requests(), before, "nothing sent while blocked");
        w.advance_to(until);
        get_ok(&mut r);
    }
}

#[test]
fn token_endpoint_errors_keep_the_valid_token() {
    for (p, fault, status) in token_presets()
        .zip([
            ("429=3", 429),
            ("503=3", 503),
            ("429=3", 429),
            ("503=3", 503),
        ])
        .map(|(p, (f, s))| (p, f, s))
    {
        let w = short_lived();
        let mut r = rig(&w, p);
        ready(&mut r);
        let kind = to_refresh_time(&mut r);
        w.set_faults(&[&format!("{}:token:{fault}:first=1", r.provider)]);
        let at = w.now();
        let Ok(Event::Retrying {
            status: s,
            at: retry,
        }) = r.exchange()
        else {
            panic!("{}", p.name)
        };
        assert_eq!(s, status);
        assert!(retry >= at + 3000, "Retry-After honoured");
        // The old token is still used meanwhile.
        assert!(matches!(r.poll(), Action::Ready { .. }));
        get_ok(&mut r);
        let Action::Ready { next } = r.poll() else {
            panic!()
        };
        w.advance_to(next);
        assert_eq!(r.poll(), Action::SendTokenRequest(kind));
        assert_eq!(issued(&r.exchange()).0, kind);
        get_ok(&mut r);
    }
}

#[test]
fn chunked_and_tiny_piece_responses_through_tiny_buffers() {
    let fault_sets: [&[&str]; 3] = [
        &["all:all:chunked=7"],
        &["all:all:pieces=1"],
        &["all:all:chunked=1", "all:all:pieces=3"],
    ];
    for faults in fault_sets {
        for buf_len in [16, 128] {
            for p in preset::ALL {
                let w = short_lived();
                w.set_faults(faults);
                let mut r = Rig::new(&w, p, None, buf_len, 3).unwrap();
                ready(&mut r);
                get_ok(&mut r);
                get_ok(&mut r);
            }
        }
    }
}

#[test]
fn truncated_connections_are_retried() {
    for p in preset::ALL {
        let w = short_lived();
        let mut r = rig(&w, p);
        let name = r.provider.name();
        if !rig::is_api_key(p) {
            // The first token response is cut mid-body, the second is
            // broken JSON: two failed attempts, then a token. (Fentu: each
            // failed code exchange costs the code, so the browser step is
            // repeated.)
            w.set_faults(&[
                &format!("{name}:token:truncate=10:first=1"),
                &format!("{name}:token:malformed=cut:every=2"),
            ]);
            let steps = ready(&mut r);
            assert_eq!(steps[0].1, Err(Error::Transport), "{}", p.name);
            assert!(matches!(steps[1].1, Err(Error::Json { .. })), "{steps:?}");
            issued(&steps[2].1);
            assert_eq!(r.session.status().failed_attempts, 0);
        }
        // An API response cut mid-body: the call fails, the session is
        // untouched, the next call (on a new connection) works.
        w.set_faults(&[&format!("{name}:api:truncate=5:first=1")]);
        assert_eq!(r.get_api(), Err(Error::Transport), "{}", p.name);
        assert!(r.session.status().usable);
        assert_eq!(r.session.status().failed_attempts, 0);
        get_ok(&mut r);
    }
}

#[test]
fn fentu_oauth_revocation_ends_the_grant() {
    let w = short_lived();
    let mut r = rig(&w, &preset::FENTU_OAUTH);
    ready(&mut r);
    get_ok(&mut r);
    r.session.revoke();
    assert_eq!(r.poll(), Action::SendTokenRequest(RequestKind::Revoke));
    assert_eq!(r.exchange(), Ok(Event::Revoked));
    assert_eq!(r.poll(), Action::Failed(Failure::Revoked));
    assert_eq!(w.server.with(|e| e.live_tokens(Provider::Fentu, 0)), 0);
}

#[test]
fn field_nation_expired_token_400_is_recognised() {
    let mut config = EmulatorConfig::default().with_token_lifetime(LIFETIME_S);
    config.field_nation.expired_token_quirk = true;
    let w = world(config);
    let mut r = rig(&w, &preset::FIELD_NATION);
    ready(&mut r);
    get_ok(&mut r);
    // Only the server's clock moves: the device's clock was wrong, and its
    // token expired early.
    w.server
        .with(|e| e.advance_clock(u64::from(LIFETIME_S) * 1000 + 1000));
    let c = get(&mut r);
    assert_eq!(verdict(&c), (400, ApiVerdict::RetryWithNewToken));
    ready(&mut r);
    get_ok(&mut r);
}
