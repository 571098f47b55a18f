//! The sans-IO session: keeps an application authenticated for days without
//! supervision.
//!
//! The caller owns the clock, the randomness and the I/O. It calls
//! [`Session::poll`] with the current monotonic time in milliseconds and does
//! what the returned [`Action`] says:
//!
//! - [`Action::SendTokenRequest`]: [`Session::write_token_request`] writes the
//!   request into a caller buffer; send it, parse the response head with a
//!   [`HeadParser`](crate::http::HeadParser) and give it to
//!   [`Session::on_token_head`], then feed the body to
//!   [`Session::on_token_body`] (and [`Session::on_token_eof`] if the server
//!   closes the connection), all three with the same [`TokenBody`] (the
//!   response's parsing state, which you hold only while the exchange runs).
//!   I/O failures go to [`Session::on_transport_error`].
//! - [`Action::Ready`]: a credential is usable. For every API request call
//!   [`Session::authorize`] (which also enforces rate limits), send the
//!   request with the credential it returns, and report the response head to
//!   [`Session::on_api_response`], which says whether to retry.
//! - [`Action::Wait`]: nothing is usable yet; poll again at the given time.
//! - [`Action::NeedAuthorizationCode`]: run the browser step
//!   ([`Session::authorization_url`]), then [`Session::set_authorization_code`].
//! - [`Action::Failed`]: a permanent problem (bad client credentials, revoked
//!   key...) that retrying cannot fix; reconfigure or call
//!   [`Session::restart`].
//!
//! # Token lifecycle
//! A token's expiry counts from when its request was written (so network time
//! only makes the token look shorter-lived). It is refreshed early by
//! `min(margin, fraction · lifetime)` (60 s and 10 % by default; at least
//! [`SHORT_TOKEN_EARLY_MS`] or half the lifetime, so a 5 s token is not
//! refreshed at expiry) plus up to
//! half that again of jitter drawn from the caller's seed, so a fleet does not
//! refresh in lockstep. A refresh token is used when there is one; the old
//! one is kept when a response brings none; `invalid_grant` on a refresh falls
//! back to the primary grant once. A failed or rate-limited refresh never
//! drops a token that is still valid: it stays usable until its real expiry
//! while retries are scheduled with full-jitter exponential backoff. If the
//! profile's `max_attempts` run out while the token is still valid, one last
//! attempt goes out shortly before expiry (`min(10 s, 5 %)` of the lifetime);
//! once nothing usable is left the session keeps trying, one attempt per
//! [`EXHAUSTED_RETRY_MS`] at most, and never latches on its own: only the
//! answers [`Failure`] lists as final stop it (until [`Session::restart`]),
//! and even those never hide a token that is still valid. Every wait a server
//! imposes is capped by [`Config::max_wait_s`] (an hour by default).
//!
//! # Memory
//! Everything persistent lives in the `Session` value: an arena (a `[u8; N]`
//! array in [`Session<N>`], or storage the caller sizes at run time with
//! [`SessionIn::with_storage`]) holds the configuration strings and secrets
//! followed by two token slots
//! (the active token and the staging slot the next response is parsed into),
//! and at most [`STATE_BUDGET`] (256) bytes of state besides it, checked at
//! compile time (232 B on Cortex-M4). The state of a token response being
//! read, a [`TokenBody`] (216 B on Cortex-M4), is the caller's: it is needed
//! only during an exchange, so it can live on the stack of the code that
//! runs it. The arena is zeroized on [`Session::clear`] and on drop. Nothing
//! is allocated.

use core::fmt;

use zeroize::Zeroize;

use crate::apply::ApiCredential;
use crate::body::{BodyParser, Expect, KeyTable};
#[cfg(doc)]
use crate::error::Error;
use crate::http::{BodyReader, ResetMode};
use crate::preset::{Backoff, Budget, Mode, RevokeStyle};
use crate::request::{BodyFormat, ClientAuth};

