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
use core::mem::MaybeUninit;

use zeroize::Zeroize;

use crate::apply::ApiCredential;
use crate::body::{BodyParser, ErrorCode, Expect, KeyTable, Outcome, Response};
use crate::error::{Error, Field, InputError, Member, Result};
use crate::http::{BodyReader, ResetMode, ResponseHead, RetryAfter};
use crate::pkce::{AuthorizationRequest, State as PkceState};
#[cfg(feature = "pkce")]
use crate::pkce::{ChallengeMethod, CodeVerifier};
use crate::preset::{Backoff, Budget, Mode, Placement, Profile, RevokeStyle};
use crate::request::{BodyFormat, Client, ClientAuth, Grant, Parts, Request, TokenTypeHint};
use crate::url::Url;
use crate::write::{check_param, Window};

mod governor;
mod snapshot;

pub use governor::Gcra;
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
    token_budget: Option<Budget>,
    api_budget: Option<Budget>,
    backoff: Backoff,
}

impl Settings {
    /// Placeholder values, replaced at once by [`settings`] (a constant lets
    /// [`Session::new_in`] build the session in place).
    const BLANK: Settings = Settings {
        mode: Mode::ApiKey,
        format: BodyFormat::Form,
        client_auth: ClientAuth::None,
        revoke_style: RevokeStyle::Rfc7009,
        place: Place::Bearer,
        reset_mode: ResetMode::Auto,
        refresh_fraction_pct: 0,
        api_budget_per_token: false,
        allow_insecure: false,
        keys: &[],
        default_lifetime_s: 1,
        refresh_lifetime_s: 0,
        refresh_margin_s: 0,
        max_wait_s: DEFAULT_MAX_WAIT_S,
        token_budget: None,
        api_budget: None,
        backoff: Backoff {
            base_ms: 1,
            cap_ms: 1,
            max_attempts: 1,
        },
    };
}

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

impl<const N: usize> SessionIn<[u8; N]> {
    /// Creates a session for `profile` with `config`, seeding the jitter from
    /// `seed` (any random 64 bits; different devices should use different
    /// seeds).
    ///
    /// Errors: [`Error::InvalidInput`] for a missing or unusable value (an
    /// invalid or insecure base URL, an empty credential the mode needs,
    /// control characters); [`Error::CapacityExceeded`] if the strings do not
    /// leave room for two token slots of at least 256 bytes.
    pub fn new(profile: &Profile<'_>, config: &Config<'_>, seed: u64) -> Result<Self> {
        let mut s = SessionIn {
            arena: [0; N],
            set: settings(profile, config),
            st: St::empty(),
        };
        s.st.rng = seed;
        s.st.ticket = (seed ^ (seed >> 32)) as u32;
        s.configure(profile, config)?;
        Ok(s)
    }

    /// Creates a session like [`Session::new`], but directly in `slot`
    /// (static memory, a caller's struct, C storage) instead of returning it,
    /// so that no `N`-byte temporary is built on the stack: on a device,
    /// `new` needs about `N` + 240 bytes of stack, `new_in` a few hundred.
    ///
    /// Returns the initialized session. On error `slot` holds no secrets
    /// (the arena is wiped) and must not be treated as initialized.
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Config, Session};
    ///
    /// let mut slot = MaybeUninit::<Session<2048>>::uninit();
    /// let config = Config {
    ///     base_url: "https://api.fieldnation.com",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let session = Session::new_in(&mut slot, &preset::FIELD_NATION, &config, 7)?;
    /// assert!(!session.status().usable); // no token yet
    /// session.clear(); // a `MaybeUninit` never drops: wipe the secrets
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    ///
    /// Like any `MaybeUninit`, `slot` never drops its contents: call
    /// [`Session::clear`] when done (or use `MaybeUninit::assume_init_drop`
    /// in code that allows `unsafe`), or the arena keeps its secrets.
    ///
    /// Errors: as [`Session::new`].
    pub fn new_in<'s>(
        slot: &'s mut MaybeUninit<Self>,
        profile: &Profile<'_>,
        config: &Config<'_>,
        seed: u64,
    ) -> Result<&'s mut Self> {
        // A constant literal, so that LLVM stores it straight into `slot`
        // (a memset plus a few stores) instead of building the N-byte value
        // on the stack and copying it: `ffi/tests/firmware_link.rs` fails if
        // the Cortex-M4 stack peak of the C firmware grows past 2 KB. What
        // was measured (static frame of the C init, thumbv7em): this form
        // with the arena last in a `repr(C)` struct ≈ 600 B; the settings
        // computed inside the literal, or the arena first, ≈ 3.4 KB.
        let s = slot.write(SessionIn {
            st: St::empty(),
            set: Settings::BLANK,
            arena: [0; N],
        });
        s.set = settings(profile, config);
        s.st.rng = seed;
        s.st.ticket = (seed ^ (seed >> 32)) as u32;
        if let Err(e) = s.configure(profile, config) {
            s.arena.zeroize();
            return Err(e);
        }
        Ok(s)
    }
}

impl<A: Arena> SessionIn<A> {
    /// Creates a session in `storage`, an arena of any size from what the
    /// configuration needs up to 65,535 bytes ([`SessionIn::storage_needed`]
    /// computes it): storage the caller sizes at run time, for tokens larger
    /// than a fixed [`Session<N>`] was built for. The storage is wiped first,
    /// holds the secrets and tokens while the session lives, and is wiped
    /// again when the session is dropped or cleared.
    ///
    /// ```
    /// use fieldauth::preset;
    /// use fieldauth::session::{Config, SessionIn};
    ///
    /// let config = Config {
    ///     base_url: "https://login.example.com",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// // Room for a 4 KB JWT, a 1 KB refresh token and a scope per slot.
    /// let needed = SessionIn::<&mut [u8]>::storage_needed(&preset::custom(), &config, 5_400);
    /// let mut storage = vec![0u8; needed];
    /// let s = SessionIn::with_storage(&mut storage[..], &preset::custom(), &config, 7)?;
    /// assert_eq!(s.slot_capacity(), 5_400);
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    ///
    /// Errors: as [`Session::new`]; [`Error::CapacityExceeded`] names the
    /// bytes needed when the storage is smaller than the strings plus two
    /// 256-byte slots, or larger than 65,535 bytes.
    pub fn with_storage(
        mut storage: A,
        profile: &Profile<'_>,
        config: &Config<'_>,
        seed: u64,
    ) -> Result<Self> {
        storage.as_mut().zeroize();
        let mut s = SessionIn {
            st: St::empty(),
            set: settings(profile, config),
            arena: storage,
        };
        s.st.rng = seed;
        s.st.ticket = (seed ^ (seed >> 32)) as u32;
        s.configure(profile, config)?;
        Ok(s)
    }

