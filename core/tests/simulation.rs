//! Deterministic simulation: a device-like client runs every provider preset
//! for 24 simulated hours against the provider emulator's sans-IO handler,
//! with a virtual clock, seeded randomness and seeded faults.
//!
//! Two clocks: `real` is the emulator's (the world's) time; the device's
//! monotonic clock is `real + offset`. A suspended handheld skips hours of
//! both; a clock step moves only the device's clock backwards, a little. No
//! sockets, no real time: a 24-hour day runs in well under a second of CPU
//! per preset in release mode.
//!
//! Every request goes the whole way: `Session::write_token_request` bytes →
//! `fieldauth_emulator::parse_request` → `Emulator::handle(real, ...)` →
//! `Response::serialize` (obeying its transport directives: chunking, piece
//! sizes, truncation) → `HeadParser` → `on_token_head` / `on_token_body` /
//! `on_token_eof`. API requests are authorized by the session, built with the
//! credential it hands out, answered by the emulator, and reported back with
//! `on_api_response`, whose verdicts the client follows.
//!
//! The invariants are checked as the simulation runs (not at the end); a
//! failure names the preset, the simulated time (world, device and session
//! clocks) and the last 40 events. `SIM_TRACE=1 cargo test -p fieldauth
//! --test simulation autotask -- --nocapture` prints every event.
//!
//! 1. No expired token is handed out: every credential `authorize` returns
//!    is the latest token issued, not dropped, unexpired by the session's
//!    own clock (expiry counted from the request's writing), and live at the
//!    emulator, except (a) tokens the emulator revoked by fault injection
//!    and (b) overrun by at most the device clock's backward steps since the
//!    token was issued. Every 401 (or Field Nation's "Expired token" 400)
//!    must have such a cause, or be a request held back past its token's
//!    expiry by a suspend, and gets `RetryWithNewToken`.
//! 2. No 429 of our making: every 429 in the emulator's log was injected.
//!    Autotask: at most 10 token requests in any 60 s (own send log, and the
//!    emulator's log by arrival) and 600 API requests per token in any 60 s
//!    (arrivals); Fentu: at most 1,000 counted API requests per fixed hour,
//!    with another app on the account spending part of the quota (the
//!    session must stop at the server's `X-RateLimit-Remaining: 0`).
//! 3. Retry-After is honoured per endpoint class (token endpoint, API), in
//!    world time; `RateLimited { until }` is never shorter than it.
//! 4. No valid token is lost: while the held token is valid, `poll` says
//!    Ready / SendTokenRequest / AwaitResponse, `authorize` never says
//!    NoCredential, `status().usable` holds after every failed exchange, and
//!    no failure is ever reported (every fault here is transient).
//! 5. Retries are bounded: after `max_attempts` failed token requests in a
//!    row (plus one last attempt before expiry while the held token is
//!    still valid) the session keeps trying, but only once per 150-300 s
//!    (`EXHAUSTED_RETRY_MS`); before that each `Retrying { at }` is within
//!    `min(cap, base * 2^k)` unless a Retry-After asks for more, and the
//!    next request waits for it. (The session's count agrees with the
//!    client's.)
//! 6. No 401 loop: one `RetryWithNewToken` per 401 until an API success;
//!    every further 401 before a success is `Unauthorized` and not retried.
//!
//! Seeds: `variant` 0 of each preset is the canonical day (the `*_day`
//! tests); `more_seeds` runs variants 1..=8, or `SIM_SEEDS=N` of them from
//! `SIM_SEED_BASE` (default 1) on, or exactly one with `SIM_SEED=n`;
//! `SIM_PRESET=<part of a preset name>` keeps only matching presets. A
//! variant reseeds everything (client, session, emulator faults), and an
//! invariant violation prints the command that replays exactly that day:
//! `SIM_SEED=n SIM_PRESET=<name> cargo test -p fieldauth --test simulation
//! more_seeds -- --nocapture`. Under Miri (tests/miri.sh) every day is cut
//! to `MIRI_SPAN` and the coverage floors (`assert_exercised`) are skipped.
//!
//! 7. `poll` never asks for a token request while one is in flight (checked
//!    between every piece of every response and while a request hangs, and
//!    a hung request ends exactly at the session's 60 s timeout); a panic
//!    anywhere is reported with the simulation's context.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use fieldauth::apply::ApiCredential;
use fieldauth::http::{BodyReader, HeadParser, ResponseHead, RetryAfter};
use fieldauth::preset::{self, Mode, Profile};
use fieldauth::session::{
    Action, ApiVerdict, Authorization, Config, Event, Failure, RequestKind, Session, TokenBody,
    EXHAUSTED_RETRY_MS, NEVER, RESPONSE_TIMEOUT_MS,
};
use fieldauth_emulator::{
    parse_request, Emulator, EmulatorConfig, EndpointKind, Fault, FaultRule, Limits, LogEntry,
    Malformation, Parsed, Provider, RateLimit, Request, Response, Trigger,
};

const S: u64 = 1_000;
const MIN: u64 = 60 * S;
const HOUR: u64 = 60 * MIN;

/// Where the emulator "listens" (only used to build URLs and Host headers).
const ORIGIN: &str = "http://127.0.0.1:8080";
const HOST: &str = "127.0.0.1:8080";
const REDIRECT_URI: &str = "https://handheld.example/oauth/callback";
/// The device's monotonic clock reads this at world time 0 (it booted earlier).
const BOOT_OFFSET: i64 = 7_345_678;

// Client-side faults (per token exchange / per API request).
const P_TOKEN_CONNECT_FAIL: f64 = 0.02; // the request never leaves the device
const P_TOKEN_RESPONSE_LOST: f64 = 0.015; // the server acted, the response is lost
const P_TOKEN_HANG: f64 = 0.01; // no response at all: the session's timeout
const P_API_CONNECT_FAIL: f64 = 0.01; // opening a new connection
const P_API_CONNECTION_RESET: f64 = 0.0005; // on a kept-alive connection
/// A kept-alive API connection is closed after this much idle time.
const KEEP_ALIVE_MS: u64 = 5_000;
/// Injected API 429/503 start this late: the shift begins at the depot
/// with a healthy server (and the start-of-shift sync meets only budgets).
const CALM_START: u64 = 45 * MIN;

/// Under Miri (tests/miri.sh) a 1 KiB arena: a session wipes its whole
/// arena (zeroize's volatile writes, byte by byte) when dropped and each
/// token slot when it is reused, most of a token exchange's time there.
/// The emulator's tokens fit both.
const ARENA: usize = if cfg!(miri) { 1024 } else { 3072 };
type Sess = Session<ARENA>;

/// Under Miri a simulated "day" is this long: the interpreter is about a
/// thousand times slower, and a span this short still runs every path of
/// the loop (token exchanges, API calls, faults) a few times.
const MIRI_SPAN: u64 = 2 * MIN;
/// ...and its start-of-shift catalog sync at most this many pages (the
/// interpreter is about ten thousand times slower than a native debug build;
/// each API request costs most of a second).
const MIRI_PAGES: u32 = 2;

// ------------------------------------------------------------ randomness

/// SplitMix64: the client's only randomness (workload, client-side faults).
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

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next() as usize % items.len()]
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.next() as u8;
        }
        out
    }
}

// ------------------------------------------------------------ scenarios

/// How one preset is simulated.
struct Scenario {
    profile: &'static Profile<'static>,
    provider: Provider,
    config: Config<'static>,
    seed: u64,
    /// API request targets (origin form, with the provider prefix).
    targets: &'static [&'static str],
    /// Token lifetimes the emulator issues, changed every few hours.
    lifetimes_s: &'static [u32],
    /// Server-side revocation after this many API calls per token, from
    /// this world time on.
    revoke_after: Option<(u32, u64)>,
    /// API requests of the start-of-shift catalog sync.
    catalog_pages: u32,
}

impl Scenario {
    fn uses_tokens(&self) -> bool {
        self.profile.mode != Mode::ApiKey
    }
}

fn scenario(p: &'static Profile<'static>) -> Scenario {
    const LIFETIMES: &[u32] = &[300, 600, 900, 1200, 1800];
    let cc = Config {
        client_id: "demo-client",
        client_secret: "demo-secret",
        ..Config::default()
    };
    if *p == preset::FENTU_API_KEY {
        Scenario {
            profile: p,
            provider: Provider::Fentu,
            config: Config {
                base_url: "http://127.0.0.1:8080/fentu",
                api_key: "fentu-demo-key",
                ..Config::default()
            },
            seed: 0xF3B0_3A05_4BC5_0158,
            targets: &[
                "/fentu/v1/work-orders",
                "/fentu/v1/work-orders/WO-1002",
                "/fentu/v1/customers",
                "/fentu/v1/assets",
            ],
            lifetimes_s: &[],
            revoke_after: None,
            // More than the 1,000/hour Standard tier: the fixed window runs
            // out and the session must stop at `X-RateLimit-Remaining: 0`.
            catalog_pages: 1_300,
        }
    } else if *p == preset::FENTU_OAUTH {
        Scenario {
            profile: p,
            provider: Provider::Fentu,
            config: Config {
                base_url: "http://127.0.0.1:8080/fentu",
                redirect_uri: REDIRECT_URI,
                scope: "read:work-orders read:customers read:assets",
                ..cc
            },
            seed: 0x0D6B_78FB_9AE4_6CD6,
            targets: &[
                "/fentu/v1/work-orders",
                "/fentu/v1/work-orders/WO-1001",
                "/fentu/v1/customers",
                "/fentu/v1/assets",
            ],
            lifetimes_s: LIFETIMES,
            revoke_after: Some((40, 0)),
            catalog_pages: 1_300,
        }
    } else if *p == preset::FIELD_NATION {
        Scenario {
            profile: p,
            provider: Provider::FieldNation,
            config: Config {
                base_url: "http://127.0.0.1:8080/fieldnation",
                ..cc
            },
            seed: 0xB1FC_6091_27F7_71D1,
            targets: &[
                "/fieldnation/api/rest/v2/workorders",
                "/fieldnation/api/rest/v2/workorders/48213",
            ],
            lifetimes_s: LIFETIMES,
            revoke_after: Some((30, 0)),
            catalog_pages: 400,
        }
    } else if *p == preset::AUTOTASK {
        Scenario {
            profile: p,
            provider: Provider::Autotask,
            config: Config {
                base_url: "http://127.0.0.1:8080/autotask",
                ..cc
            },
            seed: 0x3AC7_2277_DC53_64AE,
            targets: &[
                "/autotask/ATServicesRest/V1.0/Tickets",
                "/autotask/ATServicesRest/V1.0/Companies",
                "/autotask/ATServicesRest/V1.0/Companies/174",
            ],
            lifetimes_s: LIFETIMES,
            // No revocations during the start-of-shift catalog sync, so one
            // token is driven at the 600/minute API limit over Wi-Fi; then a
            // revocation every 15 calls keeps the token endpoint busy.
            revoke_after: Some((15, 45 * MIN)),
            catalog_pages: 2_500,
        }
    } else if *p == preset::PATCHWORKS_API_KEY {
        Scenario {
            profile: p,
            provider: Provider::Patchworks,
            config: Config {
                base_url: "http://127.0.0.1:8080/patchworks",
                api_key: "pw-demo-key",
                ..Config::default()
            },
            seed: 0x7F1A_C6F6_7815_BB2B,
            targets: &["/patchworks/core/v1/flows", "/patchworks/core/v1/services"],
            lifetimes_s: &[],
            revoke_after: None,
            catalog_pages: 400,
        }
    } else if *p == preset::PATCHWORKS_LOGIN {
        Scenario {
            profile: p,
            provider: Provider::Patchworks,
            config: Config {
                base_url: "http://127.0.0.1:8080/patchworks",
                username: "me@patchworks.com",
                password: "a1b2c3d4e5f6",
                ..Config::default()
            },
            seed: 0x5EED_0004_7F1A_C6F6,
            targets: &["/patchworks/core/v1/flows", "/patchworks/core/v1/services"],
            lifetimes_s: LIFETIMES,
            revoke_after: Some((35, 0)),
            catalog_pages: 400,
        }
    } else {
        panic!(
            "preset `{}` has no simulation scenario: add one to core/tests/simulation.rs",
            p.name
        )
    }
}

