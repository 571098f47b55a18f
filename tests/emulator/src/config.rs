//! [`EmulatorConfig`]: credentials, token lifetimes, rate limits and faults.
//! Every default is what the provider documents say, plus demo credentials
//! anyone can use (`demo-client` / `demo-secret`, `fentu-demo-key`,
//! `pw-demo-key`, `me@patchworks.com` / `a1b2c3d4e5f6`).

use crate::fault::FaultRule;

/// One of the four emulated providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// Fentu FSM, under `/fentu`.
    Fentu,
    /// Field Nation, under `/fieldnation`.
    FieldNation,
    /// Autotask, under `/autotask`.
    Autotask,
    /// Patchworks, under `/patchworks`.
    Patchworks,
}

impl Provider {
    /// All providers, in the order the seed documents list them.
    pub const ALL: [Provider; 4] = [
        Provider::Fentu,
        Provider::FieldNation,
        Provider::Autotask,
        Provider::Patchworks,
    ];

    /// The short name used in paths, on the command line and in fault specs
    /// (`fentu`, `fieldnation`, `autotask`, `patchworks`).
    pub fn name(self) -> &'static str {
        match self {
            Provider::Fentu => "fentu",
            Provider::FieldNation => "fieldnation",
            Provider::Autotask => "autotask",
            Provider::Patchworks => "patchworks",
        }
    }

    /// The path prefix of the provider on the emulator (`/fentu`, ...).
    pub fn prefix(self) -> &'static str {
        match self {
            Provider::Fentu => "/fentu",
            Provider::FieldNation => "/fieldnation",
            Provider::Autotask => "/autotask",
            Provider::Patchworks => "/patchworks",
        }
    }

    /// The provider's product name.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Fentu => "Fentu FSM",
            Provider::FieldNation => "Field Nation",
            Provider::Autotask => "Autotask",
            Provider::Patchworks => "Patchworks",
        }
    }

    /// The provider with short name `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of endpoint a request went to; faults are scoped by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointKind {
    /// Fentu `GET /oauth/authorize`.
    Authorize,
    /// A token endpoint: Fentu `/oauth/token`, Field Nation
    /// `/authentication/api/oauth/token`, Autotask `/ATServicesRest/oauth/token`,
    /// Patchworks `/fabric/api/login`.
    Token,
    /// Fentu `POST /oauth/revoke`.
    Revoke,
    /// A resource (API) request.
    Api,
}

impl EndpointKind {
    /// The name used in fault specs and logs (`authorize`, `token`, `revoke`, `api`).
    pub fn name(self) -> &'static str {
        match self {
            EndpointKind::Authorize => "authorize",
            EndpointKind::Token => "token",
            EndpointKind::Revoke => "revoke",
            EndpointKind::Api => "api",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<EndpointKind> {
        [
            EndpointKind::Authorize,
            EndpointKind::Token,
            EndpointKind::Revoke,
            EndpointKind::Api,
        ]
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for EndpointKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// At most `requests` requests per `window_s` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length, seconds (at least 1).
    pub window_s: u32,
}

impl RateLimit {
    /// `requests` per `window_s` seconds.
    pub const fn new(requests: u32, window_s: u32) -> RateLimit {
        RateLimit { requests, window_s }
    }
}

/// How a rate-limit window is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateWindow {
    /// Fixed windows aligned to multiples of the window length in epoch time
    /// (hour boundaries for Fentu: `X-RateLimit-Reset` is the next boundary).
    Fixed,
    /// A sliding window: at most N requests in *any* window-length interval
    /// (the strictest reading of "N requests per minute").
    Sliding,
}

/// Fentu's rate-limit tiers (requests per hour).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FentuTier {
    /// 1,000 requests/hour.
    Standard,
    /// 10,000 requests/hour.
    Professional,
    /// Unlimited (no `X-RateLimit-*` headers are sent).
    Enterprise,
}

impl FentuTier {
    /// The tier's limit; `None` for unlimited.
    pub fn limit(self) -> Option<RateLimit> {
        match self {
            FentuTier::Standard => Some(RateLimit::new(1_000, 3_600)),
            FentuTier::Professional => Some(RateLimit::new(10_000, 3_600)),
            FentuTier::Enterprise => None,
        }
    }
}