    /// Like [`SessionIn::with_storage`], but builds the session directly in
    /// `slot` (as [`Session::new_in`] does): the C ABI builds its sessions
    /// in the caller's object this way, so init needs no session-sized
    /// temporary on a device's stack. On error `slot` holds no secrets (the
    /// storage is wiped) and must not be treated as initialized.
    ///
    /// Errors: as [`SessionIn::with_storage`].
    pub fn with_storage_in<'s>(
        slot: &'s mut MaybeUninit<Self>,
        mut storage: A,
        profile: &Profile<'_>,
        config: &Config<'_>,
        seed: u64,
    ) -> Result<&'s mut Self> {
        storage.as_mut().zeroize();
        let s = slot.write(SessionIn {
            st: St::empty(),
            set: Settings::BLANK,
            arena: storage,
        });
        s.set = settings(profile, config);
        s.st.rng = seed;
        s.st.ticket = (seed ^ (seed >> 32)) as u32;
        if let Err(e) = s.configure(profile, config) {
            s.arena.as_mut().zeroize();
            return Err(e);
        }
        Ok(s)
    }

    /// The arena size a session for `profile` and `config` needs so that
    /// each of its two token slots holds `slot` bytes: the longest access
    /// token plus refresh token plus scope it must keep (as JSON-decoded
    /// text), or 256 at least. With [`SessionIn::with_storage`].
    pub fn storage_needed(profile: &Profile<'_>, config: &Config<'_>, slot: usize) -> usize {
        strings_len(profile, config).saturating_add(slot.max(MIN_CAPACITY / 2).saturating_mul(2))
    }

    /// The bytes each of the two token slots holds (what one token
    /// response's text may use).
    pub fn slot_capacity(&self) -> usize {
        usize::from(self.st.slot_len)
    }

    /// The arena's size in bytes.
    pub fn capacity(&self) -> usize {
        self.arena.as_ref().len()
    }

    fn configure(&mut self, p: &Profile<'_>, c: &Config<'_>) -> Result<()> {
        let url = Url::parse(c.base_url)?;
        url.check_transport(c.allow_insecure)?;
        let need = |field: Field, v: &str| -> Result<()> {
            if v.is_empty() {
                Err(Error::input(field, InputError::Missing))
            } else {
                Ok(())
            }
        };
        match p.mode {
            Mode::ApiKey => need(Field::ApiKey, c.api_key)?,
            Mode::Login | Mode::Password => {
                need(Field::Username, c.username)?;
                need(Field::Password, c.password)?;
            }
            Mode::AuthorizationCode => {
                need(Field::ClientId, c.client_id)?;
                need(Field::RedirectUri, c.redirect_uri)?;
            }
            Mode::ClientCredentials => need(Field::ClientId, c.client_id)?,
            #[cfg(feature = "device-flow")]
            Mode::DeviceCode => need(Field::ClientId, c.client_id)?,
        }
        if p.mode != Mode::ApiKey && p.mode != Mode::Login && p.client_auth != ClientAuth::None {
            need(Field::ClientSecret, c.client_secret)?;
        }
        let strings = config_strings(p, c);
        for (field, v) in strings {
            if !v.is_empty() {
                check_param(field, v)?;
            }
        }
        for v in [c.token_params, c.authorize_params] {
            crate::params::check(Field::ExtraParams, v)?;
        }
        let len = strings_len(p, c);
        // Two slots of at least 256 bytes must remain.
        let cap = self.capacity();
        let min = len.saturating_add(MIN_CAPACITY);
        if min > cap || cap > usize::from(u16::MAX) {
            return Err(Error::capacity_exceeded(min, cap));
        }
        let mut pos = 0usize;
        for (_, v) in strings {
            let end = pos.saturating_add(v.len());
            if let Some(dst) = self.arena.as_mut().get_mut(pos..end) {
                crate::write::copy(dst, v.as_bytes());
            }
            pos = end.saturating_add(1); // NUL separator (already zero)
        }
        self.st.strings_len = u16::try_from(len).unwrap_or(u16::MAX);
        self.st.slot_len = u16::try_from(cap.saturating_sub(len) / 2).unwrap_or(0);
        Ok(())
    }

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

    /// The token request to send next, if any is possible without the user.
    fn next_kind(&self, now: u64) -> Option<RequestKind> {
        if self.has(F_REV_RT | F_REV_AT) {
            return Some(RequestKind::Revoke);
        }
        match self.set.mode {
            Mode::ApiKey => None,
            _ if self.has(F_CODE) => Some(RequestKind::Fetch),
            _ if self.refresh_usable(now) => Some(RequestKind::Refresh),
            Mode::AuthorizationCode => None,
            // The device flow shares the active slot and the expiry with the
            // token: it starts only once the token is gone (as the
            // authorization-code mode asks for the browser step only then).
            #[cfg(feature = "device-flow")]
            Mode::DeviceCode if self.token_valid(now) => None,
            #[cfg(feature = "device-flow")]
            Mode::DeviceCode if self.has(F_DEVICE) && now < self.st.expires_at => {
                Some(RequestKind::DevicePoll)
            }
            #[cfg(feature = "device-flow")]
            Mode::DeviceCode => Some(RequestKind::DeviceAuthorization),
            Mode::ClientCredentials | Mode::Password | Mode::Login => Some(RequestKind::Fetch),
        }
    }

    /// Earliest time the token endpoint may be used.
    fn token_gate(&self, now: u64) -> u64 {
        let gcra = match self.set.token_budget {
            Some(b) => self.st.token_gcra.ready_at(now, b),
            None => 0,
        };
        self.st.retry_at.max(self.st.token_blocked_until).max(gcra)
    }

    /// What to do next. Call it whenever time passes or a response completes.
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Action, Config, RequestKind, Session, TokenBody};
    ///
    /// let config = Config {
    ///     base_url: "https://webservices.autotask.net",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// assert_eq!(s.poll(0), Action::SendTokenRequest(RequestKind::Fetch));
    /// # let mut out = [0u8; 512];
    /// # s.write_token_request(0, &mut out)?;
    /// # let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n{\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    /// # let mut head: HeadParser = HeadParser::new();
    /// # let n = head.feed(raw)?.unwrap();
    /// # let mut body = TokenBody::new();
    /// # s.on_token_head(0, head.head().unwrap(), &mut body)?;
    /// # s.on_token_body(0, &mut body, &raw[n..])?;
    /// // A token: usable until its refresh time, then poll says send again.
    /// let Action::Ready { next } = s.poll(0) else { unreachable!() };
    /// assert!(next > 3_000_000 && next < 3_600_000);
    /// assert_eq!(s.poll(next), Action::SendTokenRequest(RequestKind::Fetch));
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn poll(&mut self, now: u64) -> Action {
        let now = self.clock(now);
        if self.st.phase != Phase::Idle {
            if now.saturating_sub(self.st.sent_at) < RESPONSE_TIMEOUT_MS {
                return Action::AwaitResponse;
            }
            self.st.last_status = 0;
            self.exchange_failed(now, 0);
        }
        self.settle_revocations();
        let failure = self.st.failure;
        if self.set.mode == Mode::ApiKey && failure.is_none() {
            return Action::Ready { next: NEVER };
        }
        let valid = self.token_valid(now);
        let due = failure.is_some()
            || !valid
            || now >= self.st.refresh_at
            || self.has(F_REV_RT | F_REV_AT);
        if !due {
            return Action::Ready {
                next: self.st.refresh_at,
            };
        }
        // After a final answer nothing is sent, but a token that is still
        // valid is served to its end.
        let next = match failure {
            Some(_) => None,
            None => self.next_kind(now),
        };
        let Some(kind) = next else {
            return match (valid, failure) {
                (true, _) => Action::Ready {
                    next: self.st.expires_at,
                },
                (false, Some(f)) => Action::Failed(f),
                (false, None) => Action::NeedAuthorizationCode,
            };
        };
        let exhausted = self.st.attempts >= self.set.backoff.max_attempts;
        // Without a valid token, an exhausted session keeps trying at the
        // slow pace `exchange_failed` set (EXHAUSTED_RETRY_MS): it never
        // latches on a server that may come back.
        if exhausted && valid && kind != RequestKind::Revoke {
            // Retries ran out while the token is still valid (say, a network
            // blip at refresh time): one last attempt shortly before expiry,
            // so a short outage does not become an outage at expiry. The
            // attempt count stays bounded (max_attempts + 1).
            let last_chance = self.last_chance_at();
            if self.has(F_LAST_CHANCE) || now < last_chance {
                let next = if self.has(F_LAST_CHANCE) {
                    self.st.expires_at
                } else {
                    last_chance
                };
                return Action::Ready { next };
            }
        }
        let gate = self.token_gate(now);
        if now < gate {
            return if valid {
                Action::Ready {
                    next: gate.min(self.st.expires_at),
                }
            } else {
                Action::Wait { until: gate }
            };
        }
        Action::SendTokenRequest(kind)
    }

    // ------------------------------------------------------------ requests

    fn endpoint(&self, path: u8) -> Result<Url<'_>> {
        Url::parse(self.string(S_BASE))?.join(self.string(path))
    }

    fn client(&self, kind: RequestKind) -> Result<Client<'_>> {
        let mut c = Client::new(self.endpoint(S_TOKEN_PATH)?, self.string(S_CLIENT_ID));
        let secret = self.string(S_SECRET);
        c.client_secret = (!secret.is_empty()).then_some(secret);
        c.auth = self.set.client_auth;
        c.format = self.set.format;
        // A refresh asks for no scope, which means the scope granted (RFC
        // 6749 §6): the configured one may be more than the server granted
        // (oidc-provider drops `offline_access` without consent), and asking
        // for more is `invalid_scope`, which would cost the refresh token.
        let scope = self.string(S_SCOPE);
        c.scope = (!scope.is_empty() && kind != RequestKind::Refresh).then_some(scope);
        let opt = |i| Some(self.string(i)).filter(|v| !v.is_empty());
        c.resource = opt(S_RESOURCE);
        c.audience = opt(S_AUDIENCE);
        c.extra_params = opt(S_TOKEN_PARAMS);
        c.allow_insecure = self.set.allow_insecure;
        Ok(c)
    }

    /// When the one attempt after exhaustion goes out: `min(10 s, 5 %)` of
    /// the lifetime before expiry.
    fn last_chance_at(&self) -> u64 {
        let margin = secs_to_ms(self.st.lifetime_s / 20).min(10_000);
        self.st.expires_at.saturating_sub(margin)
    }

    fn sent(&mut self, now: u64, kind: RequestKind) {
        crate::trace::decision!(
            "fieldauth: token request sent ({}), attempt {}",
            crate::trace::kind(kind),
            self.st.attempts.saturating_add(1)
        );
        if self.st.attempts >= self.set.backoff.max_attempts {
            self.set_flag(F_LAST_CHANCE, true);
        }
        self.st.phase = Phase::Sent;
        self.st.kind = kind;
        self.st.sent_at = now;
        if let Some(b) = self.set.token_budget {
            self.st.token_gcra.take(now, b);
        }
    }

    /// Writes the token request [`Action::SendTokenRequest`] asked for, as
    /// complete HTTP/1.1 bytes, and marks it in flight (only one is ever in
    /// flight). Returns its length.
    ///
    /// Errors: [`Error::WrongState`] if no token request is due (poll first)
    /// or one is in flight; [`Error::BufferTooSmall`] with the size needed
    /// (nothing is marked in flight); configuration errors.
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Action, Config, RequestKind, Session, TokenBody};
    ///
    /// let config = Config {
    ///     base_url: "https://webservices.autotask.net",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// let mut out = [0u8; 512];
    /// let n = s.write_token_request(0, &mut out)?;
    /// assert!(out[..n].starts_with(b"POST /ATServicesRest/oauth/token HTTP/1.1\r\n"));
    /// assert_eq!(s.poll(1), Action::AwaitResponse); // one request in flight
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn write_token_request(&mut self, now: u64, buf: &mut [u8]) -> Result<usize> {
        let (now, kind) = self.due_request(now)?;
        let n = {
            let client = self.client(kind)?;
            self.request_for(&client, kind)?.write_http(buf)?
        };
        self.sent(now, kind);
        Ok(n)
    }

    /// Like [`Session::write_token_request`], but returns the request as
    /// parts for hosts with their own HTTP client; the URL to send it to is
    /// [`Session::token_request_url`].
    pub fn write_token_request_parts<'b>(
        &mut self,
        now: u64,
        buf: &'b mut [u8],
    ) -> Result<Parts<'b>> {
        let (now, kind) = self.due_request(now)?;
        let parts = {
            let client = self.client(kind)?;
            self.request_for(&client, kind)?.write_parts(buf)?
        };
        self.sent(now, kind);
        Ok(parts)
    }

    /// Writes the token request window by window, for devices whose buffer
    /// is smaller than the request (as small as 128 bytes): call with
    /// `offset` 0 (which checks that a request is due and marks it in
    /// flight), send `written` bytes, and call again with `offset +=
    /// written` until `offset` reaches `total`. Every window is cut from the
    /// same request.
    ///
    /// Errors: [`Error::WrongState`] if `offset` is 0 and no request is due,
    /// or `offset` is not 0 and no request is in flight; input errors.
    pub fn write_token_request_window(
        &mut self,
        now: u64,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<Window> {
        let (now, kind) = if offset == 0 {
            self.due_request(now)?
        } else if self.st.phase == Phase::Sent {
            (self.clock(now), self.st.kind)
        } else {
            return Err(Error::WrongState);
        };
        let win = {
            let client = self.client(kind)?;
            self.request_for(&client, kind)?
                .write_http_window(offset, buf)?
        };
        if offset == 0 {
            self.sent(now, kind);
        }
        Ok(win)
    }

    /// The token request due at `now`, or [`Error::WrongState`].
    fn due_request(&mut self, now: u64) -> Result<(u64, RequestKind)> {
        let now = self.clock(now);
        match self.poll(now) {
            Action::SendTokenRequest(kind) => Ok((now, kind)),
            _ => Err(Error::WrongState),
        }
    }

    fn request_for<'c>(&'c self, client: &'c Client<'c>, kind: RequestKind) -> Result<Request<'c>> {
        let (access, refresh) = (self.active_text(0), self.active_text(1));
        let grant = match kind {
            RequestKind::Refresh => Grant::RefreshToken {
                refresh_token: refresh,
            },
            #[cfg(feature = "device-flow")]
            RequestKind::DeviceAuthorization => Grant::DeviceAuthorization,
            // In device mode the active slot's first span is the device code.
            #[cfg(feature = "device-flow")]
            RequestKind::DevicePoll => Grant::DeviceCode {
                device_code: access,
            },
            #[cfg(not(feature = "device-flow"))]
            RequestKind::DeviceAuthorization | RequestKind::DevicePoll => {
                return Err(Error::WrongState)
            }
            RequestKind::Revoke => match self.set.revoke_style {
                RevokeStyle::Bearer => Grant::RevokeBearer { token: access },
                _ if self.revoking_refresh() => Grant::Revoke {
                    token: refresh,
                    hint: Some(TokenTypeHint::RefreshToken),
                },
                _ => Grant::Revoke {
                    token: access,
                    hint: Some(TokenTypeHint::AccessToken),
                },
            },
            RequestKind::Fetch => match self.set.mode {
                Mode::Login => Grant::Login {
                    username: self.string(S_USER),
                    password: self.string(S_PASS),
                },
                Mode::Password => Grant::Password {
                    username: self.string(S_USER),
                    password: self.string(S_PASS),
                },
                Mode::AuthorizationCode => {
                    let redirect = self.string(S_REDIRECT);
                    Grant::AuthorizationCode {
                        code: self.text(self.st.code),
                        redirect_uri: (!redirect.is_empty()).then_some(redirect),
                        code_verifier: (self.has(F_PKCE) && self.st.verifier.len > 0)
                            .then(|| self.text(self.st.verifier)),
                    }
                }
                _ => Grant::ClientCredentials,
            },
        };
        let endpoint = match kind {
            RequestKind::DeviceAuthorization => self.endpoint(S_DEVICE_PATH)?,
            RequestKind::Revoke => self.endpoint(S_REVOKE_PATH)?,
            _ => client.endpoint,
        };
        Ok(client.request_to(endpoint, grant))
    }

    /// The URL the current or next token request goes to (for hosts that use
    /// [`Session::write_token_request_parts`]), written into `buf`.
    pub fn token_request_url(&self, buf: &mut [u8]) -> Result<usize> {
        let url = match self.st.kind {
            RequestKind::DeviceAuthorization => self.endpoint(S_DEVICE_PATH)?,
            RequestKind::Revoke => self.endpoint(S_REVOKE_PATH)?,
            _ => self.endpoint(S_TOKEN_PATH)?,
        };
        url.write(buf)
    }

    // ------------------------------------------------------------ responses

    /// The response head of the token request in flight arrived. `body`
    /// (caller storage, see [`TokenBody`]) is reset for this response; pass
    /// it to [`on_token_body`](Self::on_token_body) and
    /// [`on_token_eof`](Self::on_token_eof).
    ///
    /// Errors: [`Error::WrongState`] if no token request is waiting for its
    /// head.
    ///
    /// A whole exchange, the response read in small pieces:
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Action, Config, RequestKind, Session, TokenBody};
    ///
    /// let config = Config {
    ///     base_url: "https://webservices.autotask.net",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// use fieldauth::session::Event;
    /// let mut out = [0u8; 512];
    /// s.write_token_request(0, &mut out)?;
    /// let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n\
    ///     {\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    /// let mut head: HeadParser = HeadParser::new();
    /// let n = head.feed(raw)?.expect("a complete head");
    /// let mut body = TokenBody::new();
    /// s.on_token_head(10, head.head().unwrap(), &mut body)?;
    /// let mut event = None;
    /// for piece in raw[n..].chunks(16) {
    ///     event = s.on_token_body(10, &mut body, piece)?.event.or(event);
    /// }
    /// assert!(matches!(event, Some(Event::TokenIssued { lifetime_s: 3600, .. })));
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn on_token_head(
        &mut self,
        now: u64,
        head: &ResponseHead,
        body: &mut TokenBody,
    ) -> Result<()> {
        let now = self.clock(now);
        if self.st.phase != Phase::Sent {
            return Err(Error::WrongState);
        }
        self.learn_limits(now, head, true);
        self.st.last_status = head.status;
        self.st.last_json = head.content_type_json;
        let expect = match self.st.kind {
            #[cfg(feature = "device-flow")]
            RequestKind::DeviceAuthorization => Expect::DeviceAuthorization,
            RequestKind::Revoke => Expect::Revocation,
            _ => Expect::Token,
        };
        self.st.ticket = match self.st.ticket.wrapping_add(1) {
            0 => 1,
            t => t,
        };
        *body = TokenBody {
            parser: BodyParser::new(expect, head.status, self.set.keys),
            reader: BodyReader::new(head.framing()),
            ticket: self.st.ticket,
        };
        // The staging slot receives the response; an authorization code in
        // it was sent and is single-use, so it goes too.
        let staging = self.slot_range(self.st.active ^ 1);
        self.wipe(staging);
        self.set_flag(F_CODE, false);
        self.st.phase = Phase::Body;
        Ok(())
    }

    /// Feeds a piece of the token response body (after the head), with the
    /// `body` given to [`on_token_head`](Self::on_token_head). When the body
    /// is complete the session acts on it and returns the [`Event`].
    ///
    /// Errors: [`Error::WrongState`] outside a body, or if `body` is not the
    /// one this exchange's head went to (nothing changes); malformed framing
    /// or JSON errors — the exchange then counts as failed (a retry is
    /// scheduled; a valid token stays valid) and the error is returned for
    /// logging.
    pub fn on_token_body(
        &mut self,
        now: u64,
        body: &mut TokenBody,
        chunk: &[u8],
    ) -> Result<Progress> {
        if self.st.phase != Phase::Body || body.ticket != self.st.ticket {
            return Err(Error::WrongState);
        }
        let now = self.clock(now);
        let mut consumed = 0usize;
        let mut rest = chunk;
        while !body.reader.is_done() {
            let (n, data) = match body.reader.next(rest) {
                Ok(x) => x,
                Err(e) => return Err(self.abort(now, e)),
            };
            if n == 0 {
                break;
            }
            let slot = self.slot_range(self.st.active ^ 1);
            let storage = self.arena.as_mut().get_mut(slot).unwrap_or(&mut []);
            if let Err(e) = body.parser.feed(storage, data) {
                return Err(self.abort(now, e));
            }
            consumed = consumed.saturating_add(n);
            rest = rest.get(n..).unwrap_or(&[]);
        }
        let event = if body.reader.is_done() {
            Some(self.complete(now, body)?)
        } else {
            None
        };
        Ok(Progress { consumed, event })
    }

    /// The connection closed. Completes a close-delimited body (read with
    /// `body`, the state given to [`on_token_head`](Self::on_token_head));
    /// anything else in flight counts as a failed exchange.
    ///
    /// Errors: [`Error::WrongState`] with no exchange in flight, or if `body`
    /// is not this exchange's (nothing changes); [`Error::Transport`] for a
    /// body cut short (the exchange failed; a retry is scheduled).
    pub fn on_token_eof(&mut self, now: u64, body: &mut TokenBody) -> Result<Event> {
        let foreign = self.st.phase == Phase::Body && body.ticket != self.st.ticket;
        if self.st.phase == Phase::Idle || foreign {
            return Err(Error::WrongState);
        }
        let now = self.clock(now);
        match self.st.phase {
            Phase::Body if body.reader.finish().is_ok() => self.complete(now, body),
            _ => Err(self.abort(now, Error::Transport)),
        }
    }

    /// The token request failed at the transport (connect, TLS, write, read,
    /// timeout). Schedules a retry; a valid token stays valid.
    pub fn on_transport_error(&mut self, now: u64) -> Event {
        let now = self.clock(now);
        self.st.last_status = 0;
        self.exchange_failed(now, 0)
    }

    fn abort(&mut self, now: u64, e: Error) -> Error {
        if let Error::CapacityExceeded { needed, .. } = e {
            self.st.slot_needed = needed;
        }
        self.exchange_failed(now, 0);
        e
    }

    /// A failed exchange (transport, malformed or cut-short response): the
    /// staging slot may hold part of a token, so it is wiped; then back off.
    fn exchange_failed(&mut self, now: u64, status: u16) -> Event {
        let staging = self.slot_range(self.st.active ^ 1);
        if !self.has(F_CODE) {
            self.wipe(staging);
        }
        self.back_off(now, status)
    }

    /// Schedules the retry of a failed token request: full-jitter
    /// exponential backoff, and once `max_attempts` have failed with no
    /// valid token left, one attempt per [`EXHAUSTED_RETRY_MS`] (its upper
    /// half), for as long as it takes.
    fn back_off(&mut self, now: u64, status: u16) -> Event {
        self.st.phase = Phase::Idle;
        self.st.attempts = self.st.attempts.saturating_add(1);
        let b = self.set.backoff;
        let (floor, bound) = if self.st.attempts >= b.max_attempts && !self.token_valid(now) {
            (EXHAUSTED_RETRY_MS / 2, EXHAUSTED_RETRY_MS / 2)
        } else {
            let shift = u32::from(self.st.attempts.saturating_sub(1)).min(16);
            (0, b.base_ms.saturating_mul(1u32 << shift).min(b.cap_ms))
        };
        let delay = floor.saturating_add(random_upto(&mut self.st.rng, bound));
        self.st.retry_at = now.saturating_add(u64::from(delay));
        let at = self.st.retry_at.max(self.st.token_blocked_until);
        crate::trace::decision!(
            "fieldauth: token request failed (HTTP {}, 0: transport): retry at {} ms",
            status,
            at
        );
        Event::Retrying { status, at }
    }

    /// Whether the revocation in flight (or next) names the refresh token.
    fn revoking_refresh(&self) -> bool {
        self.set.revoke_style == RevokeStyle::Rfc7009 && self.has(F_REV_RT) && self.has(F_RT)
    }

    /// Drops pending revocations whose token is gone (an API 401 may have
    /// dropped the access token since it was asked for; a provider that
    /// revokes by Bearer can name only the access token) and, when none is
    /// left of a [`Revocation::Grant`] or [`Revocation::Both`], ends the
    /// session here.
    fn settle_revocations(&mut self) {
        let (rt, at) = match self.set.revoke_style {
            RevokeStyle::None => (false, false),
            RevokeStyle::Bearer => (false, self.has(F_TOKEN)),
            RevokeStyle::Rfc7009 => (self.has(F_RT), self.has(F_TOKEN)),
        };
        if !rt {
            self.set_flag(F_REV_RT, false);
        }
        if !at {
            self.set_flag(F_REV_AT, false);
        }
        if self.has(F_REVOKE) && !self.has(F_REV_RT | F_REV_AT) {
            self.revoked();
        }
    }

    /// A revocation request was answered (revoked, or refused with an RFC
    /// error: the token is forgotten here all the same).
    fn revocation_done(&mut self) -> Event {
        if self.revoking_refresh() {
            self.set_flag(F_REV_RT, false);
            self.drop_refresh_token();
        } else {
            self.set_flag(F_REV_AT, false);
            self.drop_access_token();
        }
        if self.has(F_REVOKE) && !self.has(F_REV_RT | F_REV_AT) {
            return self.revoked();
        }
        self.settle_revocations();
        Event::Revoked
    }

    /// The tokens are gone (revoked, or revocation refused): wipe both
    /// slots and report [`Failure::Revoked`].
    fn revoked(&mut self) -> Event {
        let all = self.slot_range(0).start..self.capacity();
        self.wipe(all);
        // An authorization code waiting in the staging slot is gone too.
        self.st.flags &= !(F_TOKEN | F_RT | F_REVOKE | F_REV_RT | F_REV_AT | F_DEVICE | F_CODE);
        self.fail(Failure::Revoked);
        Event::Revoked
    }

    fn fail(&mut self, f: Failure) -> Event {
        self.st.failure = Some(f);
        self.st.phase = Phase::Idle;
        // Logged here (also for failures outside a token response).
        crate::trace::decision!(
            "fieldauth: final failure: {} (restart() after fixing the cause)",
            crate::trace::failure(f)
        );
        Event::Failed(f)
    }

    /// The body is complete: act on it (and log what it led to).
    fn complete(&mut self, now: u64, body: &mut TokenBody) -> Result<Event> {
        let r = self.complete_inner(now, body);
        if let Ok(ev) = &r {
            crate::trace::event(ev);
        }
        r
    }

    fn complete_inner(&mut self, now: u64, body: &mut TokenBody) -> Result<Event> {
        let slot = self.slot_range(self.st.active ^ 1);
        let storage = self.arena.as_ref().get(slot.clone()).unwrap_or(&[]);
        let outcome = match body.parser.finish(storage) {
            Ok(o) => o,
            Err(e) => return Err(self.abort(now, e)),
        };
        self.st.phase = Phase::Idle;
        let kind = self.st.kind;
        let base = u16::try_from(slot.start).unwrap_or(0);
        match outcome.view(storage) {
            Response::Token(t) => {
                let lifetime = t.expires_in.unwrap_or(self.set.default_lifetime_s);
                let rt_lifetime = t.refresh_expires_in;
                // An empty `refresh_token` is none: it could never be sent.
                let has_new_rt = t.refresh_token.is_some_and(|r| !r.is_empty());
                Ok(self.commit_token(now, kind, &outcome, base, lifetime, rt_lifetime, has_new_rt))
            }
            #[cfg(feature = "device-flow")]
            Response::DeviceAuthorization(d) => {
                let interval = d.interval.unwrap_or(5);
                let expires = d.expires_in;
                self.flip(
                    &outcome,
                    base,
                    [
                        Member::DeviceCode,
                        Member::UserCode,
                        Member::VerificationUri,
                        Member::VerificationUriComplete,
                    ],
                );
                self.st.flags = (self.st.flags & !(F_TOKEN | F_RT)) | F_DEVICE;
                self.st.device_interval_s = interval.max(1).min(self.set.max_wait_s);
                self.st.expires_at = self.st.sent_at.saturating_add(secs_to_ms(expires));
                self.st.retry_at = now.saturating_add(secs_to_ms(self.st.device_interval_s));
                self.st.attempts = 0;
                Ok(Event::UserCode)
            }
            Response::Revoked => Ok(self.revocation_done()),
            Response::Error(e) => {
                let code = e.code;
                let status = e.status;
                let desc = outcome
                    .text_span(Member::ErrorDescription)
                    .unwrap_or((0, 0));
                // Set first: a path of `token_error` that wipes the slot
                // forgets it (see `wipe`).
                self.st.failure_desc = Span {
                    start: base.saturating_add(desc.0),
                    len: desc.1,
                };
                Ok(self.token_error(now, kind, code, status))
            }
        }
    }

    /// Moves the parsed members of the staging slot into the active spans and
    /// makes the staging slot active.
    fn flip(&mut self, o: &Outcome, base: u16, members: [Member; 4]) {
        let old = self.slot_range(self.st.active);
        for (span, m) in self.st.spans.iter_mut().zip(members) {
            *span = match o.text_span(m) {
                Some((s, l)) => Span {
                    start: base.saturating_add(s),
                    len: l,
                },
                None => Span::default(),
            };
        }
        self.st.active ^= 1;
        self.wipe(old);
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_token(
        &mut self,
        now: u64,
        kind: RequestKind,
        o: &Outcome,
        base: u16,
        lifetime_s: u32,
        rt_lifetime_s: Option<u32>,
        has_new_rt: bool,
    ) -> Event {
        // Keep the old refresh token when the response brings none and it is
        // still usable: copy it after the new text in the staging slot before
        // the old slot is wiped. When it does not fit, the session holds no
        // refresh token (`refreshable: false` says so) and the primary grant
        // renews the token next time.
        let mut kept_rt = None;
        if !has_new_rt && self.refresh_usable(now) {
            let old = self.st.spans.get(1).copied().unwrap_or_default();
            let used = o.text_used();
            let dst_start = usize::from(base).saturating_add(usize::from(used));
            let dst_end = dst_start.saturating_add(usize::from(old.len));
            let staging_end = self.slot_range(self.st.active ^ 1).end;
            if dst_end <= staging_end {
                let (src, dst) = (old.range(), dst_start..dst_end);
                // The slots do not overlap; copy through a bounded loop.
                for (d, s) in dst.zip(src) {
                    let b = self.arena.as_ref().get(s).copied().unwrap_or(0);
                    if let Some(x) = self.arena.as_mut().get_mut(d) {
                        *x = b;
                    }
                }
                kept_rt = Some(Span {
                    start: u16::try_from(dst_start).unwrap_or(0),
                    len: old.len,
                });
            }
        }
        let old_rt_expiry = self.st.rt_expires_at;
        self.flip(
            o,
            base,
            [
                Member::AccessToken,
                Member::RefreshToken,
                Member::Scope,
                Member::Message,
            ],
        );
        if let Some(rt) = kept_rt {
            if let Some(s) = self.st.spans.get_mut(1) {
                *s = rt;
            }
        }
        let refreshable = has_new_rt || kept_rt.is_some();
        // F_RETRIED_401 survives: only an API success re-arms the single
        // retry, so a server that rejects every new token cannot cause a loop.
        self.st.flags = (self.st.flags & !(F_DEVICE | F_CODE | F_PKCE | F_RT))
            | F_TOKEN
            | if refreshable { F_RT } else { 0 };
        // Refresh-token lifetime: as the server says; else the profile's; a
        // kept refresh token keeps its old expiry.
        self.st.rt_expires_at = if kept_rt.is_some() {
            old_rt_expiry
        } else {
            match (rt_lifetime_s, self.set.refresh_lifetime_s) {
                (Some(s), _) => self.st.sent_at.saturating_add(secs_to_ms(s)),
                (None, 0) => NEVER,
                (None, s) => self.st.sent_at.saturating_add(secs_to_ms(s)),
            }
        };
        self.st.lifetime_s = lifetime_s;
        self.st.expires_at = self.st.sent_at.saturating_add(secs_to_ms(lifetime_s));
        // Early refresh, in milliseconds (whole seconds truncated a 5 s
        // token's 10 % to nothing): min(margin, fraction of the lifetime),
        // but at least min(half the lifetime, 2 s), so that a short-lived
        // token is still usable while its replacement is fetched; plus up
        // to half that again of jitter. (`pct %` of `s` seconds is
        // `s · pct · 10` ms: no division, which Cortex-M4 lacks for 64 bits.)
        let lifetime_ms = secs_to_ms(lifetime_s);
        let fraction_ms = u64::from(lifetime_s)
            .saturating_mul(u64::from(self.set.refresh_fraction_pct))
            .saturating_mul(10);
        let floor_ms = (lifetime_ms / 2).min(SHORT_TOKEN_EARLY_MS);
        let early = secs_to_ms(self.set.refresh_margin_s).min(fraction_ms.max(floor_ms));
        let early_ms = u32::try_from(early).unwrap_or(u32::MAX);
        let jitter = random_upto(&mut self.st.rng, early_ms / 2);
        self.st.refresh_at = self
            .st
            .expires_at
            .saturating_sub(u64::from(early_ms))
            .saturating_sub(u64::from(jitter))
            .max(self.st.sent_at);
        self.st.attempts = 0;
        self.st.retry_at = 0;
        self.set_flag(F_LAST_CHANCE, false);
        if self.set.api_budget_per_token {
            self.st.api_gcra = Gcra::default();
        }
        self.st.token_gen = self.st.token_gen.wrapping_add(1);
        self.st.slot_needed = 0;
        Event::TokenIssued {
            kind,
            lifetime_s,
            refreshable,
        }
    }

    /// Acts on an error response to a token request. Which answers are final
    /// is listed at [`Failure`]; everything else is retried.
    fn token_error(&mut self, now: u64, kind: RequestKind, code: ErrorCode, status: u16) -> Event {
        // An RFC 6749 error body: an `error` member (any code).
        let rfc = code != ErrorCode::None;
        match code {
            ErrorCode::AuthorizationPending => {
                self.st.retry_at = now.saturating_add(secs_to_ms(self.st.device_interval_s));
                Event::AuthorizationPending
            }
            ErrorCode::SlowDown => {
                self.st.device_interval_s = self
                    .st
                    .device_interval_s
                    .saturating_add(5)
                    .min(self.set.max_wait_s);
                self.st.retry_at = now.saturating_add(secs_to_ms(self.st.device_interval_s));
                Event::SlowDown
            }
            ErrorCode::ExpiredToken if kind == RequestKind::DevicePoll => {
                // The device code expired: start over with a new user code.
                self.set_flag(F_DEVICE, false);
                self.back_off(now, status)
            }
            // Trouble at the server or a rate limit, whatever the code
            // (Fentu's 429 says `rate_limit_exceeded`): retry.
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => {
                self.back_off(now, status)
            }
            _ if matches!(status, 408 | 429) || status >= 500 => self.back_off(now, status),
            _ if !rfc && status != 401 => self.back_off(now, status),
            _ if kind == RequestKind::Revoke => {
                // The server will not revoke (say, `unsupported_token_type`):
                // the token is forgotten here all the same.
                self.revocation_done()
            }
            _ if kind == RequestKind::Refresh => {
                // The refresh token is no good, whatever the code: drop it
                // and use the primary grant once, right away. A valid
                // access token is served meanwhile.
                self.drop_refresh_token();
                self.st.retry_at = 0;
                Event::RefreshRejected
            }
            ErrorCode::InvalidClient => self.fail(Failure::InvalidClient),
            ErrorCode::UnauthorizedClient | ErrorCode::UnsupportedGrantType => {
                self.fail(Failure::UnauthorizedClient)
            }
            ErrorCode::InvalidScope => self.fail(Failure::InvalidScope),
            ErrorCode::AccessDenied => self.fail(Failure::AccessDenied),
            ErrorCode::InvalidGrant if self.set.mode == Mode::AuthorizationCode => {
                // The code expired or was used: the user must approve again.
                self.st.flags &= !(F_CODE | F_PKCE);
                self.st.retry_at = 0;
                Event::Failed(Failure::InvalidGrant)
            }
            ErrorCode::InvalidGrant => self.fail(Failure::InvalidGrant),
            ErrorCode::InvalidRequest => self.fail(Failure::Rejected),
            // A 401 without an error code: the login or password is wrong,
            // or the client credentials are.
            ErrorCode::None if matches!(self.set.mode, Mode::Login | Mode::Password) => {
                self.fail(Failure::InvalidGrant)
            }
            ErrorCode::None => self.fail(Failure::InvalidClient),
            // Codes that do not belong to a token endpoint, and unknown ones:
            // nothing says the request can never succeed.
            _ => self.back_off(now, status),
        }
    }

    // ------------------------------------------------------------ rate limits

    /// Learns rate-limit state from a response head: `Retry-After` (which
    /// takes precedence), `X-RateLimit-*`, IETF `RateLimit`, and 429/503.
    /// Every wait is cut to the configured cap ([`Config::max_wait_s`]); a
    /// reset that needs a "now" the session does not know (no `Date`, no
    /// wall clock) waits [`UNKNOWN_RESET_WAIT_S`].
    fn learn_limits(&mut self, now: u64, head: &ResponseHead, token_endpoint: bool) -> Option<u64> {
        let unix_now = head.date.or_else(|| self.unix_now(now));
        let unknown = u64::from(UNKNOWN_RESET_WAIT_S);
        let mut delay_s: Option<u64> = None;
        if let Some(r) = head.retry_after {
            delay_s = Some(match r {
                RetryAfter::Delay(s) => u64::from(s),
                RetryAfter::At(t) => unix_now.map_or(unknown, |u| t.saturating_sub(u)),
            });
        } else {
            let x = head.x_rate_limit;
            if x.remaining == Some(0) {
                if let Some(raw) = x.reset {
                    delay_s = Some(self.set.reset_mode.delay(raw, unix_now).unwrap_or(unknown));
                }
            }
            #[cfg(feature = "ietf-ratelimit")]
            if head.rate_limit.remaining == Some(0) {
                let d = u64::from(head.rate_limit.reset.unwrap_or(1));
                delay_s = Some(delay_s.map_or(d, |u| u.max(d)));
            }
            if delay_s.is_none() && matches!(head.status, 429 | 503) {
                // Limited without saying until when: a short pause.
                delay_s = Some(1);
            }
        }
        let cap = u64::from(self.set.max_wait_s);
        let until = now.saturating_add(delay_s?.min(cap).saturating_mul(1000));
        let slot = if token_endpoint {
            &mut self.st.token_blocked_until
        } else {
            &mut self.st.api_blocked_until
        };
        *slot = (*slot).max(until);
        Some(until)
    }

    /// Records the wall clock: `unix_ms` is the Unix time in milliseconds at
    /// monotonic time `now`. Used for epoch-based rate-limit resets when a
    /// response has no `Date`, and for snapshots.
    pub fn set_wall_clock(&mut self, now: u64, unix_ms: u64) {
        let now = self.clock(now);
        // Two's-complement difference: exact while both times are below 2^63
        // (no 128-bit arithmetic, which Cortex-M4 does in software).
        self.st.wall_offset = unix_ms.wrapping_sub(now) as i64;
        self.set_flag(F_WALL, true);
    }

    /// Unix seconds at monotonic `now`, if the wall clock is known.
    fn unix_now(&self, now: u64) -> Option<u64> {
        if !self.has(F_WALL) {
            return None;
        }
        let ms = now.wrapping_add(self.st.wall_offset as u64);
        crate::http::div1000(ms)
    }

    /// Mixes new caller randomness into the jitter generator.
    pub fn reseed(&mut self, seed: u64) {
        self.st.rng ^= seed;
        next_random(&mut self.st.rng);
    }

    // ------------------------------------------------------------ API requests

    /// Permission and credential for one API request at `now`. Counts the
    /// request against the client-side API budget when it returns
    /// [`Authorization::Send`]. Apply the credential with
    /// [`ApiCredential::write_header_line`] or
    /// [`ApiCredential::write_target`].
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Action, Config, RequestKind, Session, TokenBody};
    ///
    /// let config = Config {
    ///     base_url: "https://webservices.autotask.net",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// use fieldauth::session::Authorization;
    /// assert_eq!(s.authorize(0), Authorization::NoCredential); // no token yet
    /// # let mut out = [0u8; 512];
    /// # s.write_token_request(0, &mut out)?;
    /// # let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n{\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    /// # let mut head: HeadParser = HeadParser::new();
    /// # let n = head.feed(raw)?.unwrap();
    /// # let mut body = TokenBody::new();
    /// # s.on_token_head(0, head.head().unwrap(), &mut body)?;
    /// # s.on_token_body(0, &mut body, &raw[n..])?;
    /// let mut line = [0u8; 128];
    /// let Authorization::Send(credential) = s.authorize(100) else { unreachable!() };
    /// let n = credential.write_header_line(&mut line)?;
    /// assert_eq!(&line[..n], b"Authorization: Bearer tok\r\n");
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn authorize(&mut self, now: u64) -> Authorization<'_> {
        let now = self.clock(now);
        let usable = self.usable(now);
        let mut until = self.st.api_blocked_until;
        if let Some(b) = self.set.api_budget {
            until = until.max(self.st.api_gcra.ready_at(now, b));
        }
        // A rate limit outlasts the token it was learned with: a token that
        // merely expired during the wait still means "wait", then a new
        // token (poll fetches it meanwhile). A token that was rejected (an
        // API 401) or a final failure says "no credential" at once.
        let expired = self.has(F_TOKEN) && self.st.failure.is_none();
        if now < until && (usable || expired) {
            return Authorization::Wait { until };
        }
        if !usable {
            return Authorization::NoCredential;
        }
        if let Some(b) = self.set.api_budget {
            self.st.api_gcra.take(now, b);
        }
        Authorization::Send(self.api_credential())
    }

    /// The credential [`Session::authorize`] would hand out, without checking
    /// rate limits or counting a request; `None` when no credential is usable
    /// at the latest time the session has seen. For sizing buffers before
    /// `authorize` (the C ABI does, so a short buffer costs no budget).
    pub fn credential(&self) -> Option<ApiCredential<'_>> {
        self.usable(self.st.last_now).then(|| self.api_credential())
    }

    /// Whether a credential may be handed out at `now`: the API key unless
    /// it failed, or a token until its expiry, whatever failed since.
    fn usable(&self, now: u64) -> bool {
        if self.set.mode == Mode::ApiKey {
            self.st.failure.is_none()
        } else {
            self.token_valid(now)
        }
    }

    fn api_credential(&self) -> ApiCredential<'_> {
        let api_key = self.set.mode == Mode::ApiKey;
        let secret = if api_key {
            self.string(S_KEY)
        } else {
            self.active_text(0)
        };
        let name = self.string(S_PLACEMENT);
        match self.set.place {
            Place::Bearer if api_key => ApiCredential::ApiKey {
                scheme: Some("Bearer"),
                key: secret,
            },
            Place::Bearer => ApiCredential::Bearer(secret),
            Place::Raw => ApiCredential::ApiKey {
                scheme: None,
                key: secret,
            },
            Place::Header => ApiCredential::Header {
                name,
                value: secret,
            },
            Place::Query => ApiCredential::QueryParam {
                name,
                value: secret,
            },
        }
    }

    /// Reports the response to an API request: its head and, optionally, the
    /// first bytes of its body (used only to recognise a provider's
    /// "expired token" phrase). Learns rate limits and token invalidity.
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{Action, Config, RequestKind, Session, TokenBody};
    ///
    /// let config = Config {
    ///     base_url: "https://webservices.autotask.net",
    ///     client_id: "id",
    ///     client_secret: "secret",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// use fieldauth::session::ApiVerdict;
    /// # let mut out = [0u8; 512];
    /// # s.write_token_request(0, &mut out)?;
    /// # let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 62\r\n\r\n{\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    /// # let mut head: HeadParser = HeadParser::new();
    /// # let n = head.feed(raw)?.unwrap();
    /// # let mut body = TokenBody::new();
    /// # s.on_token_head(0, head.head().unwrap(), &mut body)?;
    /// # s.on_token_body(0, &mut body, &raw[n..])?;
    /// # let _ = s.authorize(100);
    /// let mut api: HeadParser = HeadParser::new();
    /// api.feed(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\n\r\n")?;
    /// let verdict = s.on_api_response(200, api.head().unwrap(), b"");
    /// assert_eq!(verdict, ApiVerdict::RateLimited { until: 30_200 });
    /// let mut api: HeadParser = HeadParser::new();
    /// api.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")?;
    /// // The token is dropped: poll fetches a new one; retry the request once.
    /// assert_eq!(s.on_api_response(31_000, api.head().unwrap(), b""), ApiVerdict::RetryWithNewToken);
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn on_api_response(
        &mut self,
        now: u64,
        head: &ResponseHead,
        body_prefix: &[u8],
    ) -> ApiVerdict {
        self.api_response(now, head, body_prefix, false)
    }

    /// Which token [`Session::authorize`] hands out now: read it when you
    /// send a request and give it to [`Session::on_api_response_for`] with
    /// the response, so that a late rejection of an older token leaves a
    /// newer one alone (several requests in flight while the token was
    /// renewed).
    pub fn token_id(&self) -> TokenId {
        TokenId(self.st.token_gen)
    }

    /// Like [`Session::on_api_response`], for a request sent with the token
    /// `token` ([`Session::token_id`] when it was authorized). A rejection
    /// (401, the provider's expired-token phrase) of a token that is no
    /// longer the current one drops nothing: the answer is
    /// [`ApiVerdict::RetryWithNewToken`] (send it again with the current
    /// token), and it does not count as the current token's one retry.
    /// Rate limits are learned either way.
    ///
    /// ```
    /// use fieldauth::http::HeadParser;
    /// use fieldauth::preset;
    /// use fieldauth::session::{ApiVerdict, Authorization, Config, Session, TokenBody};
    /// # let config = Config { base_url: "https://webservices.autotask.net", client_id: "id", client_secret: "secret", ..Config::default() };
    /// # let mut s: Session = Session::new(&preset::AUTOTASK, &config, 7)?;
    /// # let mut exchange = |s: &mut Session, now: u64, token: &str| -> Result<(), fieldauth::Error> {
    /// #     let mut out = [0u8; 512];
    /// #     s.write_token_request(now, &mut out)?;
    /// #     let body = format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#);
    /// #     let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    /// #     let mut head: HeadParser = HeadParser::new();
    /// #     let n = head.feed(raw.as_bytes())?.unwrap();
    /// #     let mut tb = TokenBody::new();
    /// #     s.on_token_head(now, head.head().unwrap(), &mut tb)?;
    /// #     s.on_token_body(now, &mut tb, &raw.as_bytes()[n..])?;
    /// #     Ok(())
    /// # };
    /// # let mut h: HeadParser = HeadParser::new();
    /// # h.feed(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")?;
    /// # let unauthorized = *h.head().unwrap();
    /// exchange(&mut s, 0, "old")?;
    /// assert!(matches!(s.authorize(1_000), Authorization::Send(_)));
    /// let sent_with = s.token_id(); // a slow request goes out with "old"
    /// // Meanwhile the token is renewed at its refresh time...
    /// let fieldauth::session::Action::Ready { next } = s.poll(1_000) else { unreachable!() };
    /// exchange(&mut s, next, "new")?;
    /// // ...and the slow request's 401 arrives late: "new" stays.
    /// assert_eq!(
    ///     s.on_api_response_for(next + 1, &unauthorized, b"", sent_with),
    ///     ApiVerdict::RetryWithNewToken
    /// );
    /// assert!(s.status().usable);
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn on_api_response_for(
        &mut self,
        now: u64,
        head: &ResponseHead,
        body_prefix: &[u8],
        token: TokenId,
    ) -> ApiVerdict {
        let stale = token.0 != self.st.token_gen;
        self.api_response(now, head, body_prefix, stale)
    }

    fn api_response(
        &mut self,
        now: u64,
        head: &ResponseHead,
        body_prefix: &[u8],
        stale: bool,
    ) -> ApiVerdict {
        let now = self.clock(now);
        let limited = self.learn_limits(now, head, false);
        let forbidden_exhausted = head.status == 403 && head.x_rate_limit.remaining == Some(0);
        if matches!(head.status, 429 | 503) || forbidden_exhausted {
            let until = limited.unwrap_or(now).max(self.st.api_blocked_until);
            self.st.api_blocked_until = until;
            crate::trace::decision!(
                "fieldauth: API rate limit (HTTP {}): requests wait until {} ms",
                head.status,
                until
            );
            return ApiVerdict::RateLimited { until };
        }
        let phrase = self.string(S_PHRASE);
        let expired_phrase = head.status == 400
            && !phrase.is_empty()
            && contains_ignore_case(body_prefix, phrase.as_bytes());
        let rejected = head.status == 401 || expired_phrase;
        if !rejected {
            if (200..=399).contains(&head.status) {
                self.set_flag(F_RETRIED_401, false);
            }
            return if head.status == 403 {
                ApiVerdict::Forbidden
            } else {
                ApiVerdict::Ok
            };
        }
        if self.set.mode == Mode::ApiKey {
            crate::trace::decision!(
                "fieldauth: the API rejected the API key (HTTP {})",
                head.status
            );
            self.fail(Failure::InvalidKey);
            return ApiVerdict::InvalidKey;
        }
        if head.bearer == Some(ErrorCode::InsufficientScope) {
            return ApiVerdict::Forbidden;
        }
        if stale {
            // An older token was rejected: the current one is not in question.
            return ApiVerdict::RetryWithNewToken;
        }
        if !self.has(F_TOKEN) {
            // No token is active: the rejection of another request in flight
            // with the same token already dropped it. This request was not
            // retried yet, so it may be retried (no loop: nothing can be
            // sent before a new token arrives, and that one counts again).
            return ApiVerdict::RetryWithNewToken;
        }
        // Drop the access token (keep a refresh token: it may still work).
        crate::trace::decision!(
            "fieldauth: the API rejected the token (HTTP {}): dropped, a new one is fetched",
            head.status
        );
        self.drop_access_token();
        if self.has(F_RETRIED_401) {
            ApiVerdict::Unauthorized
        } else {
            self.set_flag(F_RETRIED_401, true);
            ApiVerdict::RetryWithNewToken
        }
    }

    // ------------------------------------------------------------ flows

    /// Authorization-code mode: writes the URL to open in a browser, with a
    /// `state` from `state_random` (16–48 bytes) and, with the `pkce`
    /// feature, a PKCE S256 verifier from `verifier_random` (32–96 bytes;
    /// ignored without the feature). Both come from the caller's RNG; the
    /// session keeps verifier and state for [`Session::set_authorization_code`].
    pub fn authorization_url(
        &mut self,
        verifier_random: &[u8],
        state_random: &[u8],
        buf: &mut [u8],
    ) -> Result<usize> {
        if self.set.mode != Mode::AuthorizationCode || self.st.phase != Phase::Idle {
            return Err(Error::WrongState);
        }
        #[cfg(feature = "pkce")]
        let v = CodeVerifier::from_random(verifier_random)?;
        #[cfg(not(feature = "pkce"))]
        let _ = verifier_random;
        let s = PkceState::from_random(state_random)?;
        let n = {
            let endpoint = self.endpoint(S_AUTH_PATH)?;
            let mut a = AuthorizationRequest::new(endpoint, self.string(S_CLIENT_ID));
            let redirect = self.string(S_REDIRECT);
            a.redirect_uri = (!redirect.is_empty()).then_some(redirect);
            let scope = self.string(S_SCOPE);
            a.scope = (!scope.is_empty()).then_some(scope);
            let opt = |i| Some(self.string(i)).filter(|v: &&str| !v.is_empty());
            a.resource = opt(S_RESOURCE);
            a.extra_params = opt(S_AUTH_PARAMS);
            a.state = Some(s.as_str());
            #[cfg(feature = "pkce")]
            {
                a.pkce = Some((&v, ChallengeMethod::S256));
            }
            a.allow_insecure = self.set.allow_insecure;
            a.write(buf)?
        };
        // Keep verifier and state in the PKCE zone (after the strings).
        let zone_end = usize::from(self.st.strings_len);
        let zone = zone_end.saturating_sub(PKCE_ZONE)..zone_end;
        self.wipe(zone.clone());
        #[cfg(feature = "pkce")]
        let vb = v.as_str().as_bytes();
        #[cfg(not(feature = "pkce"))]
        let vb: &[u8] = &[];
        let sb = s.as_str().as_bytes();
        let v_end = zone.start.saturating_add(vb.len());
        let s_end = v_end.saturating_add(sb.len());
        if s_end > zone.end {
            return Err(Error::capacity_exceeded(
                s_end.saturating_sub(zone.start),
                PKCE_ZONE,
            ));
        }
        if let Some(d) = self.arena.as_mut().get_mut(zone.start..v_end) {
            crate::write::copy(d, vb);
        }
        if let Some(d) = self.arena.as_mut().get_mut(v_end..s_end) {
            crate::write::copy(d, sb);
        }
        self.st.verifier = span(zone.start, vb.len());
        self.st.state = span(v_end, sb.len());
        self.set_flag(F_PKCE, true);
        Ok(n)
    }

    /// Authorization-code mode: the `code` and `state` the redirect brought.
    /// The state must match the one [`Session::authorization_url`] created
    /// (constant-time comparison). The code exchange is the next token
    /// request.
    pub fn set_authorization_code(&mut self, code: &str, state: &str) -> Result<()> {
        if self.set.mode != Mode::AuthorizationCode
            || !self.has(F_PKCE)
            || self.st.phase != Phase::Idle
        {
            return Err(Error::WrongState);
        }
        if !crate::callback::same_secret(self.text(self.st.state), state) {
            return Err(Error::input(Field::State, InputError::InvalidCharacter));
        }
        check_param(Field::Code, code)?;
        let staging = self.slot_range(self.st.active ^ 1);
        if code.len() > staging.len() {
            return Err(Error::capacity_exceeded(code.len(), staging.len()));
        }
        self.wipe(staging.clone());
        let end = staging.start.saturating_add(code.len());
        if let Some(d) = self.arena.as_mut().get_mut(staging.start..end) {
            crate::write::copy(d, code.as_bytes());
        }
        self.st.code = span(staging.start, code.len());
        self.set_flag(F_CODE, true);
        self.st.failure = None;
        self.st.attempts = 0;
        self.st.retry_at = 0;
        Ok(())
    }

    /// Authorization-code mode: the redirect back from the authorization
    /// server, as the URL (or its query) the browser was sent to. Reads
    /// `code`, `state`, `iss`, `error` ([`callback::parse`](crate::callback::parse)), checks `state`
    /// against the one [`Session::authorization_url`] created (constant
    /// time) and, when `expected_issuer` is given (the server advertises
    /// RFC 9207 `authorization_response_iss_parameter_supported`; pass its
    /// issuer identifier), that `iss` is present and equal. Then keeps the
    /// code: the code exchange is the next token request, as after
    /// [`Session::set_authorization_code`].
    ///
    /// Errors (the session keeps its verifier and state, so a genuine
    /// redirect may still follow a forged one): `WrongState` outside
    /// code mode, before `authorization_url`, while an exchange runs or a
    /// code is already waiting; the [`callback::parse`](crate::callback::parse) errors;
    /// `InvalidInput { State | Issuer, Mismatch | Missing }` for a
    /// response to another login or from another server;
    /// `Response(AuthorizationDenied(code))` when the server sent `error`
    /// (e.g. the user declined: `access_denied`); `CapacityExceeded` when
    /// the decoded values do not fit a token slot.
    ///
    /// ```
    /// use fieldauth::preset::{self, Mode, Profile};
    /// use fieldauth::session::{Action, Config, RequestKind, Session};
    ///
    /// use fieldauth::request::ClientAuth;
    ///
    /// // A public client (PKCE, no secret).
    /// let profile = Profile {
    ///     mode: Mode::AuthorizationCode,
    ///     client_auth: ClientAuth::None,
    ///     ..preset::custom()
    /// };
    /// let config = Config {
    ///     base_url: "https://as.example",
    ///     client_id: "app",
    ///     redirect_uri: "https://app.example/cb",
    ///     ..Config::default()
    /// };
    /// let mut s: Session = Session::new(&profile, &config, 7)?;
    /// let mut url = [0u8; 512];
    /// let n = s.authorization_url(&[7; 32], &[9; 16], &mut url)?;
    /// // The state the session chose is in the URL it wrote; the browser
    /// // comes back with it (here, read from that URL).
    /// let url = std::str::from_utf8(&url[..n]).unwrap();
    /// let state = url.split(['?', '&']).find_map(|p| p.strip_prefix("state=")).unwrap();
    /// assert!(s.on_authorization_callback("https://app.example/cb?code=c0de&state=forged", None).is_err());
    /// let redirect = format!("https://app.example/cb?code=c0de&state={state}&iss=https%3A%2F%2Fas.example");
    /// s.on_authorization_callback(&redirect, Some("https://as.example"))?;
    /// assert_eq!(s.poll(0), Action::SendTokenRequest(RequestKind::Fetch));
    /// # Ok::<(), fieldauth::Error>(())
    /// ```
    pub fn on_authorization_callback(
        &mut self,
        url_or_query: &str,
        expected_issuer: Option<&str>,
    ) -> Result<()> {
        use crate::callback::{self, Callback, P_CODE, P_ERROR, P_ISS, P_STATE};
        if self.set.mode != Mode::AuthorizationCode
            || !self.has(F_PKCE)
            || self.has(F_CODE)
            || self.st.phase != Phase::Idle
        {
            return Err(Error::WrongState);
        }
        let staging = self.slot_range(self.st.active ^ 1);
        // The staging slot holds nothing while no code waits; the values
        // are decoded there (a failure description there is forgotten).
        self.wipe(staging.clone());
        let wanted = (1 << P_CODE) | (1 << P_STATE) | (1 << P_ISS) | (1 << P_ERROR);
        let parsed = match self.arena.as_mut().get_mut(staging.clone()) {
            Some(buf) => callback::parse_spans(url_or_query, buf, wanted),
            None => Err(Error::WrongState),
        };
        let spans = match parsed {
            Ok(spans) => spans,
            Err(e) => {
                self.wipe(staging.clone());
                return Err(match e {
                    Error::BufferTooSmall { needed } => {
                        Error::capacity_exceeded(needed as usize, staging.len())
                    }
                    e => e,
                });
            }
        };
        let checked = {
            let slot = self.arena.as_ref().get(staging.clone()).unwrap_or_default();
            spans.callback(slot).and_then(|cb| {
                // A denial is an error here, so what passes is a code.
                cb.check(self.text(self.st.state), expected_issuer)?;
                if let Callback::Code { code, .. } = cb {
                    check_param(Field::Code, code)?;
                }
                // Relative to the slot.
                Ok(spans.range(P_CODE).unwrap_or_default())
            })
        };
        let code = match checked {
            Ok(code) => code,
            Err(e) => {
                self.wipe(staging);
                return Err(e);
            }
        };
        // Move the code to the slot's start and wipe the rest.
        let from = staging.start.saturating_add(code.start);
        let arena = self.arena.as_mut();
        for k in 0..code.len() {
            let b = arena.get(from.saturating_add(k)).copied().unwrap_or(0);
            if let Some(d) = arena.get_mut(staging.start.saturating_add(k)) {
                *d = b;
            }
        }
        let end = staging.start.saturating_add(code.len());
        self.wipe(end..staging.end);
        self.st.code = span(staging.start, code.len());
        self.set_flag(F_CODE, true);
        self.st.failure = None;
        self.st.attempts = 0;
        self.st.retry_at = 0;
        Ok(())
    }

    /// Device mode: what to show the user while the session polls.
    pub fn device_display(&self) -> Option<DeviceDisplay<'_>> {
        if !self.has(F_DEVICE) {
            return None;
        }
        let complete = self.active_text(3);
        Some(DeviceDisplay {
            user_code: self.active_text(1),
            verification_uri: self.active_text(2),
            verification_uri_complete: (!complete.is_empty()).then_some(complete),
            expires_at: self.st.expires_at,
        })
    }

    /// Asks the session to revoke its tokens (next token request):
    /// [`Revocation::Grant`], see [`Session::revoke_tokens`].
    pub fn revoke(&mut self) {
        self.revoke_tokens(Revocation::Grant);
    }

    /// Asks the session to revoke `which` tokens: the next token requests
    /// are the revocations ([`RequestKind::Revoke`], one per token), each
    /// token forgotten once its request is answered (or refused). After
    /// [`Revocation::Grant`] and [`Revocation::Both`] the session reports
    /// [`Failure::Revoked`] until [`Session::restart`]; after
    /// [`Revocation::Access`] it goes on (a refresh token, or the primary
    /// grant, gets a new access token when one is needed). A token the
    /// provider cannot revoke (no revocation endpoint; a `Bearer`-style
    /// endpoint names only the access token) is just wiped here.
    pub fn revoke_tokens(&mut self, which: Revocation) {
        let bits = match which {
            Revocation::Grant if self.has(F_RT) => F_REV_RT | F_REVOKE,
            Revocation::Grant => F_REV_AT | F_REVOKE,
            Revocation::Access if !self.has(F_TOKEN) => return, // nothing to revoke
            Revocation::Access => F_REV_AT,
            Revocation::Both => F_REV_RT | F_REV_AT | F_REVOKE,
        };
        self.st.flags |= bits;
        self.st.retry_at = 0;
        // A Bearer-style endpoint revokes the grant with the access token.
        if self.set.revoke_style == RevokeStyle::Bearer && self.has(F_REV_RT) {
            self.st.flags = (self.st.flags & !F_REV_RT) | F_REV_AT;
        }
        if which == Revocation::Access && self.set.revoke_style == RevokeStyle::None {
            self.set_flag(F_REV_AT, false);
            self.drop_access_token();
        }
        self.settle_revocations();
    }

    /// Leaves a permanent failure (after the cause was fixed elsewhere, or
    /// to log in again after a revocation) and resets the retry counter.
    ///
    /// It also lifts every server-imposed block (`Retry-After`, rate-limit
    /// resets) and forgets the failure's description.
    pub fn restart(&mut self) {
        self.st.failure = None;
        self.st.attempts = 0;
        self.st.retry_at = 0;
        self.st.token_blocked_until = 0;
        self.st.api_blocked_until = 0;
        self.st.failure_desc = Span::default();
        self.st.flags &= !F_LAST_CHANCE;
    }

    /// Wipes every secret and token and leaves the session unusable (it
    /// reports [`Failure::Revoked`]). Drop does the same wiping.
    pub fn clear(&mut self) {
        self.arena.as_mut().zeroize();
        self.st = St::empty();
        self.st.failure = Some(Failure::Revoked);
    }

    /// State for display and logs; contains no secrets.
    pub fn status(&self) -> Status {
        let api_key = self.set.mode == Mode::ApiKey;
        let now = self.st.last_now;
        Status {
            usable: self.usable(now),
            expires_at: if api_key { NEVER } else { self.st.expires_at },
            refresh_at: if api_key { NEVER } else { self.st.refresh_at },
            refreshable: self.has(F_RT),
            failed_attempts: self.st.attempts,
            api_blocked_until: self.st.api_blocked_until,
            token_blocked_until: self.st.token_blocked_until,
            failure: self.st.failure,
            last_http_status: self.st.last_status,
            last_content_json: self.st.last_json,
            slot_needed: self.st.slot_needed,
            slot_capacity: u32::from(self.st.slot_len),
        }
    }

    /// The server's `error_description` for the last token error, if it
    /// sent one: kept until the next token exchange starts (or the session
    /// is restarted, restored or cleared). It lies in the staging slot, where
    /// the next response goes, and is forgotten whenever that slot is reused.
    //
    // Why it can never show token bytes: the span is set only from the
    // error response just parsed into the staging slot, and every later
    // write into that slot (the next response, an authorization code, a
    // restore) is preceded by a `wipe` of it, which drops the span.
    pub fn failure_description(&self) -> Option<&str> {
        let d = self.text(self.st.failure_desc);
        (!d.is_empty()).then_some(d)
    }

    /// The scope the server granted with the active token, if it said.
    pub fn granted_scope(&self) -> Option<&str> {
        if !self.has(F_TOKEN) {
            return None;
        }
        let s = self.active_text(2);
        (!s.is_empty()).then_some(s)
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
        }
    }
}