fn rate(provider: Provider, endpoint: EndpointKind, fault: Fault, p: f64) -> FaultRule {
    FaultRule::new(Some(provider), Some(endpoint), fault).when(Trigger::Rate(p))
}

/// The emulator's fault rules: moderate, seeded rates.
fn fault_rules(sc: &Scenario) -> Vec<FaultRule> {
    use EndpointKind::{Api, Token};
    let pr = sc.provider;
    let mut rules = Vec::new();
    if sc.uses_tokens() {
        rules.extend([
            rate(pr, Token, Fault::TooManyRequests { retry_after_s: 3 }, 0.02),
            rate(
                pr,
                Token,
                Fault::TooManyRequests { retry_after_s: 30 },
                0.01,
            ),
            rate(pr, Token, Fault::Unavailable { retry_after_s: 2 }, 0.02),
            rate(pr, Token, Fault::Unavailable { retry_after_s: 20 }, 0.01),
            rate(pr, Token, Fault::MalformedJson(Malformation::Cut), 0.01),
            rate(
                pr,
                Token,
                Fault::MalformedJson(Malformation::Trailing),
                0.005,
            ),
            rate(
                pr,
                Token,
                Fault::MalformedJson(Malformation::BadEscape),
                0.005,
            ),
            rate(pr, Token, Fault::MalformedJson(Malformation::Html), 0.005),
            rate(pr, Token, Fault::Truncate { body_bytes: None }, 0.015),
            rate(
                pr,
                Token,
                Fault::Truncate {
                    body_bytes: Some(3),
                },
                0.005,
            ),
            rate(pr, Token, Fault::Chunked { chunk_bytes: 7 }, 0.1),
            rate(pr, Token, Fault::Pieces { piece_bytes: 1 }, 0.05),
        ]);
    }
    rules.extend([
        rate(pr, Api, Fault::Chunked { chunk_bytes: 16 }, 0.05),
        rate(pr, Api, Fault::Pieces { piece_bytes: 3 }, 0.02),
    ]);
    if let Some((n, 0)) = sc.revoke_after {
        rules.push(revoke_after(pr, n));
    }
    rules
}

/// API 429/503 with Retry-After, added at [`CALM_START`].
fn api_status_faults(pr: Provider) -> [FaultRule; 4] {
    use EndpointKind::Api;
    [
        rate(pr, Api, Fault::TooManyRequests { retry_after_s: 5 }, 0.004),
        rate(pr, Api, Fault::TooManyRequests { retry_after_s: 30 }, 0.002),
        rate(pr, Api, Fault::Unavailable { retry_after_s: 2 }, 0.004),
        rate(pr, Api, Fault::Unavailable { retry_after_s: 10 }, 0.002),
    ]
}

fn revoke_after(provider: Provider, n: u32) -> FaultRule {
    FaultRule::new(
        Some(provider),
        Some(EndpointKind::Api),
        Fault::RevokeAfter(n),
    )
}

fn fault_kind(f: &Fault) -> &'static str {
    match f {
        Fault::RevokeAfter(_) => "revoke-after",
        Fault::TooManyRequests { .. } => "429",
        Fault::Unavailable { .. } => "503",
        Fault::Slow { .. } => "slow",
        Fault::Chunked { .. } => "chunked",
        Fault::Pieces { .. } => "pieces",
        Fault::Truncate { .. } => "truncate",
        Fault::MalformedJson(_) => "malformed",
        Fault::ApiLimit(_) => "limit",
    }
}

fn kind_name(k: RequestKind) -> &'static str {
    match k {
        RequestKind::Fetch => "fetch",
        RequestKind::Refresh => "refresh",
        RequestKind::DeviceAuthorization => "device-authorization",
        RequestKind::DevicePoll => "device-poll",
        RequestKind::Revoke => "revoke",
    }
}

/// `hh:mm:ss.mmm` of a world time.
fn hms(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / HOUR,
        ms / MIN % 60,
        ms / S % 60,
        ms % S
    )
}

// ------------------------------------------------------------ statistics

#[derive(Clone, Debug, Default, PartialEq)]
struct Stats {
    sim_ms: u64,
    token_requests: BTreeMap<&'static str, u32>,
    tokens_issued: u32,
    /// New tokens obtained while the previous one was still valid.
    early_renewals: u32,
    api_requests: u32,
    api_ok: u32,
    emulator_faults: BTreeMap<String, u32>,
    client_faults: BTreeMap<&'static str, u32>,
    /// Failed token exchanges (each retried with backoff).
    token_failures: u32,
    max_consecutive_failures: u32,
    /// Requests that got 401 (or Field Nation's 400), got a new token and
    /// then succeeded.
    recoveries_401: u32,
    unauthorized_surfaced: u32,
    /// `authorize` said Wait (a client-side budget or a learned limit).
    api_budget_waits: u32,
    /// `RateLimited` verdicts followed.
    rate_limited: u32,
    /// `poll` said Wait (backoff, Retry-After or the token budget).
    token_waits: u32,
    transport_errors: u32,
    retries_exhausted: u32,
    authorizations: u32,
    refresh_rejected: u32,
    expired_quirk: u32,
    /// Responses with `X-RateLimit-Remaining: 0`.
    remaining_zero: u32,
    /// Most API requests the provider counted in one of its windows
    /// (Autotask: per token, sliding 60 s; Fentu: per account, fixed hour).
    peak_api_per_window: u32,
    /// Uses of a token the device clock's backward step made look valid
    /// after its server-side expiry.
    skew_uses: u32,
    /// Requests held back (suspended mid-request) past their token's expiry.
    late_rejections: u32,
    /// Digest of every event, to prove determinism.
    digest: u64,
}

impl Stats {
    fn emulator_fault_kinds(&self) -> usize {
        self.emulator_faults.len()
    }

    fn report(&self, name: &str) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "== {name}");
        let _ = writeln!(
            o,
            "   simulated: {:.2} h   API requests: {} ({} ok)",
            self.sim_ms as f64 / HOUR as f64,
            self.api_requests,
            self.api_ok
        );
        let _ = writeln!(
            o,
            "   token requests: {:?}   tokens issued: {} (early renewals {})",
            self.token_requests, self.tokens_issued, self.early_renewals
        );
        let _ = writeln!(o, "   emulator faults: {:?}", self.emulator_faults);
        let _ = writeln!(o, "   client faults:   {:?}", self.client_faults);
        let _ = writeln!(
            o,
            "   failed token exchanges (retried): {} (max {} in a row)   transport errors: {}   retries exhausted: {}",
            self.token_failures,
            self.max_consecutive_failures,
            self.transport_errors,
            self.retries_exhausted
        );
        let _ = writeln!(
            o,
            "   401 recoveries: {}   401 surfaced: {}   FN expired-token 400s: {}   late (held-back) rejections: {}   clock-skew uses: {}",
            self.recoveries_401,
            self.unauthorized_surfaced,
            self.expired_quirk,
            self.late_rejections,
            self.skew_uses
        );
        let _ = writeln!(
            o,
            "   rate limits: RateLimited verdicts {}   API budget waits {}   token waits {}   Remaining:0 seen {}   peak API requests per provider window {}",
            self.rate_limited,
            self.api_budget_waits,
            self.token_waits,
            self.remaining_zero,
            self.peak_api_per_window
        );
        let _ = write!(
            o,
            "   authorizations (browser step): {}   refresh rejected: {}",
            self.authorizations, self.refresh_rejected
        );
        o
    }
}

// ------------------------------------------------------------ the device

/// An access token the client received, as the emulator sees it.
#[derive(Clone, Debug)]
struct Issued {
    /// World time the request was written.
    r_write: u64,
    /// Session clock when the request was written.
    sess_write: u64,
    /// World time the emulator expires it.
    server_expiry: u64,
    lifetime_ms: u64,
    grant: u32,
    /// Revoked by fault injection (server side).
    revoked: bool,
    /// World times the emulator received API requests with it (within the
    /// per-token window).
    api_arrivals: VecDeque<u64>,
}

/// The token the session should be handing out.
#[derive(Clone, Debug)]
struct Held {
    token: String,
    /// Expiry by the session's clock.
    sess_expiry: u64,
    /// Dropped by a 401 verdict.
    dropped: bool,
}

#[derive(Clone, Debug)]
struct Job {
    target: &'static str,
    /// World time before which it is not attempted.
    not_before: u64,
    /// Already retried once after RetryWithNewToken.
    retried_401: bool,
}

#[derive(Clone, Copy, Debug)]
enum Class {
    Token,
    Api,
}

enum Delivered {
    Event(Event),
    Error(fieldauth::Error),
}

struct Sim {
    name: &'static str,
    /// The seed variant (0: the canonical day), for the replay command.
    variant: u64,
    sc: Scenario,
    emu: Emulator,
    sess: Sess,
    rng: Rng,
    max_attempts: u32,
    /// World (emulator) time, ms.
    real: u64,
    /// Device clock = real + offset.
    offset: i64,
    /// The largest device time given to the session (its clock).
    sess_clock: u64,
    end: u64,

