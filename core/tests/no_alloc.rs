//! Proves that no public fieldauth function allocates: a counting global
//! allocator wraps every call (success and failure paths) and the count must
//! stay zero. The core is `no_std` without `alloc`, so this is what the
//! compiler already guarantees; the test keeps it true for anything built on
//! top (and fails loudly if a dependency ever starts allocating).
// Exercises every optional feature; runs with the default features.
#![cfg(all(feature = "device-flow", feature = "basic-auth", feature = "pkce"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use fieldauth::apply::ApiCredential;
use fieldauth::body::{parse_body, BodyParser, Expect, PATCHWORKS_KEYS, STANDARD_KEYS};
use fieldauth::http::{parse_http_date, BodyReader, HeadParser, ResetMode};
use fieldauth::pkce::{AuthorizationRequest, ChallengeMethod, CodeVerifier, State};
use fieldauth::request::{BodyFormat, Client, ClientAuth, Grant, TokenTypeHint};
use fieldauth::url::Url;

struct Counting;

thread_local! {
    // Const-initialised: reading it never allocates.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls on this thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and asserts it allocated nothing.
fn no_alloc<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    let n = ALLOCS.with(Cell::get) - before;
    assert_eq!(n, 0, "{what} allocated {n} times");
    r
}

const TOKEN: &[u8] = br#"{"access_token":"eyJhbGciOiJIUzI1NiJ9.e30.x","token_type":"Bearer","expires_in":"3600","refresh_token":"r\u00e9\/x","scope":"api","x":[1,{"y":null}]}"#;
const ERROR: &[u8] = br#"{"error":"invalid_client","error_description":"Client authentication failed","status":401}"#;
const DEVICE: &[u8] = br#"{"device_code":"GmRh","user_code":"WDJB-MJHT","verification_uri":"https://example.com/device","expires_in":1800,"interval":5}"#;
const HEAD: &[u8] = b"HTTP/1.1 401 Unauthorized\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nRetry-After: 120\r\nX-RateLimit-Limit: 1000\r\nX-RateLimit-Remaining: 999\r\nX-RateLimit-Reset: 1640995200\r\nRateLimit: \"default\";r=50;t=30\r\nRateLimit-Policy: \"default\";q=100;w=60\r\nWWW-Authenticate: Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token expired\"\r\n\r\n5\r\nhello\r\n0\r\n\r\n";