/// The configuration strings the arena's string table holds, in [`S_BASE`]
/// .. [`S_PLACEMENT`] order, with the field each is checked as.
fn config_strings<'a>(p: &Profile<'a>, c: &Config<'a>) -> [(Field, &'a str); STRINGS as usize] {
    let scope = if c.scope.is_empty() {
        p.scope.unwrap_or("")
    } else {
        c.scope
    };
    let placement = match p.placement {
        Placement::Header(n) | Placement::Query(n) => n,
        Placement::Bearer | Placement::Raw => "",
    };
    [
        (Field::Url, c.base_url),
        (Field::ClientId, c.client_id),
        (Field::ClientSecret, c.client_secret),
        (Field::Username, c.username),
        (Field::Password, c.password),
        (Field::ApiKey, c.api_key),
        (Field::Scope, scope),
        (Field::RedirectUri, c.redirect_uri),
        (Field::Target, p.token_path),
        (Field::Target, p.authorize_path),
        (Field::Target, p.device_path),
        (Field::Target, p.revoke_path),
        (Field::Target, p.expired_token_phrase),
        (Field::ParamName, placement),
        (Field::Resource, c.resource),
        (Field::Audience, c.audience),
        (Field::ExtraParams, c.token_params),
        (Field::ExtraParams, c.authorize_params),
    ]
}