    jobs: VecDeque<Job>,
    next_burst: u64,
    next_suspend: u64,
    next_clock_step: u64,
    /// Fentu: when another app on the same account next spends quota.
    next_other_app: u64,
    /// Indices in the emulator's log of that app's requests (its own 429s
    /// are not the session's).
    other_app_entries: std::collections::HashSet<usize>,
    next_lifetime_change: u64,
    /// A token request with no response: session clock when it was written.
    hung: Option<u64>,
    suspends: u32,
    /// On Wi-Fi (short latencies) or cellular.
    wifi: bool,
    calm: bool,
    /// World time of the last API response (keep-alive).
    last_api: u64,
    next_network_change: u64,
    /// No connectivity until then.
    outage_until: u64,
    next_outage: u64,
    /// The provider rejects every token (revoked on first use) until then:
    /// an integration user disabled for a few minutes.
    rejecting_until: Option<u64>,
    next_rejection: u64,
    /// The handheld will be suspended for this long between authorizing its
    /// next API request and sending it.
    pause_mid_request: Option<u64>,

    issued: HashMap<String, Issued>,
    held: Option<Held>,
    grant: u32,
    /// World times of token requests written (last minute or so).
    token_sends: VecDeque<u64>,
    /// Retry-After in force: world time and session time, per class.
    token_block_real: u64,
    token_block_sess: u64,
    api_block_real: u64,
    consecutive_failures: u32,
    /// Session time before which the last `Retrying` said not to retry.
    retry_not_before: u64,
    /// A RetryWithNewToken verdict was given since the last API success.
    rwnt_since_success: bool,
    stats: Stats,
    /// The last events, for failure messages.
    trace: VecDeque<String>,
    /// `SIM_TRACE` is set: print every event.
    print_trace: bool,
}

impl Sim {
    /// The simulation of `profile` for `hours`; `variant` 0 is the canonical
    /// run, others reseed everything (client, session and emulator).
    fn new(profile: &'static Profile<'static>, hours: u64, variant: u64) -> Sim {
        let mut sc = scenario(profile);
        sc.seed ^= variant.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut config = EmulatorConfig {
            seed: sc.seed ^ 0xE4A1,
            faults: fault_rules(&sc),
            ..EmulatorConfig::default()
        };
        config.field_nation.expired_token_quirk = true;
        let mut rng = Rng(sc.seed);
        if sc.uses_tokens() {
            config.set_token_lifetime(sc.provider, rng.pick(sc.lifetimes_s));
        }
        let sess = Sess::new(profile, &sc.config, sc.seed.rotate_left(17))
            .unwrap_or_else(|e| panic!("{}: session configuration refused: {e:?}", profile.name));
        let mut jobs = VecDeque::new();
        let pages = if cfg!(miri) {
            sc.catalog_pages.min(MIRI_PAGES)
        } else {
            sc.catalog_pages
        };
        for i in 0..pages {
            jobs.push_back(Job {
                target: sc.targets[i as usize % sc.targets.len()],
                not_before: 0,
                retried_401: false,
            });
        }
        let next_suspend = rng.range(3 * HOUR, 7 * HOUR);
        let next_clock_step = rng.range(10 * MIN, 60 * MIN);
        let next_network_change = rng.range(40 * MIN, 90 * MIN);
        let next_outage = rng.range(90 * MIN, 4 * HOUR);
        let next_rejection = if sc.uses_tokens() {
            rng.range(2 * HOUR, 8 * HOUR)
        } else {
            u64::MAX
        };
        Sim {
            name: profile.name,
            variant,
            max_attempts: u32::from(profile.backoff.max_attempts.max(1)),
            emu: Emulator::new(config),
            sess,
            rng,
            real: 0,
            offset: BOOT_OFFSET,
            sess_clock: 0,
            end: if cfg!(miri) {
                MIRI_SPAN.min(hours * HOUR)
            } else {
                hours * HOUR
            },
            jobs,
            next_burst: 2 * MIN,
            next_suspend,
            next_clock_step,
            next_other_app: 20 * MIN,
            other_app_entries: std::collections::HashSet::new(),
            next_lifetime_change: 3 * HOUR,
            hung: None,
            suspends: 0,
            wifi: true,
            calm: true,
            last_api: 0,
            next_network_change,
            outage_until: 0,
            next_outage,
            rejecting_until: None,
            next_rejection,
            pause_mid_request: None,
            issued: HashMap::new(),
            held: None,
            grant: 0,
            token_sends: VecDeque::new(),
            token_block_real: 0,
            token_block_sess: 0,
            api_block_real: 0,
            consecutive_failures: 0,
            retry_not_before: 0,
            rwnt_since_success: false,
            stats: Stats::default(),
            trace: VecDeque::new(),
            print_trace: std::env::var_os("SIM_TRACE").is_some(),
            sc,
        }
    }

    // ------------------------------------------------------------ clocks, logs

    /// The device clock now; advances the session's clock as the session will.
    fn dev(&mut self) -> u64 {
        let d = u64::try_from(self.real as i64 + self.offset).unwrap();
        self.sess_clock = self.sess_clock.max(d);
        d
    }

    /// The world time at which the device clock reads `t`.
    fn to_real(&self, t: u64) -> u64 {
        u64::try_from(t as i64 - self.offset).unwrap_or(0)
    }

    /// The device clock (without advancing the session's).
    fn device_clock(&self) -> u64 {
        u64::try_from(self.real as i64 + self.offset).unwrap_or(0)
    }

