//! Provider presets: everything a provider's documentation says about its
//! authentication, as `const` data (no code per provider).
//!
//! | Preset | Documented behaviour encoded |
//! | --- | --- |
//! | [`FENTU_API_KEY`] | `Authorization: Bearer KEY`; keys never expire; 1,000 requests/hour (Standard tier; see [`Budget`] for other tiers); `X-RateLimit-Reset` in epoch seconds |
//! | [`FENTU_OAUTH`] | authorization code at `/oauth/authorize`, form `refresh_token` grant with `client_id`/`client_secret` in the body at `/oauth/token`; 1 h access tokens, 30-day refresh tokens; revocation `POST /oauth/revoke` with `Authorization: Bearer`; same rate limits |
//! | [`FIELD_NATION`] | client_credentials, JSON body with `scope: "api"` at `/authentication/api/oauth/token`; token as the `access_token` query parameter; 1 h tokens refreshed 60 s early; on 401 drop the token and retry once; backoff 1 s, 2 s, 4 s |
//! | [`AUTOTASK`] | client_credentials, form body at `/ATServicesRest/oauth/token`; `Authorization: Bearer`; 1 h tokens; token endpoint 10 requests/minute, API 600 requests/minute per token (paced with headroom for network jitter) |
//! | [`PATCHWORKS_API_KEY`] | the key alone in `Authorization` (no scheme); keys never expire; 401 when invalid |
//! | [`PATCHWORKS_LOGIN`] | `POST /fabric/api/login` with JSON `{"username","password"}`; the token is in `token`, lifetime in `expires_in` (86,400 s); `Authorization: Bearer`; re-authenticate on 401 |
//!
//! [`custom`] gives a starting point for any RFC 6749 server: copy it and
//! change what differs (`Profile { token_path: "/token", ..preset::custom() }`).

use crate::body::{KeyTable, PATCHWORKS_KEYS, STANDARD_KEYS};
use crate::http::ResetMode;
use crate::request::{BodyFormat, ClientAuth};

/// How the session obtains its credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A static API key; no token endpoint, always ready.
    ApiKey,
    /// OAuth 2.0 client credentials (RFC 6749 §4.4).
    ClientCredentials,
    /// Resource-owner password grant (RFC 6749 §4.3).
    Password,
    /// A provider login with `{"username","password"}` and no `grant_type`
    /// (Patchworks `/fabric/api/login`).
    Login,
    /// Authorization code with PKCE (RFC 6749 §4.1, RFC 7636): the user
    /// approves in a browser once; then refresh tokens keep the session alive.
    AuthorizationCode,
    /// Device authorization grant (RFC 8628): the user enters a code shown on
    /// the handheld. Needs the `device-flow` feature (on by default).
    #[cfg(feature = "device-flow")]
    #[cfg_attr(docsrs, doc(cfg(feature = "device-flow")))]
    DeviceCode,
}

/// Where an API key or access token goes on an API request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placement<'a> {
    /// `Authorization: Bearer <credential>`.
    Bearer,
    /// `Authorization: <credential>` (Patchworks API keys).
    Raw,
    /// A custom header, e.g. `X-Api-Key: <credential>`.
    Header(&'a str),
    /// A query parameter, e.g. `?access_token=<credential>` (Field Nation).
    Query(&'a str),
}

/// How tokens are revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevokeStyle {
    /// The provider offers no revocation endpoint.
    None,
    /// RFC 7009: `token` (+ `token_type_hint`) in the body, client
    /// authentication as for the token endpoint.
    Rfc7009,
    /// `POST` with `Authorization: Bearer <token>` and no body (Fentu).
    Bearer,
}

/// A client-side request budget: `requests` per `window_s` seconds, enforced
/// in 8 bytes by GCRA: up to `burst` requests at once, then one every
/// `window_s / (requests - burst + 1)`.
///
/// Whatever the burst, no window of `window_s` anywhere ever holds more than
/// `requests` of them *as sent* (a client cannot know where a server's
/// windows start, and one 429 costs more than a burst saves): with `burst:
/// 1` they are evenly spaced, with a larger burst the rest of the window is
/// paced more slowly. A server counts *arrivals*, so give `window_s`
/// headroom for network jitter: with the server's exact window, an 11th
/// request that travels faster than the 1st arrives inside the same minute.
/// A server's own `X-RateLimit-Remaining: 0` (a quota shared with other
/// clients) stops the client until the announced reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Budget {
    /// Requests per window.
    pub requests: u32,
    /// Window length in seconds.
    pub window_s: u32,
    /// Requests allowed back to back (at least 1, at most `requests`).
    pub burst: u32,
}

