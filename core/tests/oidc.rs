//! End to end against an independent OAuth 2.0 server: panva's
//! `oidc-provider` (npm, pinned in `tests/oidc/package-lock.json`), started
//! per test from `tests/oidc/server.mjs` on 127.0.0.1 and driven by a
//! `Session` with a `preset::custom()` profile through the blocking driver
//! over real loopback sockets (issue #14).
//!
//! Time is real here (the server's clock cannot be fast-forwarded): access
//! tokens live 5 s (2 s in one test), so the expiry tests take a few seconds.
//!
//! Needs Node.js: `tests/oidc/node_modules` is installed with `npm ci` on
//! first use (once, under a lock; again only when `package-lock.json` is
//! newer than the install). Without `node` on the PATH every test here
//! passes after printing a loud SKIPPED banner, unless
//! `FIELDAUTH_REQUIRE_OIDC=1` (set by `.ci/run`), which makes that a failure.
//!
//! `cargo test -p fieldauth --features std --test oidc` (and `basic-auth`,
//! on by default; not under Miri, which cannot start processes).
#![cfg(all(feature = "std", feature = "basic-auth", not(miri)))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stderr
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use fieldauth::apply::ApiCredential;
use fieldauth::body::{parse_body, ErrorCode, Expect, Response, STANDARD_KEYS};
use fieldauth::driver::{self, ApiOutcome, ApiResponse, FromStd};
use fieldauth::http::HeadParser;
use fieldauth::preset::{self, Profile};
use fieldauth::request::{Client, ClientAuth, Grant};
use fieldauth::session::{
    Action, ApiVerdict, Authorization, Config, Event, Failure, RequestKind, Session,
    SHORT_TOKEN_EARLY_MS,
};
use fieldauth::url::Url;

/// The client registered with `client_secret_basic`; its id and secret both
/// need form-urlencoding inside the Basic credentials.
const BASIC_ID: &str = "basic client:1";
const BASIC_SECRET: &str = "p@ss:w/rd+&=%";
/// The client registered with `client_secret_post`.
const POST_ID: &str = "post-client";
const POST_SECRET: &str = "post-secret";
/// The resource server `server.mjs` defaults every token to.
const RESOURCE: &str = "urn:fieldauth:api";
/// The protected endpoint of `server.mjs` (userinfo's `/me` wants OpenID
/// tokens with a subject; client_credentials tokens have none).
const API_PATH: &str = "/api/me";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ the server

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc")
}

fn node_present() -> bool {
    match Command::new("node").arg("--version").output() {
        Ok(out) => out.status.success(),
        Err(_) => false,
    }
}

/// `npm ci` when `node_modules` is missing or older than the lock file: once
/// per test process, and under a lock directory against other processes.
fn ensure_installed() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = DONE.get_or_init(install) {
        panic!("tests/oidc: {e}");
    }
}

fn installed(dir: &Path) -> bool {
    let mtime = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        mtime(dir.join("node_modules/.package-lock.json")),
        mtime(dir.join("package-lock.json")),
    ) {
        (Some(done), Some(lock)) => done >= lock,
        _ => false,
    }
}

fn install() -> Result<(), String> {
    let dir = oidc_dir();
    if installed(&dir) {
        return Ok(());
    }
    let lock = dir.join(".install.lock");
    let started = Instant::now();
    loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Another process installs; a lock older than 10 minutes is
                // left over from one that died.
                let age = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if age.is_some_and(|a| a > Duration::from_secs(600)) {
                    let _ = std::fs::remove_dir(&lock);
                } else if started.elapsed() > Duration::from_secs(300) {
                    return Err(format!("{} is held for 5 minutes", lock.display()));
                }
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(format!("cannot create {}: {e}", lock.display())),
        }
    }
    let result = if installed(&dir) {
        Ok(())
    } else {
        eprintln!("tests/oidc: npm ci (installing oidc-provider from package-lock.json)");
        match Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .output()
        {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "npm ci failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(format!(
                "node is installed but npm cannot run ({e}); Debian: apt-get install npm"
            )),
        }
    };
    let _ = std::fs::remove_dir(&lock);
    result
}

