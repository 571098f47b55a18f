//! Model-based, seeded property test of the `Session` state machine (issue
//! #19): thousands of short random scenarios, each one seed, each checked
//! against a model of what the session must do after every step.
//!
//! Every preset of `preset::ALL` runs, plus `preset::custom()` as client
//! credentials, as the password grant, as the device flow (feature
//! `device-flow`), and three profiles with a small `Config::max_wait_s`. The
//! client follows the session like a real caller: `poll(now)`; on
//! `SendTokenRequest` it writes the request and answers it from the model's
//! server; on `Ready` it asks `authorize(now)` and sends API requests, whose
//! answers go to `on_api_response`; on `Wait` it lets time pass; on
//! `NeedAuthorizationCode` it runs `authorization_url` and
//! `set_authorization_code` (the user approves at once); on `Failed` it
//! sometimes calls `restart()`.
//!
//! # The alphabet
//!
//! Token endpoint answers (biased towards success, so tokens get issued):
//! - a token (`access_token`, or Patchworks' `token`) with and without a
//!   refresh token, with and without `expires_in` (30..600 s, sometimes a
//!   digit string), with and without `scope`; a device authorization; a
//!   revocation `200`;
//! - each RFC 6749 error (`invalid_request`, `invalid_client` as 400 and
//!   401, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`,
//!   `invalid_scope`, `access_denied`, `server_error`,
//!   `temporarily_unavailable`) with and without `error_description`; the
//!   device-flow codes on device polls;
//! - non-RFC 400 / 403 / 404 / 408 with an HTML body, a 401 with an HTML body;
//!   500 / 502 / 503 / 504 (HTML, empty or JSON without `error`, 503 also
//!   with `Retry-After`); 200 with a broken body;
//! - 429 with each rate-limit form: none, `Retry-After` seconds (0..120,
//!   600..7200, 4000000000), `Retry-After` HTTP-date (with and without a
//!   `Date` header, and the year 9999), `X-RateLimit-Remaining: 0` with
//!   `X-RateLimit-Reset` in epoch seconds, epoch milliseconds or delta
//!   seconds, with and without `Date`, and IETF `RateLimit` (structured
//!   `"default";r=0;t=N`, the older draft's separate fields, and
//!   `limit=10, remaining=0, reset=N`), with a plain body or Fentu's
//!   `{"error":"rate_limit_exceeded"}` (with and without a description);
//! - no answer (time runs past `RESPONSE_TIMEOUT_MS`; a late head is then
//!   refused), a dropped connection (`on_transport_error`), a body cut short
//!   (`on_token_eof` mid-body);
//! - framings: `Content-Length`, chunked (random chunk sizes),
//!   `Connection: close` (ended by `on_token_eof`); every response arrives
//!   in random pieces, with a little time between them.
//!
//! API answers: 200, 401 (plain, `Bearer error="invalid_token"`,
//! `insufficient_scope`), 403 (plain, and with `X-RateLimit-Remaining: 0`),
//! 429 / 503 with the rate-limit forms above, 500, 404, and Field Nation's
//! 400 "Expired token".
//!
//! Clock and life events: small steps, long waits, forward jumps of hours and
//! days (a suspended device: world time passes too), small backward steps of
//! the monotonic clock, `set_wall_clock` (right, or a year behind),
//! `snapshot`, `restore` into the same session (the latest image, an older
//! one, with the wall clock a year behind, a corrupted, truncated, extended
//! or foreign image), a reboot (snapshot, new session on a new monotonic
//! clock, restore), `revoke`, `clear` (followed by a new session),
//! `restart`, `reseed`, and calls that must fail.
//!
//! Some cases of the rate-limited presets are *greedy*: for a simulated hour
//! (Fentu) or a few minutes (Autotask) the client sends an API request
//! whenever `authorize` allows, in steps of 1..100 ms; half of the Autotask
//! ones get many 401s, so tokens are fetched as fast as the session allows.
//!
//! Each random case ends in a *healthy phase*: the server answers only with
//! successes and API requests only get 200.
//!
//! # The invariants (checked after every step)
//!
//! 1. Safety: no `failure_description()`, `granted_scope()`,
//!    `device_display()`, and no `Debug` text of `Session`, `Status`,
//!    `Event`, `Action`, `Authorization`, `Error`, `Config` or `TokenBody`
//!    contains a 6-byte window of any access token, refresh token, device
//!    code, client secret, password or API key issued or configured so far.
//!    (Secrets are generated so that every window mixes letters and digits,
//!    and descriptions, scopes and user codes have no digits.)
//!    `failure_description()` is `None` or exactly the `error_description`
//!    of the latest token response, and never has NUL bytes.
//! 2. A valid access token is served until its expiry: the model tracks the
//!    latest token issued and its expiry (from when its request was written,
//!    in the session's clock, which never runs backwards; after a restore,
//!    from the image with the wall clock clamped to the image's time). Unless
//!    the model knows it was dropped (an API 401 carrying it, `revoke`,
//!    `clear`, a restore of another image), `authorize` returns `Send` with
//!    exactly that token or a rate-limit `Wait`, never `NoCredential`;
//!    `credential()` is that token; `status().usable` holds; `poll` does not
//!    say `Failed` or `NeedAuthorizationCode`. Conversely, a credential
//!    handed out is the latest token, not dropped, not expired. A restore of
//!    an image whose token is still valid succeeds.
//! 3. Liveness: in the healthy phase `authorize` hands out a credential
//!    within `max_wait + EXHAUSTED_RETRY_MS + 3 backoff caps +
//!    RESPONSE_TIMEOUT_MS + 2 token-budget intervals + 1 API-budget
//!    interval (+ max_wait in the device flow) + 60 s` of session time; a
//!    `Failed(f)` must come from an answer the #19 semantics call final
//!    (then `restart()` restarts the clock). Final answers latch: with no
//!    valid token left `poll` says `Failed(f)`, and no token request goes out
//!    until `restart()`; answers that are not final never latch. `poll` says
//!    `AwaitResponse` exactly while a request is in flight and younger than
//!    `RESPONSE_TIMEOUT_MS`. A valid token response is accepted.
//! 4. No wait exceeds the cap: every `Action::Wait`, `Authorization::Wait`,
//!    `ApiVerdict::RateLimited`, `Event::Retrying`, and
//!    `status().api_blocked_until` / `token_blocked_until` is at most
//!    `now + max(max_wait, largest budget interval, EXHAUSTED_RETRY_MS)`.
//! 5. No sliding window exceeds the provider's published limit, counting what
//!    the client sends by following the session, in world time: Fentu ≤ 1000
//!    API requests in any 3600 s; Autotask ≤ 10 token requests in any 60 s
//!    and ≤ 600 API requests per token in any 60 s. (A restore of an image
//!    older than the last request, or a reboot whose image is refused,
//!    starts a new count: the session cannot know what it forgot.)
//! 6. A failed call changes nothing: for every call that returns `Err`
//!    (restore of a bad image, a short buffer, a wrong `state`, a foreign or
//!    stale `TokenBody`, a head or window out of turn...), `status()`,
//!    `credential()` (header line and target), `failure_description()`,
//!    `granted_scope()`, `device_display()` and the `Debug` text are
//!    identical before and after; and calls that must fail do. Every case
//!    also drives a *twin* session (same seed) with every call except the
//!    ones that must fail: every answer of the two (`poll`, `authorize`,
//!    events, requests written...) and their states must stay identical, so
//!    a failed call that changed hidden state shows up later.
//! 7. Consistency with the #19 semantics: `TokenIssued { refreshable,
//!    lifetime_s, kind }` agrees with the answer and with `status()`; a
//!    rejected refresh says `RefreshRejected` and drops the refresh token;
//!    an API answer gets the verdict its status calls for; an epoch
//!    `X-RateLimit-Reset` or an HTTP-date `Retry-After` without a `Date`
//!    header or a wall clock blocks exactly `UNKNOWN_RESET_WAIT_S`;
//!    `restart()` lifts every block.
//!
//! "The #19 semantics": final versus retried answers, caps and clocks as
//! `docs/ARCHITECTURE.md` ("Failure handling") states them. Where they say
//! nothing (errors to device-flow requests, error codes on a revocation),
//! the model follows the session's own decision.
//!
//! # Running
//!
//! `cargo test -p fieldauth --test model` runs 3,000 cases (`MODEL_CASES=n`
//! for more or fewer; seed `n` belongs to profile `n % 12`), spread over one
//! test per profile (about 12 s in a debug build on two cores). A case stops
//! at its first violation; each test then lists every kind of violation it
//! saw with the seeds that showed it, and prints for the first of each the
//! seed, the profile, the model's state, the last 40 steps and the command
//! that replays exactly that case: `MODEL_SEED=n cargo test -p fieldauth
//! --test model <profile>` (`MODEL_TRACE=1` prints every step as it runs).
//! `MODEL_CONTINUE=1,4` records violations of the listed invariants and
//! lets their cases run on (the model then follows the session), to see
//! what else breaks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::Instant;

use fieldauth::apply::ApiCredential;
use fieldauth::http::{HeadParser, ResetMode, ResponseHead};
use fieldauth::preset::{self, Budget, Mode, Profile};
use fieldauth::session::{
    Action, ApiVerdict, Authorization, Config, Event, Failure, RequestKind, Session, TokenBody,
    DEFAULT_MAX_WAIT_S, EXHAUSTED_RETRY_MS, NEVER, RESPONSE_TIMEOUT_MS, UNKNOWN_RESET_WAIT_S,
};
use fieldauth::Error;

const S: u64 = 1_000;
const MIN: u64 = 60 * S;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
const YEAR: u64 = 365 * DAY;
/// The server's Unix time (ms) at world time 0 (2025-11-14).
const EPOCH_MS: u64 = 1_763_158_400_000;
/// 9999-12-31T23:59:59Z.
const YEAR_9999_S: u64 = 253_402_300_799;
/// Under Miri (tests/miri.sh) a handful: one case per subject.
const DEFAULT_CASES: u64 = if cfg!(miri) { SUBJECTS } else { 3_000 };
/// Steps of trace kept for a report.
const TRACE_STEPS: u64 = 40;
const BASE_URL: &str = "https://api.example.com";
const REDIRECT_URI: &str = "https://app.example/cb";
const USERNAME: &str = "operator@example.com";

/// Under Miri (tests/miri.sh) a 1 KiB arena: a session wipes its whole
/// arena (zeroize's volatile writes, byte by byte) when dropped and each
/// token slot when it is reused, a large part of each step's time there.
/// The model's tokens fit both.
const ARENA: usize = if cfg!(miri) { 1024 } else { 3072 };
type Sess = Session<ARENA>;

// ------------------------------------------------------------ randomness

/// SplitMix64: the whole case follows from its seed.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `permille / 1000`.
    fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ------------------------------------------------------------ secrets

const LETTERS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
const WORDS: &[&str] = &[
    "the", "client", "grant", "was", "rejected", "please", "try", "again", "later", "invalid",
    "token", "expired", "quota", "account", "locked", "unknown", "scope", "denied", "server",
];

/// A secret: a two-letter kind, the case's mark (letter, digit), then 20..60
/// characters in which every third is a digit, so every 6-byte window of it
/// mixes letters and digits (no `Debug` word or number can match one).
fn secret(rng: &mut Rng, kind: &str, mark: &str) -> String {
    let mut s = format!("{kind}{mark}");
    let n = rng.range(20, 60);
    for i in 0..n {
        let set = if i % 3 == 0 { DIGITS } else { LETTERS };
        s.push(rng.pick(set) as char);
    }
    s
}