mod api;
mod code;
mod configure;
mod device;
mod exchange;
mod governor;
mod lifecycle;
mod snapshot;

pub use governor::Gcra;
/// The snapshot checksum, shared with the file store (`shared::FileStore`).
#[cfg(feature = "std")]
pub(crate) use snapshot::crc32;
pub use snapshot::SNAPSHOT_HEADER_LEN;

/// Default arena size: configuration plus two token slots of about 1.4 KB.
pub const DEFAULT_CAPACITY: usize = 3072;

/// A token request that gets no response within this time is treated as a
/// transport failure (the caller should report its own timeouts sooner).
///
/// It is a third of the presets' 60 s refresh margin, so a refresh whose
/// answer never comes times out with room for a retry (and the retry's own
/// timeout) before the token expires.
pub const RESPONSE_TIMEOUT_MS: u64 = 20_000;

/// The default cap on every wait a server imposes ([`Config::max_wait_s`]):
/// one hour. A `Retry-After` of four billion seconds or an HTTP-date in the
/// year 9999 blocks for this long, not for centuries.
pub const DEFAULT_MAX_WAIT_S: u32 = 3_600;

/// How long `X-RateLimit-Remaining: 0` blocks when its epoch `Reset` cannot
/// be resolved because the session knows no "now" (no `Date` header in the
/// response and no [`Session::set_wall_clock`]), and how long an HTTP-date
/// `Retry-After` blocks in the same situation.
pub const UNKNOWN_RESET_WAIT_S: u32 = 60;

/// A token is refreshed at least this long (or half its lifetime, if that is
/// shorter) before it expires, whatever the profile's fraction says: a 5 s
/// token is refreshed 2 to 3 s early, not at expiry.
pub const SHORT_TOKEN_EARLY_MS: u64 = 2_000;

/// Once a profile's `max_attempts` consecutive token requests have failed
/// and no valid token is left, the session keeps trying, one request per
/// `EXHAUSTED_RETRY_MS / 2 ..= EXHAUSTED_RETRY_MS` (2.5 to 5 minutes): it
/// never gives up on a server that may come back, and never hammers one that
/// is down.
pub const EXHAUSTED_RETRY_MS: u32 = 300_000;

/// "Never" as a deadline.
pub const NEVER: u64 = u64::MAX;

/// What the session wants the caller to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Write a token request with [`Session::write_token_request`] and send it.
    SendTokenRequest(RequestKind),
    /// A token request is in flight: feed its response.
    AwaitResponse,
    /// A credential is usable now: call [`Session::authorize`] for each API
    /// request. Poll again by `next` at the latest (refresh time).
    Ready {
        /// When to poll next.
        next: u64,
    },
    /// Nothing is usable yet: poll again at `until`.
    Wait {
        /// When to poll next.
        until: u64,
    },
    /// Authorization-code mode without a usable token: run the browser step.
    NeedAuthorizationCode,
    /// A permanent failure; see [`Failure`] and [`Session::failure_description`].
    Failed(Failure),
}

/// Which token request the session wants to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// The primary grant: client credentials, password, login, or the
    /// authorization-code exchange.
    Fetch,
    /// The refresh_token grant.
    Refresh,
    /// The RFC 8628 device authorization request.
    DeviceAuthorization,
    /// An RFC 8628 device_code token poll.
    DevicePoll,
    /// A revocation request (after [`Session::revoke`]).
    Revoke,
}