/// A running `server.mjs`; killed (and reaped) on drop. Its stderr is kept
/// and printed if the test fails.
struct Oidc {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Oidc {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }
}

impl Drop for Oidc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("---- oidc-provider stderr ----\n{}", self.log());
        }
    }
}

/// Starts oidc-provider with `access_ttl_s` access tokens, or returns `None`
/// (after a loud banner) when Node.js is not installed.
fn server(access_ttl_s: u32) -> Option<Oidc> {
    if !node_present() {
        let required = std::env::var("FIELDAUTH_REQUIRE_OIDC").is_ok_and(|v| v == "1");
        let banner = "!!!!!!!!!! OIDC-PROVIDER TESTS SKIPPED: `node` is not on the PATH, so \
                      fieldauth was NOT tested against oidc-provider (Debian: apt-get install \
                      nodejs npm; `bash .ci/run` installs them) !!!!!!!!!!";
        assert!(!required, "{banner} (FIELDAUTH_REQUIRE_OIDC=1)");
        // Past the test harness's output capture (eprintln! would be
        // swallowed for a passing test), once per run.
        static LOUD: Once = Once::new();
        LOUD.call_once(|| {
            let _ = writeln!(std::io::stderr(), "\n{banner}\n");
        });
        return None;
    }
    ensure_installed();
    let mut child = Command::new("node")
        .arg(oidc_dir().join("server.mjs"))
        .env("OIDC_PORT", "0")
        .env("OIDC_ACCESS_TTL_S", access_ttl_s.to_string())
        .env("OIDC_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node tests/oidc/server.mjs");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    thread::spawn(move || {
        let mut piece = [0u8; 1024];
        while let Ok(n @ 1..) = stderr.read(&mut piece) {
            sink.lock().unwrap().extend_from_slice(&piece[..n]);
        }
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let mut srv = Oidc {
        child,
        _stdin: stdin,
        port: 0,
        log,
    };
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    srv.port = line.trim().parse().unwrap_or_else(|_| {
        panic!(
            "server.mjs printed no port (first stdout line {line:?}); stderr:\n{}",
            srv.log()
        )
    });
    Some(srv)
}

// ------------------------------------------------------------------ the client

/// Real monotonic milliseconds, starting at 1 s.
struct Clock(Instant);

impl Clock {
    fn new() -> Self {
        Clock(Instant::now())
    }

    fn now(&self) -> u64 {
        1_000 + u64::try_from(self.0.elapsed().as_millis()).unwrap()
    }
}

fn connect(srv: &Oidc) -> FromStd<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", srv.port)).expect("connect to oidc-provider");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    FromStd::new(s)
}

/// The profile for oidc-provider's endpoints (its default routes).
fn profile(auth: ClientAuth) -> Profile<'static> {
    Profile {
        name: "oidc-provider",
        token_path: "/token",
        authorize_path: "/auth",
        device_path: "/device/auth",
        revoke_path: "/token/revocation",
        client_auth: auth,
        ..preset::custom()
    }
}

fn session(srv: &Oidc, auth: ClientAuth, id: &str, secret: &str, scope: &str) -> Session {
    let base = srv.base();
    let config = Config {
        base_url: &base,
        client_id: id,
        client_secret: secret,
        scope,
        ..Config::default()
    };
    Session::new(&profile(auth), &config, 0x0001_dc5e_ed00).expect("session")
}

fn basic_session(srv: &Oidc, scope: &str) -> Session {
    session(srv, ClientAuth::Basic, BASIC_ID, BASIC_SECRET, scope)
}

fn post_session(srv: &Oidc, scope: &str) -> Session {
    session(srv, ClientAuth::Body, POST_ID, POST_SECRET, scope)
}