/// A client registered for client_credentials (Field Nation, Autotask).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCredentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
}

impl ClientCredentials {
    /// A client with the given id and secret.
    pub fn new(client_id: &str, client_secret: &str) -> ClientCredentials {
        ClientCredentials {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
        }
    }

    /// `demo-client` / `demo-secret`.
    pub fn demo() -> ClientCredentials {
        ClientCredentials::new("demo-client", "demo-secret")
    }
}

/// A Fentu OAuth application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`; `None` makes a public client (no secret; PKCE required).
    pub client_secret: Option<String>,
    /// Registered redirect URIs, compared exactly. Empty: any absolute URI
    /// without a fragment is accepted (demo convenience).
    pub redirect_uris: Vec<String>,
}

impl OAuthClient {
    /// `demo-client` / `demo-secret`, any redirect URI.
    pub fn demo() -> OAuthClient {
        OAuthClient {
            client_id: "demo-client".to_owned(),
            client_secret: Some("demo-secret".to_owned()),
            redirect_uris: Vec::new(),
        }
    }
}

/// A Fentu API key and the scopes ("permissions") it was created with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FentuApiKey {
    /// The key as sent in `Authorization: Bearer <key>`.
    pub key: String,
    /// Scopes granted to the key.
    pub scopes: Vec<String>,
}

/// The scopes Fentu documents.
pub const FENTU_SCOPES: [&str; 7] = [
    "read:work-orders",
    "write:work-orders",
    "read:customers",
    "write:customers",
    "read:assets",
    "write:assets",
    "admin",
];

/// Fentu FSM settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FentuConfig {
    /// Valid API keys. Default: `fentu-demo-key` with every scope but `admin`.
    pub api_keys: Vec<FentuApiKey>,
    /// Registered OAuth applications. Default: [`OAuthClient::demo`].
    pub clients: Vec<OAuthClient>,
    /// Access-token lifetime, seconds (`None`: [`EmulatorConfig::token_lifetime_s`],
    /// else the documented 3,600).
    pub token_lifetime_s: Option<u32>,
    /// Refresh-token lifetime, seconds (documented: 30 days).
    pub refresh_lifetime_s: u32,
    /// Authorization-code lifetime, seconds (600, RFC 6749 §4.1.2's maximum).
    pub code_lifetime_s: u32,
    /// Issue a new refresh token on every refresh and invalidate the old one.
    /// Replaying a rotated refresh token revokes the whole grant (RFC 9700
    /// §4.14.2). Off: refresh responses carry no `refresh_token` and the
    /// original stays valid until it expires. Default: on.
    pub rotate_refresh_tokens: bool,
    /// Rate-limit tier (default Standard: 1,000/hour). Counted per API key or
    /// per OAuth client, in fixed hour windows.
    pub tier: FentuTier,
}

impl Default for FentuConfig {
    fn default() -> FentuConfig {
        FentuConfig {
            api_keys: vec![FentuApiKey {
                key: "fentu-demo-key".to_owned(),
                scopes: FENTU_SCOPES
                    .iter()
                    .filter(|s| **s != "admin")
                    .map(|s| (*s).to_owned())
                    .collect(),
            }],
            clients: vec![OAuthClient::demo()],
            token_lifetime_s: None,
            refresh_lifetime_s: 30 * 24 * 3_600,
            code_lifetime_s: 600,
            rotate_refresh_tokens: true,
            tier: FentuTier::Standard,
        }
    }
}

/// Field Nation settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldNationConfig {
    /// Valid clients. Default: [`ClientCredentials::demo`].
    pub clients: Vec<ClientCredentials>,
    /// Token lifetime, seconds (`None`: global, else the documented 3,600).
    pub token_lifetime_s: Option<u32>,
    /// Quirk: an *expired* token yields `400`
    /// `{"error":"invalid_request","error_description":"Expired token"}`
    /// instead of the documented `401`.
    pub expired_token_quirk: bool,
}