impl Budget {
    /// Fentu Standard tier: 1,000 requests per hour, a burst of 100 (then one
    /// per 3.996 s: never more than 1,000 in any hour).
    pub const FENTU_STANDARD: Budget = Budget {
        requests: 1_000,
        window_s: 3_600,
        burst: 100,
    };
    /// Fentu Professional tier: 10,000 requests per hour, a burst of 1,000
    /// (never more than 10,000 in any hour).
    pub const FENTU_PROFESSIONAL: Budget = Budget {
        requests: 10_000,
        window_s: 3_600,
        burst: 1_000,
    };
}

/// Retry policy for failed token requests: full-jitter exponential backoff.
/// Attempt `k` (from 0) waits a random time in `[0, min(cap, base · 2^k)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// First delay bound in milliseconds.
    pub base_ms: u32,
    /// Largest delay bound in milliseconds.
    pub cap_ms: u32,
    /// Consecutive failed attempts after which, while no valid token is
    /// left, the session slows down to one attempt per
    /// [`EXHAUSTED_RETRY_MS`](crate::session::EXHAUSTED_RETRY_MS) (its upper
    /// half). It never stops trying on its own.
    pub max_attempts: u8,
}

/// Everything the session needs to know about a provider. `Copy` const data
/// for the presets (`Profile<'static>`); a custom profile may borrow its
/// strings, because the session copies what it needs at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Profile<'a> {
    /// Human-readable name.
    pub name: &'a str,
    /// How the credential is obtained.
    pub mode: Mode,
    /// Token endpoint path, appended to the configured base URL (`""` for
    /// API-key mode).
    pub token_path: &'a str,
    /// Authorization endpoint path (authorization-code mode).
    pub authorize_path: &'a str,
    /// Device authorization endpoint path (device mode).
    pub device_path: &'a str,
    /// Revocation endpoint path (`""`: none).
    pub revoke_path: &'a str,
    /// How revocation requests look.
    pub revoke_style: RevokeStyle,
    /// Token-request body encoding.
    pub format: BodyFormat,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// Scope to request when the configuration gives none.
    pub scope: Option<&'a str>,
    /// Member names of token responses.
    pub keys: KeyTable,
    /// Where the credential goes on API requests.
    pub placement: Placement<'a>,
    /// Lifetime assumed when a token response has no `expires_in` (seconds).
    pub default_lifetime_s: u32,
    /// Refresh-token lifetime when the server does not say (seconds; 0 =
    /// unknown, treated as unlimited).
    pub refresh_lifetime_s: u32,
    /// Refresh at most this many seconds before expiry...
    pub refresh_margin_s: u32,
    /// ...and at most this percentage of the lifetime before expiry (so a
    /// short-lived token is not born expired).
    pub refresh_fraction_pct: u8,
    /// Client-side budget for the token endpoint.
    pub token_budget: Option<Budget>,
    /// Client-side budget for API requests.
    pub api_budget: Option<Budget>,
    /// The API budget starts afresh with every new token (Autotask's limit is
    /// per token).
    pub api_budget_per_token: bool,
    /// How `X-RateLimit-Reset` is read.
    pub reset_mode: ResetMode,
    /// Token-request retry policy.
    pub backoff: Backoff,
    /// A phrase in a `400` API response body that means "this token expired"
    /// (matched case-insensitively in the body prefix the caller reports);
    /// `""` for none.
    pub expired_token_phrase: &'a str,
}

#[cfg(feature = "basic-auth")]
const DEFAULT_CLIENT_AUTH: ClientAuth = ClientAuth::Basic;
#[cfg(not(feature = "basic-auth"))]
const DEFAULT_CLIENT_AUTH: ClientAuth = ClientAuth::Body;

const RFC_BACKOFF: Backoff = Backoff {
    base_ms: 1_000,
    cap_ms: 60_000,
    max_attempts: 6,
};

/// A generic RFC 6749 client-credentials profile: form body, HTTP Basic
/// (client credentials in the body without the `basic-auth` feature),
/// `/oauth/token`, Bearer header, 60 s / 10 % early refresh, no budgets.
pub const fn custom() -> Profile<'static> {
    Profile {
        name: "custom",
        mode: Mode::ClientCredentials,
        token_path: "/oauth/token",
        authorize_path: "/oauth/authorize",
        device_path: "/oauth/device_authorization",
        revoke_path: "/oauth/revoke",
        revoke_style: RevokeStyle::Rfc7009,
        format: BodyFormat::Form,
        client_auth: DEFAULT_CLIENT_AUTH,
        scope: None,
        keys: STANDARD_KEYS,
        placement: Placement::Bearer,
        default_lifetime_s: 3_600,
        refresh_lifetime_s: 0,
        refresh_margin_s: 60,
        refresh_fraction_pct: 10,
        token_budget: None,
        api_budget: None,
        api_budget_per_token: false,
        reset_mode: ResetMode::Auto,
        backoff: RFC_BACKOFF,
        expired_token_phrase: "",
    }
}