/// A problem retrying cannot fix: a *final* answer. The session stays in
/// this state until [`Session::restart`] (or a new session with new
/// configuration), except that a still-valid access token keeps being served
/// until it expires (`poll` says [`Action::Ready`] meanwhile).
///
/// Which answers are final (everything else is retried with backoff; see
/// `docs/ARCHITECTURE.md`, "Failure handling"):
/// - to the primary grant (client credentials, password, login, the code
///   exchange): `invalid_client`, `unauthorized_client`,
///   `unsupported_grant_type`, `invalid_scope`, `access_denied`,
///   `invalid_grant` (except in authorization-code mode, where it asks for
///   a new approval), `invalid_request`, and a 401 without an error code;
/// - in API-key mode, a 401 to an API request;
/// - a completed [`Session::revoke`], and [`Session::clear`].
///
/// No answer to the *refresh* grant is final: a rejected refresh token is
/// dropped and the primary grant is tried once instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The server rejected the client credentials (`invalid_client`).
    InvalidClient,
    /// The client may not use this grant (`unauthorized_client`,
    /// `unsupported_grant_type`).
    UnauthorizedClient,
    /// The requested scope is invalid (`invalid_scope`).
    InvalidScope,
    /// The username/password (or authorization code) was rejected.
    InvalidGrant,
    /// The API key was rejected (401).
    InvalidKey,
    /// The user denied the device or authorization request (`access_denied`).
    AccessDenied,
    /// The server rejected the primary grant's request as malformed
    /// (`invalid_request` in an RFC 6749 error body): a configuration
    /// problem. A 4xx without an error code (an HTML page from a proxy or a
    /// captive portal) is not final: it is retried.
    Rejected,
    /// Not produced any more: a session whose `max_attempts` ran out keeps
    /// retrying every [`EXHAUSTED_RETRY_MS`] at most (see
    /// [`Status::failed_attempts`]) instead of stopping until a restart. The
    /// variant stays so that the C and Python numbering of failures is
    /// stable.
    RetriesExhausted,
    /// The tokens were revoked with [`Session::revoke`].
    Revoked,
}

/// Something the session did in response to a token response: for logs and
/// timelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A new token is active.
    TokenIssued {
        /// Which request obtained it.
        kind: RequestKind,
        /// Its lifetime in seconds.
        lifetime_s: u32,
        /// Whether a refresh token is available.
        refreshable: bool,
    },
    /// A device code arrived: show [`Session::device_display`] to the user.
    UserCode,
    /// Device flow: the user has not approved yet; polling continues.
    AuthorizationPending,
    /// Device flow: the server asked to poll more slowly (+5 s).
    SlowDown,
    /// The refresh token was rejected; the primary grant is tried instead.
    RefreshRejected,
    /// The request failed transiently; it is retried at `at`.
    Retrying {
        /// HTTP status of the failed response (0: transport failure).
        status: u16,
        /// When the retry may go out.
        at: u64,
    },
    /// The session entered a permanent failure.
    Failed(Failure),
    /// The tokens were revoked.
    Revoked,
}

/// Progress of feeding a token-response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Progress {
    /// Bytes of the chunk that belonged to the body. The rest (if any) is the
    /// next response on a kept-alive connection.
    pub consumed: usize,
    /// The response is complete and this is what the session made of it.
    pub event: Option<Event>,
}

/// The permission to send one API request, or why not.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'s> {
    /// Send the request with this credential (it borrows the session).
    Send(ApiCredential<'s>),
    /// A rate limit applies: do not send before `until`.
    Wait {
        /// Monotonic time (ms) when a request may go out.
        until: u64,
    },
    /// No usable credential: poll the session.
    NoCredential,
}

impl fmt::Debug for Authorization<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorization::Send(_) => f.write_str("Send(<credential>)"),
            Authorization::Wait { until } => write!(f, "Wait {{ until: {until} }}"),
            Authorization::NoCredential => f.write_str("NoCredential"),
        }
    }
}

/// What [`Session::adopt`] did with a shared state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Adopted {
    /// The state was newer: the session now holds its token (and its
    /// rate-limit state and server blocks).
    Newer,
    /// The session already holds this generation or a newer one: nothing
    /// changed.
    NotNewer,
    /// Newer, but nothing in it is still usable (the token and the refresh
    /// token expired): the session keeps its own state and records the
    /// generation, so its next save builds on it.
    NothingUsable,
}