/// Polls (a token request must be due) and runs the exchange on a new
/// connection.
fn exchange(s: &mut Session, srv: &Oidc, now: u64) -> Event {
    let action = s.poll(now);
    assert!(
        matches!(action, Action::SendTokenRequest(_)),
        "no token request due: {action:?}"
    );
    let mut buf = [0u8; 128];
    driver::exchange_token(s, now, &mut connect(srv), &mut buf)
        .unwrap_or_else(|e| panic!("token exchange: {e}; stderr:\n{}", srv.log()))
}

/// The access token the session hands out now.
fn token_text(s: &Session) -> String {
    match s.credential() {
        Some(ApiCredential::Bearer(t)) => t.to_owned(),
        other => panic!("no Bearer token: {other:?}"),
    }
}

/// `GET /api/me` through the driver on a new connection: the outcome and,
/// for a response, its JSON body.
fn get_me(s: &mut Session, srv: &Oidc, now: u64) -> (ApiOutcome, serde_json::Value) {
    let base = srv.base();
    let url = Url::parse(&base).unwrap().join(API_PATH).unwrap();
    let mut stream = connect(srv);
    let mut buf = [0u8; 256];
    let outcome = driver::api_get(s, now, &mut stream, url, &mut buf).expect("api_get");
    let mut body = Vec::new();
    if let ApiOutcome::Response(r) = &outcome {
        driver::read_body(&mut stream, r, &mut buf, |p| body.extend_from_slice(p))
            .expect("read_body");
    }
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (outcome, json)
}

/// A `GET /api/me` that must succeed: its JSON body.
fn get_me_ok(s: &mut Session, srv: &Oidc, now: u64) -> serde_json::Value {
    match get_me(s, srv, now) {
        (ApiOutcome::Response(r), json) if r.head.status == 200 && r.verdict == ApiVerdict::Ok => {
            json
        }
        (other, json) => panic!("GET {API_PATH}: {other:?} {json}; stderr:\n{}", srv.log()),
    }
}

fn response(outcome: ApiOutcome) -> ApiResponse {
    match outcome {
        ApiOutcome::Response(r) => r,
        other => panic!("nothing was sent: {other:?}"),
    }
}

/// One hand-written HTTP/1.1 exchange (what the tests do behind the
/// session's back, as a server administrator would): status, head, body.
fn raw(srv: &Oidc, request: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut piece = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut piece).unwrap();
        assert!(n > 0, "connection closed inside the head");
        got.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8(got[..head_end].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("Content-Length");
    while got.len() < head_end + len {
        let n = s.read(&mut piece).unwrap();
        assert!(n > 0, "connection closed inside the body");
        got.extend_from_slice(&piece[..n]);
    }
    (status, head, got[head_end..head_end + len].to_vec())
}

fn raw_post(srv: &Oidc, path: &str, extra_headers: &str, body: &str) -> (u16, String, Vec<u8>) {
    raw(
        srv,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n{extra_headers}\r\n{body}",
            srv.port,
            body.len()
        ),
    )
}

/// `GET /api/me` with `token`, not through the session.
fn raw_get_me(srv: &Oidc, token: &str) -> u16 {
    raw(
        srv,
        &format!(
            "GET {API_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {token}\r\n\r\n",
            srv.port
        ),
    )
    .0
}

/// Revokes `token` (RFC 7009) as the post client, behind the session's back.
fn revoke_behind_the_back(srv: &Oidc, token: &str) {
    let (status, head, body) = raw_post(
        srv,
        "/token/revocation",
        "",
        &format!("token={token}&client_id={POST_ID}&client_secret={POST_SECRET}"),
    );
    assert_eq!(status, 200, "{head}{}", String::from_utf8_lossy(&body));
}