/// Lower-case words: error descriptions, scopes, messages (no digits).
fn words(rng: &mut Rng, lo: u64, hi: u64) -> String {
    let n = rng.range(lo, hi);
    (0..n)
        .map(|_| rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

fn pack(w: &[u8]) -> u64 {
    w.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
}

/// Every 6-byte window of every secret so far.
#[derive(Default)]
struct Secrets {
    windows: HashSet<u64, BuildHasherDefault<Fx>>,
    /// The windows' low 16 bits: a filter in front of the set (most windows
    /// of a text are no secret's; the set lookups were a quarter of the
    /// model's time under Miri, tests/miri.sh).
    low: Vec<bool>,
}

impl Secrets {
    fn add(&mut self, s: &str) {
        if self.low.is_empty() {
            self.low = vec![false; 1 << 16];
        }
        for w in s.as_bytes().windows(6) {
            let p = pack(w);
            self.low[(p & 0xffff) as usize] = true;
            self.windows.insert(p);
        }
    }

    /// The first window of `text` that belongs to a secret. Secrets are
    /// alphanumeric, so only alphanumeric runs need looking at.
    fn leak(&self, text: &str) -> Option<String> {
        if self.low.is_empty() {
            return None;
        }
        for run in text.as_bytes().split(|b| !b.is_ascii_alphanumeric()) {
            for w in run.windows(6) {
                let p = pack(w);
                if self.low[(p & 0xffff) as usize] && self.windows.contains(&p) {
                    return Some(String::from_utf8_lossy(w).into_owned());
                }
            }
        }
        None
    }
}

// ------------------------------------------------------------ HTTP bits

/// IMF-fixdate of Unix seconds.
fn http_date(unix_s: u64) -> String {
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_s / 86_400;
    let secs = unix_s % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[(days % 7) as usize],
        d,
        MON[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked,
    Close,
}

/// A response to serialize.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    framing: Framing,
}

impl Reply {
    /// The bytes on the wire and where the body starts.
    fn wire(&self, rng: &mut Rng) -> (Vec<u8>, usize) {
        let mut out = format!("HTTP/1.1 {} X\r\n", self.status);
        for (k, v) in &self.headers {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        match self.framing {
            Framing::Length => {
                let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
            }
            Framing::Chunked => out.push_str("Transfer-Encoding: chunked\r\n"),
            Framing::Close => out.push_str("Connection: close\r\n"),
        }
        out.push_str("\r\n");
        let head = out.len();
        let mut bytes = out.into_bytes();
        if self.framing == Framing::Chunked {
            let mut rest = &self.body[..];
            while !rest.is_empty() {
                let n = (rng.range(1, 40) as usize).min(rest.len());
                bytes.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                bytes.extend_from_slice(&rest[..n]);
                bytes.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        } else {
            bytes.extend_from_slice(&self.body);
        }
        (bytes, head)
    }
}

/// Parses a whole response head.
fn parse_head(raw: &[u8]) -> ResponseHead {
    let mut p: HeadParser<256> = HeadParser::new();
    p.feed(raw)
        .expect("a well-formed head")
        .expect("a complete head");
    *p.head().expect("head")
}

/// Rate-limit headers of a 429 (or 503, or 403 with `Remaining: 0`).
#[derive(Clone, Copy, Debug)]
enum RlForm {
    Bare,
    After(u64),
    AfterDate { at_s: u64, date: bool },
    XReset { raw: u64, date: bool },
    IetfStructured(u64),
    IetfOld(u64),
    IetfBrief(u64),
}

// ------------------------------------------------------------ subjects

#[derive(Clone, Copy, Debug)]
struct Limit {
    max: usize,
    window_ms: u64,
}

/// One profile under test.
#[derive(Clone, Copy)]
struct Subject {
    test: &'static str,
    profile: Profile<'static>,
    max_wait_s: u32,
    /// Published limits (invariant 5).
    token_limit: Option<Limit>,
    api_limit: Option<Limit>,
    api_limit_per_token: bool,
    /// Every n-th case is greedy (0: none).
    greedy_every: u64,
}

const SUBJECTS: u64 = 12;

fn plain(test: &'static str, profile: Profile<'static>) -> Subject {
    Subject {
        test,
        profile,
        max_wait_s: 0,
        token_limit: None,
        api_limit: None,
        api_limit_per_token: false,
        greedy_every: 0,
    }
}

fn subject(i: u64) -> Option<Subject> {
    let fentu = Some(Limit {
        max: 1_000,
        window_ms: HOUR,
    });
    Some(match i {
        0 => Subject {
            api_limit: fentu,
            greedy_every: 40,
            ..plain("fentu_api_key", preset::FENTU_API_KEY)
        },
        1 => Subject {
            api_limit: fentu,
            greedy_every: 40,
            ..plain("fentu_oauth", preset::FENTU_OAUTH)
        },
        2 => plain("field_nation", preset::FIELD_NATION),
        3 => Subject {
            token_limit: Some(Limit {
                max: 10,
                window_ms: MIN,
            }),
            api_limit: Some(Limit {
                max: 600,
                window_ms: MIN,
            }),
            api_limit_per_token: true,
            greedy_every: 25,
            ..plain("autotask", preset::AUTOTASK)
        },
        4 => plain("patchworks_api_key", preset::PATCHWORKS_API_KEY),
        5 => plain("patchworks_login", preset::PATCHWORKS_LOGIN),
        6 => plain("custom_client_credentials", preset::custom()),
        7 => plain(
            "custom_password",
            Profile {
                mode: Mode::Password,
                ..preset::custom()
            },
        ),
        8 => {
            #[cfg(feature = "device-flow")]
            {
                plain(
                    "custom_device_code",
                    Profile {
                        mode: Mode::DeviceCode,
                        ..preset::custom()
                    },
                )
            }
            #[cfg(not(feature = "device-flow"))]
            {
                return None;
            }
        }
        9 => Subject {
            max_wait_s: 120,
            ..plain("custom_small_cap", preset::custom())
        },
        10 => Subject {
            max_wait_s: 300,
            api_limit: fentu,
            greedy_every: 40,
            ..plain("fentu_api_key_small_cap", preset::FENTU_API_KEY)
        },
        // A cap below a few slow_down steps (5 s each).
        11 => {
            #[cfg(feature = "device-flow")]
            {
                Subject {
                    max_wait_s: 15,
                    ..plain(
                        "custom_device_code_small_cap",
                        Profile {
                            mode: Mode::DeviceCode,
                            ..preset::custom()
                        },
                    )
                }
            }
            #[cfg(not(feature = "device-flow"))]
            {
                return None;
            }
        }
        _ => return None,
    })
}

/// The GCRA emission interval the #19 semantics give a budget:
/// `window / (requests - burst + 1)`, rounded up.
fn interval_ms(b: Budget) -> u64 {
    let requests = u64::from(b.requests.max(1));
    let burst = u64::from(b.burst.clamp(1, b.requests.max(1)));
    (u64::from(b.window_s) * 1000).div_ceil(requests - burst + 1)
}

/// The cargo flags the test binary was built with, for replay commands.
fn feature_flags() -> String {
    let on = [
        ("device-flow", cfg!(feature = "device-flow")),
        ("ietf-ratelimit", cfg!(feature = "ietf-ratelimit")),
        ("obsolete-dates", cfg!(feature = "obsolete-dates")),
        ("basic-auth", cfg!(feature = "basic-auth")),
        ("pkce", cfg!(feature = "pkce")),
    ];
    if on.iter().all(|(_, b)| *b) {
        String::new()
    } else {
        let list: Vec<&str> = on.iter().filter(|(_, b)| *b).map(|(n, _)| *n).collect();
        if list.is_empty() {
            " --no-default-features".to_owned()
        } else {
            format!(" --no-default-features --features {}", list.join(","))
        }
    }
}

// ------------------------------------------------------------ the model's vocabulary

#[derive(Clone, Debug)]
enum Answer {
    Token {
        access: String,
        refresh: Option<String>,
        expires_in: Option<u32>,
        as_string: bool,
        scope: Option<String>,
    },
    Device {
        device_code: String,
        user_code: String,
        expires_in: u32,
        interval: Option<u32>,
    },
    RevokeOk,
    Rfc {
        status: u16,
        code: &'static str,
        desc: Option<String>,
    },
    Html {
        status: u16,
    },
    Server {
        status: u16,
        body: u8,
        form: Option<RlForm>,
    },
    /// A 429; with `coded`, Fentu's `{"error":"rate_limit_exceeded"}` body.
    Limited {
        form: RlForm,
        coded: bool,
        desc: Option<String>,
    },
    Malformed {
        which: u8,
    },
    Timeout,
    Drop,
}

/// A token answer and how it travels.
#[derive(Clone, Debug)]
struct Delivery {
    answer: Answer,
    framing: Framing,
    /// The connection drops in the middle of the body.
    cut: bool,
}

/// What an answer means by the #19 semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Issue,
    UserCode,
    Revoked,
    Final(Failure),
    Transient,
    RefreshRejected,
    NeedCode,
    /// Device flow: pending, slow down, expired device code.
    Pending,
    /// The semantics do not say: the model adopts what the session does.
    Unknown,
}

fn classify(mode: Mode, kind: RequestKind, d: &Delivery) -> Class {
    if d.cut {
        return Class::Transient;
    }
    if kind == RequestKind::Revoke {
        // A revocation's 200 body is ignored; error codes: the session decides.
        return match &d.answer {
            Answer::RevokeOk
            | Answer::Token { .. }
            | Answer::Device { .. }
            | Answer::Malformed { .. } => Class::Revoked,
            Answer::Rfc { .. } => Class::Unknown,
            _ => Class::Transient,
        };
    }
    match &d.answer {
        Answer::Timeout
        | Answer::Drop
        | Answer::Malformed { .. }
        | Answer::Server { .. }
        | Answer::Limited { .. } => Class::Transient,
        Answer::Token { .. } => Class::Issue,
        Answer::Device { .. } => Class::UserCode,
        Answer::RevokeOk => Class::Unknown,
        Answer::Html { status } => match (*status, kind) {
            (401, RequestKind::Refresh) => Class::RefreshRejected,
            (401, RequestKind::Fetch) => Class::Final(match mode {
                Mode::Login | Mode::Password => Failure::InvalidGrant,
                _ => Failure::InvalidClient,
            }),
            (401, _) => Class::Unknown,
            _ => Class::Transient,
        },
        Answer::Rfc { code, .. } => {
            let code = *code;
            if matches!(code, "server_error" | "temporarily_unavailable") {
                return Class::Transient;
            }
            match kind {
                RequestKind::Refresh => Class::RefreshRejected,
                RequestKind::DevicePoll => match code {
                    "authorization_pending" | "slow_down" | "expired_token" => Class::Pending,
                    "access_denied" => Class::Final(Failure::AccessDenied),
                    _ => Class::Unknown,
                },
                RequestKind::Fetch => match code {
                    "invalid_client" => Class::Final(Failure::InvalidClient),
                    "unauthorized_client" | "unsupported_grant_type" => {
                        Class::Final(Failure::UnauthorizedClient)
                    }
                    "invalid_scope" => Class::Final(Failure::InvalidScope),
                    "access_denied" => Class::Final(Failure::AccessDenied),
                    "invalid_grant" if mode == Mode::AuthorizationCode => Class::NeedCode,
                    "invalid_grant" => Class::Final(Failure::InvalidGrant),
                    "invalid_request" => Class::Final(Failure::Rejected),
                    _ => Class::Unknown,
                },
                _ => Class::Unknown,
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Latch {
    /// No final answer: the session must not say `Failed`.
    None,
    /// A final answer: `Failed(f)` once no valid token is left.
    Final(Failure),
    /// Unknown (a revocation in progress, a restore over a latch).
    Maybe,
}

/// The latest access token the model knows of.
#[derive(Clone, Debug)]
struct Held {
    token: String,
    /// Session time (ms) at which it expires.
    expires_at: u64,
    lifetime_s: u32,
    /// The session must hand it out until it expires (false once a
    /// revocation was asked for).
    must_serve: bool,
}

/// A snapshot image and what the model knew when it was written.
struct Image {
    bytes: Vec<u8>,
    wrote_unix: u64,
    /// Token, expiry (Unix ms), lifetime, must_serve.
    held: Option<(String, u64, u32, bool)>,
    /// Requests sent before it was written (for invariant 5).
    sends: u64,
}

/// What the session made of a token response.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Event(Event),
    Error(Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    Random,
    Healthy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ApiPolicy {
    Random,
    Healthy,
    Heavy401,
}

/// An invariant violation.
#[derive(Debug)]
struct Found {
    inv: u8,
    key: &'static str,
    detail: String,
    report: String,
}

/// Everything `failed calls change nothing` compares.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    status: String,
    credential: Option<(String, String)>,
    description: Option<String>,
    scope: Option<String>,
    device: Option<String>,
    debug: String,
}

#[derive(Clone, Copy, Default, Debug)]
struct Stats {
    cases: u64,
    greedy: u64,
    steps: u64,
    token_requests: u64,
    issued: u64,
    finals: u64,
    api_sent: u64,
    rate_limited: u64,
    restored: u64,
    refused_calls: u64,
    timeouts: u64,
    live: u64,
    /// The fullest sliding windows seen (invariant 5).
    max_api_window: usize,
    max_token_window: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.cases += o.cases;
        self.greedy += o.greedy;
        self.steps += o.steps;
        self.token_requests += o.token_requests;
        self.issued += o.issued;
        self.finals += o.finals;
        self.api_sent += o.api_sent;
        self.rate_limited += o.rate_limited;
        self.restored += o.restored;
        self.refused_calls += o.refused_calls;
        self.timeouts += o.timeouts;
        self.live += o.live;
        self.max_api_window = self.max_api_window.max(o.max_api_window);
        self.max_token_window = self.max_token_window.max(o.max_token_window);
    }
}

fn continue_on(inv: u8) -> bool {
    std::env::var("MODEL_CONTINUE").is_ok_and(|v| {
        v.split(',')
            .any(|x| x.trim().parse::<u8>().ok() == Some(inv))
    })
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// What a failed call must leave as it was.
fn fingerprint(s: &Sess) -> Fingerprint {
    let credential = s.credential().map(|c| {
        let mut buf = [0u8; 512];
        let n = c.write_header_line(&mut buf).unwrap_or(0);
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        let n = c.write_target("/v1/items?page=2", &mut buf).unwrap_or(0);
        (line, String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    Fingerprint {
        status: format!("{:?}", s.status()),
        credential,
        description: s.failure_description().map(str::to_owned),
        scope: s.granted_scope().map(str::to_owned),
        device: s.device_display().map(|d| format!("{d:?}")),
        debug: format!("{s:?}"),
    }
}

fn credential_secret(c: &ApiCredential<'_>) -> String {
    match *c {
        ApiCredential::Bearer(t) => t.to_owned(),
        ApiCredential::ApiKey { key, .. } => key.to_owned(),
        ApiCredential::Header { value, .. } | ApiCredential::QueryParam { value, .. } => {
            value.to_owned()
        }
    }
}

fn short(token: &str) -> String {
    format!("{}…({})", &token[..token.len().min(8)], token.len())
}

/// `authorize`'s answer, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Auth {
    Send(String),
    Wait(u64),
    No,
}

// ------------------------------------------------------------ the simulation

struct Creds {
    client_id: String,
    client_secret: String,
    password: String,
    api_key: String,
}

fn config<'a>(sub: &Subject, c: &'a Creds) -> Config<'a> {
    Config {
        base_url: BASE_URL,
        client_id: &c.client_id,
        client_secret: &c.client_secret,
        username: USERNAME,
        password: &c.password,
        api_key: &c.api_key,
        scope: "",
        redirect_uri: REDIRECT_URI,
        allow_insecure: false,
        max_wait_s: sub.max_wait_s,
        ..Config::default()
    }
}

struct Sim {
    seed: u64,
    sub: Subject,
    mode: Mode,
    greedy: bool,
    rng: Rng,
    mark: String,
    creds: Creds,
    sess: Box<Sess>,
    /// Gets every call `sess` gets except the ones that must fail: any
    /// difference later means a failed call changed hidden state.
    twin: Box<Sess>,
    twin_lost: bool,
    secrets: Secrets,
    // Clocks: world ms since the case began; the device's monotonic clock is
    // `real + off`; the session's clock as the model sees it.
    real: u64,
    off: i64,
    sess_now: u64,
    /// Session time elapsed over all the case's sessions (liveness is
    /// measured in it: a reboot's downtime is not the session's).
    odometer: u64,
    new_clock: bool,
    /// The device's wall clock error (0 or a year behind).
    wall_err: i64,
    /// The session knows the wall clock (`set_wall_clock`, `restore`).
    wall_known: bool,
    // The model.
    held: Option<Held>,
    latch: Latch,
    revoking: bool,
    desc: Option<String>,
    in_flight: Option<(RequestKind, u64)>,
    policy: Policy,
    api_policy: ApiPolicy,
    healthy_since: Option<u64>,
    live: bool,
    // Invariant 5.
    tok_sends: VecDeque<u64>,
    api_sends: VecDeque<u64>,
    per_token: HashMap<String, VecDeque<u64>>,
    sends: u64,
    images: Vec<Image>,
    stale_body: TokenBody,
    // Bookkeeping.
    step: u64,
    trace: VecDeque<(u64, String)>,
    scanned: HashMap<&'static str, String>,
    recorded: Vec<Found>,
    stats: Stats,
    verbose: bool,
}

impl Sim {
    fn new(seed: u64, sub: Subject) -> Sim {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x0005_eed0_f19a);
        let mark = format!(
            "{}{}",
            LETTERS[(seed % LETTERS.len() as u64) as usize] as char,
            seed / LETTERS.len() as u64 % 10
        );
        let creds = Creds {
            client_id: "handheld-client".to_owned(),
            client_secret: secret(&mut rng, "cs", &mark),
            password: secret(&mut rng, "pw", &mark),
            api_key: secret(&mut rng, "ak", &mark),
        };
        let mut secrets = Secrets::default();
        secrets.add(&creds.client_secret);
        secrets.add(&creds.password);
        secrets.add(&creds.api_key);
        let cfg = config(&sub, &creds);
        let config_debug = format!("{cfg:?}");
        let sess_seed = rng.next();
        let sess = Box::new(Sess::new(&sub.profile, &cfg, sess_seed).expect("configuration"));
        let twin = Box::new(Sess::new(&sub.profile, &cfg, sess_seed).expect("configuration"));
        let k = seed / SUBJECTS;
        let greedy = sub.greedy_every > 0 && k % sub.greedy_every == 1;
        let mut sim = Sim {
            seed,
            sub,
            mode: sub.profile.mode,
            greedy,
            mark,
            creds,
            sess,
            twin,
            twin_lost: false,
            secrets,
            real: 0,
            off: rng.range(1_000_000, 50_000_000) as i64,
            sess_now: 0,
            odometer: 0,
            new_clock: true,
            wall_err: 0,
            wall_known: false,
            held: None,
            latch: Latch::None,
            revoking: false,
            desc: None,
            in_flight: None,
            policy: Policy::Random,
            api_policy: ApiPolicy::Random,
            healthy_since: None,
            live: false,
            tok_sends: VecDeque::new(),
            api_sends: VecDeque::new(),
            per_token: HashMap::new(),
            sends: 0,
            images: Vec::new(),
            stale_body: TokenBody::new(),
            step: 0,
            trace: VecDeque::new(),
            scanned: HashMap::new(),
            recorded: Vec::new(),
            stats: Stats {
                cases: 1,
                greedy: u64::from(greedy),
                ..Stats::default()
            },
            verbose: std::env::var("MODEL_TRACE").is_ok_and(|v| v != "0"),
            rng,
        };
        sim.scan("Config", config_debug);
        sim.reset_key_model();
        sim
    }

    // -------------------------------------------------------- clocks

    fn dev(&self) -> u64 {
        (self.real as i64 + self.off) as u64
    }

    fn server_ms(&self) -> u64 {
        EPOCH_MS + self.real
    }

    fn device_unix(&self) -> u64 {
        (self.server_ms() as i64 + self.wall_err) as u64
    }

    /// The session saw `now`: its clock never runs backwards.
    fn touch(&mut self, now: u64) -> u64 {
        if self.new_clock {
            // A new session: its clock starts where the device's is.
            self.new_clock = false;
        } else if now > self.sess_now {
            self.odometer += now - self.sess_now;
        }
        self.sess_now = self.sess_now.max(now);
        self.sess_now
    }

    /// The odometer at the device's current time (time that passed since the
    /// session last saw the clock included).
    fn odometer_now(&self) -> u64 {
        self.odometer + self.dev().saturating_sub(self.sess_now)
    }

    /// A `now` for a call that must fail: never ahead of the session's clock.
    fn probe_now(&self) -> u64 {
        self.dev().min(self.sess_now)
    }

    fn advance(&mut self, ms: u64) {
        self.real += ms;
    }

    /// Lets a random time in `lo..=hi` ms pass.
    fn pass(&mut self, lo: u64, hi: u64) {
        let ms = self.rng.range(lo, hi);
        self.advance(ms);
    }

    /// Lets the device clock reach `t` (session time).
    fn advance_to(&mut self, t: u64) {
        let d = self.dev();
        if t > d {
            self.advance((t - d).min(3 * DAY));
        }
    }

    fn cap_ms(&self) -> u64 {
        let s = if self.sub.max_wait_s == 0 {
            DEFAULT_MAX_WAIT_S
        } else {
            self.sub.max_wait_s
        };
        u64::from(s) * 1000
    }

    /// How long an epoch reset blocks when the session knows no "now":
    /// `UNKNOWN_RESET_WAIT_S`, within the cap like every server-imposed wait.
    fn unknown_wait_ms(&self) -> u64 {
        (u64::from(UNKNOWN_RESET_WAIT_S) * 1000).min(self.cap_ms())
    }

    fn token_interval(&self) -> u64 {
        self.sub.profile.token_budget.map_or(0, interval_ms)
    }

    fn api_interval(&self) -> u64 {
        self.sub.profile.api_budget.map_or(0, interval_ms)
    }

    /// Invariant 4's bound on any wait.
    fn wait_limit(&self) -> u64 {
        self.cap_ms()
            .max(self.token_interval())
            .max(self.api_interval())
            .max(u64::from(EXHAUSTED_RETRY_MS))
    }

    /// Invariant 3's bound on the time to a credential in a healthy phase.
    fn liveness_bound(&self) -> u64 {
        // The device flow waits for the user code's poll interval too.
        #[cfg(feature = "device-flow")]
        let device = if self.mode == Mode::DeviceCode {
            self.cap_ms()
        } else {
            0
        };
        #[cfg(not(feature = "device-flow"))]
        let device = 0;
        self.cap_ms()
            + u64::from(EXHAUSTED_RETRY_MS)
            + 3 * u64::from(self.sub.profile.backoff.cap_ms)
            + RESPONSE_TIMEOUT_MS
            + 2 * self.token_interval()
            + self.api_interval()
            + device
            + MIN
    }

    // -------------------------------------------------------- model helpers

    fn reset_key_model(&mut self) {
        if self.mode == Mode::ApiKey {
            self.held = Some(Held {
                token: self.creds.api_key.clone(),
                expires_at: NEVER,
                lifetime_s: 0,
                must_serve: true,
            });
        }
    }

    fn valid(&self) -> Option<&Held> {
        self.held.as_ref().filter(|h| self.sess_now < h.expires_at)
    }

    fn must_serve(&self) -> bool {
        self.valid().is_some_and(|h| h.must_serve)
    }

    fn new_secret(&mut self, kind: &str) -> String {
        let s = secret(&mut self.rng, kind, &self.mark);
        self.secrets.add(&s);
        s
    }

    fn reset_windows(&mut self, why: &str) {
        self.tok_sends.clear();
        self.api_sends.clear();
        self.per_token.clear();
        self.log(format!("(window counts start afresh: {why})"));
    }

    // -------------------------------------------------------- reporting

    fn log(&mut self, line: String) {
        if self.verbose {
            eprintln!("#{} s={} {line}", self.step, self.sess_now);
        }
        self.trace.push_back((self.step, line));
        while self
            .trace
            .front()
            .is_some_and(|(s, _)| s + TRACE_STEPS < self.step)
        {
            self.trace.pop_front();
        }
    }

    fn model_text(&self) -> String {
        let held = match &self.held {
            Some(h) => format!(
                "{} expires {} (in {} ms){}",
                short(&h.token),
                h.expires_at,
                h.expires_at as i128 - self.sess_now as i128,
                if h.must_serve {
                    ""
                } else {
                    ", need not be served"
                }
            ),
            None => "none".to_owned(),
        };
        format!(
            "held token: {held}; latch: {:?}; revoking: {}; description: {:?}; in flight: {:?}; \
             healthy since: {:?}; live: {}",
            self.latch, self.revoking, self.desc, self.in_flight, self.healthy_since, self.live
        )
    }

    fn report(&self, inv: u8, key: &str, detail: &str) -> String {
        let mut r = String::new();
        let _ = writeln!(
            r,
            "INVARIANT {inv} VIOLATED: {key}: {detail}\n  seed {} · {} ({}, {:?}, max_wait {} s) · {} case\n  \
             step {} · session clock {} · device clock {} · world {} ms",
            self.seed,
            self.sub.test,
            self.sub.profile.name,
            self.mode,
            self.cap_ms() / 1000,
            if self.greedy { "greedy" } else { "random" },
            self.step,
            self.sess_now,
            self.dev(),
            self.real
        );
        let _ = writeln!(r, "  model: {}", self.model_text());
        let _ = writeln!(r, "  session: {:?}", self.sess);
        let _ = writeln!(r, "  last {TRACE_STEPS} steps:");
        for (s, line) in &self.trace {
            let _ = writeln!(r, "    #{s:<5} {line}");
        }
        let _ = writeln!(
            r,
            "  replay: MODEL_SEED={} cargo test -p fieldauth --test model{} {} -- --nocapture",
            self.seed,
            feature_flags(),
            self.sub.test
        );
        r
    }

    fn violate(&mut self, inv: u8, key: &'static str, detail: String) {
        self.log(format!("!! invariant {inv}: {key}: {detail}"));
        let found = Found {
            inv,
            key,
            report: self.report(inv, key, &detail),
            detail,
        };
        if continue_on(inv) {
            if !self.recorded.iter().any(|f| f.inv == inv && f.key == key) {
                self.recorded.push(found);
            }
            return;
        }
        panic::panic_any(found);
    }

    /// Invariant 1 on one text (skipped when unchanged since the last look).
    fn scan(&mut self, what: &'static str, text: String) {
        if self.scanned.get(what) == Some(&text) {
            return;
        }
        if let Some(w) = self.secrets.leak(&text) {
            self.violate(
                1,
                "secret bytes in an output",
                format!("{what} contains {w:?} of a secret: {text}"),
            );
        }
        self.scanned.insert(what, text);
    }

    // -------------------------------------------------------- whole-state checks

    fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.sess)
    }

    /// Invariants 1, 2 (credential, usable), 3 (liveness clock), 4 and 6 (the
    /// twin) on the session's current state.
    fn check_state(&mut self) {
        if !self.twin_lost {
            let (a, b) = (fingerprint(&self.sess), fingerprint(&self.twin));
            if a != b {
                self.diverged(
                    "the state",
                    format!("\n    session {a:?}\n    twin    {b:?}"),
                );
            }
        }
        self.check_session();
    }

    /// Invariant 6 after a call that returned `Err`.
    fn refused(&mut self, what: &'static str, before: &Fingerprint, e: Error) {
        self.stats.refused_calls += 1;
        self.scan("Error", format!("{e:?}"));
        let after = self.fingerprint();
        self.log(format!("{what} -> Err({e:?})"));
        if &after != before {
            self.violate(
                6,
                "a failed call changed the session",
                format!("{what} returned {e:?} but changed the state:\n    before {before:?}\n    after  {after:?}"),
            );
        }
    }

    fn check_session(&mut self) {
        let st = self.sess.status();
        let limit = self.sess_now.saturating_add(self.wait_limit());
        for (name, v) in [
            ("api_blocked_until", st.api_blocked_until),
            ("token_blocked_until", st.token_blocked_until),
        ] {
            if v > limit && v != 0 {
                self.violate(
                    4,
                    "a block beyond the cap",
                    format!(
                        "status().{name} = {v}, {} ms ahead (cap {} ms)",
                        v - self.sess_now,
                        self.wait_limit()
                    ),
                );
            }
        }
        self.scan("Status", format!("{st:?}"));
        let dbg = format!("{:?}", self.sess);
        self.scan("Session", dbg);
        let desc = self.sess.failure_description().map(str::to_owned);
        if let Some(d) = desc {
            if d.contains('\0') {
                self.violate(1, "NUL bytes in failure_description", format!("{d:?}"));
            } else if Some(&d) != self.desc.as_ref() {
                self.violate(
                    1,
                    "failure_description is not the latest error_description",
                    format!("returned {d:?}, latest token response said {:?}", self.desc),
                );
            }
            self.scan("failure_description", d);
        }
        if let Some(s) = self.sess.granted_scope().map(str::to_owned) {
            self.scan("granted_scope", s);
        }
        if let Some(d) = self.sess.device_display().map(|d| format!("{d:?}")) {
            self.scan("device_display", d);
        }
        if self.must_serve() {
            let want = self.valid().map(|h| h.token.clone()).unwrap_or_default();
            let got = self.sess.credential().map(|c| credential_secret(&c));
            if got.as_deref() != Some(want.as_str()) {
                self.violate(
                    2,
                    "credential() is not the valid token",
                    format!(
                        "credential() = {:?}, the model holds {}",
                        got.map(|g| short(&g)),
                        short(&want)
                    ),
                );
                // (MODEL_CONTINUE) Follow the session from here.
                self.held = None;
                return;
            }
            if !st.usable {
                self.violate(
                    2,
                    "status().usable is false while a valid token is held",
                    format!("{st:?}"),
                );
            }
        }
        if let Some(since) = self.healthy_since {
            let bound = self.liveness_bound();
            if !self.live && self.odometer > since + bound {
                self.violate(
                    3,
                    "no credential within the liveness bound",
                    format!(
                        "healthy for {} ms of session time (bound {bound} ms)",
                        self.odometer - since
                    ),
                );
                self.live = true; // report once
            }
        }
    }

    // -------------------------------------------------------- the twin

    /// Runs a call that must not fail (or may fail alike) on the session and
    /// its twin; their answers must agree (invariant 6).
    fn mirror<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        f: impl Fn(&mut Sess) -> T,
    ) -> T {
        let a = f(&mut self.sess);
        if self.twin_lost {
            return a;
        }
        let b = f(&mut self.twin);
        if a != b {
            self.diverged(what, format!("{a:?}, the twin {b:?}"));
        }
        a
    }

    /// [`Sim::mirror`] for the calls that take a `TokenBody`: each session
    /// has its own.
    fn mirror_body<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        tbs: &mut (TokenBody, TokenBody),
        f: impl Fn(&mut Sess, &mut TokenBody) -> T,
    ) -> T {
        let a = f(&mut self.sess, &mut tbs.0);
        if self.twin_lost {
            return a;
        }
        let b = f(&mut self.twin, &mut tbs.1);
        if a != b {
            self.diverged(what, format!("{a:?}, the twin {b:?}"));
        }
        a
    }

    fn diverged(&mut self, what: &str, detail: String) {
        self.violate(
            6,
            "a failed call changed hidden state (the twin that never got the failed calls diverged)",
            format!("{what}: {detail}"),
        );
        // Report once.
        self.twin_lost = true;
    }

    // -------------------------------------------------------- poll

    fn poll(&mut self) -> Action {
        let now = self.dev();
        let a = self.mirror("poll", |s| s.poll(now));
        let t = self.touch(now);
        self.log(format!("poll({now}) -> {a:?}"));
        self.scan("Action", format!("{a:?}"));
        // In flight?
        match self.in_flight {
            Some((kind, sent)) if t < sent + RESPONSE_TIMEOUT_MS => {
                if a != Action::AwaitResponse {
                    self.violate(
                        3,
                        "poll forgot the request in flight",
                        format!("{kind:?} written at {sent}, {} ms ago: {a:?}", t - sent),
                    );
                }
                return a;
            }
            Some((kind, sent)) => {
                self.in_flight = None;
                if a == Action::AwaitResponse {
                    self.violate(
                        3,
                        "no timeout after RESPONSE_TIMEOUT_MS",
                        format!("{kind:?} written at {sent}, {} ms ago", t - sent),
                    );
                }
            }
            None => {
                if a == Action::AwaitResponse {
                    self.violate(3, "AwaitResponse with nothing in flight", String::new());
                }
            }
        }
        if let Action::Wait { until } = a {
            self.check_wait("Action::Wait", t, until);
        }
        let valid = self.must_serve();
        match a {
            Action::Failed(f) => {
                if valid {
                    self.violate(2, "Failed while a valid token is held", format!("{f:?}"));
                }
                match self.latch {
                    Latch::Final(g) if g == f => {}
                    Latch::Maybe => {}
                    l => {
                        self.violate(
                            3,
                            "Failed without a final answer",
                            format!("poll said Failed({f:?}); the model's latch: {l:?}"),
                        );
                        self.latch = Latch::Final(f);
                    }
                }
            }
            Action::NeedAuthorizationCode => {
                if valid {
                    self.violate(
                        2,
                        "NeedAuthorizationCode while a valid token is held",
                        String::new(),
                    );
                }
                if self.mode != Mode::AuthorizationCode {
                    self.violate(
                        3,
                        "NeedAuthorizationCode outside authorization-code mode",
                        String::new(),
                    );
                }
                if let Latch::Final(f) = self.latch {
                    self.violate(
                        3,
                        "a final failure does not latch",
                        format!("latched {f:?}, poll says NeedAuthorizationCode"),
                    );
                }
            }
            _ => {
                if let Latch::Final(f) = self.latch {
                    let has_valid = self.valid().is_some();
                    if !has_valid && a != Action::AwaitResponse {
                        self.violate(
                            3,
                            "a final failure does not latch",
                            format!("latched {f:?}, no valid token, poll says {a:?}"),
                        );
                    }
                    if matches!(a, Action::SendTokenRequest(k) if k != RequestKind::Revoke) {
                        self.violate(
                            3,
                            "a token request while a final failure is recorded",
                            format!("latched {f:?}, poll says {a:?}"),
                        );
                    }
                }
            }
        }
        a
    }

    fn check_wait(&mut self, what: &str, now: u64, until: u64) {
        let limit = now.saturating_add(self.wait_limit());
        if until > limit {
            self.violate(
                4,
                "a wait beyond the cap",
                format!(
                    "{what} until {until}: {} ms after now {now} (cap {} ms)",
                    until - now,
                    self.wait_limit()
                ),
            );
        }
    }

    // -------------------------------------------------------- API requests

    fn authorize(&mut self) -> Auth {
        let now = self.dev();
        let (auth, dbg) = self.mirror("authorize", |s| {
            let a = s.authorize(now);
            let dbg = format!("{a:?}");
            let auth = match a {
                Authorization::Send(c) => Auth::Send(credential_secret(&c)),
                Authorization::Wait { until } => Auth::Wait(until),
                Authorization::NoCredential => Auth::No,
            };
            (auth, dbg)
        });
        let t = self.touch(now);
        self.scan("Authorization", dbg);
        self.log(format!(
            "authorize({now}) -> {}",
            match &auth {
                Auth::Send(s) => format!("Send({})", short(s)),
                other => format!("{other:?}"),
            }
        ));
        let serve = self.must_serve();
        match &auth {
            Auth::Send(s) => {
                let ok = self
                    .valid()
                    .is_some_and(|h| &h.token == s && t < h.expires_at);
                if !ok {
                    self.violate(
                        2,
                        "a credential handed out that is not the latest valid token",
                        format!("Send({}), model: {}", short(s), self.model_text()),
                    );
                }
                if self.healthy_since.is_some() && !self.live {
                    self.live = true;
                    self.stats.live += 1;
                }
            }
            Auth::Wait(until) => self.check_wait("Authorization::Wait", t, *until),
            Auth::No => {
                if serve {
                    self.violate(
                        2,
                        "NoCredential while a valid token is held",
                        self.model_text(),
                    );
                }
            }
        }
        auth
    }

    /// Records an API request sent at world time `real` (invariant 5).
    fn record_api_send(&mut self, token: &str) {
        self.sends += 1;
        self.stats.api_sent += 1;
        let t = self.real;
        if let Some(l) = self.sub.api_limit {
            let q = if self.sub.api_limit_per_token {
                self.per_token.entry(token.to_owned()).or_default()
            } else {
                &mut self.api_sends
            };
            let n = push_window(q, t, l.window_ms);
            self.stats.max_api_window = self.stats.max_api_window.max(n);
            if n > l.max {
                self.violate(
                    5,
                    "API requests over the published limit",
                    format!(
                        "{n} API requests in the {} s before world time {t} (limit {}{})",
                        l.window_ms / 1000,
                        l.max,
                        if self.sub.api_limit_per_token {
                            " per token"
                        } else {
                            ""
                        }
                    ),
                );
            }
        }
    }

    fn record_token_send(&mut self) {
        self.sends += 1;
        self.stats.token_requests += 1;
        let t = self.real;
        if let Some(l) = self.sub.token_limit {
            let n = push_window(&mut self.tok_sends, t, l.window_ms);
            self.stats.max_token_window = self.stats.max_token_window.max(n);
            if n > l.max {
                self.violate(
                    5,
                    "token requests over the published limit",
                    format!(
                        "{n} token requests in the {} s before world time {t} (limit {})",
                        l.window_ms / 1000,
                        l.max
                    ),
                );
            }
        }
    }

    /// One API request, if `authorize` allows; returns its answer.
    fn api_request(&mut self, policy: ApiPolicy) -> Auth {
        let auth = self.authorize();
        let Auth::Send(token) = &auth else {
            return auth;
        };
        let token = token.clone();
        self.record_api_send(&token);
        self.api_answer(policy, &token);
        auth
    }

    fn api_answer(&mut self, policy: ApiPolicy, token: &str) {
        // A greedy client keeps several requests in flight.
        if self.greedy {
            self.pass(0, 3);
        } else {
            self.pass(1, 400);
        }
        let fn_phrase = self.sub.profile.expired_token_phrase;
        let r = match policy {
            ApiPolicy::Healthy => 0,
            ApiPolicy::Heavy401 => {
                if self.rng.chance(150) {
                    600
                } else {
                    0
                }
            }
            ApiPolicy::Random => self.rng.below(1000),
        };
        let mut headers: Vec<(&'static str, String)> = Vec::new();
        let mut body = String::new();
        let mut form = None;
        let status: u16 = match r {
            0..=599 => 200,
            600..=679 => {
                match self.rng.below(10) {
                    0..=6 => {}
                    7 | 8 => headers.push((
                        "WWW-Authenticate",
                        "Bearer realm=\"api\", error=\"invalid_token\"".to_owned(),
                    )),
                    _ => headers.push((
                        "WWW-Authenticate",
                        "Bearer error=\"insufficient_scope\", scope=\"admin\"".to_owned(),
                    )),
                }
                401
            }
            680..=719 => 403,
            720..=749 => {
                let f = self.draw_form();
                let f = match f {
                    RlForm::XReset { .. } => f,
                    _ => RlForm::XReset {
                        raw: self.rng.range(1, 7200),
                        date: false,
                    },
                };
                form = Some(f);
                403
            }
            750..=869 => {
                form = Some(self.draw_form());
                429
            }
            870..=929 => {
                form = Some(self.draw_form());
                503
            }
            930..=959 => 500,
            960..=989 => {
                body = if !fn_phrase.is_empty() && self.rng.chance(700) {
                    "{\"message\":\"Expired token\"}".to_owned()
                } else {
                    "{\"message\":\"bad filter\"}".to_owned()
                };
                400
            }
            _ => 404,
        };
        if let Some(f) = form {
            headers.extend(self.rl_headers(f));
        }
        let mut raw = format!("HTTP/1.1 {status} X\r\n");
        for (k, v) in &headers {
            let _ = write!(raw, "{k}: {v}\r\n");
        }
        let _ = write!(raw, "Content-Length: {}\r\n\r\n{body}", body.len());
        let head = parse_head(raw.as_bytes());
        let now = self.dev();
        let blocked_before = self.sess.status().api_blocked_until;
        let verdict = self.mirror("on_api_response", |s| {
            s.on_api_response(now, &head, body.as_bytes())
        });
        let t = self.touch(now);
        // An epoch reset without a known "now" blocks UNKNOWN_RESET_WAIT_S.
        if let (Some(RlForm::AfterDate { at_s, date: false }), false) = (form, self.wall_known) {
            let want = blocked_before.max(t + self.unknown_wait_ms());
            if verdict != (ApiVerdict::RateLimited { until: want }) {
                self.violate(
                    7,
                    "an HTTP-date Retry-After without a known now does not wait UNKNOWN_RESET_WAIT_S",
                    format!("Retry-After: {} at {t}: {verdict:?}, expected until {want}", http_date(at_s)),
                );
            }
        }
        if let (Some(RlForm::XReset { raw, date: false }), false) = (form, self.wall_known) {
            let epoch = match self.sub.profile.reset_mode {
                ResetMode::EpochSeconds => raw <= YEAR_9999_S,
                ResetMode::DeltaSeconds => false,
                ResetMode::Auto => raw >= 1_000_000_000,
            };
            let want = blocked_before.max(t + self.unknown_wait_ms());
            if epoch && verdict != (ApiVerdict::RateLimited { until: want }) {
                self.violate(
                    7,
                    "an epoch reset without a known now does not wait UNKNOWN_RESET_WAIT_S",
                    format!("X-RateLimit-Reset: {raw} at {t}: {verdict:?}, expected until {want}"),
                );
            }
        }
        self.log(format!(
            "API {status}{} -> {verdict:?}",
            form.map_or(String::new(), |f| format!(" {f:?}"))
        ));
        let insufficient = headers
            .iter()
            .any(|(_, v)| v.contains("insufficient_scope"));
        let phrase_hit = status == 400 && !fn_phrase.is_empty() && body.contains("Expired token");
        let rejected = status == 401 || phrase_hit;
        let api_key = self.mode == Mode::ApiKey;
        let expected_ok = match verdict {
            ApiVerdict::RateLimited { until } => {
                self.stats.rate_limited += 1;
                self.check_wait("ApiVerdict::RateLimited", t, until);
                matches!(status, 429 | 503) || form.is_some()
            }
            ApiVerdict::InvalidKey => api_key && rejected,
            ApiVerdict::RetryWithNewToken | ApiVerdict::Unauthorized => {
                !api_key && rejected && !insufficient
            }
            ApiVerdict::Forbidden => status == 403 || (status == 401 && insufficient),
            ApiVerdict::Ok => !(rejected || matches!(status, 429 | 503) || form.is_some()),
        };
        if !expected_ok {
            self.violate(
                7,
                "an API verdict that does not fit the answer",
                format!("API {status} {headers:?} -> {verdict:?}"),
            );
        }
        match verdict {
            ApiVerdict::InvalidKey => {
                self.held = None;
                self.latch = Latch::Final(Failure::InvalidKey);
                self.stats.finals += 1;
            }
            ApiVerdict::RetryWithNewToken | ApiVerdict::Unauthorized
                if self.held.as_ref().is_some_and(|h| h.token == token) =>
            {
                self.held = None;
            }
            _ => {}
        }
    }

    // -------------------------------------------------------- rate-limit forms

    fn draw_delay_s(&mut self) -> u64 {
        match self.rng.below(20) {
            0..=11 => self.rng.range(0, 120),
            12..=16 => self.rng.range(600, 7200),
            _ => 4_000_000_000,
        }
    }

    fn draw_form(&mut self) -> RlForm {
        let d = self.draw_delay_s();
        let now_s = self.server_ms() / 1000;
        match self.rng.below(9) {
            0 => RlForm::Bare,
            1 | 2 => RlForm::After(d),
            3 => RlForm::AfterDate {
                at_s: if self.rng.chance(250) {
                    YEAR_9999_S
                } else {
                    now_s + d.min(7200)
                },
                date: self.rng.chance(600),
            },
            4..=6 => {
                let d = d.min(1_000_000_000);
                let raw = match self.rng.below(3) {
                    0 => now_s + d,
                    1 => (now_s + d) * 1000,
                    _ => d,
                };
                RlForm::XReset {
                    raw,
                    date: self.rng.chance(500),
                }
            }
            7 => RlForm::IetfStructured(d),
            _ => {
                if self.rng.chance(500) {
                    RlForm::IetfOld(d)
                } else {
                    RlForm::IetfBrief(d)
                }
            }
        }
    }

    fn rl_headers(&self, f: RlForm) -> Vec<(&'static str, String)> {
        let date = ("Date", http_date(self.server_ms() / 1000));
        match f {
            RlForm::Bare => vec![],
            RlForm::After(d) => vec![("Retry-After", d.to_string())],
            RlForm::AfterDate { at_s, date: with } => {
                let mut h = vec![("Retry-After", http_date(at_s))];
                if with {
                    h.push(date);
                }
                h
            }
            RlForm::XReset { raw, date: with } => {
                let mut h = vec![
                    ("X-RateLimit-Limit", "1000".to_owned()),
                    ("X-RateLimit-Remaining", "0".to_owned()),
                    ("X-RateLimit-Reset", raw.to_string()),
                ];
                if with {
                    h.push(date);
                }
                h
            }
            RlForm::IetfStructured(d) => vec![
                ("RateLimit", format!("\"default\";r=0;t={d}")),
                ("RateLimit-Policy", "\"default\";q=10;w=60".to_owned()),
            ],
            RlForm::IetfOld(d) => vec![
                ("RateLimit-Limit", "10".to_owned()),
                ("RateLimit-Remaining", "0".to_owned()),
                ("RateLimit-Reset", d.to_string()),
            ],
            RlForm::IetfBrief(d) => {
                vec![("RateLimit", format!("limit=10, remaining=0, reset={d}"))]
            }
        }
    }

    // -------------------------------------------------------- token answers

    fn token_answer(&mut self) -> Answer {
        let access = self.new_secret("at");
        let login = self.mode == Mode::Login;
        let refresh = (!login && self.rng.chance(600)).then(|| self.new_secret("rt"));
        let expires_in = if self.rng.chance(880) {
            Some(self.rng.range(30, 600) as u32)
        } else {
            None
        };
        let as_string = self.rng.chance(100);
        let scope = (!login && self.rng.chance(300)).then(|| words(&mut self.rng, 1, 3));
        Answer::Token {
            access,
            refresh,
            expires_in,
            as_string,
            scope,
        }
    }

    fn success_for(&mut self, kind: RequestKind) -> Answer {
        match kind {
            RequestKind::Revoke => Answer::RevokeOk,
            RequestKind::DeviceAuthorization => {
                let user_code: String = (0..9)
                    .map(|i| {
                        if i == 4 {
                            '-'
                        } else {
                            (b'A' + self.rng.below(26) as u8) as char
                        }
                    })
                    .collect();
                Answer::Device {
                    device_code: self.new_secret("dc"),
                    user_code,
                    expires_in: self.rng.range(60, 900) as u32,
                    interval: self.rng.chance(500).then(|| self.rng.range(1, 10) as u32),
                }
            }
            _ => self.token_answer(),
        }
    }

    fn rfc(&mut self, status: u16, code: &'static str) -> Answer {
        let desc = self.rng.chance(600).then(|| words(&mut self.rng, 1, 8));
        Answer::Rfc { status, code, desc }
    }

    fn draw_answer(&mut self, kind: RequestKind) -> Delivery {
        let framing = match self.rng.below(10) {
            0..=5 => Framing::Length,
            6..=8 => Framing::Chunked,
            _ => Framing::Close,
        };
        if self.policy == Policy::Healthy {
            let answer = self.success_for(kind);
            return Delivery {
                answer,
                framing,
                cut: false,
            };
        }
        if kind == RequestKind::DevicePoll && self.rng.chance(450) {
            let code = self.rng.pick(&[
                "authorization_pending",
                "authorization_pending",
                "slow_down",
                "expired_token",
                "access_denied",
            ]);
            let answer = self.rfc(400, code);
            return Delivery {
                answer,
                framing,
                cut: false,
            };
        }
        let r = self.rng.below(1000);
        let answer = match r {
            0..=449 => self.success_for(kind),
            450..=464 => self.rfc(400, "invalid_request"),
            465..=479 => {
                let status = self.rng.pick(&[400, 401]);
                self.rfc(status, "invalid_client")
            }
            480..=494 => self.rfc(400, "invalid_grant"),
            495..=501 => self.rfc(400, "unauthorized_client"),
            502..=506 => self.rfc(400, "unsupported_grant_type"),
            507..=514 => self.rfc(400, "invalid_scope"),
            515..=522 => self.rfc(400, "access_denied"),
            523..=552 => self.rfc(500, "server_error"),
            553..=572 => self.rfc(503, "temporarily_unavailable"),
            573..=612 => Answer::Html {
                status: self.rng.pick(&[400, 403, 404, 408]),
            },
            613..=622 => Answer::Html { status: 401 },
            623..=672 => {
                let status = self.rng.pick(&[500, 502, 503, 504]);
                let form = (status == 503 && self.rng.chance(400)).then(|| self.draw_form());
                Answer::Server {
                    status,
                    body: self.rng.below(3) as u8,
                    form,
                }
            }
            673..=772 => {
                let coded = self.rng.chance(400);
                Answer::Limited {
                    form: self.draw_form(),
                    coded,
                    desc: (coded && self.rng.chance(500)).then(|| words(&mut self.rng, 1, 6)),
                }
            }
            773..=792 => Answer::Malformed {
                which: self.rng.below(3) as u8,
            },
            793..=832 => Answer::Timeout,
            833..=872 => Answer::Drop,
            873..=912 => {
                let answer = self.success_for(kind);
                return Delivery {
                    answer,
                    framing: if framing == Framing::Close {
                        Framing::Length
                    } else {
                        framing
                    },
                    cut: true,
                };
            }
            _ => self.success_for(kind),
        };
        Delivery {
            answer,
            framing,
            cut: false,
        }
    }

    fn reply(&mut self, d: &Delivery) -> Reply {
        let json = |status: u16, body: String| (status, "application/json", body);
        let (status, ctype, body) = match &d.answer {
            Answer::Token {
                access,
                refresh,
                expires_in,
                as_string,
                scope,
            } => {
                let key = if self.mode == Mode::Login {
                    "token"
                } else {
                    "access_token"
                };
                let mut b = format!("{{\"{key}\":\"{access}\",\"token_type\":\"Bearer\"");
                if let Some(e) = expires_in {
                    if *as_string {
                        let _ = write!(b, ",\"expires_in\":\"{e}\"");
                    } else {
                        let _ = write!(b, ",\"expires_in\":{e}");
                    }
                }
                if let Some(r) = refresh {
                    let _ = write!(b, ",\"refresh_token\":\"{r}\"");
                }
                if let Some(s) = scope {
                    let _ = write!(b, ",\"scope\":\"{s}\"");
                }
                if self.mode == Mode::Login {
                    b.push_str(",\"message\":\"You have successfully logged in.\"");
                }
                b.push('}');
                json(200, b)
            }
            Answer::Device {
                device_code,
                user_code,
                expires_in,
                interval,
            } => {
                let mut b = format!(
                    "{{\"device_code\":\"{device_code}\",\"user_code\":\"{user_code}\",\
                     \"verification_uri\":\"https://example.com/device\",\"expires_in\":{expires_in}"
                );
                if let Some(i) = interval {
                    let _ = write!(b, ",\"interval\":{i}");
                }
                b.push('}');
                json(200, b)
            }
            Answer::RevokeOk => (200, "text/plain", String::new()),
            Answer::Rfc { status, code, desc } => {
                let mut b = format!("{{\"error\":\"{code}\"");
                if let Some(d) = desc {
                    let _ = write!(b, ",\"error_description\":\"{d}\"");
                }
                b.push('}');
                json(*status, b)
            }
            Answer::Html { status } => (
                *status,
                "text/html",
                format!("<html><body><h1>{status} Go away</h1></body></html>"),
            ),
            Answer::Server { status, body, .. } => match body {
                0 => (
                    *status,
                    "text/html",
                    "<html>upstream timed out</html>".to_owned(),
                ),
                1 => (*status, "text/plain", String::new()),
                _ => json(*status, "{\"message\":\"try later\"}".to_owned()),
            },
            Answer::Limited { coded, desc, .. } => {
                let mut b = if *coded {
                    "{\"error\":\"rate_limit_exceeded\"".to_owned()
                } else {
                    "{\"message\":\"slow down\"".to_owned()
                };
                if let Some(d) = desc {
                    let _ = write!(b, ",\"error_description\":\"{d}\"");
                }
                b.push('}');
                json(429, b)
            }
            Answer::Malformed { which } => match which {
                0 => json(200, "{\"access_token\":\"abc".to_owned()),
                1 => json(
                    200,
                    "{\"token_type\":\"Bearer\",\"expires_in\":60}".to_owned(),
                ),
                _ => (200, "text/html", "<html>captive portal</html>".to_owned()),
            },
            Answer::Timeout | Answer::Drop => panic!("no reply to serialize"),
        };
        let mut headers = vec![("Content-Type", ctype.to_owned())];
        let form = match &d.answer {
            Answer::Limited { form, .. } => Some(*form),
            Answer::Server { form, .. } => *form,
            _ => None,
        };
        if let Some(f) = form {
            headers.extend(self.rl_headers(f));
        }
        Reply {
            status,
            headers,
            body: body.into_bytes(),
            framing: d.framing,
        }
    }

    // -------------------------------------------------------- token exchanges

    fn exchange(&mut self, kind: RequestKind) {
        let now = self.dev();
        if self.rng.chance(60) {
            let before = self.fingerprint();
            let mut small = vec![0u8; self.rng.range(0, 60) as usize];
            match self.sess.write_token_request(now, &mut small) {
                Err(e) => self.refused("write_token_request into a short buffer", &before, e),
                Ok(n) => {
                    self.violate(
                        6,
                        "a call that must fail succeeded",
                        format!(
                            "write_token_request wrote {n} bytes into {} bytes",
                            small.len()
                        ),
                    );
                    return;
                }
            }
        }
        let mut buf = vec![0u8; 4096];
        let mut buf2 = vec![0u8; 4096];
        let r = self.sess.write_token_request(now, &mut buf);
        let r2 = self.twin.write_token_request(now, &mut buf2);
        if !self.twin_lost && (r != r2 || buf != buf2) {
            self.diverged("write_token_request", format!("{r:?}, the twin {r2:?}"));
        }
        let n = match r {
            Ok(n) => n,
            Err(e) => {
                self.violate(
                    3,
                    "write_token_request refused the request poll asked for",
                    format!("{kind:?}: {e:?}"),
                );
                return;
            }
        };
        let sent = self.touch(now);
        self.in_flight = Some((kind, sent));
        self.record_token_send();
        let d = self.draw_answer(kind);
        self.log(format!(
            "write_token_request({now}) {kind:?}, {n} bytes; server will answer {}",
            describe(&d)
        ));
        // The answer travels; the device polls and keeps using its token.
        let latency = match self.rng.below(10) {
            0..=6 => self.rng.range(5, 500),
            7 | 8 => self.rng.range(500, 5_000),
            _ => self.rng.range(5_000, RESPONSE_TIMEOUT_MS - 2_000),
        };
        if self.rng.chance(300) {
            self.pass(0, latency);
            self.poll();
        }
        if self.rng.chance(250) {
            let policy = self.api_policy;
            self.api_request(policy);
        }
        if self.rng.chance(60) {
            self.in_flight_probe();
        }
        match d.answer {
            Answer::Timeout => {
                self.time_out(sent);
                return;
            }
            Answer::Drop => {
                self.pass(0, latency);
                let now = self.dev();
                let ev = self.mirror("on_transport_error", |s| s.on_transport_error(now));
                self.touch(now);
                self.log(format!("on_transport_error({now}) -> {ev:?}"));
                self.after_exchange(kind, sent, &d, Outcome::Event(ev));
                return;
            }
            _ => {}
        }
        self.pass(0, latency);
        let outcome = self.deliver(&d);
        self.after_exchange(kind, sent, &d, outcome);
    }

    /// Calls that must fail while a request is in flight.
    fn in_flight_probe(&mut self) {
        let now = self.probe_now();
        let before = self.fingerprint();
        match self.rng.below(3) {
            0 => {
                let mut img = vec![0u8; self.sess.snapshot_len()];
                match self.sess.snapshot(now, self.device_unix(), &mut img) {
                    Err(e) => self.refused("snapshot during an exchange", &before, e),
                    Ok(_) => self.violate(
                        6,
                        "a call that must fail succeeded",
                        "snapshot during an exchange".to_owned(),
                    ),
                }
            }
            1 => {
                let Some(img) = self.images.last().map(|i| i.bytes.clone()) else {
                    return;
                };
                match self.sess.restore(now, self.device_unix(), &img) {
                    Err(e) => self.refused("restore during an exchange", &before, e),
                    Ok(()) => self.violate(
                        6,
                        "a call that must fail succeeded",
                        "restore during an exchange".to_owned(),
                    ),
                }
            }
            _ => {
                let mut buf = [0u8; 512];
                match self.sess.authorization_url(&[7; 32], &[9; 16], &mut buf) {
                    Err(e) => self.refused("authorization_url during an exchange", &before, e),
                    Ok(_) => self.violate(
                        6,
                        "a call that must fail succeeded",
                        "authorization_url during an exchange".to_owned(),
                    ),
                }
            }
        }
    }

    /// No answer: the request must time out after `RESPONSE_TIMEOUT_MS`.
    fn time_out(&mut self, sent: u64) {
        self.stats.timeouts += 1;
        let deadline = sent + RESPONSE_TIMEOUT_MS;
        if self.rng.chance(500) && self.dev() + 1 < deadline {
            let d = self.dev();
            self.pass(1, deadline - d - 1);
            self.poll(); // must be AwaitResponse
        }
        let d = self.dev();
        let extra = self.rng.range(0, 5_000);
        self.advance(deadline.saturating_sub(d) + extra);
        self.poll(); // must not be AwaitResponse
        self.in_flight = None;
        // The late answer is refused and changes nothing.
        if self.rng.chance(300) {
            let before = self.fingerprint();
            let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
            let mut tb = TokenBody::new();
            let now = self.probe_now();
            match self.sess.on_token_head(now, &head, &mut tb) {
                Err(e) => self.refused("on_token_head of a late answer", &before, e),
                Ok(()) => self.violate(
                    6,
                    "a call that must fail succeeded",
                    "on_token_head accepted the answer of a timed-out request".to_owned(),
                ),
            }
        }
        if self.latch == Latch::None {
            if let Some(f) = self.sess.status().failure {
                self.violate(
                    3,
                    "a transient failure latched",
                    format!("a timeout latched {f:?}"),
                );
            }
        }
    }

    /// Feeds the reply in random pieces.
    fn deliver(&mut self, d: &Delivery) -> Outcome {
        let reply = self.reply(d);
        let (bytes, head_len) = reply.wire(&mut self.rng);
        let end = if d.cut && bytes.len() > head_len + 1 {
            self.rng.range(head_len as u64 + 1, bytes.len() as u64 - 1) as usize
        } else {
            bytes.len()
        };
        let data = &bytes[..end];
        let mut pieces = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let n = match self.rng.below(4) {
                0 => data.len() - i,
                1 => self.rng.range(1, 8) as usize,
                _ => self.rng.range(1, 200) as usize,
            }
            .min(data.len() - i);
            pieces.push(&data[i..i + n]);
            i += n;
        }
        let mut hp: HeadParser<256> = HeadParser::new();
        let mut rest: &[u8] = &[];
        let mut k = 0;
        while k < pieces.len() {
            let p = pieces[k];
            k += 1;
            if let Some(n) = hp.feed(p).expect("the model's heads are well-formed") {
                rest = &p[n..];
                break;
            }
        }
        let head = *hp.head().expect("the head is complete before the cut");
        let now = self.dev();
        let mut tbs = (TokenBody::new(), TokenBody::new());
        if let Err(e) = self.mirror_body("on_token_head", &mut tbs, |s, tb| {
            s.on_token_head(now, &head, tb)
        }) {
            self.touch(now);
            self.violate(
                3,
                "on_token_head refused the answer to the request in flight",
                format!("{e:?}"),
            );
            return Outcome::Error(e);
        }
        self.touch(now);
        self.in_flight = None;
        self.desc = None;
        self.log(format!("on_token_head({now}) status {}", head.status));
        if self.rng.chance(80) {
            // A foreign or stale TokenBody is refused and changes nothing.
            let before = self.fingerprint();
            let now = self.probe_now();
            let mut other = if self.rng.chance(500) {
                TokenBody::new()
            } else {
                self.stale_body.clone()
            };
            let r = if self.rng.chance(500) {
                self.sess
                    .on_token_body(now, &mut other, b"{\"x\":1}")
                    .map(|_| ())
            } else {
                self.sess.on_token_eof(now, &mut other).map(|_| ())
            };
            match r {
                Err(e) => self.refused("a foreign TokenBody", &before, e),
                Ok(()) => self.violate(
                    6,
                    "a call that must fail succeeded",
                    "a foreign TokenBody was accepted".to_owned(),
                ),
            }
        }
        let mut chunks = vec![rest];
        chunks.extend_from_slice(&pieces[k..]);
        let mut outcome = None;
        for c in chunks {
            if c.is_empty() {
                continue;
            }
            if self.rng.chance(200) {
                self.pass(0, 300);
            }
            let now = self.dev();
            let r = self.mirror_body("on_token_body", &mut tbs, |s, tb| {
                s.on_token_body(now, tb, c)
            });
            self.touch(now);
            match r {
                Ok(p) => {
                    if p.event.is_none() && p.consumed != c.len() {
                        self.violate(
                            7,
                            "on_token_body left body bytes unread",
                            format!("consumed {} of {}", p.consumed, c.len()),
                        );
                    }
                    if let Some(ev) = p.event {
                        outcome = Some(Outcome::Event(ev));
                        break;
                    }
                }
                Err(e) => {
                    outcome = Some(Outcome::Error(e));
                    break;
                }
            }
        }
        let outcome = match outcome {
            Some(o) => o,
            None => {
                let now = self.dev();
                let r = if !d.cut && reply.framing != Framing::Close {
                    // An empty body completes on an empty feed.
                    let r = self.mirror_body("on_token_body", &mut tbs, |s, tb| {
                        s.on_token_body(now, tb, &[])
                    });
                    match r {
                        Ok(p) => p.event.map(Outcome::Event),
                        Err(e) => Some(Outcome::Error(e)),
                    }
                } else {
                    None
                };
                match r {
                    Some(o) => o,
                    None => match self
                        .mirror_body("on_token_eof", &mut tbs, |s, tb| s.on_token_eof(now, tb))
                    {
                        Ok(ev) => Outcome::Event(ev),
                        Err(e) => Outcome::Error(e),
                    },
                }
            }
        };
        self.scan("TokenBody", format!("{:?}", tbs.0));
        self.stale_body = tbs.0;
        outcome
    }

    fn after_exchange(&mut self, kind: RequestKind, sent: u64, d: &Delivery, outcome: Outcome) {
        self.in_flight = None;
        match outcome {
            Outcome::Event(ev) => {
                self.scan("Event", format!("{ev:?}"));
                if let Event::Retrying { at, .. } = ev {
                    let t = self.sess_now;
                    self.check_wait("Event::Retrying", t, at);
                }
            }
            Outcome::Error(e) => self.scan("Error", format!("{e:?}")),
        }
        self.log(format!("  -> {outcome:?}"));
        // The description of the latest token response.
        if let (Outcome::Event(_), false) = (outcome, d.cut) {
            if let Answer::Rfc { desc, .. } | Answer::Limited { desc, .. } = &d.answer {
                self.desc.clone_from(desc);
            }
        }
        let class = classify(self.mode, kind, d);
        let st = self.sess.status();
        match class {
            Class::Issue => match outcome {
                Outcome::Event(Event::TokenIssued {
                    kind: k,
                    lifetime_s,
                    refreshable,
                }) => {
                    self.stats.issued += 1;
                    let Answer::Token {
                        access,
                        refresh,
                        expires_in,
                        ..
                    } = &d.answer
                    else {
                        panic!("Class::Issue is a token answer")
                    };
                    let want = expires_in.unwrap_or(self.sub.profile.default_lifetime_s.max(1));
                    if lifetime_s != want || k != kind {
                        self.violate(
                            7,
                            "TokenIssued does not describe the answer",
                            format!(
                                "{kind:?} answered with expires_in {expires_in:?}: {outcome:?}"
                            ),
                        );
                    }
                    if refreshable != st.refreshable {
                        self.violate(
                            7,
                            "TokenIssued.refreshable disagrees with status()",
                            format!("event {refreshable}, status {}", st.refreshable),
                        );
                    }
                    if refresh.is_some() && !refreshable {
                        self.violate(7, "a refresh token was sent but is not held", String::new());
                    }
                    let primary_only = matches!(
                        self.mode,
                        Mode::ClientCredentials | Mode::Password | Mode::Login
                    );
                    if refresh.is_none()
                        && refreshable
                        && primary_only
                        && kind == RequestKind::Fetch
                    {
                        self.violate(
                            7,
                            "refreshable without a refresh token",
                            format!("{kind:?} answered without refresh_token"),
                        );
                    }
                    self.held = Some(Held {
                        token: access.clone(),
                        expires_at: sent + u64::from(want) * 1000,
                        lifetime_s: want,
                        must_serve: !self.revoking,
                    });
                }
                other => self.violate(
                    3,
                    "a valid token response was not accepted",
                    format!("{kind:?} answered {}: {other:?}", describe(d)),
                ),
            },
            Class::UserCode => {
                if !matches!(outcome, Outcome::Event(Event::UserCode)) {
                    self.violate(
                        3,
                        "a valid device authorization was not accepted",
                        format!("{outcome:?}"),
                    );
                }
            }
            Class::Revoked => {
                if !matches!(outcome, Outcome::Event(Event::Revoked)) {
                    self.violate(7, "a revocation 200 did not revoke", format!("{outcome:?}"));
                }
                self.revoking = false;
                self.held = None;
                self.latch = Latch::Final(Failure::Revoked);
            }
            Class::Final(f) => {
                self.stats.finals += 1;
                if st.failure != Some(f) {
                    self.violate(
                        3,
                        "a final answer did not latch",
                        format!(
                            "{kind:?} answered {} -> {outcome:?}; status().failure = {:?}, expected {f:?}",
                            describe(d),
                            st.failure
                        ),
                    );
                }
                self.latch = Latch::Final(f);
            }
            Class::Transient | Class::NeedCode | Class::Pending => {
                if self.latch == Latch::None {
                    if let Some(f) = st.failure {
                        self.violate(
                            3,
                            "an answer that is not final latched",
                            format!(
                                "{kind:?} answered {} -> {outcome:?}, latched {f:?}",
                                describe(d)
                            ),
                        );
                    }
                }
            }
            Class::RefreshRejected => {
                if self.latch == Latch::None {
                    if let Some(f) = st.failure {
                        self.violate(
                            3,
                            "an answer that is not final latched",
                            format!(
                                "refresh answered {} -> {outcome:?}, latched {f:?}",
                                describe(d)
                            ),
                        );
                    }
                }
                if !matches!(outcome, Outcome::Event(Event::RefreshRejected)) || st.refreshable {
                    self.violate(
                        7,
                        "a rejected refresh is not RefreshRejected without a refresh token",
                        format!(
                            "{} -> {outcome:?}, refreshable {}",
                            describe(d),
                            st.refreshable
                        ),
                    );
                }
            }
            Class::Unknown => {
                if matches!(outcome, Outcome::Event(Event::Revoked)) {
                    self.revoking = false;
                    self.held = None;
                }
                if !self.revoking {
                    self.latch = st.failure.map_or(Latch::None, Latch::Final);
                }
            }
        }
    }

    // -------------------------------------------------------- the browser step

    fn browser_step(&mut self) {
        if self.rng.chance(100) {
            let before = self.fingerprint();
            let mut small = [0u8; 24];
            match self.sess.authorization_url(&[3; 32], &[4; 16], &mut small) {
                Err(e) => self.refused("authorization_url into a short buffer", &before, e),
                Ok(_) => self.violate(
                    6,
                    "a call that must fail succeeded",
                    "authorization_url into 24 bytes".to_owned(),
                ),
            }
        }
        let vlen = self.rng.range(32, 96) as usize;
        let slen = self.rng.range(16, 48) as usize;
        let verifier = self.rng.bytes(vlen);
        let state_random = self.rng.bytes(slen);
        let (r, url) = self.mirror("authorization_url", |s| {
            let mut buf = vec![0u8; 2048];
            let r = s.authorization_url(&verifier, &state_random, &mut buf);
            let n = *r.as_ref().unwrap_or(&0);
            (r, String::from_utf8_lossy(&buf[..n]).into_owned())
        });
        match r {
            Ok(_) => {}
            Err(e) => {
                self.violate(3, "authorization_url refused", format!("{e:?}"));
                return;
            }
        };
        let state = url
            .split("state=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .unwrap_or("")
            .to_owned();
        self.pass(5 * S, 90 * S);
        if self.rng.chance(150) {
            let before = self.fingerprint();
            match self
                .sess
                .set_authorization_code("forged-code", "not-the-state")
            {
                Err(e) => self.refused("set_authorization_code with a wrong state", &before, e),
                Ok(()) => self.violate(
                    6,
                    "a call that must fail succeeded",
                    "set_authorization_code accepted a wrong state".to_owned(),
                ),
            }
        }
        // Sometimes the device persisted its state while the user was away,
        // and restores it right after the redirect (an app restart).
        let persisted = self.rng.chance(60) && self.take_snapshot();
        let code = format!("code-{}", words(&mut self.rng, 1, 2).replace(' ', "-"));
        match self.mirror("set_authorization_code", |s| {
            s.set_authorization_code(&code, &state)
        }) {
            Ok(()) => {
                self.log(format!("browser: approved, code {code}"));
                // A new approval is new input, like restart(): it ends a
                // final failure (a revocation still in progress stays).
                if !self.revoking {
                    self.latch = Latch::None;
                }
            }
            Err(e) => self.violate(
                3,
                "set_authorization_code refused the redirect",
                format!("{e:?}"),
            ),
        }
        if persisted {
            let i = self.images.len() - 1;
            self.restore(i, false);
        }
    }

    // -------------------------------------------------------- life events

    fn restart(&mut self) {
        self.mirror("restart", Sess::restart);
        let st = self.sess.status();
        if st.api_blocked_until > self.sess_now || st.token_blocked_until > self.sess_now {
            self.violate(7, "restart() left a block", format!("{st:?}"));
        }
        self.log("restart()".to_owned());
        self.latch = if self.revoking {
            Latch::Maybe
        } else {
            Latch::None
        };
        if self.mode == Mode::ApiKey && self.held.is_none() {
            self.reset_key_model();
        }
        if self.healthy_since.is_some() && !self.live {
            self.healthy_since = Some(self.odometer_now());
        }
    }

    fn revoke(&mut self) {
        self.mirror("revoke", Sess::revoke);
        let st = self.sess.status();
        self.log(format!("revoke() -> failure {:?}", st.failure));
        if let Some(h) = &mut self.held {
            h.must_serve = false;
        }
        if st.failure == Some(Failure::Revoked) {
            self.latch = Latch::Final(Failure::Revoked);
            self.held = None;
            self.revoking = false;
        } else {
            self.revoking = true;
            self.latch = Latch::Maybe;
        }
    }

    fn clear_and_recreate(&mut self) {
        self.mirror("clear", Sess::clear);
        self.log("clear()".to_owned());
        self.held = None;
        self.latch = Latch::Final(Failure::Revoked);
        self.revoking = false;
        self.desc = None;
        self.check_state();
        self.poll();
        // A new session for the same account (what a device does after a
        // logout): nothing of the old one survives.
        self.new_session("after clear()");
    }

    fn new_session(&mut self, why: &str) {
        self.new_session_keep_windows();
        self.reset_windows(why);
        self.log(format!("new session ({why})"));
    }

    fn take_snapshot(&mut self) -> bool {
        let now = self.dev();
        let unix = self.device_unix();
        let mut buf = vec![0u8; self.sess.snapshot_len()];
        if self.rng.chance(100) {
            let mut small = vec![0u8; self.rng.range(0, buf.len() as u64 - 1) as usize];
            let before = self.fingerprint();
            match self.sess.snapshot(now, unix, &mut small) {
                Err(e) => self.refused("snapshot into a short buffer", &before, e),
                Ok(_) => self.violate(
                    6,
                    "a call that must fail succeeded",
                    "snapshot into a short buffer".to_owned(),
                ),
            }
        }
        match self.sess.snapshot(now, unix, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                let ns = now.max(self.sess_now);
                let held = self.valid().map(|h| {
                    let exp_unix = if h.expires_at >= ns {
                        unix.saturating_add(h.expires_at - ns)
                    } else {
                        unix.saturating_sub(ns - h.expires_at)
                    };
                    (h.token.clone(), exp_unix, h.lifetime_s, h.must_serve)
                });
                self.log(format!(
                    "snapshot({now}, unix {unix}) -> {n} bytes (token {:?})",
                    held.as_ref().map(|h| short(&h.0))
                ));
                self.images.push(Image {
                    bytes: buf,
                    wrote_unix: unix,
                    held,
                    sends: self.sends,
                });
                if self.images.len() > 6 {
                    self.images.remove(0);
                }
                true
            }
            Err(e) => {
                self.scan("Error", format!("{e:?}"));
                self.violate(3, "snapshot refused while idle", format!("{e:?}"));
                false
            }
        }
    }

    /// Restores image `i` with the device's wall clock (or `year_behind`);
    /// whether it was restored.
    fn restore(&mut self, i: usize, year_behind: bool) -> bool {
        // The device polls in its loop: the session's clock is current.
        self.poll();
        let now = self.dev();
        let unix = if year_behind {
            self.device_unix().saturating_sub(YEAR)
        } else {
            self.device_unix()
        };
        let img = &self.images[i];
        let bytes = img.bytes.clone();
        let wrote = img.wrote_unix;
        let image_held = img.held.clone();
        let fresh = img.sends == self.sends;
        let before = self.fingerprint();
        let r = self.mirror("restore", |s| s.restore(now, unix, &bytes));
        match r {
            Err(e) => {
                // Would the image's token still be valid?
                let t = self.sess_now.max(now);
                let valid = image_held.as_ref().is_some_and(|h| {
                    h.3 && restored_expiry(h.1, h.2, wrote, unix, t) > t
                        && self.mode != Mode::ApiKey
                });
                self.refused("restore", &before, e);
                if valid {
                    self.violate(
                        2,
                        "restore refused an image whose token is still valid",
                        format!("{e:?}"),
                    );
                }
                false
            }
            Ok(()) => {
                let t = self.touch(now);
                self.stats.restored += 1;
                self.wall_known = true;
                self.log(format!(
                    "restore(image {i}, now {now}, unix {unix}{}) -> Ok",
                    if year_behind { ", a year behind" } else { "" }
                ));
                if self.mode != Mode::ApiKey {
                    self.held = image_held.and_then(|(token, exp, life, serve)| {
                        let expires_at = restored_expiry(exp, life, wrote, unix, t);
                        (expires_at > t).then_some(Held {
                            token,
                            expires_at,
                            lifetime_s: life,
                            must_serve: serve && !self.revoking,
                        })
                    });
                }
                if let Latch::Final(_) = self.latch {
                    self.latch = Latch::Maybe;
                }
                self.in_flight = None;
                // The image's blocks count from now (each at most max_wait).
                if self.healthy_since.is_some() && !self.live {
                    self.healthy_since = Some(self.odometer_now());
                }
                if !fresh {
                    self.reset_windows("restored an image older than the last request");
                }
                true
            }
        }
    }

    /// Restores a damaged image: must fail and change nothing.
    fn restore_bad(&mut self) {
        let Some(last) = self.images.last() else {
            return;
        };
        let mut bytes = last.bytes.clone();
        let what = match self.rng.below(4) {
            0 => {
                let i = self.rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= 1 << self.rng.below(8);
                "a corrupted image"
            }
            1 => {
                let n = self.rng.range(0, bytes.len() as u64 - 1) as usize;
                bytes.truncate(n);
                "a truncated image"
            }
            2 => {
                bytes.push(0);
                "an image with a byte more"
            }
            _ => {
                bytes = self.foreign_image();
                "an image of another account"
            }
        };
        let now = self.probe_now();
        let before = self.fingerprint();
        match self.sess.restore(now, self.device_unix(), &bytes) {
            Err(e) => self.refused(what, &before, e),
            Ok(()) => self.violate(
                6,
                "a call that must fail succeeded",
                format!("restore accepted {what}"),
            ),
        }
    }

    fn foreign_image(&mut self) -> Vec<u8> {
        let creds = Creds {
            client_id: "another-client".to_owned(),
            client_secret: self.new_secret("cs"),
            password: self.new_secret("pw"),
            api_key: self.new_secret("ak"),
        };
        let cfg = config(&self.sub, &creds);
        let other = Sess::new(&self.sub.profile, &cfg, 1).expect("configuration");
        let mut img = vec![0u8; other.snapshot_len()];
        let n = other
            .snapshot(self.dev(), self.device_unix(), &mut img)
            .expect("snapshot");
        img.truncate(n);
        img
    }

    /// A reboot: the device persists its session, loses its monotonic clock,
    /// and restores the image into a new session.
    fn reboot(&mut self) {
        let year_behind = self.rng.chance(150);
        if !self.take_snapshot() {
            return;
        }
        let i = self.images.len() - 1;
        self.pass(S, 2 * MIN);
        // The new boot's monotonic clock starts near zero.
        let boot = self.rng.range(500, 60_000) as i64;
        self.off = boot - self.real as i64;
        self.log("reboot".to_owned());
        self.new_session_keep_windows();
        // A refused image starts a new count (see invariant 5).
        if !self.restore(i, year_behind) {
            self.reset_windows("the reboot's image was not restored");
        }
    }

    fn new_session_keep_windows(&mut self) {
        let seed = self.rng.next();
        let cfg = config(&self.sub, &self.creds);
        *self.sess = Sess::new(&self.sub.profile, &cfg, seed).expect("configuration");
        *self.twin = Sess::new(&self.sub.profile, &cfg, seed).expect("configuration");
        self.twin_lost = false;
        self.sess_now = 0;
        self.new_clock = true;
        self.wall_known = false;
        self.held = None;
        self.latch = Latch::None;
        self.revoking = false;
        self.desc = None;
        self.in_flight = None;
        self.scanned.clear();
        self.reset_key_model();
    }

    /// Calls that must fail while idle.
    fn idle_probe(&mut self) {
        let now = self.probe_now();
        let before = self.fingerprint();
        match self.rng.below(6) {
            0 => self.restore_bad(),
            1 => {
                if self.mode == Mode::AuthorizationCode && self.rng.chance(500) {
                    // A URL first, so the state is the only thing wrong.
                    let r = self.mirror("authorization_url", |s| {
                        let mut buf = vec![0u8; 2048];
                        s.authorization_url(&[5; 40], &[6; 20], &mut buf)
                    });
                    if r.is_err() {
                        return;
                    }
                    self.log("authorization_url (then a forged redirect)".to_owned());
                    let before = self.fingerprint();
                    match self
                        .sess
                        .set_authorization_code("forged", "wrong-state-value")
                    {
                        Err(e) => {
                            self.refused("set_authorization_code with a wrong state", &before, e)
                        }
                        Ok(()) => self.violate(
                            6,
                            "a call that must fail succeeded",
                            "set_authorization_code accepted a wrong state".to_owned(),
                        ),
                    }
                    return;
                }
                match self
                    .sess
                    .set_authorization_code("forged", "wrong-state-value")
                {
                    Err(e) => self.refused("set_authorization_code with a wrong state", &before, e),
                    Ok(()) => self.violate(
                        6,
                        "a call that must fail succeeded",
                        "set_authorization_code accepted a wrong state".to_owned(),
                    ),
                }
            }
            2 => {
                let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
                let mut tb = TokenBody::new();
                match self.sess.on_token_head(now, &head, &mut tb) {
                    Err(e) => self.refused("on_token_head with nothing in flight", &before, e),
                    Ok(()) => self.violate(
                        6,
                        "a call that must fail succeeded",
                        "on_token_head with nothing in flight".to_owned(),
                    ),
                }
            }
            3 => {
                let mut buf = [0u8; 256];
                match self.sess.write_token_request_window(now, 5, &mut buf) {
                    Err(e) => self.refused(
                        "write_token_request_window(offset 5) while idle",
                        &before,
                        e,
                    ),
                    Ok(_) => self.violate(
                        6,
                        "a call that must fail succeeded",
                        "write_token_request_window at offset 5 while idle".to_owned(),
                    ),
                }
            }
            4 => {
                let mut tb = self.stale_body.clone();
                let r = if self.rng.chance(500) {
                    self.sess.on_token_body(now, &mut tb, b"{}").map(|_| ())
                } else {
                    self.sess.on_token_eof(now, &mut tb).map(|_| ())
                };
                match r {
                    Err(e) => self.refused("a stale TokenBody while idle", &before, e),
                    Ok(()) => self.violate(
                        6,
                        "a call that must fail succeeded",
                        "a stale TokenBody was accepted while idle".to_owned(),
                    ),
                }
            }
            _ => {
                // A token request when poll (at this very time) says none is due.
                let a = self.poll();
                if matches!(a, Action::SendTokenRequest(_)) {
                    return;
                }
                let now = self.probe_now();
                let before = self.fingerprint();
                let mut buf = vec![0u8; 4096];
                match self.sess.write_token_request(now, &mut buf) {
                    Err(e) => self.refused("write_token_request when none is due", &before, e),
                    Ok(_) => {
                        self.in_flight = None;
                        let _ = self.sess.on_transport_error(now);
                        self.violate(
                            6,
                            "a call that must fail succeeded",
                            format!("write_token_request though poll said {a:?}"),
                        );
                    }
                }
            }
        }
    }

    // -------------------------------------------------------- driving

    /// Polls and does what the session says.
    fn drive(&mut self) {
        let a = self.poll();
        let healthy = self.policy == Policy::Healthy;
        match a {
            Action::SendTokenRequest(kind) => self.exchange(kind),
            Action::Ready { next } => {
                if healthy || self.rng.chance(700) {
                    let policy = self.api_policy;
                    match self.api_request(policy) {
                        Auth::Wait(until) if healthy => self.advance_to(until),
                        Auth::No => self.pass(1, 2_000),
                        _ => {}
                    }
                } else {
                    self.toward(next);
                }
            }
            Action::Wait { until } => self.toward(until),
            Action::AwaitResponse => self.pass(1, 1_000),
            Action::NeedAuthorizationCode => {
                if self.mode == Mode::AuthorizationCode {
                    self.browser_step();
                }
            }
            Action::Failed(_) => {
                if healthy || self.rng.chance(300) {
                    self.restart();
                } else {
                    self.pass(S, 10 * MIN);
                }
            }
        }
    }

    /// Lets time pass toward `t`: all the way (usually) or part of it.
    fn toward(&mut self, t: u64) {
        let t = t.min(self.sess_now.saturating_add(2 * HOUR));
        let from = self.real;
        self.toward_inner(t);
        self.log(format!("time +{} ms", self.real - from));
    }

    fn toward_inner(&mut self, t: u64) {
        if t <= self.dev() {
            self.pass(1, 50);
        } else if self.policy == Policy::Healthy || self.rng.chance(700) {
            self.advance_to(t);
            self.pass(0, 20);
        } else {
            let d = self.dev();
            self.pass(1, t - d);
        }
    }

    fn random_step(&mut self) {
        self.step += 1;
        self.stats.steps += 1;
        let healthy = self.policy == Policy::Healthy;
        let r = self.rng.below(1000);
        match r {
            0..=549 => self.drive(),
            550..=679 => {
                let ms = match self.rng.below(3) {
                    0 => self.rng.range(1, 100),
                    1 => self.rng.range(100, 5_000),
                    _ => self.rng.range(5_000, 60_000),
                };
                self.advance(ms);
                self.log(format!("time +{ms} ms"));
            }
            680..=709 if !healthy => {
                let ms = self.rng.range(MIN, 20 * MIN);
                self.advance(ms);
                self.log(format!("time +{ms} ms"));
            }
            710..=729 if !healthy => {
                let ms = self.rng.range(HOUR, 3 * DAY);
                self.advance(ms);
                self.log(format!("suspended: time jumps +{ms} ms"));
                self.drive();
            }
            730..=759 => {
                let ms = self.rng.range(1, 5_000).min(self.dev() - 1);
                self.off -= ms as i64;
                self.log(format!("the monotonic clock steps back {ms} ms"));
                self.drive();
            }
            760..=784 => {
                self.wall_err = if self.rng.chance(700) {
                    0
                } else {
                    -(YEAR as i64)
                };
                let now = self.dev();
                let unix = self.device_unix();
                self.mirror("set_wall_clock", |s| s.set_wall_clock(now, unix));
                self.wall_known = true;
                self.touch(now);
                self.log(format!(
                    "set_wall_clock({now}, {unix}){}",
                    if self.wall_err != 0 {
                        " a year behind"
                    } else {
                        ""
                    }
                ));
            }
            785..=819 => {
                self.take_snapshot();
            }
            820..=859 => {
                if self.images.is_empty() {
                    self.take_snapshot();
                } else {
                    let last = self.images.len() - 1;
                    let i = if healthy || self.rng.chance(600) {
                        last
                    } else {
                        self.rng.below(self.images.len() as u64) as usize
                    };
                    let year_behind = self.rng.chance(200);
                    self.restore(i, year_behind);
                }
            }
            860..=879 => self.reboot(),
            880..=939 => self.idle_probe(),
            940..=946 if !healthy => self.revoke(),
            947..=949 if !healthy => self.clear_and_recreate(),
            950..=964 if !healthy => self.restart(),
            965..=979 => {
                let s = self.rng.next();
                self.mirror("reseed", |x| x.reseed(s));
                self.log("reseed".to_owned());
            }
            980..=989 if self.mode == Mode::AuthorizationCode && self.in_flight.is_none() => {
                // The user signs in again while a token may still be valid.
                self.log("the user signs in again".to_owned());
                self.browser_step();
            }
            _ => self.drive(),
        }
        self.check_state();
    }

    fn enter_healthy(&mut self) {
        self.policy = Policy::Healthy;
        self.api_policy = ApiPolicy::Healthy;
        self.healthy_since = Some(self.odometer_now());
        self.log(format!(
            "== healthy phase: a credential is due within {} ms",
            self.liveness_bound()
        ));
    }

    fn run_random(&mut self) {
        // Under Miri (tests/miri.sh) shorter cases.
        let steps = if cfg!(miri) {
            self.rng.range(3, 7)
        } else {
            self.rng.range(50, 150)
        };
        let healthy_at = steps * self.rng.range(40, 85) / 100;
        for i in 0..steps {
            if i == healthy_at {
                self.enter_healthy();
            }
            self.random_step();
        }
        let mut extra = 0;
        while !self.live {
            self.random_step();
            extra += 1;
            if extra > 3_000 && !self.live {
                self.violate(3, "no credential after 3000 healthy steps", String::new());
                break;
            }
        }
    }

    /// A client that sends an API request whenever `authorize` allows.
    fn run_greedy(&mut self) {
        self.policy = Policy::Healthy;
        let heavy = self.sub.api_limit_per_token && self.rng.chance(500);
        self.api_policy = if heavy {
            ApiPolicy::Heavy401
        } else {
            ApiPolicy::Healthy
        };
        let span = if self.sub.api_limit_per_token {
            self.rng.range(3 * MIN, 5 * MIN)
        } else {
            self.rng.range(62 * MIN, 75 * MIN)
        };
        let end = self.real + span;
        self.log(format!(
            "== greedy client for {span} ms{}",
            if heavy { ", many 401s" } else { "" }
        ));
        while self.real < end {
            self.step += 1;
            self.stats.steps += 1;
            let a = self.poll();
            match a {
                Action::SendTokenRequest(kind) => self.exchange(kind),
                Action::NeedAuthorizationCode => self.browser_step(),
                Action::Failed(_) => self.restart(),
                Action::Wait { until } => self.advance_to(until),
                Action::AwaitResponse => self.pass(1, 100),
                Action::Ready { .. } => {
                    for _ in 0..200 {
                        match self.api_request(self.api_policy) {
                            Auth::Send(_) => self.pass(0, 3),
                            Auth::Wait(until) => {
                                if self.rng.chance(500) {
                                    self.advance_to(until);
                                } else {
                                    self.pass(1, 100);
                                }
                                break;
                            }
                            Auth::No => {
                                self.pass(1, 100);
                                break;
                            }
                        }
                    }
                }
            }
            match self.rng.below(1000) {
                0 => {
                    let ms = self.rng.range(1, 3_000).min(self.dev() - 1);
                    self.off -= ms as i64;
                    self.log(format!("the monotonic clock steps back {ms} ms"));
                }
                1 if self.mode != Mode::ApiKey => self.reboot(),
                2 if self.take_snapshot() => {
                    let i = self.images.len() - 1;
                    self.restore(i, false);
                }
                3 => self.idle_probe(),
                _ => {}
            }
            self.check_state();
        }
    }

    fn run(&mut self) {
        if self.greedy {
            self.run_greedy();
        } else {
            self.run_random();
        }
    }
}

/// Restored expiry (session ms) of a token that expired at `exp_unix`, for
/// an image written at `wrote` and restored at Unix `unix`, session time
/// `t`: the wall clock is clamped to the image's time (no time is assumed
/// to have passed if it reads earlier), and no token outlives its lifetime.
fn restored_expiry(exp_unix: u64, lifetime_s: u32, wrote: u64, unix: u64, t: u64) -> u64 {
    let eff = unix.max(wrote);
    if exp_unix <= eff {
        return 0;
    }
    (t + (exp_unix - eff)).min(t + u64::from(lifetime_s) * 1000)
}

/// Adds `t` to a sliding window of `window` ms; returns how many it holds.
fn push_window(q: &mut VecDeque<u64>, t: u64, window: u64) -> usize {
    q.push_back(t);
    while q.front().is_some_and(|&f| f + window <= t) {
        q.pop_front();
    }
    q.len()
}

fn describe(d: &Delivery) -> String {
    let a = match &d.answer {
        Answer::Token {
            access,
            refresh,
            expires_in,
            scope,
            ..
        } => format!(
            "token {} refresh {:?} expires_in {expires_in:?} scope {scope:?}",
            short(access),
            refresh.as_deref().map(short)
        ),
        Answer::Device {
            expires_in,
            interval,
            ..
        } => format!("device code (expires_in {expires_in}, interval {interval:?})"),
        Answer::RevokeOk => "revocation 200".to_owned(),
        Answer::Rfc { status, code, desc } => format!("{status} {code} {desc:?}"),
        Answer::Html { status } => format!("{status} HTML"),
        Answer::Server { status, form, .. } => format!("{status} {form:?}"),
        Answer::Limited { form, coded, desc } => format!(
            "429 {form:?}{} {desc:?}",
            if *coded { " rate_limit_exceeded" } else { "" }
        ),
        Answer::Malformed { which } => format!("200 malformed #{which}"),
        Answer::Timeout => "nothing (timeout)".to_owned(),
        Answer::Drop => "nothing (connection dropped)".to_owned(),
    };
    format!(
        "{a} [{:?}{}]",
        d.framing,
        if d.cut { ", cut short" } else { "" }
    )
}

// ------------------------------------------------------------ the runner

fn quiet_violations() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Found>().is_none() {
                default(info);
            }
        }));
    });
}

