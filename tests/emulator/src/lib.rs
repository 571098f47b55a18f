//! # fieldauth-emulator
//!
//! A test server that speaks the documented wire formats of the four
//! providers fieldauth is built from — Fentu FSM, Field Nation, Autotask and
//! Patchworks — so anyone can watch fieldauth work without an account, and
//! firmware developers can point a device at it. It is fieldauth's
//! *conformance peer*: it is strict about what the documents say (paths,
//! content types, body encodings, required parameters, `Host`), and it can
//! inject faults deterministically (revoked tokens, 429/503 with
//! `Retry-After`, slow / chunked / fragmented / truncated responses, broken
//! JSON, tight rate limits).
//!
//! It depends on nothing from fieldauth: it is an independent reading of the
//! same documents.
//!
//! ## Layers
//!
//! - **Sans-IO core**: [`Emulator::handle`] takes the time (`now_ms`) and a
//!   parsed [`Request`] and returns a [`Response`], whose [`Transport`]
//!   directives (chunking, piece size, delay, truncation, close) tell a server
//!   how to write it. Randomness comes from a seeded PRNG
//!   ([`EmulatorConfig::seed`]), so a simulation with virtual time is
//!   reproducible. [`parse_request`] and [`Response::serialize`] are the
//!   HTTP/1.1 codec.
//! - **Server**: [`serve`] runs the emulator on a `TcpListener` (a thread per
//!   connection, keep-alive); [`spawn`] starts it on `127.0.0.1:0` in the
//!   background and returns a [`RunningEmulator`].
//! - **Binary**: `cargo run -p fieldauth-emulator -- --help`.
//! - **Counters** ([`stats`]): token requests, refresh-token replays,
//!   revoked grants, API requests and their sliding-window maxima per
//!   provider, for tests that watch a fleet of clients from outside:
//!   [`Emulator::stats`] in-process, `GET /_stats` from any process.
//!
//! ## Providers
//!
//! One server, one path prefix per provider: `/fentu`, `/fieldnation`,
//! `/autotask`, `/patchworks`; each provider's documented paths follow its
//! prefix (`http://127.0.0.1:PORT/fieldnation/authentication/api/oauth/token`).
//!
//! ```
//! use fieldauth_emulator::{Emulator, EmulatorConfig, Request};
//!
//! let mut emu = Emulator::new(EmulatorConfig::default());
//! let login = Request::post("/patchworks/fabric/api/login")
//!     .with_header("Content-Type", "application/json")
//!     .with_header("Accept", "application/json")
//!     .with_body(r#"{"username":"me@patchworks.com","password":"a1b2c3d4e5f6"}"#);
//! let resp = emu.handle(0, &login);
//! assert_eq!(resp.status, 200);
//! let token = resp.body_json().unwrap()["token"].as_str().unwrap().to_owned();
//!
//! let api = Request::get("/patchworks/core/v1/flows")
//!     .with_header("Authorization", &format!("Bearer {token}"));
//! assert_eq!(emu.handle(1_000, &api).status, 200);
//! // 24 hours later the token has expired.
//! assert_eq!(emu.handle(86_400_000, &api).status, 401);
//! ```

pub mod cli;
pub mod config;
// The README's Rust example is compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
mod data;
pub mod encoding;
pub mod fault;
pub mod http;
mod providers;
pub mod ratelimit;
pub mod rng;
pub mod server;
pub mod sha256;
pub mod stats;

pub use config::{
    AutotaskConfig, ClientCredentials, EmulatorConfig, EndpointKind, FentuApiKey, FentuConfig,
    FentuTier, FieldNationConfig, Login, OAuthClient, PatchworksConfig, Provider, RateLimit,
    RateWindow, FENTU_SCOPES,
};
pub use fault::{Fault, FaultRule, Malformation, Trigger};
pub use http::{parse_request, Limits, ParseError, Parsed, Request, Response, Transport, Version};
pub use server::{serve, spawn, spawn_on, RunningEmulator};
pub use stats::{ProviderStats, Stats, WindowStats};

use encoding::{json_object, J};
use providers::{autotask, fentu, fieldnation, patchworks, Ctx};
use rng::Rng;