    fn log(&mut self, what: String) {
        let line = format!("{} [dev {}] {what}", hms(self.real), self.device_clock());
        for b in line.bytes() {
            self.stats.digest = (self.stats.digest ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        if self.print_trace {
            println!("{line}");
        }
        if self.trace.len() == 40 {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    /// An invariant failed: say what, when, and what led to it.
    #[track_caller]
    fn violation(&self, what: String) -> ! {
        let mut recent = String::new();
        for l in &self.trace {
            let _ = writeln!(recent, "    {l}");
        }
        panic!(
            "\n[{}] INVARIANT VIOLATED at world time {} (device clock {}, session clock {}), seed variant {}:\n  {what}\n  recent events:\n{recent}  replay: {}",
            self.name,
            hms(self.real),
            self.device_clock(),
            self.sess_clock,
            self.variant,
            replay_command(self.name, self.variant)
        );
    }

    /// The provider's documented token-endpoint limit (what invariant 2
    /// measures against, not the session's own budget).
    fn token_limit(&self) -> Option<RateLimit> {
        (self.sc.provider == Provider::Autotask).then(|| self.emu.config().autotask.token_limit)
    }

    fn client_fault(&mut self, kind: &'static str) {
        *self.stats.client_faults.entry(kind).or_default() += 1;
    }

    /// One-way network latency.
    fn latency(&mut self) -> u64 {
        if self.wifi {
            self.rng.range(3, 40)
        } else {
            self.rng.range(30, 300)
        }
    }

    fn offline(&self) -> bool {
        self.real < self.outage_until
    }

    // ------------------------------------------------------------ main loop

    fn run(&mut self) -> Stats {
        self.log("boot".into());
        while self.real < self.end {
            self.client_events();
            if self.real >= self.end {
                break; // woke up after the end of the day
            }
            let action = self.poll();
            match action {
                Action::SendTokenRequest(kind) => {
                    self.token_exchange(kind);
                    continue;
                }
                Action::NeedAuthorizationCode => {
                    self.browser_step();
                    continue;
                }
                Action::Failed(f) => self.on_failed(f),
                Action::Wait { .. } => self.stats.token_waits += 1,
                Action::Ready { .. } | Action::AwaitResponse => {}
            }
            if !matches!(action, Action::Failed(_)) && self.try_api(action) {
                continue;
            }
            let wake = self.next_wake(action);
            if wake <= self.real {
                self.violation(format!(
                    "simulation stalled: nothing to do before {} after {action:?}",
                    hms(wake)
                ));
            }
            self.real = wake;
        }
        self.finish()
    }

    /// The next moment anything can happen.
    fn next_wake(&self, action: Action) -> u64 {
        let mut w = self
            .end
            .min(self.next_burst)
            .min(self.next_suspend)
            .min(self.next_clock_step)
            .min(self.next_other_app)
            .min(self.next_network_change)
            .min(self.next_outage)
            .min(self.next_rejection)
            .min(self.rejecting_until.unwrap_or(u64::MAX));
        if self.offline() {
            w = w.min(self.outage_until);
        }
        if self.sc.uses_tokens() {
            w = w.min(self.next_lifetime_change);
        }
        match action {
            Action::Ready { next } if next != NEVER => w = w.min(self.to_real(next)),
            Action::Wait { until } => w = w.min(self.to_real(until)),
            Action::AwaitResponse => {
                let sent = self.hung.unwrap_or(self.sess_clock);
                w = w.min(self.to_real(sent + RESPONSE_TIMEOUT_MS));
            }
            _ => {}
        }
        if let Some(j) = self.jobs.front() {
            if j.not_before > self.real {
                w = w.min(j.not_before);
            }
        }
        w
    }

    /// Workload and client-side clock faults due now.
    fn client_events(&mut self) {
        if self.real >= self.next_suspend && self.suspends.is_multiple_of(2) {
            // Suspended in the middle of its work: between authorizing an
            // API request and sending it.
            self.suspends += 1;
            let pause = self.rng.range(40 * MIN, 3 * HOUR);
            self.pause_mid_request = Some(pause);
            self.next_suspend = self.real + self.rng.range(2 * HOUR, 5 * HOUR);
            let pages = self.rng.range(20, 150);
            self.push_jobs(pages);
            self.log(format!(
                "{pages} pages to sync; the next request will be held back {} by a suspend",
                hms(pause)
            ));
        }
        // First: what fell due while asleep is handled below, on waking.
        if self.real >= self.next_suspend {
            self.suspends += 1;
            let sleep = self.rng.range(40 * MIN, 3 * HOUR);
            self.client_fault("suspend");
            self.log(format!("suspended for {}", hms(sleep)));
            self.real += sleep;
            // Waking up: catch up on what happened meanwhile.
            let pages = self.rng.range(20, 150);
            self.push_jobs(pages);
            self.next_burst = self.real + self.rng.range(2 * MIN, 10 * MIN);
            self.next_suspend = self.real + self.rng.range(2 * HOUR, 5 * HOUR);
            self.log(format!("woke up; syncing {pages} pages"));
        }
        if self.real >= self.next_network_change {
            self.wifi = !self.wifi;
            self.log(format!(
                "now on {}",
                if self.wifi { "Wi-Fi" } else { "cellular" }
            ));
            self.next_network_change = self.real + self.rng.range(HOUR, 4 * HOUR);
        }
        if self.real >= self.next_outage {
            let d = self.rng.range(3 * MIN, 25 * MIN);
            self.outage_until = self.real + d;
            self.client_fault("network-outage");
            self.log(format!("network outage for {}", hms(d)));
            self.next_outage = self.outage_until + self.rng.range(2 * HOUR, 5 * HOUR);
        }
        if self.real >= self.next_rejection && self.offline() {
            self.next_rejection = self.outage_until + MIN;
        }
        if self.real >= self.next_rejection {
            let d = self.rng.range(2 * MIN, 6 * MIN);
            // The technician opens a few work orders meanwhile.
            let pages = self.rng.range(5, 15);
            self.push_jobs(pages);
            self.rejecting_until = Some(self.real + d);
            self.next_rejection = self.real + self.rng.range(6 * HOUR, 12 * HOUR);
            // Placed first, it overrides the other revoke-after policy.
            let rule = revoke_after(self.sc.provider, 0);
            self.emu.config_mut().faults.insert(0, rule);
            self.log(format!("the provider rejects every token for {}", hms(d)));
        }
        if self.rejecting_until.is_some_and(|t| self.real >= t) {
            self.rejecting_until = None;
            self.emu.config_mut().faults.remove(0);
            self.log("the provider accepts tokens again".into());
        }
        if self.calm && self.real >= CALM_START {
            self.calm = false;
            let rules = api_status_faults(self.sc.provider);
            self.emu.config_mut().faults.extend(rules);
            self.log("the emulator now injects API 429/503".into());
        }
        if let Some((n, from)) = self.sc.revoke_after {
            if from > 0 && self.real >= from {
                self.emu
                    .config_mut()
                    .faults
                    .push(revoke_after(self.sc.provider, n));
                self.sc.revoke_after = Some((n, 0));
                self.log(format!(
                    "the emulator now revokes tokens after {n} API calls"
                ));
            }
        }
        if self.real >= self.next_other_app {
            self.other_app();
            self.next_other_app = self.real + self.rng.range(HOUR, 3 * HOUR);
        }
        if self.real >= self.next_clock_step {
            let back = self.rng.range(100, 4_000);
            self.offset -= back as i64;
            self.client_fault("clock-step-back");
            self.log(format!("device clock steps back {back} ms"));
            self.next_clock_step = self.real + self.rng.range(20 * MIN, 120 * MIN);
        }
        if self.real >= self.next_burst {
            // A work-order sync: a burst of requests every few minutes.
            let n = self.rng.range(1, 15);
            self.push_jobs(n);
            self.next_burst = self.real + self.rng.range(MIN, 6 * MIN);
        }
        if self.sc.uses_tokens() && self.real >= self.next_lifetime_change {
            let l = self.rng.pick(self.sc.lifetimes_s);
            self.emu
                .config_mut()
                .set_token_lifetime(self.sc.provider, l);
            self.log(format!("emulator now issues {l} s tokens"));
            self.next_lifetime_change = self.real + self.rng.range(2 * HOUR, 5 * HOUR);
        }
    }

    fn push_jobs(&mut self, n: u64) {
        for _ in 0..n {
            let target = self.rng.pick(self.sc.targets);
            self.jobs.push_back(Job {
                target,
                not_before: self.real,
                retried_401: false,
            });
        }
    }

    // ------------------------------------------------------------ polling

    fn held_valid(&self) -> bool {
        self.held
            .as_ref()
            .is_some_and(|h| !h.dropped && self.sess_clock < h.sess_expiry)
    }

    fn poll(&mut self) -> Action {
        let dev = self.dev();
        let a = self.sess.poll(dev);
        if let Some(sent) = self.hung {
            if a == Action::AwaitResponse {
                if self.sess_clock >= sent + RESPONSE_TIMEOUT_MS {
                    self.violation(format!(
                        "a token request without a response is still awaited {} ms after it was sent",
                        self.sess_clock - sent
                    ));
                }
            } else {
                if self.sess_clock < sent + RESPONSE_TIMEOUT_MS {
                    self.violation(format!(
                        "the session gave up on a token request after {} ms, before its {RESPONSE_TIMEOUT_MS} ms timeout ({a:?})",
                        self.sess_clock - sent
                    ));
                }
                self.hung = None;
                self.log("token request timed out".into());
                self.exchange_failed(None);
            }
        } else if a == Action::AwaitResponse {
            self.violation("poll says AwaitResponse but no token request is in flight".into());
        }
        // Invariant 4: while a token is valid, the session says it is usable.
        if self.held_valid()
            && !matches!(
                a,
                Action::Ready { .. } | Action::SendTokenRequest(_) | Action::AwaitResponse
            )
        {
            self.violation(format!(
                "valid token lost: the held token is valid until session time {} but poll says {a:?}",
                self.held.as_ref().unwrap().sess_expiry
            ));
        }
        // Invariant 5: past max_attempts failures in a row (plus the one
        // last attempt while the held token is still valid), a token request
        // only at the slow pace (`check_backoff` bounds the delay; here: not
        // before it).
        let limit = self.max_attempts + u32::from(self.held_valid());
        if matches!(a, Action::SendTokenRequest(_))
            && self.consecutive_failures >= limit
            && self.sess_clock < self.retry_not_before
        {
            self.violation(format!(
                "poll asks for token request #{} after {} consecutive failures (max_attempts {}) before the slow retry at {}",
                self.consecutive_failures + 1,
                self.consecutive_failures,
                self.max_attempts,
                self.retry_not_before
            ));
        }
        a
    }

    /// Between pieces of a response: nothing else may be sent.
    fn expect_awaiting(&mut self) {
        let dev = self.dev();
        let a = self.sess.poll(dev);
        if a != Action::AwaitResponse {
            self.violation(format!(
                "poll says {a:?} while a token response is half received"
            ));
        }
    }

    fn on_failed(&mut self, f: Failure) {
        // Every fault is transient and the configuration valid: no answer
        // is final, and exhausted retries do not latch either.
        self.violation(format!(
            "permanent failure {f:?} ({:?}) although the configuration is valid and every fault is transient",
            self.sess.failure_description()
        ));
    }

    /// Another app on the same Fentu account (a dispatcher's dashboard
    /// sharing the integration's credential) spends part of the hourly
    /// quota, up to the server's `X-RateLimit-Remaining: 0`: the session's
    /// own budget cannot know, and must stop at that header.
    fn other_app(&mut self) {
        // The API-key scenario only: a token shared with another app would
        // count against the emulator's revoke-after-n-calls faults.
        if *self.sc.profile != preset::FENTU_API_KEY {
            return;
        }
        let Some(cred) = self.sess.credential() else {
            return;
        };
        let mut line = [0u8; 2048];
        let n = cred.write_header_line(&mut line).unwrap();
        let line = std::str::from_utf8(&line[..n])
            .unwrap()
            .trim_end()
            .to_owned();
        let (name, value) = line.split_once(": ").unwrap();
        // It leaves the last few requests of the window to the session,
        // whose own responses then count down to `Remaining: 0`.
        let want = self.rng.range(300, 900);
        let leave = self.rng.range(1, 20).to_string();
        let mut sent = 0;
        while sent < want {
            let req = Request {
                method: "GET".into(),
                target: "/fentu/v1/customers".into(),
                version: fieldauth_emulator::Version::Http11,
                headers: vec![("Host".into(), HOST.into()), (name.into(), value.into())],
                body: Vec::new(),
            };
            let resp = self.emu.handle(self.real, &req);
            self.other_app_entries.insert(self.emu.log().len() - 1);
            sent += 1;
            let left = resp.header("X-RateLimit-Remaining").unwrap_or("0");
            if resp.status != 200 || left.parse::<u64>().unwrap() <= leave.parse().unwrap() {
                break;
            }
        }
        self.log(format!(
            "another app on the account sent {sent} API requests"
        ));
    }

    // ------------------------------------------------------------ token requests

    fn learn_retry_after(&mut self, head: &ResponseHead, class: Class) {
        let Some(ra) = head.retry_after else {
            return;
        };
        let secs = match ra {
            RetryAfter::Delay(s) => u64::from(s),
            RetryAfter::At(_) => {
                self.violation("the emulator sent an HTTP-date Retry-After".into())
            }
        };
        let until_real = self.real + secs * S;
        let until_sess = self.sess_clock + secs * S;
        match class {
            Class::Token => {
                self.token_block_real = self.token_block_real.max(until_real);
                self.token_block_sess = self.token_block_sess.max(until_sess);
            }
            Class::Api => self.api_block_real = self.api_block_real.max(until_real),
        }
        self.log(format!("Retry-After: {secs} ({class:?} endpoint)"));
    }

    /// Checks the last emulator log entry: no 429 of our own making.
    fn check_entry(&mut self) -> LogEntry {
        let entry = self.emu.log().last().cloned().unwrap();
        for f in &entry.faults {
            let endpoint = entry.endpoint.map_or("-", EndpointKind::name);
            *self
                .stats
                .emulator_faults
                .entry(format!("{endpoint}:{}", fault_kind(f)))
                .or_default() += 1;
        }
        if entry.status == 429
            && !entry
                .faults
                .iter()
                .any(|f| matches!(f, Fault::TooManyRequests { .. }))
        {
            self.violation(format!(
                "the emulator answered 429 because of our pace, not an injected fault: {entry}"
            ));
        }
        entry
    }

    fn token_exchange(&mut self, kind: RequestKind) {
        if self.hung.is_some() {
            self.violation("asked to send a token request while one is in flight".into());
        }
        // Invariant 3 (token endpoint).
        if self.real < self.token_block_real {
            self.violation(format!(
                "token request {} s before the Retry-After in force ends at {}",
                (self.token_block_real - self.real) as f64 / 1e3,
                hms(self.token_block_real)
            ));
        }
        let dev = self.dev();
        if self.sess_clock < self.retry_not_before {
            self.violation(format!(
                "token request {} ms before the retry time the session announced",
                self.retry_not_before - self.sess_clock
            ));
        }
        let mut buf = [0u8; 2048];
        let n = match self.sess.write_token_request(dev, &mut buf) {
            Ok(n) => n,
            Err(e) => self.violation(format!(
                "poll asked for a {kind:?} request but write_token_request failed: {e:?}"
            )),
        };
        let (r_write, sess_write) = (self.real, self.sess_clock);
        *self
            .stats
            .token_requests
            .entry(kind_name(kind))
            .or_default() += 1;
        self.log(format!("token request {kind:?} written ({n} bytes)"));
        // Invariant 2: the token endpoint budget, in world time.
        if let Some(b) = self.token_limit() {
            let window = u64::from(b.window_s) * S;
            while self
                .token_sends
                .front()
                .is_some_and(|&t| t + window <= self.real)
            {
                self.token_sends.pop_front();
            }
            self.token_sends.push_back(self.real);
            if self.token_sends.len() > b.requests as usize {
                self.violation(format!(
                    "{} token requests within {} s (limit {}): at {:?}",
                    self.token_sends.len(),
                    b.window_s,
                    b.requests,
                    self.token_sends.iter().map(|&t| hms(t)).collect::<Vec<_>>()
                ));
            }
        }
        self.expect_awaiting();

        // Client-side fault: the connection fails before the request leaves.
        if self.offline() || self.rng.chance(P_TOKEN_CONNECT_FAIL) {
            self.client_fault("token:connect-failed");
            self.real += self.rng.range(200, 10 * S);
            self.transport_error();
            return;
        }
        let req = match parse_request(&buf[..n], Limits::default()) {
            Ok(Parsed::Complete(r, used)) if used == n => r,
            other => self.violation(format!(
                "the session wrote a request the emulator cannot parse: {other:?}\n{}",
                String::from_utf8_lossy(&buf[..n])
            )),
        };
        self.real += self.latency();
        let r_handle = self.real;
        let resp = self.emu.handle(r_handle, &req);
        let entry = self.check_entry();
        self.log(format!("emulator: {entry}"));
        self.note_grant_revocation(&entry);

        // Client-side faults after the server acted.
        if self.rng.chance(P_TOKEN_RESPONSE_LOST) {
            self.client_fault("token:response-lost");
            self.real += self.rng.range(S, 20 * S);
            self.transport_error();
            return;
        }
        if self.rng.chance(P_TOKEN_HANG) {
            self.client_fault("token:no-response");
            self.hung = Some(sess_write);
            self.log("no response: the session's timeout must end it".into());
            return;
        }
        self.real += self.latency();
        match self.deliver_token_response(&resp) {
            Delivered::Event(ev) => {
                self.on_token_event(ev, kind, &resp, r_write, sess_write, r_handle)
            }
            Delivered::Error(e) => {
                self.log(format!("token response failed: {e:?}"));
                if !matches!(e, fieldauth::Error::Transport) {
                    self.check_damaged(&entry, &e);
                } else {
                    self.stats.transport_errors += 1;
                }
                self.exchange_failed(None);
            }
        }
    }

    /// A malformed-JSON error must come from an injected malformation.
    fn check_damaged(&self, entry: &LogEntry, e: &fieldauth::Error) {
        if !entry
            .faults
            .iter()
            .any(|f| matches!(f, Fault::MalformedJson(_) | Fault::Truncate { .. }))
        {
            self.violation(format!(
                "the session refused an undamaged token response: {e:?} ({entry})"
            ));
        }
    }

    /// Feeds the response to the session as it would arrive: the head through
    /// a `HeadParser`, the body in pieces no larger than the transport's
    /// pieces and the device's receive buffer; a truncated response ends in
    /// `on_token_eof`.
    fn deliver_token_response(&mut self, resp: &Response) -> Delivered {
        let wire = resp.serialize();
        let bytes = wire.to_send(&resp.transport).to_vec();
        let cut = bytes.len() < wire.bytes.len();
        let recv_buf = self.rng.pick(&[16usize, 64, 128, 512, 1460]);
        let piece = resp
            .transport
            .piece_bytes
            .unwrap_or(usize::MAX)
            .min(recv_buf)
            .max(1);
        let mut hp: HeadParser<256> = HeadParser::new();
        let mut in_body = false;
        let mut tb = TokenBody::new();
        for chunk in bytes.chunks(piece) {
            let dev = self.dev();
            let mut body = chunk;
            if !in_body {
                match hp.feed(chunk) {
                    Ok(Some(k)) => {
                        let head = *hp.head().unwrap();
                        self.learn_retry_after(&head, Class::Token);
                        if let Err(e) = self.sess.on_token_head(dev, &head, &mut tb) {
                            self.violation(format!("on_token_head refused: {e:?}"));
                        }
                        in_body = true;
                        body = &chunk[k..];
                    }
                    Ok(None) => {
                        self.expect_awaiting();
                        continue;
                    }
                    Err(e) => {
                        self.violation(format!("HeadParser refused the emulator's head: {e:?}"))
                    }
                }
            }
            match self.sess.on_token_body(dev, &mut tb, body) {
                Ok(p) => {
                    if let Some(ev) = p.event {
                        if p.consumed != body.len() {
                            self.violation(format!(
                                "the body ended {} bytes early",
                                body.len() - p.consumed
                            ));
                        }
                        return Delivered::Event(ev);
                    }
                    if p.consumed != body.len() {
                        self.violation("on_token_body left bytes of an incomplete body".into());
                    }
                }
                Err(e) => return Delivered::Error(e),
            }
            self.expect_awaiting();
        }
        if !cut && !resp.transport.close {
            self.violation("a whole response did not complete the exchange".into());
        }
        self.client_fault("token:connection-closed-mid-response");
        let dev = self.dev();
        match self.sess.on_token_eof(dev, &mut tb) {
            Ok(ev) => Delivered::Event(ev),
            Err(e) => Delivered::Error(e),
        }
    }

    /// Fentu revokes a whole grant when a rotated refresh token (or a used
    /// authorization code) is replayed: remember which tokens died.
    fn note_grant_revocation(&mut self, entry: &LogEntry) {
        let note = entry.note.as_deref().unwrap_or("");
        if note.contains("grant is revoked") || note.contains("its tokens are revoked") {
            let grant = self.grant;
            for t in self.issued.values_mut().filter(|t| t.grant == grant) {
                t.revoked = true;
            }
            self.log(format!("emulator revoked grant {grant}"));
        }
    }

    fn transport_error(&mut self) {
        let dev = self.dev();
        let ev = self.sess.on_transport_error(dev);
        self.stats.transport_errors += 1;
        self.log(format!("transport error: {ev:?}"));
        self.exchange_failed(Some(ev));
    }

    /// A failed token exchange: count it and check the backoff (invariants 4, 5).
    fn exchange_failed(&mut self, ev: Option<Event>) {
        self.consecutive_failures += 1;
        self.stats.token_failures += 1;
        self.stats.max_consecutive_failures = self
            .stats
            .max_consecutive_failures
            .max(self.consecutive_failures);
        let status = self.sess.status();
        if u32::from(status.failed_attempts) != self.consecutive_failures {
            self.violation(format!(
                "the session counts {} failed attempts, the client saw {}",
                status.failed_attempts, self.consecutive_failures
            ));
        }
        if let Some(Event::Retrying { at, .. }) = ev {
            self.check_backoff(at);
            self.retry_not_before = at;
        }
        // Invariant 4: a failed refresh never drops a valid token.
        if self.held_valid() && !status.usable {
            self.violation(format!(
                "valid token lost after a failed token request: {status:?}"
            ));
        }
    }

    /// Invariant 5: the retry delay is within the profile's bound, unless a
    /// Retry-After asks for more; and never before the Retry-After.
    fn check_backoff(&mut self, at: u64) {
        let b = self.sc.profile.backoff;
        let shift = (self.consecutive_failures - 1).min(16);
        let mut bound = u64::from(
            b.base_ms
                .saturating_mul(1 << shift)
                .min(b.cap_ms.max(b.base_ms)),
        );
        if self.consecutive_failures >= u32::from(b.max_attempts) && !self.held_valid() {
            // Exhausted without a valid token: one attempt per 150-300 s.
            self.stats.retries_exhausted += 1;
            let slow = u64::from(EXHAUSTED_RETRY_MS);
            bound = slow;
            if at < self.sess_clock + slow / 2 && at >= self.token_block_sess.max(self.sess_clock) {
                self.violation(format!(
                    "slow retry after failure #{} only {} ms later (at least {} expected)",
                    self.consecutive_failures,
                    at - self.sess_clock,
                    slow / 2
                ));
            }
        }
        let latest = (self.sess_clock + bound).max(self.token_block_sess);
        if at > latest {
            self.violation(format!(
                "retry {} ms after failure #{} exceeds the backoff bound {bound} ms (cap {} ms) and the Retry-After",
                at - self.sess_clock,
                self.consecutive_failures,
                b.cap_ms
            ));
        }
        if at < self.token_block_sess {
            self.violation(format!(
                "retry scheduled {} ms before the Retry-After ends",
                self.token_block_sess - at
            ));
        }
    }

    fn on_token_event(
        &mut self,
        ev: Event,
        kind: RequestKind,
        resp: &Response,
        r_write: u64,
        sess_write: u64,
        r_handle: u64,
    ) {
        self.log(format!("token event: {ev:?}"));
        match ev {
            Event::TokenIssued {
                kind: k,
                lifetime_s,
                ..
            } => {
                if k != kind {
                    self.violation(format!("a {kind:?} request issued a token as {k:?}"));
                }
                let body = resp.body_json().unwrap_or_default();
                let key = if self.sc.profile.keys == preset::PATCHWORKS_LOGIN.keys {
                    "token"
                } else {
                    "access_token"
                };
                let Some(token) = body[key].as_str().map(str::to_owned) else {
                    self.violation(format!(
                        "TokenIssued from a response without a token: {body}"
                    ))
                };
                if body["expires_in"].as_u64() != Some(u64::from(lifetime_s)) {
                    self.violation(format!(
                        "lifetime {lifetime_s} s but the response says {}",
                        body["expires_in"]
                    ));
                }
                if self.held_valid() {
                    self.stats.early_renewals += 1;
                }
                let lifetime_ms = u64::from(lifetime_s) * S;
                self.issued.insert(
                    token.clone(),
                    Issued {
                        r_write,
                        sess_write,
                        server_expiry: r_handle + lifetime_ms,
                        lifetime_ms,
                        grant: self.grant,
                        revoked: false,
                        api_arrivals: VecDeque::new(),
                    },
                );
                self.held = Some(Held {
                    token,
                    sess_expiry: sess_write + lifetime_ms,
                    dropped: false,
                });
                self.stats.tokens_issued += 1;
                self.consecutive_failures = 0;
                self.retry_not_before = 0;
                if self.sess.status().failed_attempts != 0 {
                    self.violation("a new token did not reset the failed attempts".into());
                }
            }
            Event::Retrying { status, .. } => {
                if !matches!(status, 429 | 503) {
                    self.violation(format!("unexpected transient failure status {status}"));
                }
                self.exchange_failed(Some(ev));
            }
            Event::RefreshRejected if kind == RequestKind::Refresh => {
                // Falls back to the primary grant at once.
                self.stats.refresh_rejected += 1;
                self.retry_not_before = 0;
            }
            Event::Failed(Failure::InvalidGrant)
                if kind == RequestKind::Fetch
                    && self.sc.profile.mode == Mode::AuthorizationCode =>
            {
                // A replayed authorization code (its first exchange lost its
                // response): the user approves again.
                self.log("authorization code refused: the user approves again".into());
            }
            other => self.violation(format!("unexpected token event {other:?} for {kind:?}")),
        }
    }

    /// Authorization-code mode: the browser step through the emulator's
    /// `/oauth/authorize` (auto-approved, 302 to the redirect URI).
    fn browser_step(&mut self) {
        self.stats.authorizations += 1;
        self.real += self.rng.range(15 * S, 90 * S); // the user approves
        let verifier = self.rng.bytes::<32>();
        let state = self.rng.bytes::<16>();
        let mut url = [0u8; 1024];
        let n = self
            .sess
            .authorization_url(&verifier, &state, &mut url)
            .unwrap_or_else(|e| self.violation(format!("authorization_url failed: {e:?}")));
        let url = String::from_utf8(url[..n].to_vec()).unwrap();
        let target = url.strip_prefix(ORIGIN).unwrap_or_else(|| {
            self.violation(format!(
                "authorization URL outside the configured base: {url}"
            ))
        });
        let resp = self.emu.handle(self.real, &Request::get(target));
        let entry = self.check_entry();
        self.log(format!("browser: {entry}"));
        let location = resp.header("Location").unwrap_or_default().to_owned();
        if resp.status != 302 || !location.starts_with(REDIRECT_URI) {
            self.violation(format!(
                "authorization refused: {} {location} {}",
                resp.status,
                resp.body_text()
            ));
        }
        let query = location.split_once('?').map_or("", |(_, q)| q);
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| pct_decode(v))
        };
        let (Some(code), Some(state)) = (param("code"), param("state")) else {
            self.violation(format!("redirect without code and state: {location}"))
        };
        self.real += self.rng.range(200, 2 * S);
        if let Err(e) = self.sess.set_authorization_code(&code, &state) {
            self.violation(format!(
                "set_authorization_code refused the redirect: {e:?}"
            ));
        }
        self.grant += 1;
        self.consecutive_failures = 0;
        self.retry_not_before = 0;
    }

    // ------------------------------------------------------------ API requests

    /// Attempts the next API request; `true` if one went out.
    fn try_api(&mut self, action: Action) -> bool {
        let Some(job) = self.jobs.front().cloned() else {
            return false;
        };
        if job.not_before > self.real {
            return false;
        }
        let dev = self.dev();
        let full_target = job.target;
        enum Got {
            Send {
                secret: String,
                target: String,
                header: String,
            },
            Wait(u64),
            No,
        }
        let got = match self.sess.authorize(dev) {
            Authorization::Send(cred) => {
                let secret = match cred {
                    ApiCredential::Bearer(t) => t,
                    ApiCredential::ApiKey { key, .. } => key,
                    ApiCredential::Header { value, .. }
                    | ApiCredential::QueryParam { value, .. } => value,
                }
                .to_owned();
                let mut t = [0u8; 2048];
                let tn = cred.write_target(full_target, &mut t);
                let mut h = [0u8; 2048];
                let hn = cred.write_header_line(&mut h);
                match (tn, hn) {
                    (Ok(tn), Ok(hn)) => Got::Send {
                        secret,
                        target: String::from_utf8(t[..tn].to_vec()).unwrap(),
                        header: String::from_utf8(h[..hn].to_vec()).unwrap(),
                    },
                    (t, h) => {
                        self.violation(format!("applying the credential failed: {t:?} {h:?}"))
                    }
                }
            }
            Authorization::Wait { until } => Got::Wait(until),
            Authorization::NoCredential => Got::No,
        };
        match got {
            Got::Wait(until) => {
                if until <= self.sess_clock {
                    self.violation(format!("authorize says wait until {until}, which is now"));
                }
                self.stats.api_budget_waits += 1;
                let r = self.to_real(until);
                self.jobs.front_mut().unwrap().not_before = r;
                false
            }
            Got::No => {
                if matches!(action, Action::Ready { .. }) {
                    self.violation("poll says Ready but authorize says NoCredential".into());
                }
                if self.held_valid() {
                    self.violation(format!(
                        "valid token lost: authorize says NoCredential while the token is valid until session time {}",
                        self.held.as_ref().unwrap().sess_expiry
                    ));
                }
                false
            }
            Got::Send {
                secret,
                target,
                header,
            } => {
                self.api_request(job, &secret, &target, &header);
                true
            }
        }
    }

    /// Invariant 2 for a per-token API limit (Autotask: 600 per 60 s,
    /// sliding), measured on arrivals at the emulator.
    fn count_per_token(&mut self, secret: &str, at: u64) {
        if self.sc.provider != Provider::Autotask {
            return;
        }
        let limit = self.emu.config().autotask.api_limit;
        let window = u64::from(limit.window_s) * S;
        let arrivals = &mut self.issued.get_mut(secret).unwrap().api_arrivals;
        while arrivals.front().is_some_and(|&t| t + window <= at) {
            arrivals.pop_front();
        }
        arrivals.push_back(at);
        let n = arrivals.len() as u32;
        self.stats.peak_api_per_window = self.stats.peak_api_per_window.max(n);
        if n > limit.requests {
            self.violation(format!(
                "{n} API requests with one token within {} s (limit {})",
                limit.window_s, limit.requests
            ));
        }
    }

    /// Invariant 1 at the moment the session hands a token out; returns
    /// whether the emulator must reject it.
    fn check_handed_out(&mut self, secret: &str) -> bool {
        if !self.sc.uses_tokens() {
            if secret != self.sc.config.api_key {
                self.violation("the session handed out something other than the API key".into());
            }
            return false;
        }
        let Some(held) = self.held.clone() else {
            self.violation("the session handed out a token before any was issued".into())
        };
        if secret != held.token {
            let known = self.issued.contains_key(secret);
            self.violation(format!(
                "the session handed out a token other than the latest one issued (an older issued one: {known})"
            ));
        }
        if held.dropped {
            self.violation("the session handed out a token it dropped after a 401".into());
        }
        if self.sess_clock >= held.sess_expiry {
            self.violation(format!(
                "the session handed out a token expired by its own clock {} ms ago",
                self.sess_clock - held.sess_expiry
            ));
        }
        let info = self.issued[secret].clone();
        if self.real < info.server_expiry {
            return info.revoked;
        }
        // Live by the session's clock, expired by the emulator's: only a
        // backward step of the device clock since the request was written
        // can explain it (the session cannot know), and only by that much.
        let slack = (info.sess_write as i64 - (info.r_write as i64 + self.offset)).max(0) as u64;
        if self.real >= info.r_write + info.lifetime_ms + slack {
            self.violation(format!(
                "the session handed out a token the emulator expired {} ms ago (the device clock stepped back {slack} ms since it was issued)",
                self.real - info.server_expiry
            ));
        }
        self.stats.skew_uses += 1;
        self.log(format!(
            "token used {} ms past its server-side expiry after the device clock stepped back",
            self.real - info.server_expiry
        ));
        true
    }

    fn api_request(&mut self, mut job: Job, secret: &str, target: &str, header: &str) {
        let authorized_at = self.real;
        // Invariant 3 (API).
        if self.real < self.api_block_real {
            self.violation(format!(
                "API request {} ms before the Retry-After in force ends",
                self.api_block_real - self.real
            ));
        }
        let must_reject = self.check_handed_out(secret);
        let raw = format!(
            "GET {target} HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\n{header}\r\n"
        );
        let fresh_connection = self.real >= self.last_api + KEEP_ALIVE_MS;
        let p_fail = if fresh_connection {
            P_API_CONNECT_FAIL
        } else {
            P_API_CONNECTION_RESET
        };
        if self.offline() || self.rng.chance(p_fail) {
            self.client_fault("api:connect-failed");
            self.real += self.rng.range(200, 5 * S);
            let later = self.real + self.rng.range(S, 10 * S);
            self.jobs.front_mut().unwrap().not_before = later;
            self.log(format!("API {} connect failed", job.target));
            return;
        }
        if let Some(pause) = self.pause_mid_request.take() {
            self.client_fault("api:suspended-mid-request");
            self.log(format!("suspended mid-request for {}", hms(pause)));
            self.real += pause;
        }
        let req = match parse_request(raw.as_bytes(), Limits::default()) {
            Ok(Parsed::Complete(r, _)) => r,
            other => self.violation(format!("API request not parseable: {other:?}\n{raw}")),
        };
        self.real += self.latency();
        let sent_at = self.real;
        let resp = self.emu.handle(sent_at, &req);
        self.stats.api_requests += 1;
        self.count_per_token(secret, sent_at);
        let entry = self.check_entry();
        self.real += self.latency();
        let (head, payload) = self.read_api_response(&resp);
        self.last_api = self.real;
        self.learn_retry_after(&head, Class::Api);
        if head.x_rate_limit.remaining == Some(0) {
            self.stats.remaining_zero += 1;
        }
        let prefix = &payload[..payload.len().min(256)];
        let dev = self.dev();
        let verdict = self.sess.on_api_response(dev, &head, prefix);
        self.log(format!(
            "API {} -> {} {verdict:?}",
            job.target, entry.status
        ));
        let injected = entry.note.as_deref() == Some("injected");
        let note = entry.note.clone().unwrap_or_default();
        let rejected = head.status == 401 || (head.status == 400 && note.contains("expired"));
        if must_reject && !injected && !rejected {
            self.violation(format!(
                "the emulator accepted a token this simulation believes dead: {entry}"
            ));
        }
        match head.status {
            200..=299 => {
                if verdict != ApiVerdict::Ok {
                    self.violation(format!("{verdict:?} for a {} response", head.status));
                }
                self.stats.api_ok += 1;
                self.rwnt_since_success = false;
                if job.retried_401 {
                    self.stats.recoveries_401 += 1;
                }
                self.jobs.pop_front();
            }
            429 | 503 => {
                let ApiVerdict::RateLimited { until } = verdict else {
                    self.violation(format!("{verdict:?} for a {} response", head.status))
                };
                if let Some(RetryAfter::Delay(s)) = head.retry_after {
                    if until < self.sess_clock + u64::from(s) * S {
                        self.violation(format!(
                            "RateLimited until {} ms from now, but Retry-After says {s} s",
                            until - self.sess_clock
                        ));
                    }
                }
                self.stats.rate_limited += 1;
                let r = self.to_real(until);
                self.jobs.front_mut().unwrap().not_before = r;
            }
            _ if rejected => {
                self.check_rejection(secret, &entry, authorized_at, sent_at);
                if head.status == 400 {
                    self.stats.expired_quirk += 1;
                }
                // Invariant 6: one retry per 401, then surfaced.
                let expected = if self.rwnt_since_success {
                    ApiVerdict::Unauthorized
                } else {
                    ApiVerdict::RetryWithNewToken
                };
                if verdict != expected {
                    self.violation(format!(
                        "{verdict:?} for a {} (expected {expected:?}; a retry was already granted since the last success: {})",
                        head.status, self.rwnt_since_success
                    ));
                }
                if let Some(h) = self.held.as_mut() {
                    h.dropped = true;
                }
                if verdict == ApiVerdict::RetryWithNewToken {
                    self.rwnt_since_success = true;
                    if job.retried_401 {
                        self.violation("RetryWithNewToken for a request already retried".into());
                    }
                    job.retried_401 = true;
                    *self.jobs.front_mut().unwrap() = job;
                } else {
                    self.stats.unauthorized_surfaced += 1;
                    self.jobs.pop_front();
                }
            }
            other => self.violation(format!(
                "unexpected API status {other} ({verdict:?}): {entry} {}",
                resp.body_text()
            )),
        }
    }

    /// A 401 (or Field Nation's "Expired token" 400) must have a cause this
    /// simulation injected: revocation, or a token sent after its expiry.
    fn check_rejection(
        &mut self,
        secret: &str,
        entry: &LogEntry,
        authorized_at: u64,
        sent_at: u64,
    ) {
        if !self.sc.uses_tokens() {
            self.violation(format!("the API key was rejected: {entry}"));
        }
        let note = entry.note.clone().unwrap_or_default();
        let info = self.issued[secret].clone();
        if note.contains("revoked server-side") {
            self.issued.get_mut(secret).unwrap().revoked = true;
        } else if note.contains("revoked") {
            if !info.revoked {
                self.violation(format!(
                    "the emulator says revoked, but nothing revoked it: {entry}"
                ));
            }
        } else if note.contains("expired") {
            if sent_at < info.server_expiry {
                self.violation(format!(
                    "expired per the emulator {} ms before the expiry this simulation tracks",
                    info.server_expiry - sent_at
                ));
            }
            if authorized_at < info.server_expiry {
                self.stats.late_rejections += 1;
            }
        } else {
            self.violation(format!("a 401 without an injected cause: {entry}"));
        }
    }

    /// The API response's head (through a `HeadParser`) and payload
    /// (through a `BodyReader`), delivered in pieces.
    fn read_api_response(&mut self, resp: &Response) -> (ResponseHead, Vec<u8>) {
        let wire = resp.serialize();
        let bytes = wire.to_send(&resp.transport);
        let piece = resp.transport.piece_bytes.unwrap_or(512).max(1);
        let mut hp: HeadParser<256> = HeadParser::new();
        let mut head = None;
        let mut reader = None;
        let mut payload = Vec::new();
        for chunk in bytes.chunks(piece) {
            let mut rest = chunk;
            if head.is_none() {
                match hp.feed(chunk) {
                    Ok(Some(k)) => {
                        let h = *hp.head().unwrap();
                        reader = Some(BodyReader::new(h.framing()));
                        head = Some(h);
                        rest = &chunk[k..];
                    }
                    Ok(None) => continue,
                    Err(e) => self.violation(format!("API head refused: {e:?}")),
                }
            }
            let r = reader.as_mut().unwrap();
            while !rest.is_empty() && !r.is_done() {
                let (n, data) = r
                    .next(rest)
                    .unwrap_or_else(|e| self.violation(format!("API body framing: {e:?}")));
                payload.extend_from_slice(data);
                rest = &rest[n..];
            }
        }
        let Some(head) = head else {
            self.violation("API response without a complete head".into())
        };
        (head, payload)
    }

    // ------------------------------------------------------------ the end

    fn finish(&mut self) -> Stats {
        self.stats.sim_ms = self.real;
        // Invariant 2 over the whole emulator log.
        let log = self.emu.log().to_vec();
        for (i, e) in log.iter().enumerate() {
            if e.status == 429
                && e.note.as_deref() != Some("injected")
                && !self.other_app_entries.contains(&i)
            {
                self.violation(format!("the emulator answered 429 of our making: {e}"));
            }
        }
        if self.sc.provider == Provider::Fentu {
            // Invariant 2, Fentu: what the server counted per fixed hour
            // (refused and injected answers are not counted by the server).
            let limit = self.emu.config().fentu.tier.limit().unwrap();
            let window = u64::from(limit.window_s) * S;
            let mut per_window: BTreeMap<u64, u32> = BTreeMap::new();
            let counted = |e: &&LogEntry| {
                e.endpoint == Some(EndpointKind::Api)
                    && e.note.as_deref() != Some("injected")
                    && !matches!(e.status, 401 | 429)
            };
            for e in log.iter().filter(counted) {
                *per_window.entry(e.epoch_ms / window).or_default() += 1;
            }
            let peak = per_window.values().copied().max().unwrap_or(0);
            self.stats.peak_api_per_window = peak;
            if peak > limit.requests {
                self.violation(format!(
                    "{peak} API requests counted in one fixed hour (limit {})",
                    limit.requests
                ));
            }
        }
        if let Some(b) = self.token_limit() {
            let times: Vec<u64> = log
                .iter()
                .filter(|e| e.endpoint == Some(EndpointKind::Token))
                .map(|e| e.at_ms)
                .collect();
            let window = u64::from(b.window_s) * S;
            for (i, &t) in times.iter().enumerate() {
                let n = times[i..].iter().take_while(|&&u| u < t + window).count();
                if n > b.requests as usize {
                    self.violation(format!(
                        "the emulator received {n} token requests in the {} s from {}",
                        b.window_s,
                        hms(t)
                    ));
                }
            }
        }
        self.stats.clone()
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

// ------------------------------------------------------------ the tests

/// Runs one preset for a simulated day, prints and returns its statistics.
fn simulate_day(profile: &'static Profile<'static>) -> Stats {
    let started = std::time::Instant::now();
    let stats = run_checked(&mut Sim::new(profile, 24, 0));
    println!(
        "{}\n   wall time: {:.2?}",
        stats.report(profile.name),
        started.elapsed()
    );
    stats
}

/// Runs the simulation; a panic that is not an invariant report came from
/// the session or the emulator (invariant 7): report it with its context.
fn run_checked(sim: &mut Sim) -> Stats {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run())) {
        Ok(stats) => stats,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            if msg.contains("INVARIANT VIOLATED") {
                std::panic::resume_unwind(payload);
            }
            sim.violation(format!("PANIC inside the session or the emulator: {msg}"))
        }
    }
}

/// The lower bounds that keep the simulation from passing vacuously.
fn assert_exercised(profile: &'static Profile<'static>, s: &Stats) {
    let sc = scenario(profile);
    let name = profile.name;
    let at_least = |what: &str, got: u32, min: u32| {
        assert!(
            got >= min,
            "{name}: only {got} {what} (at least {min} expected): the simulation did not exercise it\n{}",
            s.report(name)
        );
    };
    assert!(
        s.sim_ms >= 24 * HOUR,
        "{name}: simulated only {} ms",
        s.sim_ms
    );
    at_least("API requests", s.api_requests, 2_000);
    // (Revocation storms and rejection episodes fail whole syncs.)
    at_least(
        "successful API requests",
        s.api_ok,
        s.api_requests * 85 / 100,
    );
    at_least("rate-limited responses followed", s.rate_limited, 5);
    at_least(
        "kinds of emulator faults",
        s.emulator_fault_kinds() as u32,
        4,
    );
    at_least("kinds of client faults", s.client_faults.len() as u32, 4);
    if sc.uses_tokens() {
        at_least(
            "kinds of emulator faults",
            s.emulator_fault_kinds() as u32,
            10,
        );
        at_least("tokens issued", s.tokens_issued, 60);
        // (Revocations replace most tokens before their refresh time.)
        at_least("early renewals", s.early_renewals, 1);
        at_least("failed token exchanges", s.token_failures, 10);
        at_least("transport errors", s.transport_errors, 3);
        at_least("401 recoveries", s.recoveries_401, 5);
        at_least("401s surfaced as Unauthorized", s.unauthorized_surfaced, 1);
        at_least("late (held-back) rejections", s.late_rejections, 1);
    }
    if profile.api_budget.is_some() {
        at_least("API budget waits", s.api_budget_waits, 10);
    }
    if *profile == preset::AUTOTASK {
        // One token driven close to 600 requests per minute.
        at_least(
            "peak API requests per token-minute",
            s.peak_api_per_window,
            550,
        );
    }
    if *profile == preset::FENTU_API_KEY {
        // Another app on the account takes part of the quota: the session
        // meets `Remaining: 0` and fills the fixed hour to the limit, not
        // beyond.
        at_least("X-RateLimit-Remaining: 0 responses", s.remaining_zero, 1);
        at_least(
            "peak API requests per fixed hour",
            s.peak_api_per_window,
            1_000,
        );
    }
    if *profile == preset::FENTU_OAUTH {
        // Alone on the account, the session's own budget keeps every
        // sliding hour at 1,000 at most: close to the limit, never over.
        at_least(
            "peak API requests per fixed hour",
            s.peak_api_per_window,
            950,
        );
    }
    if *profile == preset::FENTU_OAUTH {
        at_least(
            "refresh_token grants",
            s.token_requests.get("refresh").copied().unwrap_or(0),
            30,
        );
        at_least("authorizations", s.authorizations, 1);
    }
    if *profile == preset::FIELD_NATION {
        at_least("Field Nation 'Expired token' 400s", s.expired_quirk, 1);
    }
    if *profile == preset::AUTOTASK {
        at_least("token-endpoint waits", s.token_waits, 5);
    }
}

fn run_preset(profile: &'static Profile<'static>) {
    let stats = simulate_day(profile);
    if !cfg!(miri) {
        assert_exercised(profile, &stats);
    }
}

/// The command that replays one day of one preset.
fn replay_command(name: &str, variant: u64) -> String {
    if variant == 0 {
        return "cargo test -p fieldauth --test simulation (the preset's *_day test) -- --nocapture".into();
    }
    format!(
        "SIM_SEED={variant} SIM_PRESET='{name}' cargo test -p fieldauth --test simulation more_seeds -- --nocapture"
    )
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

#[test]
fn fentu_api_key_day() {
    run_preset(&preset::FENTU_API_KEY);
}

#[test]
fn fentu_oauth_day() {
    run_preset(&preset::FENTU_OAUTH);
}

#[test]
fn field_nation_day() {
    run_preset(&preset::FIELD_NATION);
}

#[test]
fn autotask_day() {
    run_preset(&preset::AUTOTASK);
}

#[test]
fn patchworks_api_key_day() {
    run_preset(&preset::PATCHWORKS_API_KEY);
}

#[test]
fn patchworks_login_day() {
    run_preset(&preset::PATCHWORKS_LOGIN);
}

/// Every preset has a scenario and a test above (a new preset fails here
/// until it is simulated too).
#[test]
fn every_preset_is_simulated() {
    let simulated = [
        &preset::FENTU_API_KEY,
        &preset::FENTU_OAUTH,
        &preset::FIELD_NATION,
        &preset::AUTOTASK,
        &preset::PATCHWORKS_API_KEY,
        &preset::PATCHWORKS_LOGIN,
    ];
    for p in preset::ALL {
        let _ = scenario(p);
        assert!(
            simulated.iter().any(|s| **s == *p),
            "preset `{}` has no simulation test",
            p.name
        );
    }
}

/// Eight more days per preset with other seeds: rarer interleavings, the
/// same invariants. `SIM_SEEDS=N` runs N days per preset instead, from
/// variant `SIM_SEED_BASE` (default 1) on (a longer hunt: `SIM_SEEDS=500
/// cargo test --release -p fieldauth --test simulation more_seeds --
/// --nocapture`; CI runs variants 1001-1003 as well);
/// `SIM_SEED=n` replays exactly variant n, and `SIM_PRESET=text` keeps the
/// presets whose name contains it (case-insensitive). A failing day
/// prints its replay command. Under Miri, one short day for every other
/// preset.
#[test]
fn more_seeds() {
    let variants: Vec<u64> = match env_u64("SIM_SEED") {
        Some(n) => vec![n],
        None => {
            let base = env_u64("SIM_SEED_BASE").unwrap_or(1);
            let n = env_u64("SIM_SEEDS").unwrap_or(if cfg!(miri) { 1 } else { 8 });
            (base..base.saturating_add(n)).collect()
        }
    };
    let filter = std::env::var("SIM_PRESET")
        .unwrap_or_default()
        .to_lowercase();
    let presets: Vec<&'static Profile<'static>> = preset::ALL
        .iter()
        .filter(|p| p.name.to_lowercase().contains(&filter))
        // Under Miri (tests/miri.sh) every other preset: the `*_day` tests
        // run each one.
        .enumerate()
        .filter(|(i, _)| !cfg!(miri) || !filter.is_empty() || i % 2 == 0)
        .map(|(_, p)| *p)
        .collect();
    assert!(
        !presets.is_empty(),
        "SIM_PRESET={filter:?} matches no preset"
    );
    println!(
        "simulation seeds: variants {}..={} of {} preset(s) (replay one: SIM_SEED=n SIM_PRESET=name)",
        variants.first().unwrap(),
        variants.last().unwrap(),
        presets.len()
    );
    let seeds = variants.len() as u32;
    std::thread::scope(|scope| {
        for p in presets {
            let variants = &variants;
            scope.spawn(move || {
                let mut total = Stats::default();
                for &variant in variants {
                    let s = run_checked(&mut Sim::new(p, 24, variant));
                    if !cfg!(miri) {
                        let floors = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            assert_exercised(p, &s)
                        }));
                        if let Err(e) = floors {
                            eprintln!("  replay: {}", replay_command(p.name, variant));
                            std::panic::resume_unwind(e);
                        }
                    }
                    total.sim_ms += s.sim_ms;
                    total.api_requests += s.api_requests;
                    total.tokens_issued += s.tokens_issued;
                    total.token_failures += s.token_failures;
                    total.recoveries_401 += s.recoveries_401;
                    total.retries_exhausted += s.retries_exhausted;
                    total.skew_uses += s.skew_uses;
                }
                println!(
                    "{}: {seeds} more days ({:.0} h): {} API requests, {} tokens, {} failed token exchanges, {} 401 recoveries, {} slow (exhausted) retries, {} clock-skew uses",
                    p.name,
                    total.sim_ms as f64 / HOUR as f64,
                    total.api_requests,
                    total.tokens_issued,
                    total.token_failures,
                    total.recoveries_401,
                    total.retries_exhausted,
                    total.skew_uses
                );
                if !cfg!(miri) {
                    assert!(total.api_requests > seeds * 1_000, "{}", p.name);
                }
            });
        }
    });
}