/// Fentu FSM with an API key (`Authorization: Bearer KEY`).
pub const FENTU_API_KEY: Profile<'static> = Profile {
    name: "Fentu FSM (API key)",
    mode: Mode::ApiKey,
    token_path: "",
    authorize_path: "",
    device_path: "",
    revoke_path: "",
    revoke_style: RevokeStyle::None,
    api_budget: Some(Budget::FENTU_STANDARD),
    reset_mode: ResetMode::EpochSeconds,
    ..custom()
};

/// Fentu FSM with OAuth 2.0 (authorization code, refresh, revocation).
pub const FENTU_OAUTH: Profile<'static> = Profile {
    name: "Fentu FSM (OAuth)",
    mode: Mode::AuthorizationCode,
    token_path: "/oauth/token",
    authorize_path: "/oauth/authorize",
    device_path: "",
    revoke_path: "/oauth/revoke",
    revoke_style: RevokeStyle::Bearer,
    client_auth: ClientAuth::Body,
    refresh_lifetime_s: 30 * 24 * 3_600,
    api_budget: Some(Budget::FENTU_STANDARD),
    reset_mode: ResetMode::EpochSeconds,
    ..custom()
};

/// Field Nation: client credentials, JSON body, token as a query parameter.
pub const FIELD_NATION: Profile<'static> = Profile {
    name: "Field Nation",
    mode: Mode::ClientCredentials,
    token_path: "/authentication/api/oauth/token",
    authorize_path: "",
    device_path: "",
    revoke_path: "",
    revoke_style: RevokeStyle::None,
    format: BodyFormat::Json,
    client_auth: ClientAuth::Body,
    scope: Some("api"),
    placement: Placement::Query("access_token"),
    backoff: Backoff {
        base_ms: 1_000,
        cap_ms: 4_000,
        max_attempts: 3,
    },
    expired_token_phrase: "expired token",
    ..custom()
};

/// Autotask: client credentials, form body, rate-limited token endpoint.
pub const AUTOTASK: Profile<'static> = Profile {
    name: "Autotask",
    mode: Mode::ClientCredentials,
    token_path: "/ATServicesRest/oauth/token",
    authorize_path: "",
    device_path: "",
    revoke_path: "",
    revoke_style: RevokeStyle::None,
    client_auth: ClientAuth::Body,
    // Documented: 10 and 600 requests per minute, counted by arrival in
    // sliding windows. The windows carry headroom for network jitter: 6 s
    // for token requests (each on a new TLS connection, whose setup time
    // varies by seconds; tokens last an hour, so pacing them 6.6 s apart
    // costs nothing), 1 s for API requests on a kept-alive connection.
    token_budget: Some(Budget {
        requests: 10,
        window_s: 66,
        burst: 1,
    }),
    api_budget: Some(Budget {
        requests: 600,
        window_s: 61,
        burst: 1,
    }),
    api_budget_per_token: true,
    ..custom()
};

/// Patchworks with an API key (the key alone in `Authorization`).
pub const PATCHWORKS_API_KEY: Profile<'static> = Profile {
    name: "Patchworks (API key)",
    mode: Mode::ApiKey,
    token_path: "",
    authorize_path: "",
    device_path: "",
    revoke_path: "",
    revoke_style: RevokeStyle::None,
    placement: Placement::Raw,
    ..custom()
};

/// Patchworks with a username/password login.
pub const PATCHWORKS_LOGIN: Profile<'static> = Profile {
    name: "Patchworks (login)",
    mode: Mode::Login,
    token_path: "/fabric/api/login",
    authorize_path: "",
    device_path: "",
    revoke_path: "",
    revoke_style: RevokeStyle::None,
    format: BodyFormat::Json,
    client_auth: ClientAuth::None,
    keys: PATCHWORKS_KEYS,
    default_lifetime_s: 86_400,
    ..custom()
};

/// Every preset, for iteration (tests, demos, the C ABI's preset table).
pub const ALL: [&Profile<'static>; 6] = [
    &FENTU_API_KEY,
    &FENTU_OAUTH,
    &FIELD_NATION,
    &AUTOTASK,
    &PATCHWORKS_API_KEY,
    &PATCHWORKS_LOGIN,
];