/// Which tokens [`Session::revoke_tokens`] revokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Revocation {
    /// The grant: the refresh token if one is held (RFC 7009 servers revoke
    /// the access tokens issued with it too), else the access token. The
    /// session then reports [`Failure::Revoked`]. What [`Session::revoke`]
    /// does.
    Grant,
    /// The access token only; the session goes on with its refresh token or
    /// the primary grant.
    Access,
    /// The refresh token, then the access token (for servers that do not
    /// cascade); the session then reports [`Failure::Revoked`].
    Both,
}

/// Identifies the token an API request was sent with ([`Session::token_id`]),
/// for [`Session::on_api_response_for`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenId(u32);

impl TokenId {
    /// The id as a number, for bindings that carry it across an ABI.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The id from [`TokenId::get`]'s number.
    pub const fn from_u32(id: u32) -> Self {
        TokenId(id)
    }
}

/// What an API response means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiVerdict {
    /// Success (or an error that has nothing to do with authentication).
    Ok,
    /// The token was rejected: it has been dropped (or already was, by the
    /// rejection of another request that carried it). Poll the session (it
    /// will fetch a new token) and retry the request once.
    RetryWithNewToken,
    /// The token was rejected again right after a retry: surfaced, not retried.
    Unauthorized,
    /// The API key was rejected ([`Failure::InvalidKey`]).
    InvalidKey,
    /// The credential lacks permission (403): not retried.
    Forbidden,
    /// Rate limited: retry the request at `until`.
    RateLimited {
        /// Monotonic time (ms) when requests may resume.
        until: u64,
    },
}

/// What the user needs to see in the device flow (RFC 8628 §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceDisplay<'s> {
    /// The code to enter.
    pub user_code: &'s str,
    /// Where to enter it.
    pub verification_uri: &'s str,
    /// A URI with the code included (for a QR code), if the server sent one.
    pub verification_uri_complete: Option<&'s str>,
    /// Monotonic time (ms) when the code expires.
    pub expires_at: u64,
}

/// A snapshot of the session's state for display and logs (no secrets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status {
    /// A token (or API key) is usable now.
    pub usable: bool,
    /// When the token expires (monotonic ms; [`NEVER`] for API keys).
    pub expires_at: u64,
    /// When the session will refresh it.
    pub refresh_at: u64,
    /// A refresh token is held.
    pub refreshable: bool,
    /// Consecutive failed token requests.
    pub failed_attempts: u8,
    /// API requests are blocked until this time by a rate limit (0: not).
    pub api_blocked_until: u64,
    /// The token endpoint is blocked until this time (0: not).
    pub token_blocked_until: u64,
    /// The permanent failure, if any.
    pub failure: Option<Failure>,
    /// HTTP status of the last token-endpoint response (0: none yet, or the
    /// last exchange failed at the transport or timed out). With
    /// [`Session::failure_description`] it says what happened: a 404 here
    /// and a non-JSON body means a wrong token URL, not bad credentials.
    pub last_http_status: u16,
    /// Whether that response declared a JSON body (`Content-Type: …/json`
    /// or `…+json`).
    pub last_content_json: bool,
    /// The bytes of token slot the last token response needed when it did
    /// not fit ([`Error::CapacityExceeded`]; 0: none fell short since the
    /// last token). Size the storage with it ([`SessionIn::storage_needed`]).
    pub slot_needed: u32,
    /// The bytes each token slot holds now.
    pub slot_capacity: u32,
}