#[test]
fn no_public_function_allocates() {
    // Warm up thread-locals and the test harness outside the measured calls.
    let _ = ALLOCS.with(Cell::get);

    // ---- bodies: whole and streamed, success and failure ----
    no_alloc("body parsing", || {
        let mut storage = [0u8; 512];
        for (expect, keys, status, body) in [
            (Expect::Token, STANDARD_KEYS, 200, TOKEN),
            (Expect::Token, STANDARD_KEYS, 401, ERROR),
            (
                Expect::Token,
                STANDARD_KEYS,
                502,
                &b"<html>bad gateway</html>"[..],
            ),
            (
                Expect::Token,
                STANDARD_KEYS,
                200,
                &b"{\"access_token\":"[..],
            ),
            (
                Expect::Token,
                PATCHWORKS_KEYS,
                200,
                br#"{"message":"ok","token":"abc","expires_in":86400}"#,
            ),
            (Expect::DeviceAuthorization, STANDARD_KEYS, 200, DEVICE),
            (Expect::Revocation, STANDARD_KEYS, 200, &b""[..]),
        ] {
            if let Ok(o) = parse_body(expect, status, keys, black_box(body), &mut storage) {
                black_box(o.view(&storage));
                black_box(format_args!("{o:?}"));
            }
            let mut p = BodyParser::new(expect, status, keys);
            for c in body.chunks(3) {
                if p.feed(&mut storage, c).is_err() {
                    break;
                }
            }
            let _ = black_box(p.finish(&storage));
        }
        // Capacity exceeded.
        let mut tiny = [0u8; 4];
        assert!(parse_body(Expect::Token, 200, STANDARD_KEYS, TOKEN, &mut tiny).is_err());
    });

    // ---- HTTP heads, framing, dates ----
    no_alloc("http parsing", || {
        let mut p: HeadParser<256> = HeadParser::new();
        let mut body_at = None;
        let mut fed = 0;
        for c in HEAD.chunks(7) {
            if let Some(n) = p.feed(c).unwrap() {
                body_at = Some(fed + n);
                break;
            }
            fed += c.len();
        }
        let h = *p.head().unwrap();
        black_box(h.x_rate_limit.reset_at(ResetMode::Auto, 1_640_990_000));
        black_box(h.retry_after.map(|r| r.delay_from(0)));
        black_box(p.bearer().map(|b| (b.code, b.error_description)));
        let mut r = BodyReader::new(h.framing());
        let mut rest = &HEAD[body_at.unwrap()..];
        while !r.is_done() && !rest.is_empty() {
            let (n, data) = r.next(rest).unwrap();
            black_box(data);
            rest = &rest[n..];
        }
        let _ = black_box(r.finish());
        black_box(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"));
        let mut bad: HeadParser<16> = HeadParser::new();
        let _ =
            black_box(bad.feed(b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
    });

    // ---- requests, URLs, PKCE, credentials ----
    let url = no_alloc("url", || {
        Url::parse("https://api.fentu.io/oauth/token").unwrap()
    });
    no_alloc("requests", || {
        let mut buf = [0u8; 1024];
        let mut client = Client::new(url, "client:id");
        client.client_secret = Some("s3cr%t+");
        client.scope = Some("read:work-orders write:work-orders");
        for (i, auth) in [ClientAuth::Body, ClientAuth::Basic, ClientAuth::None]
            .into_iter()
            .enumerate()
        {
            for (k, format) in [BodyFormat::Form, BodyFormat::Json].into_iter().enumerate() {
                // Under Miri (tests/miri.sh) one body format per client
                // authentication, taking turns.
                if cfg!(miri) && (i + k) % 2 == 1 {
                    continue;
                }
                client.auth = auth;
                client.format = format;
                for (g, grant) in [
                    Grant::ClientCredentials,
                    Grant::Password {
                        username: "u",
                        password: "p",
                    },
                    Grant::Login {
                        username: "me@patchworks.com",
                        password: "a1b2c3d4e5f6",
                    },
                    Grant::RefreshToken { refresh_token: "r" },
                    Grant::AuthorizationCode {
                        code: "c",
                        redirect_uri: Some("https://app/cb"),
                        code_verifier: Some("v"),
                    },
                    Grant::DeviceCode { device_code: "d" },
                    Grant::DeviceAuthorization,
                    Grant::Revoke {
                        token: "t",
                        hint: Some(TokenTypeHint::RefreshToken),
                    },
                    Grant::RevokeBearer { token: "t" },
                ]
                .into_iter()
                .enumerate()
                {
                    // Under Miri (tests/miri.sh) each grant with one of the
                    // (authentication, format) pairs, taking turns.
                    if cfg!(miri) && (g + i) % 3 != 0 {
                        continue;
                    }
                    let req = client.request(grant);
                    let _ = black_box(req.write_http(&mut buf));
                    let _ = black_box(req.write_body(&mut buf));
                    if let Ok(parts) = req.write_parts(&mut buf) {
                        black_box(parts.header("Authorization"));
                    }
                    let _ = black_box(req.write_http(&mut buf[..10]));
                }
            }
        }
        let mut bad = client;
        bad.client_secret = Some("a\r\nb");
        bad.auth = ClientAuth::Body;
        assert!(bad
            .request(Grant::ClientCredentials)
            .write_http(&mut buf)
            .is_err());
        let _ = black_box(url.write(&mut buf));
        let _ = black_box(url.join("/oauth/revoke"));
        assert!(Url::parse("http://example.com/x")
            .unwrap()
            .check_transport(false)
            .is_err());
    });
    no_alloc("pkce and authorization url", || {
        let mut buf = [0u8; 512];
        let random: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let v = CodeVerifier::from_random(&random).unwrap();
        assert_eq!(
            v.challenge().as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let state = State::from_random(&random[..16]).unwrap();
        black_box(state.matches("nope"));
        let mut a = AuthorizationRequest::new(url, "client");
        a.redirect_uri = Some("https://app/cb");
        a.scope = Some("read:work-orders");
        a.state = Some(state.as_str());
        a.pkce = Some((&v, ChallengeMethod::S256));
        let _ = black_box(a.write(&mut buf));
        assert!(CodeVerifier::new("short").is_err());
        black_box(format_args!("{v:?}"));
    });
    no_alloc("credentials", || {
        let mut buf = [0u8; 512];
        for c in [
            ApiCredential::Bearer("tok"),
            ApiCredential::ApiKey {
                scheme: Some("Bearer"),
                key: "k",
            },
            ApiCredential::ApiKey {
                scheme: None,
                key: "k",
            },
            ApiCredential::Header {
                name: "X-Api-Key",
                value: "k",
            },
            ApiCredential::QueryParam {
                name: "access_token",
                value: "t/+",
            },
            ApiCredential::Bearer("bad\r\n"),
        ] {
            let _ = black_box(c.write_header_line(&mut buf));
            let _ = black_box(c.write_header_value(&mut buf));
            let _ = black_box(c.write_target("/api/rest/v2/workorders", &mut buf));
            let _ = black_box(c.write_target("/x?y=1", &mut buf));
        }
    });
    // ---- the session: every public method, success and failure ----
    no_alloc("session lifecycle", || {
        use fieldauth::preset;
        use fieldauth::session::{Config, Session, TokenBody};
        use std::mem::MaybeUninit;
        let config = Config {
            base_url: "https://webservices.autotask.net",
            client_id: "id",
            client_secret: "secret",
            ..Config::default()
        };
        // Under Miri (tests/miri.sh) 1 KiB arenas: each is wiped byte by
        // byte when dropped or cleared (zeroize's volatile writes).
        const ARENA: usize = if cfg!(miri) { 1024 } else { 3072 };
        let mut s = Session::<ARENA>::new(&preset::AUTOTASK, &config, 1).unwrap();
        let mut slot = MaybeUninit::<Session<ARENA>>::uninit();
        let t = Session::new_in(&mut slot, &preset::AUTOTASK, &config, 2).unwrap();
        t.clear();
        let bad = Config {
            base_url: "http://example.com",
            ..config
        };
        let _ = black_box(Session::<ARENA>::new(&preset::AUTOTASK, &bad, 1));
        let mut buf = [0u8; 1024];
        let now = 1_000_000;
        black_box(s.poll(now));
        let _ = black_box(s.token_request_url(&mut buf));
        let _ = black_box(s.write_token_request_window(now, 0, &mut buf[..64]));
        let _ = black_box(s.write_token_request_window(now, 64, &mut buf[..64]));
        black_box(s.on_transport_error(now));
        let _ = black_box(s.write_token_request(now + 5_000_000, &mut buf));
        let mut head = HeadParser::<256>::new();
        let _ = head.feed(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n");
        let h = head.head().copied().unwrap();
        let mut tb = TokenBody::new();
        let _ = black_box(s.on_token_head(now + 5_000_000, &h, &mut tb));
        let body = br#"{"access_token":"eyJhbGciOiJIUzI1NiJ9.e30.x","token_type":"Bearer","expires_in":"3600","refresh_token":"r/x","x":[1,{"y":null}]}"#;
        let _ = black_box(s.on_token_body(now + 5_000_000, &mut tb, body));
        let _ = black_box(s.on_token_eof(now + 5_000_000, &mut tb));
        // The exchange above succeeded: the success paths are measured too.
        assert!(matches!(
            black_box(s.authorize(now + 5_000_000)),
            fieldauth::session::Authorization::Send(_)
        ));
        black_box(s.credential());
        s.set_wall_clock(now + 5_000_002, 1_700_000_000_000);
        s.reseed(3);
        let mut image = [0u8; 2048];
        let n = s
            .snapshot(now + 5_000_003, 1_700_000_000_001, &mut image)
            .unwrap();
        s.restore(now + 5_000_004, 1_700_000_000_002, &image[..n])
            .unwrap();
        let _ = black_box(s.restore(now + 5_000_004, 1_700_000_000_002, &image[..n / 2]));
        let mut api = HeadParser::<256>::new();
        let _ = api.feed(HEAD);
        let a = api.head().copied().unwrap();
        black_box(s.on_api_response(now + 5_000_005, &a, b"{}"));
        black_box(s.snapshot_len());
        black_box(s.status());
        black_box(s.failure_description());
        black_box(s.granted_scope());
        black_box(s.device_display());
        let _ = black_box(s.authorization_url(&[1; 32], &[2; 16], &mut buf));
        let _ = black_box(s.set_authorization_code("code", "state"));
        let _ = black_box(s.write_token_request_parts(now + 9_000_000, &mut buf));
        s.revoke();
        s.restart();
        s.clear();
    });
    // Error messages are static.
    no_alloc("error messages", || {
        black_box(fieldauth::Error::buffer_too_small(10).message());
    });
}

/// The instrument works: an allocation on this thread is counted.
#[test]
fn the_counter_sees_allocations() {
    let before = ALLOCS.with(Cell::get);
    let v: Vec<u8> = black_box(Vec::with_capacity(16));
    let n = ALLOCS.with(Cell::get) - before;
    drop(v);
    assert_eq!(n, 1);
}
