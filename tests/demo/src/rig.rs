//! A client rig: drives a fieldauth [`Session`] against the in-process
//! emulator over real loopback sockets with the blocking driver
//! (`fieldauth::driver`). Shared by the demo (`main.rs`) and the end-to-end
//! tests (`core/tests/e2e.rs` includes this file), so both exercise the same
//! client code.
//!
//! Time: the session's clock is real time plus fast-forwards, and every
//! fast-forward moves the emulator's clock by the same amount
//! ([`World::advance_to`]), so tokens expire on both sides together without
//! anyone sleeping.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fieldauth::driver::{self, ApiOutcome, FromStd};
use fieldauth::preset::{Mode, Profile};
use fieldauth::session::{Action, ApiVerdict, Config, Event, Failure, RequestKind, Session};
use fieldauth::url::Url;
use fieldauth::Error;
use fieldauth_emulator::{FaultRule, Provider, RunningEmulator};

/// Session time (ms) when the world starts: an arbitrary boot time.
pub const BOOT_MS: u64 = 1_000_000;

/// The redirect URI of the Fentu OAuth client (the emulator accepts any).
pub const REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";

/// Read and write timeouts of every connection: nothing can hang.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection as the driver sees it.
pub type Stream = FromStd<TcpStream>;

/// The emulator and the clock both sides share.
pub struct World {
    /// The emulator, serving on loopback.
    pub server: RunningEmulator,
    origin: Instant,
    skipped: Cell<u64>,
}

impl World {
    /// Starts the clock for `server`.
    pub fn new(server: RunningEmulator) -> World {
        World {
            server,
            origin: Instant::now(),
            skipped: Cell::new(0),
        }
    }

    /// The session's time: [`BOOT_MS`] + real time + fast-forwards.
    pub fn now(&self) -> u64 {
        BOOT_MS + self.origin.elapsed().as_millis() as u64 + self.skipped.get()
    }

    /// Real time since the start.
    pub fn real(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Milliseconds fast-forwarded so far.
    pub fn skipped(&self) -> u64 {
        self.skipped.get()
    }

    /// Fast-forwards the session's and the emulator's clocks to `t`; returns
    /// the milliseconds skipped (0 if `t` has passed).
    pub fn advance_to(&self, t: u64) -> u64 {
        let d = t.saturating_sub(self.now());
        if d > 0 {
            self.skipped.set(self.skipped.get() + d);
            self.server.with(|e| e.advance_clock(d));
        }
        d
    }

    /// A new connection to the emulator.
    pub fn connect(&self) -> std::io::Result<Stream> {
        let s = TcpStream::connect(self.server.addr())?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.set_nodelay(true)?;
        Ok(FromStd::new(s))
    }

    /// Replaces the emulator's fault rules (spec syntax of
    /// `fieldauth-emulator --help`).
    pub fn set_faults(&self, specs: &[&str]) {
        let rules = specs
            .iter()
            .map(|s| FaultRule::parse(s).unwrap_or_else(|e| panic!("fault `{s}`: {e}")))
            .collect();
        self.server.with(|e| e.set_faults(rules));
    }

    /// How many requests the emulator has answered.
    pub fn requests(&self) -> usize {
        self.server.with(|e| e.log().len())
    }
}

/// The emulated provider behind a preset.
pub fn provider_of(p: &Profile<'_>) -> Provider {
    if p.name.starts_with("Fentu") {
        Provider::Fentu
    } else if p.name.starts_with("Field Nation") {
        Provider::FieldNation
    } else if p.name.starts_with("Autotask") {
        Provider::Autotask
    } else {
        Provider::Patchworks
    }
}

/// A documented API path of `provider`.
pub fn api_path(provider: Provider) -> &'static str {
    match provider {
        Provider::Fentu => "/v1/work-orders",
        Provider::FieldNation => "/api/rest/v2/workorders",
        Provider::Autotask => "/ATServicesRest/V1.0/Companies",
        Provider::Patchworks => "/core/v1/flows",
    }
}

/// Whether a preset uses a static API key (nothing to fetch or refresh).
pub fn is_api_key(p: &Profile<'_>) -> bool {
    p.mode == Mode::ApiKey
}