/// Runtime configuration: where the provider is and the credentials. Copied
/// into the session; the caller may wipe its copy right after
/// [`Session::new`]. Empty strings mean "not configured".
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Config<'a> {
    /// Base URL the profile's paths are appended to, e.g.
    /// `https://api.fieldnation.com`.
    pub base_url: &'a str,
    /// OAuth `client_id`.
    pub client_id: &'a str,
    /// OAuth `client_secret`.
    pub client_secret: &'a str,
    /// Username (password grant, login).
    pub username: &'a str,
    /// Password (password grant, login).
    pub password: &'a str,
    /// API key (API-key mode).
    pub api_key: &'a str,
    /// Scope; empty uses the profile's default.
    pub scope: &'a str,
    /// Redirect URI (authorization-code mode).
    pub redirect_uri: &'a str,
    /// Allow plain `http` to a non-loopback host (test rigs only).
    pub allow_insecure: bool,
    /// The longest wait (seconds) any server answer may impose: a
    /// `Retry-After`, an `X-RateLimit-Reset` or IETF `RateLimit` reset, a
    /// device-flow `slow_down` interval. Longer ones are cut to this. `0`
    /// means [`DEFAULT_MAX_WAIT_S`] (one hour).
    pub max_wait_s: u32,
    /// `resource` (RFC 8707 resource indicator: the API the token is for),
    /// sent with the scope on token requests and in the authorization URL.
    pub resource: &'a str,
    /// `audience` (some providers' name for the API the token is for), sent
    /// with the scope on token requests.
    pub audience: &'a str,
    /// More parameters for every token request (not revocations), as
    /// form-urlencoded text: `name=value` pairs joined by `&`, already
    /// encoded (`tenant=acme&x=a%20b`); decoded into JSON bodies. See
    /// [`Client::extra_params`](crate::request::Client::extra_params).
    pub token_params: &'a str,
    /// More query parameters for the authorization URL (code flow), the
    /// same way: `prompt=consent&login_hint=tech%40acme.example&nonce=...`.
    pub authorize_params: &'a str,
}

impl fmt::Debug for Config<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &crate::body::Redacted(self.client_secret.len()),
            )
            .field("username", &self.username)
            .field("password", &crate::body::Redacted(self.password.len()))
            .field("api_key", &crate::body::Redacted(self.api_key.len()))
            .field("scope", &self.scope)
            .field("redirect_uri", &self.redirect_uri)
            .field("allow_insecure", &self.allow_insecure)
            .field("max_wait_s", &self.max_wait_s)
            .field("resource", &self.resource)
            .field("audience", &self.audience)
            .field(
                "token_params",
                &crate::body::Redacted(self.token_params.len()),
            )
            .field("authorize_params", &self.authorize_params)
            .finish()
    }
}

// Indices of the configuration strings in the arena's string table.
const S_BASE: u8 = 0;
const S_CLIENT_ID: u8 = 1;
const S_SECRET: u8 = 2;
const S_USER: u8 = 3;
const S_PASS: u8 = 4;
const S_KEY: u8 = 5;
const S_SCOPE: u8 = 6;
const S_REDIRECT: u8 = 7;
const S_TOKEN_PATH: u8 = 8;
const S_AUTH_PATH: u8 = 9;
const S_DEVICE_PATH: u8 = 10;
const S_REVOKE_PATH: u8 = 11;
const S_PHRASE: u8 = 12;
const S_PLACEMENT: u8 = 13;
const S_RESOURCE: u8 = 14;
const S_AUDIENCE: u8 = 15;
const S_TOKEN_PARAMS: u8 = 16;
const S_AUTH_PARAMS: u8 = 17;
const STRINGS: u8 = 18;

/// Bytes reserved after the string table in authorization-code mode for the
/// PKCE verifier (≤ 128) and `state` (≤ 64).
const PKCE_ZONE: usize = 192;

/// Where a piece of text lies in the arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Span {
    start: u16,
    len: u16,
}

impl Span {
    fn range(self) -> core::ops::Range<usize> {
        let s = usize::from(self.start);
        s..s.saturating_add(usize::from(self.len))
    }
}

/// Where an API credential goes, without the strings (those are in the arena).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Place {
    Bearer,
    Raw,
    Header,
    Query,
}

/// The profile's settings, copied at construction (strings go to the arena).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Settings {
    mode: Mode,
    format: BodyFormat,
    client_auth: ClientAuth,
    revoke_style: RevokeStyle,
    place: Place,
    reset_mode: ResetMode,
    refresh_fraction_pct: u8,
    api_budget_per_token: bool,
    allow_insecure: bool,
    keys: KeyTable,
    default_lifetime_s: u32,
    refresh_lifetime_s: u32,
    refresh_margin_s: u32,
    max_wait_s: u32,
    /// `requests == 0`: none (an `Option` took 4 more bytes each: the
    /// 256-byte state budget, see [`budget`]).
    token_budget: Budget,
    api_budget: Budget,
    backoff: Backoff,
}