/// One answered request, as the log keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// The `now_ms` the request was handled at (plus any
    /// [`Emulator::advance_clock`] offset).
    pub at_ms: u64,
    /// Wall-clock time of the request, epoch milliseconds.
    pub epoch_ms: u64,
    /// The method (`-` when the request could not be parsed).
    pub method: String,
    /// The path without the query string (which may hold a token).
    pub path: String,
    /// The provider the path belongs to.
    pub provider: Option<Provider>,
    /// The endpoint kind.
    pub endpoint: Option<EndpointKind>,
    /// The status answered.
    pub status: u16,
    /// Faults that took effect on this request.
    pub faults: Vec<Fault>,
    /// Why the request got this answer, when that is not obvious (e.g.
    /// `access token expired`, `PKCE verification failed`).
    pub note: Option<String>,
}

impl std::fmt::Display for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.method, self.path, self.status)?;
        if let (Some(p), Some(e)) = (self.provider, self.endpoint) {
            write!(f, " [{p} {e}]")?;
        }
        if !self.faults.is_empty() {
            let faults: Vec<String> = self.faults.iter().map(Fault::spec).collect();
            write!(f, " faults: {}", faults.join(", "))?;
        }
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// A callback that sees each [`LogEntry`] as it is recorded.
pub type Observer = Box<dyn FnMut(&LogEntry) + Send>;