fn issued(event: Event) -> (u32, bool) {
    match event {
        Event::TokenIssued {
            kind: RequestKind::Fetch,
            lifetime_s,
            refreshable,
        } => (lifetime_s, refreshable),
        other => panic!("expected a fetched token, got {other:?}"),
    }
}

// ------------------------------------------------------------------ tests

/// client_secret_basic with a secret full of characters that mean something
/// in Basic credentials and in forms (`:` `/` `+` `&` `=` `%` `@`), and an id
/// with a space and a colon: RFC 6749 §2.3.1 form-urlencodes both before
/// base64, and oidc-provider decodes them that way.
#[test]
fn client_credentials_basic_with_special_character_secret() {
    let Some(srv) = server(5) else { return };
    let clock = Clock::new();
    let mut s = basic_session(&srv, "api:read");
    let (lifetime, refreshable) = issued(exchange(&mut s, &srv, clock.now()));
    assert_eq!((lifetime, refreshable), (5, false));
    assert_eq!(s.granted_scope(), Some("api:read"));
    assert_eq!(s.status().last_http_status, 200);

    let me = get_me_ok(&mut s, &srv, clock.now());
    assert_eq!(me["client_id"], BASIC_ID);
    assert_eq!(me["scope"], "api:read");
    assert_eq!(me["aud"], RESOURCE);

    // The control: the same credentials base64'd without form-urlencoding
    // are refused, so the exchange above proves fieldauth encoded them.
    use base64::Engine as _;
    let plain =
        base64::engine::general_purpose::STANDARD.encode(format!("{BASIC_ID}:{BASIC_SECRET}"));
    let (status, _, body) = raw_post(
        &srv,
        "/token",
        &format!("Authorization: Basic {plain}\r\n"),
        "grant_type=client_credentials&scope=api%3Aread",
    );
    assert!(
        (400..500).contains(&status),
        "unencoded Basic credentials accepted: {status} {}",
        String::from_utf8_lossy(&body)
    );
}

/// client_secret_post: id and secret in the form body; two scopes granted.
#[test]
fn client_credentials_post() {
    let Some(srv) = server(5) else { return };
    let clock = Clock::new();
    let mut s = post_session(&srv, "api:read api:write");
    let (lifetime, refreshable) = issued(exchange(&mut s, &srv, clock.now()));
    assert_eq!((lifetime, refreshable), (5, false));
    assert_eq!(s.granted_scope(), Some("api:read api:write"));
    let me = get_me_ok(&mut s, &srv, clock.now());
    assert_eq!(me["client_id"], POST_ID);
    assert_eq!(me["scope"], "api:read api:write");
}

/// Scope handling at a server with a resource server: an unknown scope is
/// silently dropped (the granted scope says so), and a token requested with
/// no scope gets none, which the API answers with 403 insufficient_scope:
/// the session reports Forbidden and keeps the token (not retried).
#[test]
fn scope_unknown_dropped_and_missing_scope_is_forbidden() {
    let Some(srv) = server(5) else { return };
    let clock = Clock::new();
    let mut s = post_session(&srv, "api:read no-such-scope");
    issued(exchange(&mut s, &srv, clock.now()));
    assert_eq!(s.granted_scope(), Some("api:read"));
    get_me_ok(&mut s, &srv, clock.now());

    let mut s = post_session(&srv, "");
    issued(exchange(&mut s, &srv, clock.now()));
    assert_eq!(s.granted_scope(), None);
    let (outcome, json) = get_me(&mut s, &srv, clock.now());
    let r = response(outcome);
    assert_eq!(r.head.status, 403, "{json}");
    assert_eq!(r.head.bearer, Some(ErrorCode::InsufficientScope));
    assert_eq!(r.verdict, ApiVerdict::Forbidden);
    assert!(s.status().usable, "a 403 does not drop the token");
}