/// A budget of [`Settings`], if there is one.
fn budget(b: Budget) -> Option<Budget> {
    (b.requests > 0).then_some(b)
}

/// No budget (see [`Settings`]).
const NO_BUDGET: Budget = Budget {
    requests: 0,
    window_s: 0,
    burst: 0,
};

/// The exchange in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    /// No token request in flight.
    Idle,
    /// The request was written; waiting for the response head.
    Sent,
    /// The head arrived; reading the body.
    Body,
}

// Flags.
const F_TOKEN: u16 = 1; // the active slot holds a token
const F_RT: u16 = 2; // ... and a refresh token
const F_RETRIED_401: u16 = 8; // a 401 dropped the token; the next one surfaces
const F_DEVICE: u16 = 16; // the active slot holds a device authorization
const F_CODE: u16 = 32; // an authorization code waits in the staging slot
const F_PKCE: u16 = 64; // a PKCE verifier and state wait in the PKCE zone
const F_REVOKE: u16 = 128; // the session ends (Revoked) once its revocations are done
const F_REV_RT: u16 = 4; // the refresh token is to be revoked
const F_REV_AT: u16 = 1024; // the access token is to be revoked
const F_WALL: u16 = 256; // the wall-clock offset is known
const F_LAST_CHANCE: u16 = 512; // the one attempt after exhaustion was made

/// Where a session keeps its configuration strings, secrets and two token
/// slots: its *arena*. A fixed array (`[u8; N]`, what [`Session<N>`] holds),
/// or storage the caller owns and lends for the session's life (`&mut
/// [u8]`, any size from [`MIN_CAPACITY`] up to 65,535 bytes: see
/// [`SessionIn::with_storage`]). The C ABI implements it for caller storage
/// it addresses by pointer.
pub trait Arena: AsRef<[u8]> + AsMut<[u8]> {}

impl<const N: usize> Arena for [u8; N] {}
impl Arena for &mut [u8] {}

/// The smallest arena a session accepts beyond its configuration strings:
/// two token slots of 256 bytes. [`SessionIn::storage_needed`] computes what
/// a configuration and a token size need.
pub const MIN_CAPACITY: usize = 512;

/// The session over an arena of any kind ([`Arena`]); [`Session<N>`] is the
/// usual form with an `N`-byte array inside.
//
// `repr(C)` with the arena last: see `new_in` (keeps the in-place build).
#[repr(C)]
pub struct SessionIn<A: Arena> {
    st: St,
    set: Settings,
    arena: A,
}

/// The session. `N` is the arena size in bytes (configuration strings and
/// secrets, plus two token slots); see [`DEFAULT_CAPACITY`]. For storage
/// sized at run time (a 4 KB JWT from an enterprise identity provider), use
/// [`SessionIn::with_storage`] over a `&mut [u8]`.
pub type Session<const N: usize = DEFAULT_CAPACITY> = SessionIn<[u8; N]>;

/// The session's own state, everything but the arena, is at most 256 bytes
/// on every target the crate is built for: checked when it compiles (the
/// in-flight response state is the caller's [`TokenBody`]).
pub const STATE_BUDGET: usize = 256;
const _: () = assert!(core::mem::size_of::<Session<0>>() <= STATE_BUDGET);