/// Bytes of the string table (NUL-separated), plus the PKCE zone in
/// authorization-code mode.
fn strings_len(p: &Profile<'_>, c: &Config<'_>) -> usize {
    let mut len = 0usize;
    for (_, v) in config_strings(p, c) {
        len = len.saturating_add(v.len()).saturating_add(1);
    }
    if p.mode == Mode::AuthorizationCode {
        len = len.saturating_add(PKCE_ZONE);
    }
    len
}

fn span(start: usize, len: usize) -> Span {
    Span {
        start: u16::try_from(start).unwrap_or(0),
        len: u16::try_from(len).unwrap_or(0),
    }
}

fn settings(p: &Profile<'_>, c: &Config<'_>) -> Settings {
    Settings {
        mode: p.mode,
        format: p.format,
        client_auth: p.client_auth,
        revoke_style: p.revoke_style,
        place: match p.placement {
            Placement::Bearer => Place::Bearer,
            Placement::Raw => Place::Raw,
            Placement::Header(_) => Place::Header,
            Placement::Query(_) => Place::Query,
        },
        reset_mode: p.reset_mode,
        refresh_fraction_pct: p.refresh_fraction_pct.min(100),
        api_budget_per_token: p.api_budget_per_token,
        allow_insecure: c.allow_insecure,
        keys: p.keys,
        default_lifetime_s: p.default_lifetime_s.max(1),
        refresh_lifetime_s: p.refresh_lifetime_s,
        refresh_margin_s: p.refresh_margin_s,
        max_wait_s: match c.max_wait_s {
            0 => DEFAULT_MAX_WAIT_S,
            s => s,
        },
        token_budget: p.token_budget.filter(|b| b.requests > 0 && b.window_s > 0),
        api_budget: p.api_budget.filter(|b| b.requests > 0 && b.window_s > 0),
        backoff: Backoff {
            base_ms: p.backoff.base_ms.max(1),
            cap_ms: p.backoff.cap_ms.max(p.backoff.base_ms.max(1)),
            max_attempts: p.backoff.max_attempts.max(1),
        },
    }
}

/// Whether `hay` contains `needle`, ASCII case-insensitively.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}