/// One thing the session decided and the rig did, for timelines.
#[derive(Debug)]
pub enum Step {
    /// A token request went out; this is what the session made of it.
    Exchanged {
        /// Session time it went out.
        at: u64,
        /// Which request.
        kind: RequestKind,
        /// The session's event, or why the exchange failed.
        result: Result<Event, Error>,
    },
    /// The session asked to wait; the clocks were fast-forwarded.
    Waited {
        /// Session time before.
        from: u64,
        /// Until when.
        until: u64,
    },
    /// The authorization-code step (what a browser would do).
    Browser {
        /// Session time.
        at: u64,
        /// What happened.
        note: String,
    },
}

/// The answer to one API call.
#[derive(Debug, PartialEq)]
pub enum Call {
    /// The request went out.
    Response {
        /// HTTP status.
        status: u16,
        /// What the session made of it.
        verdict: ApiVerdict,
        /// The payload.
        body: Vec<u8>,
    },
    /// Not sent: rate limited until then.
    Wait(u64),
    /// Not sent: no usable credential.
    NoCredential,
}

/// A session for one preset, its connection and its buffer.
pub struct Rig<'w> {
    /// The shared world.
    pub world: &'w World,
    /// Its provider on the emulator.
    pub provider: Provider,
    /// The session under test.
    pub session: Session,
    base: String,
    conn: Option<Stream>,
    /// The driver's buffer (its size is the device's receive buffer).
    pub buf: Vec<u8>,
    seed: u64,
}