/// The state of one token response being read: its framing (Content-Length,
/// chunked or close-delimited) and the streaming JSON parser.
///
/// It lives with the caller, not in the [`Session`], so that the session
/// stays small between exchanges: give the same `TokenBody` to
/// [`Session::on_token_head`], every [`Session::on_token_body`] and
/// [`Session::on_token_eof`] of one exchange (a stack variable of the
/// function that runs the exchange, or static memory). It holds no secrets:
/// the decoded text goes into the session's token storage.
///
/// ```
/// use fieldauth::session::TokenBody;
/// let mut body = TokenBody::new(); // reusable: on_token_head resets it
/// # let _ = &mut body;
/// ```
#[derive(Clone, Debug)]
pub struct TokenBody {
    parser: BodyParser,
    reader: BodyReader,
    /// The session exchange this state belongs to (0: none).
    ticket: u32,
}

impl TokenBody {
    /// A blank state, ready for [`Session::on_token_head`].
    pub const fn new() -> Self {
        TokenBody {
            parser: BodyParser::new(Expect::Token, 0, &[]),
            reader: BodyReader::new(crate::http::BodyFraming::Length(0)),
            ticket: 0,
        }
    }
}

impl Default for TokenBody {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything that changes, in one `Copy` struct (what a snapshot saves and
/// what failures leave untouched).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct St {
    /// End of the string table (plus the PKCE zone, if any).
    strings_len: u16,
    /// Start and length of each token slot.
    slot_len: u16,
    active: u8,
    flags: u16,
    phase: Phase,
    kind: RequestKind,
    attempts: u8,
    failure: Option<Failure>,
    /// Status of the last token response (0: none, or a transport failure).
    last_status: u16,
    /// That response declared a JSON body.
    last_json: bool,
    /// Error description of the failure (in the staging slot).
    failure_desc: Span,
    /// Active slot: access token, refresh token, scope (or device code, user
    /// code, verification URI, verification URI complete in device mode).
    spans: [Span; 4],
    /// Authorization code (staging slot) or PKCE verifier / state (zone).
    code: Span,
    verifier: Span,
    state: Span,
    device_interval_s: u32,
    lifetime_s: u32,
    expires_at: u64,
    refresh_at: u64,
    rt_expires_at: u64,
    sent_at: u64,
    retry_at: u64,
    token_blocked_until: u64,
    api_blocked_until: u64,
    token_gcra: Gcra,
    api_gcra: Gcra,
    last_now: u64,
    /// Unix ms minus monotonic ms, when [`F_WALL`] is set.
    wall_offset: i64,
    rng: u64,
    /// Marks the [`TokenBody`] of the exchange in flight (never 0).
    ticket: u32,
    /// Generation of the active token: +1 for every token issued or restored.
    token_gen: u32,
    /// Bytes of token slot the last response that did not fit needed.
    slot_needed: u32,
    /// Generation of the shared state (issue #21) this session holds: the
    /// store's number for the image it adopted or saved last (0: none).
    shared_gen: u64,
}

impl<A: Arena> fmt::Debug for SessionIn<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("capacity", &self.capacity())
            .field("mode", &self.set.mode)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl<A: Arena> Drop for SessionIn<A> {
    fn drop(&mut self) {
        self.arena.as_mut().zeroize();
    }
}

/// splitmix64: turns the caller's seed into a stream of jitter values.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform value in `0..=bound` (32-bit: Cortex-M4 has no 64-bit divide).
fn random_upto(state: &mut u64, bound: u32) -> u32 {
    let r = next_random(state) as u32;
    match bound.checked_add(1) {
        Some(b) => r.checked_rem(b).unwrap_or(0),
        None => r,
    }
}

fn secs_to_ms(s: u32) -> u64 {
    u64::from(s).saturating_mul(1000)
}

impl<A: Arena> SessionIn<A> {
    // ------------------------------------------------------------ storage

    /// The `i`-th configuration string.
    fn string(&self, i: u8) -> &str {
        let table = self
            .arena
            .as_ref()
            .get(..usize::from(self.st.strings_len))
            .unwrap_or(&[]);
        let s = table.split(|&b| b == 0).nth(usize::from(i)).unwrap_or(&[]);
        core::str::from_utf8(s).unwrap_or("")
    }