/// The same seeds give the same run, event for event.
#[test]
fn simulation_is_deterministic() {
    let a = run_checked(&mut Sim::new(&preset::AUTOTASK, 3, 0));
    let b = run_checked(&mut Sim::new(&preset::AUTOTASK, 3, 0));
    assert_eq!(a, b);
    assert!(a.api_requests > if cfg!(miri) { 0 } else { 100 });
}

// ------------------------------------------------------------ regressions

/// Sends the token request due at `now`, delivers it to the emulator `delay`
/// ms later and feeds the response back to the session at arrival time.
fn exchange_with_delay(s: &mut Sess, emu: &mut Emulator, now: u64, delay: u64) -> Response {
    let mut buf = [0u8; 2048];
    let n = s.write_token_request(now, &mut buf).unwrap();
    let Ok(Parsed::Complete(req, _)) = parse_request(&buf[..n], Limits::default()) else {
        panic!("unparseable token request")
    };
    let resp = emu.handle(now + delay, &req);
    let wire = resp.serialize();
    let mut hp: HeadParser<256> = HeadParser::new();
    let k = hp.feed(&wire.bytes).unwrap().unwrap();
    let mut tb = TokenBody::new();
    s.on_token_head(now + delay, hp.head().unwrap(), &mut tb)
        .unwrap();
    s.on_token_body(now + delay, &mut tb, &wire.bytes[k..])
        .unwrap();
    resp
}