impl Default for FieldNationConfig {
    fn default() -> FieldNationConfig {
        FieldNationConfig {
            clients: vec![ClientCredentials::demo()],
            token_lifetime_s: None,
            expired_token_quirk: false,
        }
    }
}

/// Autotask settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutotaskConfig {
    /// Valid clients. Default: [`ClientCredentials::demo`].
    pub clients: Vec<ClientCredentials>,
    /// Token lifetime, seconds (`None`: global, else the documented 3,600).
    pub token_lifetime_s: Option<u32>,
    /// Token-endpoint limit, counted per `client_id` as sent (documented: 10/minute).
    pub token_limit: RateLimit,
    /// API limit per access token (documented: 600/minute).
    pub api_limit: RateLimit,
    /// How both limits are counted (default: sliding).
    pub window: RateWindow,
}

impl Default for AutotaskConfig {
    fn default() -> AutotaskConfig {
        AutotaskConfig {
            clients: vec![ClientCredentials::demo()],
            token_lifetime_s: None,
            token_limit: RateLimit::new(10, 60),
            api_limit: RateLimit::new(600, 60),
            window: RateWindow::Sliding,
        }
    }
}

/// A Patchworks account for `/fabric/api/login`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// `username`.
    pub username: String,
    /// `password`.
    pub password: String,
}

/// Patchworks settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchworksConfig {
    /// Valid API keys (sent raw in `Authorization`). Default: `pw-demo-key`.
    pub api_keys: Vec<String>,
    /// Accounts. Default: the document's `me@patchworks.com` / `a1b2c3d4e5f6`.
    pub users: Vec<Login>,
    /// Token lifetime, seconds (`None`: global, else the documented 86,400).
    pub token_lifetime_s: Option<u32>,
}

impl Default for PatchworksConfig {
    fn default() -> PatchworksConfig {
        PatchworksConfig {
            api_keys: vec!["pw-demo-key".to_owned()],
            users: vec![Login {
                username: "me@patchworks.com".to_owned(),
                password: "a1b2c3d4e5f6".to_owned(),
            }],
            token_lifetime_s: None,
        }
    }
}

/// Everything that shapes an [`Emulator`](crate::Emulator).
#[derive(Clone, Debug, PartialEq)]
pub struct EmulatorConfig {
    /// Seed of the PRNG behind token text and rate-based faults.
    pub seed: u64,
    /// Wall-clock time (Unix epoch, milliseconds) at `now_ms == 0`: the base
    /// of `Date`, `X-RateLimit-Reset` and token `iat`/`exp`. The default,
    /// 2021-12-31T23:00:00Z, makes Fentu's first window reset at the
    /// document's `1640995200`. The binary uses the real clock.
    pub start_epoch_ms: u64,
    /// Token lifetime for every provider without its own override (`None`:
    /// each provider's documented lifetime).
    pub token_lifetime_s: Option<u32>,
    /// Fentu FSM.
    pub fentu: FentuConfig,
    /// Field Nation.
    pub field_nation: FieldNationConfig,
    /// Autotask.
    pub autotask: AutotaskConfig,
    /// Patchworks.
    pub patchworks: PatchworksConfig,
    /// Fault-injection rules, checked in order.
    pub faults: Vec<FaultRule>,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Window lengths, seconds, of the sliding-window maxima in the
    /// [`Stats`](crate::Stats) counters (default 60 and 3,600). Read when
    /// the counters start: at [`Emulator::new`](crate::Emulator::new) and
    /// at every [`Emulator::reset_stats`](crate::Emulator::reset_stats).
    pub stats_windows_s: Vec<u32>,
    /// The most timestamps one sliding-window counter keeps (default
    /// [`stats::DEFAULT_CAP`](crate::stats::DEFAULT_CAP)); past it the maxima
    /// are lower bounds (see [`stats`](crate::stats)).
    pub stats_cap: usize,
}

/// The default [`EmulatorConfig::start_epoch_ms`]: 2021-12-31T23:00:00Z.
pub const DEFAULT_START_EPOCH_MS: u64 = 1_640_991_600_000;