    fn slot_range(&self, slot: u8) -> core::ops::Range<usize> {
        let len = usize::from(self.st.slot_len);
        let start = usize::from(self.st.strings_len)
            .saturating_add(len.saturating_mul(usize::from(slot & 1)));
        start..start.saturating_add(len)
    }

    fn text(&self, span: Span) -> &str {
        self.arena
            .as_ref()
            .get(span.range())
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// A span in the active slot.
    fn active_text(&self, i: usize) -> &str {
        self.text(self.st.spans.get(i).copied().unwrap_or_default())
    }

    /// Zeroizes `r` of the arena. An error description that lay there is
    /// forgotten with it: the bytes may be reused for tokens next.
    fn wipe(&mut self, r: core::ops::Range<usize>) {
        // The description lies within one slot, and `r` is a slot or a
        // span of the active one: its start tells.
        if r.contains(&usize::from(self.st.failure_desc.start)) {
            self.st.failure_desc = Span::default();
        }
        if let Some(b) = self.arena.as_mut().get_mut(r) {
            b.zeroize();
        }
    }

    fn has(&self, f: u16) -> bool {
        self.st.flags & f != 0
    }

    fn set_flag(&mut self, f: u16, on: bool) {
        if on {
            self.st.flags |= f;
        } else {
            self.st.flags &= !f;
        }
    }

    /// Monotonic clock with a backwards guard: time never runs backwards for
    /// the session (a smaller `now` is treated as the last one seen).
    /// Out of line: one copy for the many entry points that read the
    /// clock (flash, issue #13).
    #[inline(never)]
    fn clock(&mut self, now: u64) -> u64 {
        if now < self.st.last_now {
            self.st.last_now
        } else {
            self.st.last_now = now;
            now
        }
    }

    // ------------------------------------------------------------ decisions

    /// Whether the active token may be used at `now`.
    fn token_valid(&self, now: u64) -> bool {
        self.has(F_TOKEN) && now < self.st.expires_at
    }

    fn refresh_usable(&self, now: u64) -> bool {
        // F_RT is set only with a refresh token in the span (an empty one
        // counts as none) and cleared whenever it goes.
        self.has(F_RT) && now < self.st.rt_expires_at
    }

    /// Forgets the access token (rejected by the API, or revoked): wiped;
    /// a refresh token stays.
    fn drop_access_token(&mut self) {
        self.set_flag(F_TOKEN, false);
        if let Some(access) = self.st.spans.first_mut() {
            let r = access.range();
            *access = Span::default();
            self.wipe(r);
        }
    }

    /// Forgets the refresh token (rejected, or unusable in a request): it is
    /// wiped and never sent again; the primary grant is next.
    fn drop_refresh_token(&mut self) {
        self.set_flag(F_RT, false);
        if let Some(rt) = self.st.spans.get_mut(1) {
            let r = rt.range();
            *rt = Span::default();
            self.wipe(r);
        }
    }
}

impl St {
    const fn empty() -> Self {
        St {
            strings_len: 0,
            slot_len: 0,
            active: 0,
            flags: 0,
            phase: Phase::Idle,
            kind: RequestKind::Fetch,
            attempts: 0,
            failure: None,
            last_status: 0,
            last_json: false,
            failure_desc: Span { start: 0, len: 0 },
            spans: [Span { start: 0, len: 0 }; 4],
            code: Span { start: 0, len: 0 },
            verifier: Span { start: 0, len: 0 },
            state: Span { start: 0, len: 0 },
            device_interval_s: 5,
            lifetime_s: 0,
            expires_at: 0,
            refresh_at: 0,
            rt_expires_at: 0,
            sent_at: 0,
            retry_at: 0,
            token_blocked_until: 0,
            api_blocked_until: 0,
            token_gcra: Gcra::new(),
            api_gcra: Gcra::new(),
            last_now: 0,
            wall_offset: 0,
            rng: 0,
            ticket: 0,
            token_gen: 0,
            slot_needed: 0,
            shared_gen: 0,
        }
    }
}