/// Found by the simulation (Autotask, 00:05:56 of the first run): the token
/// budget spaced requests exactly 6.000 s apart by *send* time, while the
/// server counts "10 per minute" over *arrival* times in a sliding window.
/// A revocation storm keeps the session fetching; when the first request of
/// a minute is delayed by the network more than the eleventh, eleven arrive
/// within 60 s and Autotask answers 429 because of our own pace.
#[test]
fn autotask_token_budget_leaves_room_for_network_jitter() {
    let mut emu = Emulator::new(EmulatorConfig::default());
    let cfg = scenario(&preset::AUTOTASK).config;
    let mut s = Sess::new(&preset::AUTOTASK, &cfg, 1).unwrap();
    let unauthorized = {
        let mut hp: HeadParser<256> = HeadParser::new();
        hp.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        *hp.head().unwrap()
    };
    let mut now = 1_000_000;
    for i in 0..12 {
        loop {
            match s.poll(now) {
                Action::SendTokenRequest(_) => break,
                Action::Wait { until } => now = until,
                other => panic!("{other:?}"),
            }
        }
        // The first request crawls through a congested cell (300 ms); the
        // others arrive in 10 ms.
        let delay = if i == 0 { 300 } else { 10 };
        let resp = exchange_with_delay(&mut s, &mut emu, now, delay);
        assert_eq!(
            resp.status,
            200,
            "token request #{} ({} ms after the first) was refused: {}",
            i + 1,
            now - 1_000_000,
            emu.log().last().unwrap()
        );
        // Revoked server-side at once: the next API call is a 401.
        let _ = s.on_api_response(now + delay, &unauthorized, b"");
    }
}