impl Default for EmulatorConfig {
    fn default() -> EmulatorConfig {
        EmulatorConfig {
            seed: 0x5EED_F1E1_DA07_0001,
            start_epoch_ms: DEFAULT_START_EPOCH_MS,
            token_lifetime_s: None,
            fentu: FentuConfig::default(),
            field_nation: FieldNationConfig::default(),
            autotask: AutotaskConfig::default(),
            patchworks: PatchworksConfig::default(),
            faults: Vec::new(),
            max_body_bytes: 1024 * 1024,
            stats_windows_s: crate::stats::DEFAULT_WINDOWS_S.to_vec(),
            stats_cap: crate::stats::DEFAULT_CAP,
        }
    }
}

impl EmulatorConfig {
    /// Sets [`EmulatorConfig::start_epoch_ms`] from the system clock.
    pub fn with_wall_clock(mut self) -> EmulatorConfig {
        self.start_epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(DEFAULT_START_EPOCH_MS, |d| d.as_millis() as u64);
        self
    }

    /// Adds a fault rule (builder style).
    pub fn with_fault(mut self, rule: FaultRule) -> EmulatorConfig {
        self.faults.push(rule);
        self
    }

    /// Sets the global token lifetime (builder style).
    pub fn with_token_lifetime(mut self, seconds: u32) -> EmulatorConfig {
        self.token_lifetime_s = Some(seconds);
        self
    }

    /// Turns Fentu's refresh-token rotation on or off (builder style; see
    /// [`FentuConfig::rotate_refresh_tokens`], default on). With rotation on,
    /// every refresh returns a new refresh token and retires the one sent;
    /// sending a retired one again is a replay, which revokes the whole grant
    /// (every access and refresh token descended from its authorization
    /// code), as oidc-provider does. Only Fentu issues refresh tokens: Field
    /// Nation and Autotask use client credentials and Patchworks a login,
    /// and their documents describe no refresh grant.
    pub fn with_refresh_token_rotation(mut self, rotate: bool) -> EmulatorConfig {
        self.fentu.rotate_refresh_tokens = rotate;
        self
    }

    /// Sets the window lengths, seconds, of the sliding-window maxima in the
    /// [`Stats`](crate::Stats) counters (builder style; default 60 and 3,600).
    pub fn with_stats_windows(mut self, windows_s: &[u32]) -> EmulatorConfig {
        self.stats_windows_s = windows_s.to_vec();
        self
    }

    /// The access-token lifetime in effect for `provider`, seconds.
    pub fn token_lifetime(&self, provider: Provider) -> u32 {
        let (own, documented) = match provider {
            Provider::Fentu => (self.fentu.token_lifetime_s, 3_600),
            Provider::FieldNation => (self.field_nation.token_lifetime_s, 3_600),
            Provider::Autotask => (self.autotask.token_lifetime_s, 3_600),
            Provider::Patchworks => (self.patchworks.token_lifetime_s, 86_400),
        };
        own.or(self.token_lifetime_s).unwrap_or(documented)
    }

    /// Sets `provider`'s own token lifetime.
    pub fn set_token_lifetime(&mut self, provider: Provider, seconds: u32) {
        let slot = match provider {
            Provider::Fentu => &mut self.fentu.token_lifetime_s,
            Provider::FieldNation => &mut self.field_nation.token_lifetime_s,
            Provider::Autotask => &mut self.autotask.token_lifetime_s,
            Provider::Patchworks => &mut self.patchworks.token_lifetime_s,
        };
        *slot = Some(seconds);
    }

    /// Replaces the OAuth client of Fentu, Field Nation and Autotask with
    /// `client_id` / `client_secret`.
    pub fn set_client(&mut self, client_id: &str, client_secret: &str) {
        self.fentu.clients = vec![OAuthClient {
            client_id: client_id.to_owned(),
            client_secret: Some(client_secret.to_owned()),
            redirect_uris: Vec::new(),
        }];
        self.field_nation.clients = vec![ClientCredentials::new(client_id, client_secret)];
        self.autotask.clients = vec![ClientCredentials::new(client_id, client_secret)];
    }
}