/// RFC 8707 `resource` through the wire-format layer (`request::Client`;
/// the session cannot send it yet, issue #14 §2.3): the named resource
/// server's scope is granted, and an unknown resource is `invalid_target`.
#[test]
fn resource_indicator_through_the_wire_layer() {
    let Some(srv) = server(5) else { return };
    let base = srv.base();
    let endpoint = Url::parse(&base).unwrap().join("/token").unwrap();
    let exchange_raw = |resource: &str| {
        let mut client = Client::new(endpoint, POST_ID);
        client.client_secret = Some(POST_SECRET);
        client.auth = ClientAuth::Body;
        client.scope = Some("api:write");
        client.resource = Some(resource);
        let mut out = [0u8; 512];
        let n = client
            .request(Grant::ClientCredentials)
            .write_http(&mut out)
            .unwrap();
        raw(&srv, std::str::from_utf8(&out[..n]).unwrap())
    };

    let (status, _, body) = exchange_raw(RESOURCE);
    let mut storage = [0u8; 512];
    let parsed = parse_body(Expect::Token, status, STANDARD_KEYS, &body, &mut storage).unwrap();
    match parsed.view(&storage) {
        Response::Token(t) => {
            assert_eq!(t.scope, Some("api:write"));
            assert_eq!(t.expires_in, Some(5));
            assert_eq!(t.token_type, Some("Bearer"));
        }
        other => panic!("{status}: {other:?}"),
    }

    let (status, _, body) = exchange_raw("https://elsewhere.example/api");
    let mut storage = [0u8; 512];
    let parsed = parse_body(Expect::Token, status, STANDARD_KEYS, &body, &mut storage).unwrap();
    match parsed.view(&storage) {
        Response::Error(e) => {
            assert_eq!(status, 400);
            assert_eq!(e.code, ErrorCode::Other);
            assert_eq!(e.error, Some("invalid_target"));
        }
        other => panic!("{status}: {other:?}"),
    }
}

/// A wrong secret is the session's final `InvalidClient` (for Basic and
/// post alike), with the server's description; no retry is scheduled.
#[test]
fn wrong_secret_is_invalid_client() {
    let Some(srv) = server(5) else { return };
    let clock = Clock::new();
    for mut s in [
        session(&srv, ClientAuth::Basic, BASIC_ID, "p@ss:w/rd+&=", ""),
        session(&srv, ClientAuth::Body, POST_ID, "not-the-secret", ""),
    ] {
        let event = exchange(&mut s, &srv, clock.now());
        assert_eq!(event, Event::Failed(Failure::InvalidClient));
        assert_eq!(s.poll(clock.now()), Action::Failed(Failure::InvalidClient));
        let st = s.status();
        assert_eq!(st.last_http_status, 401);
        assert!(st.last_content_json);
        assert!(!st.usable);
        assert_eq!(
            s.failure_description(),
            Some("client authentication failed")
        );
    }
}

/// 5 s tokens for about 7 s of API calls every 200 ms: the session fetches
/// each next token early (at least `SHORT_TOKEN_EARLY_MS` before expiry),
/// the old token keeps working while the new one is fetched, and no call
/// ever lacks a credential or is refused.
#[test]
fn proactive_refresh_of_five_second_tokens() {
    let Some(srv) = server(5) else { return };
    let clock = Clock::new();
    let mut s = basic_session(&srv, "api:read");
    let mut tokens = Vec::new();
    let mut calls = 0;
    let end = clock.now() + 7_000;
    while clock.now() < end {
        let now = clock.now();
        match s.poll(now) {
            Action::SendTokenRequest(RequestKind::Fetch) => {
                if !tokens.is_empty() {
                    // Early: the current token is still usable, here and at
                    // the server, while its replacement is fetched.
                    assert!(s.status().usable, "refresh due only after expiry");
                    assert_eq!(raw_get_me(&srv, &token_text(&s)), 200);
                }
                let (lifetime, _) = issued(exchange(&mut s, &srv, now));
                assert_eq!(lifetime, 5);
                let st = s.status();
                assert!(
                    st.expires_at - st.refresh_at >= SHORT_TOKEN_EARLY_MS,
                    "refresh {} ms before expiry",
                    st.expires_at - st.refresh_at
                );
                let token = token_text(&s);
                assert!(!tokens.contains(&token), "the same token twice");
                tokens.push(token);
            }
            Action::Ready { .. } => {}
            other => panic!("at {now}: {other:?}"),
        }
        let me = get_me_ok(&mut s, &srv, clock.now());
        assert_eq!(me["client_id"], BASIC_ID);
        calls += 1;
        thread::sleep(Duration::from_millis(200));
    }
    // 0 s, then every 2 to 3 s: at least three tokens in 7 s.
    assert!(tokens.len() >= 3, "{} tokens in 7 s", tokens.len());
    assert!(calls >= 20, "{calls} calls");
}