/// Found while checking the simulation's Autotask peak (595 arrivals per
/// token in 60 s, where 600 per 61 s evenly spaced allows 591): the budget's
/// emission interval was `window / requests` rounded *down* (61,000 / 600 =
/// 101 ms, not 101.67), so a budget whose window is not a multiple of its
/// count let `requests + 1` through in one window (3 per second: requests at
/// 0, 333, 666 and 999 ms). (The guarantee is `burst: 1`'s; a larger burst
/// deliberately allows more and relies on the server's `Remaining: 0`.)
#[test]
fn budgets_never_allow_more_than_their_count_in_a_window() {
    use fieldauth::preset::Budget;
    let cfg = Config {
        base_url: "https://api.example.com",
        api_key: "k",
        ..Config::default()
    };
    for (budget, step) in [
        (
            Budget {
                requests: 3,
                window_s: 1,
                burst: 1,
            },
            1,
        ),
        // (Not under Miri, tests/miri.sh: 600 requests a minute are 600
        // `authorize` calls that send, ~10 M instructions natively; the
        // other three budgets run the same code.)
        (preset::AUTOTASK.api_budget.unwrap(), 1),
        (preset::AUTOTASK.token_budget.unwrap(), 100),
        (
            Budget {
                requests: 7,
                window_s: 10,
                burst: 1,
            },
            1,
        ),
    ] {
        if cfg!(miri) && budget == preset::AUTOTASK.api_budget.unwrap() {
            continue;
        }
        let profile = Profile {
            mode: Mode::ApiKey,
            api_budget: Some(budget),
            ..preset::custom()
        };
        let mut s = Sess::new(&profile, &cfg, 0).unwrap();
        // Under Miri (tests/miri.sh) 50 times coarser steps (Autotask's
        // 600 a minute: 50 ms, still under its 101.67 ms interval) and two
        // windows instead of five.
        let step = if cfg!(miri) { step * 50 } else { step };
        let window = u64::from(budget.window_s) * S;
        let mut sent: VecDeque<u64> = VecDeque::new();
        let mut now = 1_000_000;
        let mut total = 0;
        let windows = if cfg!(miri) { 2 } else { 5 };
        while now < 1_000_000 + windows * window {
            if let Authorization::Send(_) = s.authorize(now) {
                while sent.front().is_some_and(|&t| t + window <= now) {
                    sent.pop_front();
                }
                sent.push_back(now);
                total += 1;
                assert!(
                    sent.len() <= budget.requests as usize,
                    "{budget:?}: {} requests within {window} ms, the last at +{} ms",
                    sent.len(),
                    now - 1_000_000
                );
            }
            now += step;
        }
        assert!(
            total >= (windows as u32 - 1) * budget.requests,
            "{budget:?}: only {total} sent"
        );
    }
}