fn run_case(seed: u64, sub: Subject) -> (Vec<Found>, Stats) {
    let mut sim = Sim::new(seed, sub);
    let r = panic::catch_unwind(AssertUnwindSafe(|| sim.run()));
    let mut found = std::mem::take(&mut sim.recorded);
    if let Err(payload) = r {
        match payload.downcast::<Found>() {
            Ok(f) => found.push(*f),
            Err(other) => {
                let msg = other
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| other.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                let report = sim.report(0, "panic", &msg);
                found.push(Found {
                    inv: 0,
                    key: "panic",
                    detail: msg,
                    report,
                });
            }
        }
    }
    (found, sim.stats)
}

type Group = (u8, &'static str, Vec<u64>, String, String);

fn run_subject(idx: u64) {
    quiet_violations();
    let Some(sub) = subject(idx) else {
        return;
    };
    let total = env_u64("MODEL_CASES").unwrap_or(DEFAULT_CASES);
    let seeds: Vec<u64> = match env_u64("MODEL_SEED") {
        Some(s) if s % SUBJECTS == idx => vec![s],
        Some(_) => vec![],
        None => (0..total).filter(|s| s % SUBJECTS == idx).collect(),
    };
    if seeds.is_empty() {
        return;
    }
    let started = Instant::now();
    let mut stats = Stats::default();
    // (invariant, key, seeds, first detail, first report)
    let mut groups: Vec<Group> = Vec::new();
    for &seed in &seeds {
        let (found, st) = run_case(seed, sub);
        stats.add(&st);
        for f in found {
            match groups.iter_mut().find(|g| g.0 == f.inv && g.1 == f.key) {
                Some(g) => g.2.push(seed),
                None => groups.push((f.inv, f.key, vec![seed], f.detail, f.report)),
            }
        }
    }
    println!(
        "{}: {} cases ({} greedy), {} steps, {} token requests, {} tokens issued, {} final answers, \
         {} API requests, {} rate-limited, {} restores, {} refused calls, {} timeouts, {} healthy \
         phases reached a credential, fullest windows: {} API{}, {} token{}; {:.1?}",
        sub.test,
        stats.cases,
        stats.greedy,
        stats.steps,
        stats.token_requests,
        stats.issued,
        stats.finals,
        stats.api_sent,
        stats.rate_limited,
        stats.restored,
        stats.refused_calls,
        stats.timeouts,
        stats.live,
        stats.max_api_window,
        sub.api_limit
            .map_or(String::new(), |l| format!(" (limit {})", l.max)),
        stats.max_token_window,
        sub.token_limit
            .map_or(String::new(), |l| format!(" (limit {})", l.max)),
        started.elapsed()
    );
    if groups.is_empty() {
        if seeds.len() >= 50 {
            // Not vacuous.
            assert!(stats.api_sent > 0, "{}: no API request was sent", sub.test);
            if sub.profile.mode != Mode::ApiKey {
                assert!(stats.issued > 0, "{}: no token was issued", sub.test);
            }
        }
        return;
    }
    groups.sort_by_key(|g| (g.0, std::cmp::Reverse(g.2.len())));
    let mut msg = format!(
        "{}: invariant violations in {} distinct kinds:\n",
        sub.test,
        groups.len()
    );
    for (inv, key, seeds, detail, _) in &groups {
        let _ = writeln!(
            msg,
            "  invariant {inv}: {key}: {} cases, seeds {:?}{}\n      first: {}",
            seeds.len(),
            &seeds[..seeds.len().min(10)],
            if seeds.len() > 10 { " ..." } else { "" },
            detail.trim_start().lines().next().unwrap_or("")
        );
    }
    for (_, _, _, _, report) in &groups {
        let _ = writeln!(msg, "\n{report}");
    }
    panic!("{msg}");
}

#[test]
fn fentu_api_key() {
    run_subject(0);
}

#[test]
fn fentu_oauth() {
    run_subject(1);
}

#[test]
fn field_nation() {
    run_subject(2);
}

#[test]
fn autotask() {
    run_subject(3);
}

#[test]
fn patchworks_api_key() {
    run_subject(4);
}

#[test]
fn patchworks_login() {
    run_subject(5);
}

#[test]
fn custom_client_credentials() {
    run_subject(6);
}

#[test]
fn custom_password() {
    run_subject(7);
}

#[test]
fn custom_device_code() {
    run_subject(8);
}

#[test]
fn custom_small_cap() {
    run_subject(9);
}

#[test]
fn fentu_api_key_small_cap() {
    run_subject(10);
}

#[test]
fn custom_device_code_small_cap() {
    run_subject(11);
}

/// The constants the invariants are computed from are the ones
/// issue #19 names.
#[test]
fn constants_match_the_semantics() {
    assert_eq!(RESPONSE_TIMEOUT_MS, 20_000);
    assert_eq!(DEFAULT_MAX_WAIT_S, 3_600);
    assert_eq!(UNKNOWN_RESET_WAIT_S, 60);
    assert_eq!(EXHAUSTED_RETRY_MS, 300_000);
    // The model's own helpers.
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(YEAR_9999_S), "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_eq!(
        interval_ms(Budget {
            requests: 1_000,
            window_s: 3_600,
            burst: 100
        }),
        3_996
    );
    let mut q = VecDeque::new();
    assert_eq!(push_window(&mut q, 0, 1000), 1);
    assert_eq!(push_window(&mut q, 999, 1000), 2);
    assert_eq!(push_window(&mut q, 1000, 1000), 2);
    let mut secrets = Secrets::default();
    secrets.add("atk73aBc5dEf");
    assert_eq!(secrets.leak("x: \"k73aBc\""), Some("k73aBc".to_owned()));
    assert_eq!(secrets.leak("Session { capacity: 3072 }"), None);
}