/// The emulator: all four providers, their state, the fault engine and the
/// request log. Deterministic given its [`EmulatorConfig`] and the sequence
/// of `(now_ms, request)` it is fed.
pub struct Emulator {
    config: EmulatorConfig,
    rng: Rng,
    clock_offset_ms: u64,
    fault_counts: Vec<u64>,
    fentu: fentu::Fentu,
    field_nation: fieldnation::FieldNation,
    autotask: autotask::Autotask,
    patchworks: patchworks::Patchworks,
    log: Vec<LogEntry>,
    observer: Option<Observer>,
    stats: stats::Recorder,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("config", &self.config)
            .field("clock_offset_ms", &self.clock_offset_ms)
            .field("log_len", &self.log.len())
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// A fresh emulator: no tokens issued, empty log.
    pub fn new(config: EmulatorConfig) -> Emulator {
        Emulator {
            rng: Rng::new(config.seed),
            stats: stats::Recorder::new(&config.stats_windows_s, config.stats_cap),
            fault_counts: Vec::new(),
            config,
            clock_offset_ms: 0,
            fentu: fentu::Fentu::default(),
            field_nation: fieldnation::FieldNation::default(),
            autotask: autotask::Autotask::default(),
            patchworks: patchworks::Patchworks::default(),
            log: Vec::new(),
            observer: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &EmulatorConfig {
        &self.config
    }

    /// The configuration, to change between requests (faults, lifetimes,
    /// credentials). Calling this restarts the fault rules' counters.
    pub fn config_mut(&mut self) -> &mut EmulatorConfig {
        self.fault_counts.clear();
        &mut self.config
    }

    /// Replaces the fault rules (and restarts their counters).
    pub fn set_faults(&mut self, faults: Vec<FaultRule>) {
        self.config_mut().faults = faults;
    }

    /// Moves the emulator's clock forward: `ms` is added to every later
    /// `now_ms` (lets a loopback test expire tokens without sleeping).
    pub fn advance_clock(&mut self, ms: u64) {
        self.clock_offset_ms += ms;
    }

    /// Wall-clock time at `now_ms`, epoch milliseconds.
    pub fn epoch_ms(&self, now_ms: u64) -> u64 {
        self.config.start_epoch_ms + now_ms + self.clock_offset_ms
    }

    /// Every request answered so far.
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    /// Takes the log, leaving it empty.
    pub fn take_log(&mut self) -> Vec<LogEntry> {
        std::mem::take(&mut self.log)
    }

    /// Calls `observer` with every log entry from now on.
    pub fn set_observer(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    /// The counters of every provider: token requests, refresh-token
    /// replays, revoked grants, API requests, and the most token and API
    /// requests in any sliding window (see [`stats`] for what each counts
    /// and how). The same as `GET /_stats`.
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// Zeroes the counters and returns them as they were (the same as
    /// `POST /_stats/reset`). Tokens, grants and rate limits are not
    /// touched. The window lengths and the cap are read again from the
    /// configuration.
    pub fn reset_stats(&mut self) -> Stats {
        let fresh = stats::Recorder::new(&self.config.stats_windows_s, self.config.stats_cap);
        std::mem::replace(&mut self.stats, fresh).snapshot()
    }

    /// Revokes every token `provider` has issued (server-side revocation by
    /// hand, e.g. from a demo).
    pub fn revoke_all_tokens(&mut self, provider: Provider) {
        match provider {
            Provider::Fentu => self.fentu.tokens.revoke_all(),
            Provider::FieldNation => self.field_nation.tokens.revoke_all(),
            Provider::Autotask => self.autotask.tokens.revoke_all(),
            Provider::Patchworks => self.patchworks.tokens.revoke_all(),
        }
    }

    /// How many access tokens of `provider` are live (neither expired nor
    /// revoked) at `now_ms`.
    pub fn live_tokens(&self, provider: Provider, now_ms: u64) -> usize {
        let t = self.epoch_ms(now_ms);
        match provider {
            Provider::Fentu => self.fentu.tokens.live_access_tokens(t),
            Provider::FieldNation => self.field_nation.tokens.live_access_tokens(t),
            Provider::Autotask => self.autotask.tokens.live_access_tokens(t),
            Provider::Patchworks => self.patchworks.tokens.live_access_tokens(t),
        }
    }

    /// Answers a request that could not be parsed (see [`parse_request`]):
    /// the error's status, an RFC 6749 `invalid_request` body, and
    /// `Connection: close`.
    pub fn reject(&mut self, now_ms: u64, err: &ParseError) -> Response {
        let description = err.to_string();
        let mut resp = Response::json(
            err.status(),
            json_object(&[
                ("error", J::Str("invalid_request")),
                ("error_description", J::Str(&description)),
            ]),
        );
        resp.transport.close = true;
        let entry = Answered {
            note: Some(description),
            ..Answered::new("-", "-")
        };
        self.finish(now_ms, resp, entry)
    }

    /// Answers one request at time `now_ms` (milliseconds on any monotonic
    /// clock; virtual time is fine). Routes by path prefix, applies the fault
    /// rules in scope, lets the provider answer, adds `Date`, logs.
    pub fn handle(&mut self, now_ms: u64, req: &Request) -> Response {
        let path = req.path().to_owned();
        let route = Provider::ALL
            .into_iter()
            .find_map(|p| path.strip_prefix(p.prefix()).map(|rest| (p, rest)))
            .filter(|(_, rest)| rest.is_empty() || rest.starts_with('/'));

        // RFC 9112 §3.2: a request without exactly one Host is refused.
        let hosts = req.headers_named("host").count();
        if (req.version == Version::Http11 && hosts == 0) || hosts > 1 {
            let resp = Response::json(
                400,
                json_object(&[
                    ("error", J::Str("invalid_request")),
                    (
                        "error_description",
                        J::Str("exactly one Host header is required"),
                    ),
                ]),
            );
            let provider = route.map(|(p, _)| p);
            let entry = Answered {
                provider,
                ..Answered::new(&req.method, &path)
            };
            return self.finish(now_ms, resp, entry);
        }

        let Some((provider, rest)) = route else {
            let resp = if path == "/" && req.method == "GET" {
                index()
            } else if let Some(resp) = self.stats_endpoint(&path, req) {
                resp
            } else {
                Response::json(
                    404,
                    json_object(&[
                        ("error", J::Str("not_found")),
                        (
                            "error_description",
                            J::Str(&format!(
                                "No such endpoint: {path}. Providers: /fentu, /fieldnation, /autotask, /patchworks; counters: /_stats"
                            )),
                        ),
                    ]),
                )
            };
            let resp = self.close_if_asked(resp, req);
            return self.finish(now_ms, resp, Answered::new(&req.method, &path));
        };
        let endpoint = match provider {
            Provider::Fentu => fentu::classify(rest),
            Provider::FieldNation => fieldnation::classify(rest),
            Provider::Autotask => autotask::classify(rest),
            Provider::Patchworks => patchworks::classify(rest),
        };
        let Some(endpoint) = endpoint else {
            let resp = match provider {
                Provider::Fentu => fentu::not_found(rest),
                Provider::FieldNation => fieldnation::not_found(rest),
                Provider::Autotask => autotask::not_found(rest),
                Provider::Patchworks => patchworks::not_found(rest),
            };
            let resp = self.close_if_asked(resp, req);
            let entry = Answered {
                provider: Some(provider),
                ..Answered::new(&req.method, &path)
            };
            return self.finish(now_ms, resp, entry);
        };

        // Which rules fire on this request.
        let epoch_ms = self.epoch_ms(now_ms);
        self.fault_counts.resize(self.config.faults.len(), 0);
        let mut fired: Vec<Fault> = Vec::new();
        let mut revoke_after = None;
        let mut api_limit = None;
        for (i, rule) in self.config.faults.iter().enumerate() {
            match rule.fault {
                // Policies: in force whenever in scope, whatever the trigger.
                Fault::RevokeAfter(n) if rule.matches(provider, endpoint) => {
                    revoke_after.get_or_insert(n);
                }
                Fault::ApiLimit(l) if rule.provider.is_none_or(|p| p == provider) => {
                    api_limit.get_or_insert(l);
                }
                Fault::RevokeAfter(_) | Fault::ApiLimit(_) => {}
                fault if rule.matches(provider, endpoint) => {
                    self.fault_counts[i] += 1;
                    if rule.trigger.fires(self.fault_counts[i], &mut self.rng) {
                        fired.push(fault);
                    }
                }
                _ => {}
            }
        }
        let mut applied = Vec::new();
        let mut credential = None;
        let (mut refresh_replay, mut grant_revoked) = (false, false);

        // 429 / 503 replace the answer.
        let status_fault = fired.iter().find_map(|f| match *f {
            Fault::TooManyRequests { retry_after_s } => Some((429, retry_after_s, *f)),
            Fault::Unavailable { retry_after_s } => Some((503, retry_after_s, *f)),
            _ => None,
        });
        let (mut resp, note) = if let Some((status, retry_after, fault)) = status_fault {
            applied.push(fault);
            let resp = match provider {
                Provider::Fentu => fentu::fault_response(status, retry_after),
                Provider::FieldNation => fieldnation::fault_response(status, retry_after),
                Provider::Autotask => autotask::fault_response(status, retry_after),
                Provider::Patchworks => patchworks::fault_response(status, retry_after),
            };
            (resp, Some("injected".to_owned()))
        } else {
            let mut ctx = Ctx {
                epoch_ms,
                rng: &mut self.rng,
                config: &self.config,
                revoke_after,
                api_limit,
                applied: Vec::new(),
                note: None,
                credential: None,
                refresh_replay: false,
                grant_revoked: false,
            };
            let resp = match provider {
                Provider::Fentu => self.fentu.handle(&mut ctx, endpoint, rest, req),
                Provider::FieldNation => self.field_nation.handle(&mut ctx, endpoint, rest, req),
                Provider::Autotask => self.autotask.handle(&mut ctx, endpoint, rest, req),
                Provider::Patchworks => self.patchworks.handle(&mut ctx, endpoint, rest, req),
            };
            applied.extend(ctx.applied);
            credential = ctx.credential;
            (refresh_replay, grant_revoked) = (ctx.refresh_replay, ctx.grant_revoked);
            (resp, ctx.note)
        };

        // Broken JSON on a successful token response.
        let malformed = fired.iter().find_map(|f| match f {
            Fault::MalformedJson(m) => Some(*m),
            _ => None,
        });
        if let Some(m) = malformed {
            if endpoint == EndpointKind::Token && (200..300).contains(&resp.status) {
                resp.body = m.apply(&resp.body);
                if m == Malformation::Html {
                    for (n, v) in resp.headers.iter_mut() {
                        if n.eq_ignore_ascii_case("content-type") {
                            *v = "text/html; charset=utf-8".to_owned();
                        }
                    }
                }
                applied.push(Fault::MalformedJson(m));
            }
        }

        // How the server writes it.
        for fault in &fired {
            match *fault {
                Fault::Chunked { chunk_bytes } => resp.transport.chunked = Some(chunk_bytes),
                Fault::Pieces { piece_bytes } => resp.transport.piece_bytes = Some(piece_bytes),
                Fault::Slow {
                    delay_ms,
                    piece_bytes,
                } => {
                    resp.transport.piece_bytes = Some(piece_bytes);
                    resp.transport.piece_delay_ms = delay_ms;
                }
                Fault::Truncate { body_bytes } => {
                    resp.transport.truncate_body_after = Some(body_bytes.unwrap_or(usize::MAX));
                }
                _ => continue,
            }
            applied.push(*fault);
        }
        self.stats.record(
            epoch_ms,
            &stats::Observed {
                provider,
                endpoint,
                status: resp.status,
                credential: credential.as_deref(),
                refresh_replay,
                grant_revoked,
            },
        );
        let resp = self.close_if_asked(resp, req);
        let entry = Answered {
            provider: Some(provider),
            endpoint: Some(endpoint),
            faults: applied,
            note,
            ..Answered::new(&req.method, &path)
        };
        self.finish(now_ms, resp, entry)
    }

    /// `GET /_stats` and `POST /_stats/reset`, outside every provider's
    /// path prefix; `None` for any other path.
    fn stats_endpoint(&mut self, path: &str, req: &Request) -> Option<Response> {
        let (allow, stats) = match path {
            STATS_PATH => ("GET", (req.method == "GET").then(|| self.stats())),
            STATS_RESET_PATH => ("POST", (req.method == "POST").then(|| self.reset_stats())),
            _ => return None,
        };
        let resp = match stats {
            Some(stats) => Response::json(200, stats.to_json()),
            None => Response::json(
                405,
                json_object(&[
                    ("error", J::Str("method_not_allowed")),
                    (
                        "error_description",
                        J::Str(&format!("Use {allow} for {path}")),
                    ),
                ]),
            )
            .with_header("Allow", allow),
        };
        Some(resp.with_header("Cache-Control", "no-store"))
    }

    fn close_if_asked(&self, mut resp: Response, req: &Request) -> Response {
        if req.wants_close() {
            resp.transport.close = true;
        }
        resp
    }

    /// Adds `Date`, resolves "half the body" truncation, logs.
    fn finish(&mut self, now_ms: u64, mut resp: Response, answered: Answered) -> Response {
        let epoch_ms = self.epoch_ms(now_ms);
        resp.headers
            .insert(0, ("Date".to_owned(), http::http_date(epoch_ms / 1000)));
        if resp.transport.truncate_body_after == Some(usize::MAX) {
            let wire = resp.serialize();
            resp.transport.truncate_body_after = Some((wire.bytes.len() - wire.head_len) / 2);
        }
        let entry = LogEntry {
            at_ms: now_ms + self.clock_offset_ms,
            epoch_ms,
            method: answered.method,
            path: answered.path,
            provider: answered.provider,
            endpoint: answered.endpoint,
            status: resp.status,
            faults: answered.faults,
            note: answered.note,
        };
        if let Some(observer) = self.observer.as_mut() {
            observer(&entry);
        }
        self.log.push(entry);
        resp
    }
}

/// What [`Emulator::finish`] logs besides the time and status.
struct Answered {
    method: String,
    path: String,
    provider: Option<Provider>,
    endpoint: Option<EndpointKind>,
    faults: Vec<Fault>,
    note: Option<String>,
}

impl Answered {
    fn new(method: &str, path: &str) -> Answered {
        Answered {
            method: method.to_owned(),
            path: path.to_owned(),
            provider: None,
            endpoint: None,
            faults: Vec::new(),
            note: None,
        }
    }
}

/// The path of the counters: `GET` reads them (JSON, see [`Stats::to_json`]).
pub const STATS_PATH: &str = "/_stats";

/// `POST` here answers the counters as they were and zeroes them.
pub const STATS_RESET_PATH: &str = "/_stats/reset";

/// `GET /`: what is served where.
fn index() -> Response {
    let text = format!(
        "fieldauth-emulator: Fentu FSM, Field Nation, Autotask and Patchworks on one port\n\n{}",
        cli::ENDPOINTS
    );
    Response::new(200)
        .with_header("Content-Type", "text/plain; charset=utf-8")
        .with_body(text.as_bytes().to_vec())
}