/// `Session::revoke` with only an access token (client_credentials) revokes
/// it at the RFC 7009 endpoint, whose answer is 200 with an empty
/// `text/plain` body; the session then reports `Revoked`, and the token is
/// dead at the server.
#[test]
fn revocation_of_the_access_token() {
    let Some(srv) = server(5) else { return };
    let clock = Clock::new();
    let mut s = post_session(&srv, "api:read");
    issued(exchange(&mut s, &srv, clock.now()));
    get_me_ok(&mut s, &srv, clock.now());
    let token = token_text(&s);

    s.revoke();
    assert_eq!(
        s.poll(clock.now()),
        Action::SendTokenRequest(RequestKind::Revoke)
    );
    assert_eq!(exchange(&mut s, &srv, clock.now()), Event::Revoked);
    let st = s.status();
    assert_eq!(st.last_http_status, 200);
    assert!(!st.last_content_json, "oidc-provider answers text/plain");
    assert!(!st.usable);
    assert_eq!(s.poll(clock.now()), Action::Failed(Failure::Revoked));
    assert!(s.credential().is_none());
    assert_eq!(raw_get_me(&srv, &token), 401, "the token still works");
}

/// The server revokes the token behind the session's back: the API's 401
/// (`invalid_token` challenge) makes the session drop it and fetch a new
/// one, with which the request succeeds.
#[test]
fn api_401_for_a_revoked_token_fetches_a_new_one() {
    let Some(srv) = server(5) else { return };
    let clock = Clock::new();
    let mut s = post_session(&srv, "api:read");
    issued(exchange(&mut s, &srv, clock.now()));
    get_me_ok(&mut s, &srv, clock.now());
    let old = token_text(&s);
    revoke_behind_the_back(&srv, &old);

    let (outcome, json) = get_me(&mut s, &srv, clock.now());
    let r = response(outcome);
    assert_eq!(r.head.status, 401, "{json}");
    assert_eq!(r.head.bearer, Some(ErrorCode::InvalidToken));
    assert_eq!(r.verdict, ApiVerdict::RetryWithNewToken);
    assert!(!s.status().usable, "the rejected token is dropped");
    assert_eq!(
        s.poll(clock.now()),
        Action::SendTokenRequest(RequestKind::Fetch)
    );
    issued(exchange(&mut s, &srv, clock.now()));
    assert_ne!(token_text(&s), old);
    get_me_ok(&mut s, &srv, clock.now());
}

/// A token the server already considers expired (the device slept and its
/// monotonic clock did not move, so the session still thinks it valid):
/// the 401 drops it, and a new one is fetched. 2 s tokens, 2.2 s of sleep.
#[test]
fn api_401_for_a_token_expired_at_the_server() {
    let Some(srv) = server(2) else { return };
    let frozen = 5_000; // the session's clock: it does not advance
    let mut s = basic_session(&srv, "api:read");
    issued(exchange(&mut s, &srv, frozen));
    get_me_ok(&mut s, &srv, frozen);
    let old = token_text(&s);
    thread::sleep(Duration::from_millis(2_200));

    let (outcome, json) = get_me(&mut s, &srv, frozen);
    let r = response(outcome);
    assert_eq!(r.head.status, 401, "{json}");
    assert_eq!(r.verdict, ApiVerdict::RetryWithNewToken);
    assert_eq!(s.poll(frozen), Action::SendTokenRequest(RequestKind::Fetch));
    issued(exchange(&mut s, &srv, frozen));
    assert_ne!(token_text(&s), old);
    get_me_ok(&mut s, &srv, frozen);
}