impl<'w> Rig<'w> {
    /// A session for `profile` with the emulator's demo credentials (an
    /// API-key preset uses `api_key` instead if given) and a `buf_len`-byte
    /// buffer.
    pub fn new(
        world: &'w World,
        profile: &'static Profile<'static>,
        api_key: Option<&str>,
        buf_len: usize,
        seed: u64,
    ) -> Result<Rig<'w>, Error> {
        let provider = provider_of(profile);
        let base = world.server.base_url(provider);
        let patchworks = provider == Provider::Patchworks;
        let config = Config {
            base_url: &base,
            client_id: "demo-client",
            client_secret: "demo-secret",
            username: "me@patchworks.com",
            password: "a1b2c3d4e5f6",
            api_key: api_key.unwrap_or(if patchworks {
                "pw-demo-key"
            } else {
                "fentu-demo-key"
            }),
            scope: if provider == Provider::Fentu {
                "read:work-orders"
            } else {
                ""
            },
            redirect_uri: REDIRECT_URI,
            allow_insecure: false,
            max_wait_s: 0,
            ..Config::default()
        };
        let session = Session::new(profile, &config, seed)?;
        Ok(Rig {
            world,
            provider,
            session,
            base,
            conn: None,
            buf: vec![0; buf_len],
            seed,
        })
    }

    /// Polls the session now.
    pub fn poll(&mut self) -> Action {
        let now = self.world.now();
        self.session.poll(now)
    }

    /// One token exchange on a fresh connection (a failed connect is a
    /// transport failure the session is told about).
    pub fn exchange(&mut self) -> Result<Event, Error> {
        let now = self.world.now();
        let mut io = match self.world.connect() {
            Ok(io) => io,
            Err(_) => {
                self.session.on_transport_error(now);
                return Err(Error::Transport);
            }
        };
        // A fresh connection each time: whether it could be reused does not matter.
        driver::exchange_token(&mut self.session, now, &mut io, &mut self.buf).map(|x| x.event)
    }

    /// Polls and acts until a credential is usable (or the session fails),
    /// reporting each step. Gives up after 20 steps.
    pub fn until_ready(&mut self, mut report: impl FnMut(&World, &Step)) -> Result<(), String> {
        for _ in 0..20 {
            let now = self.world.now();
            let step = match self.session.poll(now) {
                Action::Ready { .. } => return Ok(()),
                Action::SendTokenRequest(kind) => Step::Exchanged {
                    at: now,
                    kind,
                    result: self.exchange(),
                },
                Action::Wait { until } => {
                    self.world.advance_to(until);
                    Step::Waited { from: now, until }
                }
                Action::NeedAuthorizationCode => Step::Browser {
                    at: now,
                    note: self.browser_step()?,
                },
                Action::AwaitResponse => return Err("a token request is stuck in flight".into()),
                Action::Failed(f) => return Err(format!("the session failed: {f:?}")),
            };
            report(self.world, &step);
        }
        Err("no usable credential after 20 steps".into())
    }

    /// The authorization-code step a user's browser does: opens the
    /// authorization URL (the emulator approves at once and redirects),
    /// takes `code` and `state` from the redirect's `Location`, and gives
    /// them to the session.
    pub fn browser_step(&mut self) -> Result<String, String> {
        // Demo randomness (a device uses its TRNG).
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let verifier: Vec<u8> = (0..32u8)
            .map(|i| (self.seed >> (i % 8)) as u8 ^ i)
            .collect();
        let state: Vec<u8> = (0..16u8)
            .map(|i| (self.seed >> (i % 7)) as u8 ^ i.wrapping_mul(31))
            .collect();
        let mut url = [0u8; 1024];
        let n = self
            .session
            .authorization_url(&verifier, &state, &mut url)
            .map_err(|e| format!("authorization URL: {e}"))?;
        let url = std::str::from_utf8(&url[..n]).map_err(|e| e.to_string())?;
        let target = url
            .strip_prefix("http://")
            .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
            .ok_or("authorization URL is not http")?;
        let location = redirect_location(self.world, target)?;
        let query = location.split_once('?').map_or("", |(_, q)| q);
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                .map(percent_decode)
        };
        let (Some(code), Some(state)) = (param("code"), param("state")) else {
            return Err(format!("redirect without code and state: {location}"));
        };
        self.session
            .set_authorization_code(&code, &state)
            .map_err(|e| format!("set_authorization_code: {e}"))?;
        Ok("GET /oauth/authorize (PKCE S256) -> 302 with code and state".into())
    }

    /// `GET path` (after the provider's base URL) with the session's
    /// credential, reusing the connection while the server keeps it open.
    pub fn get(&mut self, path: &str) -> Result<Call, Error> {
        let now = self.world.now();
        let url = Url::parse(&self.base)?.join(path)?;
        let mut io = match self.conn.take() {
            Some(io) => io,
            None => self.world.connect().map_err(|_| Error::Transport)?,
        };
        match driver::api_get(&mut self.session, now, &mut io, url, &mut self.buf)? {
            ApiOutcome::Response(r) => {
                let mut body = Vec::new();
                driver::read_body(&mut io, &r, &mut self.buf, |d| body.extend_from_slice(d))?;
                if !r.head.connection_close {
                    self.conn = Some(io);
                }
                Ok(Call::Response {
                    status: r.head.status,
                    verdict: r.verdict,
                    body,
                })
            }
            ApiOutcome::Wait { until } => {
                self.conn = Some(io);
                Ok(Call::Wait(until))
            }
            ApiOutcome::NoCredential => Ok(Call::NoCredential),
        }
    }

    /// `GET` of the provider's documented API path.
    pub fn get_api(&mut self) -> Result<Call, Error> {
        self.get(api_path(self.provider))
    }

    /// The session's permanent failure, if any.
    pub fn failure(&self) -> Option<Failure> {
        self.session.status().failure
    }
}

/// Sends `GET target` as a browser would and returns the redirect's
/// `Location`.
fn redirect_location(world: &World, target: &str) -> Result<String, String> {
    let mut s = world.connect().map_err(|e| e.to_string())?.into_inner();
    let host = world.server.addr();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    if !head.starts_with("HTTP/1.1 302") {
        return Err(format!(
            "authorize answered {}",
            head.lines().next().unwrap_or("")
        ));
    }
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_owned())
        })
        .ok_or_else(|| "302 without Location".to_owned())
}

/// Decodes `%XX` escapes and `+` of a query value.
fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        let hex = |i: usize| tail.get(i).and_then(|&d| (d as char).to_digit(16));
        rest = tail;
        match (c, hex(0), hex(1)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                rest = &tail[2..];
            }
            (b'+', ..) => out.push(b' '),
            _ => out.push(c),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