/// One kept-alive connection for a token exchange and two API requests:
/// the driver reads each response exactly, and oidc-provider keeps the
/// connection open (`Connection: keep-alive`).
#[test]
fn one_connection_for_token_and_api_requests() {
    let Some(srv) = server(5) else { return };
    let clock = Clock::new();
    let mut s = basic_session(&srv, "api:read");
    let mut stream = connect(&srv);
    let mut buf = [0u8; 128];
    assert!(matches!(
        s.poll(clock.now()),
        Action::SendTokenRequest(RequestKind::Fetch)
    ));
    let event = driver::exchange_token(&mut s, clock.now(), &mut stream, &mut buf).unwrap();
    issued(event);
    let base = srv.base();
    for _ in 0..2 {
        let url = Url::parse(&base).unwrap().join(API_PATH).unwrap();
        let r = response(driver::api_get(&mut s, clock.now(), &mut stream, url, &mut buf).unwrap());
        assert_eq!((r.head.status, r.verdict), (200, ApiVerdict::Ok));
        assert!(!r.head.connection_close);
        let mut body = Vec::new();
        driver::read_body(&mut stream, &r, &mut buf, |p| body.extend_from_slice(p)).unwrap();
        let me: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(me["client_id"], BASIC_ID);
    }
}

/// A late 401 for a request sent with an older token (issue #14 §2.9): the
/// token is renewed while a request that carries the old one is out, the
/// server then rejects the old one (revoked behind the session's back), and
/// the session, told which token that request carried
/// (`Session::token_id`, `on_api_response_for`), keeps the new one.
///
/// The session's clock is moved on to the refresh time while the server's
/// barely moves, so the old token is still alive there until it is revoked.
#[test]
fn late_401_for_an_older_token_keeps_the_new_one() {
    let Some(srv) = server(5) else { return };
    let clock = Clock::new();
    let mut s = post_session(&srv, "api:read");
    issued(exchange(&mut s, &srv, clock.now()));
    let now = clock.now();
    assert!(matches!(s.authorize(now), Authorization::Send(_)));
    let sent_with = s.token_id();
    let old = token_text(&s);

    // The refresh time comes (session clock) and a new token is fetched.
    let refresh_at = s.status().refresh_at;
    assert_eq!(
        s.poll(refresh_at),
        Action::SendTokenRequest(RequestKind::Fetch)
    );
    issued(exchange(&mut s, &srv, refresh_at));
    let new = token_text(&s);
    assert_ne!(new, old);

    // The slow request's answer: the old token, now revoked, gets a 401.
    revoke_behind_the_back(&srv, &old);
    let (status, head_text, _) = raw(
        &srv,
        &format!(
            "GET {API_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {old}\r\n\r\n",
            srv.port
        ),
    );
    assert_eq!(status, 401);
    let mut parser: HeadParser = HeadParser::new();
    assert!(parser.feed(head_text.as_bytes()).unwrap().is_some());
    let head = *parser.head().unwrap();
    assert_eq!(head.bearer, Some(ErrorCode::InvalidToken));
    assert_eq!(
        s.on_api_response_for(refresh_at + 1, &head, b"", sent_with),
        ApiVerdict::RetryWithNewToken
    );
    assert!(s.status().usable, "the late 401 dropped the new token");
    assert_eq!(token_text(&s), new);
    get_me_ok(&mut s, &srv, refresh_at + 2);
}
