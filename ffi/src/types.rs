//! The C-visible types and enumeration constants (everything but statuses).

use core::ffi::c_void;

// ------------------------------------------------------------------ storage

/// Bytes of a fieldauth_session: the session's state and bookkeeping
/// (FIELDAUTH_SESSION_HEADER_SIZE bytes) followed by a 3072-byte token
/// storage (FIELDAUTH_SESSION_INLINE_STORAGE), for fieldauth_session_init().
/// Large enough for every supported target; the library checks at compile
/// time that it is.
pub const FIELDAUTH_SESSION_SIZE: usize = 4096;
/// Bytes of a session's state without token storage: what a session made
/// with fieldauth_session_init_with_storage() uses of its fieldauth_session
/// object (a fieldauth_session_header suffices for it).
pub const FIELDAUTH_SESSION_HEADER_SIZE: usize = 1024;
/// uint64_t words of a fieldauth_session_header.
pub const FIELDAUTH_SESSION_HEADER_WORDS: usize = FIELDAUTH_SESSION_HEADER_SIZE / 8;
/// The token storage inside a fieldauth_session (fieldauth_session_init()):
/// the configuration strings plus two token slots of about 1.4 KB each.
/// Larger tokens (a signed JWT with group claims is 1.5 to 4 KB) need
/// fieldauth_session_init_with_storage().
pub const FIELDAUTH_SESSION_INLINE_STORAGE: usize =
    FIELDAUTH_SESSION_SIZE - FIELDAUTH_SESSION_HEADER_SIZE;
/// The largest token storage a session can address (its spans are 16-bit).
pub const FIELDAUTH_SESSION_MAX_STORAGE: usize = 65535;
/// Alignment a fieldauth_session needs (its uint64_t words give it).
pub const FIELDAUTH_SESSION_ALIGN: usize = 8;
/// uint64_t words of a fieldauth_session.
pub const FIELDAUTH_SESSION_WORDS: usize = FIELDAUTH_SESSION_SIZE / 8;

/// Bytes of a fieldauth_head (an HTTP response-head parser with a 256-byte
/// value buffer).
pub const FIELDAUTH_HEAD_SIZE: usize = 512;
/// Alignment a fieldauth_head needs.
pub const FIELDAUTH_HEAD_ALIGN: usize = 8;
/// uint64_t words of a fieldauth_head.
pub const FIELDAUTH_HEAD_WORDS: usize = FIELDAUTH_HEAD_SIZE / 8;

/// Bytes of a fieldauth_body (a response-body framing reader).
pub const FIELDAUTH_BODY_SIZE: usize = 32;
/// Alignment a fieldauth_body needs.
pub const FIELDAUTH_BODY_ALIGN: usize = 8;
/// uint64_t words of a fieldauth_body.
pub const FIELDAUTH_BODY_WORDS: usize = FIELDAUTH_BODY_SIZE / 8;

/// Storage for one session: the token state machine of one account (its
/// configuration, secrets and tokens live inside). Opaque: allocate it
/// (static, stack or heap; FIELDAUTH_SESSION_SIZE bytes, 8-byte aligned),
/// initialize it with fieldauth_session_init() or
/// fieldauth_session_init_preset(), and wipe it with fieldauth_session_clear()
/// before the storage is reused or freed. Calls on storage that is not
/// initialized give FIELDAUTH_ERR_NOT_INITIALIZED.
///
/// Storage contract: init and clear accept any writable storage, even
/// memory fresh from malloc() that was never written. Every other call reads
/// the storage's first 8 bytes to tell an initialized session from one that
/// is not, so the storage must hold initialized memory, whatever its bytes:
/// static storage (zeroed by the C runtime), a memset(), or an earlier init
/// or clear. Not thread-safe; distinct
/// sessions are independent. Do not copy an initialized session (memcpy would
/// duplicate its secrets): move its state with snapshot/restore.
#[repr(C)]
pub struct fieldauth_session {
    opaque: [u64; FIELDAUTH_SESSION_WORDS],
}

/// Storage for a session whose token storage is the caller's
/// (fieldauth_session_init_with_storage()): its state only. Pass it as
/// `(fieldauth_session *)&header` to every fieldauth_session_* function;
/// FIELDAUTH_SESSION_HEADER_SIZE bytes, 8-byte aligned. The same rules as
/// for fieldauth_session apply (initialized memory, no copies, clear it).
#[repr(C)]
pub struct fieldauth_session_header {
    opaque: [u64; FIELDAUTH_SESSION_HEADER_WORDS],
}

/// Storage for one HTTP/1.1 response-head parser (status line, framing,
/// Date, Retry-After, rate-limit fields, Bearer challenge). Opaque:
/// caller-allocated (FIELDAUTH_HEAD_SIZE bytes, 8-byte aligned), initialized
/// with fieldauth_head_init() (again for every response). Holds no secrets;
/// no clear is needed. Not thread-safe.
#[repr(C)]
pub struct fieldauth_head {
    opaque: [u64; FIELDAUTH_HEAD_WORDS],
}

/// Storage for one response-body framing reader (Content-Length, chunked or
/// close-delimited). Opaque: caller-allocated (FIELDAUTH_BODY_SIZE bytes,
/// 8-byte aligned), initialized with fieldauth_body_init(). Not thread-safe.
#[repr(C)]
pub struct fieldauth_body {
    opaque: [u64; FIELDAUTH_BODY_WORDS],
}

// ------------------------------------------------------------------ strings

/// A byte string: `len` bytes at `ptr`, no NUL terminator needed;
/// `{NULL, 0}` is the empty string. As an input (configuration, profile) it
/// must be valid UTF-8 and only needs to live for the call: the library copies
/// what it keeps. As an output it points into a buffer the caller passed to
/// the same call, and lives as long as that buffer.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_str {
    /// First byte (may be NULL when `len` is 0).
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl fieldauth_str {
    pub(crate) const EMPTY: fieldauth_str = fieldauth_str {
        ptr: core::ptr::null(),
        len: 0,
    };

    pub(crate) const fn of(s: &str) -> fieldauth_str {
        fieldauth_str {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

// ------------------------------------------------------------------ presets

/// Preset id: a generic RFC 6749 client-credentials profile (form body, HTTP
/// Basic, `/oauth/token`, Bearer header, no budgets): the starting point of a
/// custom profile.
pub const FIELDAUTH_PRESET_CUSTOM: u32 = 0;
/// Preset id: Fentu FSM with an API key (`Authorization: Bearer KEY`).
pub const FIELDAUTH_PRESET_FENTU_API_KEY: u32 = 1;
/// Preset id: Fentu FSM with OAuth 2.0 (authorization code, refresh, revocation).
pub const FIELDAUTH_PRESET_FENTU_OAUTH: u32 = 2;
/// Preset id: Field Nation (client credentials, JSON body, token as a query
/// parameter).
pub const FIELDAUTH_PRESET_FIELD_NATION: u32 = 3;
/// Preset id: Autotask (client credentials, rate-limited token endpoint).
pub const FIELDAUTH_PRESET_AUTOTASK: u32 = 4;
/// Preset id: Patchworks with an API key (the key alone in `Authorization`).
pub const FIELDAUTH_PRESET_PATCHWORKS_API_KEY: u32 = 5;
/// Preset id: Patchworks with a username/password login.
pub const FIELDAUTH_PRESET_PATCHWORKS_LOGIN: u32 = 6;
/// Number of preset ids (0 .. FIELDAUTH_PRESET_COUNT - 1).
pub const FIELDAUTH_PRESET_COUNT: u32 = 7;

/// Profile mode: a static API key; no token endpoint, always ready.
pub const FIELDAUTH_MODE_API_KEY: u32 = 1;
/// Profile mode: OAuth 2.0 client credentials (RFC 6749 §4.4).
pub const FIELDAUTH_MODE_CLIENT_CREDENTIALS: u32 = 2;
/// Profile mode: resource-owner password grant (RFC 6749 §4.3).
pub const FIELDAUTH_MODE_PASSWORD: u32 = 3;
/// Profile mode: a provider login with {"username","password"} (Patchworks).
pub const FIELDAUTH_MODE_LOGIN: u32 = 4;
/// Profile mode: authorization code with PKCE (RFC 6749 §4.1, RFC 7636).
pub const FIELDAUTH_MODE_AUTHORIZATION_CODE: u32 = 5;
/// Profile mode: device authorization grant (RFC 8628).
pub const FIELDAUTH_MODE_DEVICE_CODE: u32 = 6;

/// Token-request body: application/x-www-form-urlencoded.
pub const FIELDAUTH_FORMAT_FORM: u32 = 1;
/// Token-request body: application/json.
pub const FIELDAUTH_FORMAT_JSON: u32 = 2;

/// Client authentication: client_id and client_secret in the body.
pub const FIELDAUTH_CLIENT_AUTH_BODY: u32 = 1;
/// Client authentication: HTTP Basic (client_secret_basic).
pub const FIELDAUTH_CLIENT_AUTH_BASIC: u32 = 2;
/// Client authentication: public client (client_id only).
pub const FIELDAUTH_CLIENT_AUTH_NONE: u32 = 3;

/// Revocation: the provider has no revocation endpoint.
pub const FIELDAUTH_REVOKE_NONE: u32 = 1;
/// Revocation: RFC 7009 (token in the body).
pub const FIELDAUTH_REVOKE_RFC7009: u32 = 2;
/// Revocation: POST with `Authorization: Bearer <token>` and no body (Fentu).
pub const FIELDAUTH_REVOKE_BEARER: u32 = 3;

/// Token-response member names: the standard OAuth ones.
pub const FIELDAUTH_KEYS_STANDARD: u32 = 1;
/// Token-response member names: Patchworks (`token` for the access token).
pub const FIELDAUTH_KEYS_PATCHWORKS: u32 = 2;

/// Credential placement: `Authorization: Bearer <credential>`.
pub const FIELDAUTH_PLACEMENT_BEARER: u32 = 1;
/// Credential placement: `Authorization: <credential>` (no scheme).
pub const FIELDAUTH_PLACEMENT_RAW: u32 = 2;
/// Credential placement: a custom header named by `placement_name`.
pub const FIELDAUTH_PLACEMENT_HEADER: u32 = 3;
/// Credential placement: a query parameter named by `placement_name`.
pub const FIELDAUTH_PLACEMENT_QUERY: u32 = 4;

/// X-RateLimit-Reset: guess epoch ms / epoch s / delta s from the magnitude.
pub const FIELDAUTH_RESET_AUTO: u32 = 1;
/// X-RateLimit-Reset: Unix time in seconds.
pub const FIELDAUTH_RESET_EPOCH_SECONDS: u32 = 2;
/// X-RateLimit-Reset: seconds from the response.
pub const FIELDAUTH_RESET_DELTA_SECONDS: u32 = 3;

/// A client-side request budget: `requests` per `window_s` seconds, up to
/// `burst` back to back. `requests == 0` means no budget.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_budget {
    /// Requests per window (0: no budget; the other fields are ignored).
    pub requests: u32,
    /// Window length in seconds.
    pub window_s: u32,
    /// Requests allowed back to back (1 ..= requests).
    pub burst: u32,
}

/// Retry policy for failed token requests: full-jitter exponential backoff.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_backoff {
    /// First delay bound in milliseconds.
    pub base_ms: u32,
    /// Largest delay bound in milliseconds.
    pub cap_ms: u32,
    /// Consecutive failures after which the session slows down to one
    /// attempt per 150-300 s while no valid token is left (1 ..= 255).
    pub max_attempts: u32,
}

/// Everything the session needs to know about a provider. Fill it from a
/// preset with fieldauth_profile_preset() and change what differs. The
/// strings only need to live for the fieldauth_session_init() call (the
/// session copies them). Enumerations are the FIELDAUTH_MODE_*, _FORMAT_*,
/// _CLIENT_AUTH_*, _REVOKE_*, _KEYS_*, _PLACEMENT_* and _RESET_* constants; 0
/// is never valid, so a zeroed profile is rejected.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_profile {
    /// Human-readable name (informational).
    pub name: fieldauth_str,
    /// FIELDAUTH_MODE_*.
    pub mode: u32,
    /// FIELDAUTH_FORMAT_*: token-request body encoding.
    pub format: u32,
    /// FIELDAUTH_CLIENT_AUTH_*.
    pub client_auth: u32,
    /// FIELDAUTH_REVOKE_*.
    pub revoke_style: u32,
    /// Token endpoint path, appended to the base URL (empty in API-key mode).
    pub token_path: fieldauth_str,
    /// Authorization endpoint path (authorization-code mode).
    pub authorize_path: fieldauth_str,
    /// Device authorization endpoint path (device mode).
    pub device_path: fieldauth_str,
    /// Revocation endpoint path (empty: none).
    pub revoke_path: fieldauth_str,
    /// Scope to request when the configuration gives none (empty: none).
    pub scope: fieldauth_str,
    /// FIELDAUTH_KEYS_*: member names of token responses.
    pub keys: u32,
    /// FIELDAUTH_PLACEMENT_*: where the credential goes on API requests.
    pub placement: u32,
    /// Header or query-parameter name for FIELDAUTH_PLACEMENT_HEADER /
    /// _QUERY (ignored otherwise).
    pub placement_name: fieldauth_str,
    /// Lifetime assumed when a token response has no expires_in (seconds).
    pub default_lifetime_s: u32,
    /// Refresh-token lifetime when the server does not say (seconds; 0:
    /// unlimited).
    pub refresh_lifetime_s: u32,
    /// Refresh at most this many seconds before expiry...
    pub refresh_margin_s: u32,
    /// ...and at most this percentage (0 ..= 100) of the lifetime.
    pub refresh_fraction_pct: u32,
    /// Client-side budget for the token endpoint.
    pub token_budget: fieldauth_budget,
    /// Client-side budget for API requests.
    pub api_budget: fieldauth_budget,
    /// 1: the API budget starts afresh with every new token; 0: it does not.
    pub api_budget_per_token: u32,
    /// FIELDAUTH_RESET_*: how X-RateLimit-Reset is read.
    pub reset_mode: u32,
    /// Token-request retry policy.
    pub backoff: fieldauth_backoff,
    /// A phrase in a 400 API response body that means "token expired"
    /// (case-insensitive; empty: none).
    pub expired_token_phrase: fieldauth_str,
}

/// Runtime configuration: where the provider is and the credentials. Empty
/// strings mean "not configured". The strings only need to live for the
/// fieldauth_session_init() call: the session copies them (the caller may
/// wipe its copies right after).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_config {
    /// Base URL the profile's paths are appended to, e.g.
    /// `https://api.fieldnation.com`.
    pub base_url: fieldauth_str,
    /// OAuth client_id.
    pub client_id: fieldauth_str,
    /// OAuth client_secret.
    pub client_secret: fieldauth_str,
    /// Username (password grant, login).
    pub username: fieldauth_str,
    /// Password (password grant, login).
    pub password: fieldauth_str,
    /// API key (API-key mode).
    pub api_key: fieldauth_str,
    /// Scope; empty uses the profile's default.
    pub scope: fieldauth_str,
    /// Redirect URI (authorization-code mode).
    pub redirect_uri: fieldauth_str,
    /// 1: allow plain http to a non-loopback host (test rigs only); 0: refuse.
    pub allow_insecure: u32,
    /// The longest wait in seconds any server answer may impose
    /// (Retry-After, rate-limit resets, a device-flow slow_down); longer
    /// ones are cut to it. 0: the default, FIELDAUTH_DEFAULT_MAX_WAIT_S (one
    /// hour). A zero-initialized config gets the default.
    pub max_wait_s: u32,
    /// `resource` (RFC 8707: the API the token is for), sent with the scope
    /// on token requests and in the authorization URL; empty: none.
    pub resource: fieldauth_str,
    /// `audience` (some providers' name for it), sent with the scope on
    /// token requests; empty: none.
    pub audience: fieldauth_str,
    /// More parameters for every token request (not revocations): `name=value`
    /// pairs joined by `&`, already form-urlencoded (`tenant=acme&x=a%20b`);
    /// decoded into JSON bodies. Names fieldauth sets itself are refused
    /// (FIELDAUTH_ERR_INPUT_RESERVED).
    pub token_params: fieldauth_str,
    /// More query parameters for the authorization URL, the same way:
    /// `prompt=consent&login_hint=tech%40acme.example&nonce=...`.
    pub authorize_params: fieldauth_str,
}

/// The default cap on a server-imposed wait (fieldauth_config.max_wait_s = 0):
/// one hour.
pub const FIELDAUTH_DEFAULT_MAX_WAIT_S: u32 = 3600;

// ------------------------------------------------------------------ session outputs

/// "Never" as a time (UINT64_MAX): e.g. the expiry of an API key.
pub const FIELDAUTH_NEVER: u64 = 0xFFFF_FFFF_FFFF_FFFF;

/// Action: write a token request (fieldauth_session_write_token_request*) and
/// send it, or run fieldauth_session_exchange().
pub const FIELDAUTH_ACTION_SEND_TOKEN_REQUEST: u32 = 1;
/// Action: a token request is in flight: feed its response.
pub const FIELDAUTH_ACTION_AWAIT_RESPONSE: u32 = 2;
/// Action: a credential is usable: authorize API requests; poll again by
/// `at_ms` at the latest.
pub const FIELDAUTH_ACTION_READY: u32 = 3;
/// Action: nothing is usable yet: poll again at `at_ms`.
pub const FIELDAUTH_ACTION_WAIT: u32 = 4;
/// Action: authorization-code mode without a usable token: run the browser
/// step (fieldauth_session_authorization_url).
pub const FIELDAUTH_ACTION_NEED_AUTHORIZATION_CODE: u32 = 5;
/// Action: a permanent failure (see `failure`); reconfigure or
/// fieldauth_session_restart().
pub const FIELDAUTH_ACTION_FAILED: u32 = 6;

/// fieldauth_session_adopt(): the image was newer; the session now holds its
/// token, rate-limit state and server blocks.
pub const FIELDAUTH_ADOPTED_NEWER: u32 = 1;
/// fieldauth_session_adopt(): the session already holds this generation or a
/// newer one; nothing changed.
pub const FIELDAUTH_ADOPTED_NOT_NEWER: u32 = 2;
/// fieldauth_session_adopt(): newer, but its tokens all expired; the
/// generation is recorded, the session keeps its own state.
pub const FIELDAUTH_ADOPTED_NOTHING_USABLE: u32 = 3;

/// fieldauth_session_revoke_tokens(): the grant (the refresh token if held,
/// else the access token); the session then reports FIELDAUTH_FAILURE_REVOKED.
pub const FIELDAUTH_REVOCATION_GRANT: u32 = 0;
/// fieldauth_session_revoke_tokens(): the access token only; the session
/// goes on.
pub const FIELDAUTH_REVOCATION_ACCESS: u32 = 1;
/// fieldauth_session_revoke_tokens(): the refresh token, then the access
/// token; the session then reports FIELDAUTH_FAILURE_REVOKED.
pub const FIELDAUTH_REVOCATION_BOTH: u32 = 2;

/// Token request kind: none (in outputs where it does not apply).
pub const FIELDAUTH_REQUEST_NONE: u32 = 0;
/// Token request kind: the primary grant.
pub const FIELDAUTH_REQUEST_FETCH: u32 = 1;
/// Token request kind: the refresh_token grant.
pub const FIELDAUTH_REQUEST_REFRESH: u32 = 2;
/// Token request kind: the RFC 8628 device authorization request.
pub const FIELDAUTH_REQUEST_DEVICE_AUTHORIZATION: u32 = 3;
/// Token request kind: an RFC 8628 device_code poll.
pub const FIELDAUTH_REQUEST_DEVICE_POLL: u32 = 4;
/// Token request kind: a revocation request.
pub const FIELDAUTH_REQUEST_REVOKE: u32 = 5;

/// Failure: none.
pub const FIELDAUTH_FAILURE_NONE: u32 = 0;
/// Failure: the server rejected the client credentials (invalid_client).
pub const FIELDAUTH_FAILURE_INVALID_CLIENT: u32 = 1;
/// Failure: the client may not use this grant.
pub const FIELDAUTH_FAILURE_UNAUTHORIZED_CLIENT: u32 = 2;
/// Failure: the requested scope is invalid.
pub const FIELDAUTH_FAILURE_INVALID_SCOPE: u32 = 3;
/// Failure: the username/password (or authorization code) was rejected.
pub const FIELDAUTH_FAILURE_INVALID_GRANT: u32 = 4;
/// Failure: the API key was rejected.
pub const FIELDAUTH_FAILURE_INVALID_KEY: u32 = 5;
/// Failure: the user denied the request (access_denied).
pub const FIELDAUTH_FAILURE_ACCESS_DENIED: u32 = 6;
/// Failure: the server rejected the primary grant's request as malformed
/// (invalid_request in an RFC 6749 error body: configuration). A 4xx
/// without an error code (a proxy's or captive portal's HTML) is retried.
pub const FIELDAUTH_FAILURE_REJECTED: u32 = 7;
/// Failure: no longer reported. A session whose retries ran out keeps
/// trying, one attempt per 150-300 s, until the server answers (see
/// fieldauth_session_status's failed_attempts). The value stays reserved.
pub const FIELDAUTH_FAILURE_RETRIES_EXHAUSTED: u32 = 8;
/// Failure: the tokens were revoked (or the session was cleared).
pub const FIELDAUTH_FAILURE_REVOKED: u32 = 9;

/// What the session wants next (fieldauth_session_poll).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_action {
    /// READY: poll again by this time; WAIT: poll again at this time; else 0.
    pub at_ms: u64,
    /// FIELDAUTH_ACTION_*.
    pub kind: u32,
    /// SEND_TOKEN_REQUEST: FIELDAUTH_REQUEST_*; else FIELDAUTH_REQUEST_NONE.
    pub request_kind: u32,
    /// FAILED: FIELDAUTH_FAILURE_*; else FIELDAUTH_FAILURE_NONE.
    pub failure: u32,
    /// Always 0.
    pub reserved: u32,
}

/// Event: none (the response is not complete yet).
pub const FIELDAUTH_EVENT_NONE: u32 = 0;
/// Event: a new token is active.
pub const FIELDAUTH_EVENT_TOKEN_ISSUED: u32 = 1;
/// Event: a device code arrived: show fieldauth_session_device_display().
pub const FIELDAUTH_EVENT_USER_CODE: u32 = 2;
/// Event: device flow: the user has not approved yet; polling continues.
pub const FIELDAUTH_EVENT_AUTHORIZATION_PENDING: u32 = 3;
/// Event: device flow: the server asked to poll more slowly.
pub const FIELDAUTH_EVENT_SLOW_DOWN: u32 = 4;
/// Event: the refresh token was rejected; the primary grant is tried next.
pub const FIELDAUTH_EVENT_REFRESH_REJECTED: u32 = 5;
/// Event: the request failed transiently; retried at `at_ms`.
pub const FIELDAUTH_EVENT_RETRYING: u32 = 6;
/// Event: the session entered a permanent failure (`failure`).
pub const FIELDAUTH_EVENT_FAILED: u32 = 7;
/// Event: the tokens were revoked.
pub const FIELDAUTH_EVENT_REVOKED: u32 = 8;

/// What the session did with a token response (for logs and timelines).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_event {
    /// RETRYING: when the retry may go out; else 0.
    pub at_ms: u64,
    /// FIELDAUTH_EVENT_*.
    pub kind: u32,
    /// TOKEN_ISSUED: which request obtained it (FIELDAUTH_REQUEST_*).
    pub request_kind: u32,
    /// TOKEN_ISSUED: the token's lifetime in seconds.
    pub lifetime_s: u32,
    /// TOKEN_ISSUED: 1 if a refresh token is held.
    pub refreshable: u32,
    /// RETRYING: HTTP status of the failed response (0: transport failure).
    pub http_status: u32,
    /// FAILED: FIELDAUTH_FAILURE_*.
    pub failure: u32,
}

/// Authorization: send the request with the credential written to the buffer.
pub const FIELDAUTH_AUTHORIZATION_SEND: u32 = 1;
/// Authorization: a rate limit applies: do not send before `until_ms`.
pub const FIELDAUTH_AUTHORIZATION_WAIT: u32 = 2;
/// Authorization: no usable credential: poll the session.
pub const FIELDAUTH_AUTHORIZATION_NO_CREDENTIAL: u32 = 3;

/// Credential form: the buffer holds a header line `Name: value\r\n`; send
/// the request to the original target with this line added.
pub const FIELDAUTH_CREDENTIAL_HEADER: u32 = 1;
/// Credential form: the buffer holds the request target with the credential
/// appended as a query parameter; send the request to that target.
pub const FIELDAUTH_CREDENTIAL_QUERY: u32 = 2;

/// The permission to send one API request (fieldauth_session_authorize).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_authorization {
    /// WAIT: when a request may go out; else 0.
    pub until_ms: u64,
    /// FIELDAUTH_AUTHORIZATION_*.
    pub kind: u32,
    /// SEND: FIELDAUTH_CREDENTIAL_*; else 0.
    pub credential: u32,
    /// SEND with FIELDAUTH_CREDENTIAL_HEADER: length of the header name at
    /// the start of the line (the value starts 2 bytes later and ends 2 bytes
    /// before the line's end); else 0.
    pub header_name_len: usize,
    /// SEND: which token the credential is (give it to
    /// fieldauth_session_report_api_response_for() with the response, so a
    /// late rejection of an older token leaves a newer one alone); else 0.
    pub token_id: u32,
    /// Always 0.
    pub reserved: u32,
}

/// Verdict: success, or an error unrelated to authentication.
pub const FIELDAUTH_VERDICT_OK: u32 = 1;
/// Verdict: the token was rejected and dropped: poll (a new token is fetched)
/// and retry the request once.
pub const FIELDAUTH_VERDICT_RETRY_WITH_NEW_TOKEN: u32 = 2;
/// Verdict: the token was rejected again right after a retry: not retried.
pub const FIELDAUTH_VERDICT_UNAUTHORIZED: u32 = 3;
/// Verdict: the API key was rejected (permanent failure).
pub const FIELDAUTH_VERDICT_INVALID_KEY: u32 = 4;
/// Verdict: the credential lacks permission (403): not retried.
pub const FIELDAUTH_VERDICT_FORBIDDEN: u32 = 5;
/// Verdict: rate limited: retry the request at `until_ms`.
pub const FIELDAUTH_VERDICT_RATE_LIMITED: u32 = 6;

/// What an API response means (fieldauth_session_report_api_response).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_verdict {
    /// RATE_LIMITED: when requests may resume; else 0.
    pub until_ms: u64,
    /// FIELDAUTH_VERDICT_*.
    pub kind: u32,
    /// Always 0.
    pub reserved: u32,
}

/// The session's state for display and logs (no secrets).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_session_info {
    /// When the token expires (FIELDAUTH_NEVER for API keys).
    pub expires_at_ms: u64,
    /// When the session will refresh it.
    pub refresh_at_ms: u64,
    /// API requests are blocked until this time by a rate limit (0: not).
    pub api_blocked_until_ms: u64,
    /// The token endpoint is blocked until this time (0: not).
    pub token_blocked_until_ms: u64,
    /// 1 if a token (or API key) is usable now.
    pub usable: u32,
    /// 1 if a refresh token is held.
    pub refreshable: u32,
    /// Consecutive failed token requests.
    pub failed_attempts: u32,
    /// FIELDAUTH_FAILURE_* (FIELDAUTH_FAILURE_NONE: none).
    pub failure: u32,
    /// HTTP status of the last token-endpoint response (0: none yet, or the
    /// last exchange failed at the transport or timed out): with the failure
    /// description it says what happened (a 404 with a non-JSON body is a
    /// wrong token URL, not bad credentials).
    pub last_http_status: u32,
    /// 1 if that response declared a JSON body; 0 if not.
    pub last_content_json: u32,
    /// The bytes of token slot the last token response needed when it did
    /// not fit (CAPACITY_EXCEEDED; 0: none fell short since the last token):
    /// give the session storage for slots this large
    /// (fieldauth_session_storage_size(), then
    /// fieldauth_session_init_with_storage()).
    pub slot_needed: u32,
    /// The bytes each of the session's two token slots holds.
    pub slot_capacity: u32,
}

/// What the user needs to see in the device flow (RFC 8628 §3.3). The
/// strings point into the buffer passed to fieldauth_session_device_display()
/// and are NUL-terminated there.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_device_display {
    /// Monotonic time (ms) when the code expires.
    pub expires_at_ms: u64,
    /// The code to enter.
    pub user_code: fieldauth_str,
    /// Where to enter it.
    pub verification_uri: fieldauth_str,
    /// A URI with the code included (for a QR code); empty if none was sent.
    pub verification_uri_complete: fieldauth_str,
}

/// The `Bearer` challenge of a response's `WWW-Authenticate`
/// (fieldauth_head_get_bearer): why a token was rejected, in the server's
/// words. The texts point into the buffer passed to that call and are
/// NUL-terminated there; an absent parameter is the empty string.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_bearer_challenge {
    /// `error` as sent (`invalid_token`, `insufficient_scope`, ...).
    pub error: fieldauth_str,
    /// `error_description`.
    pub error_description: fieldauth_str,
    /// `scope`: the scope the resource requires (space-separated).
    pub scope: fieldauth_str,
    /// `realm`.
    pub realm: fieldauth_str,
    /// `error_uri`.
    pub error_uri: fieldauth_str,
}

/// Maximum number of headers in fieldauth_request_parts.
pub const FIELDAUTH_MAX_HEADERS: usize = 12;

/// One request header: name and value point into the caller's buffer.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_header {
    /// Header name.
    pub name: fieldauth_str,
    /// Header value.
    pub value: fieldauth_str,
}

/// A token request as parts, for hosts whose HTTP client takes a method,
/// target, headers and body. Every string points into the buffer passed to
/// fieldauth_session_write_token_request_parts() (`method` is static).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_request_parts {
    /// Always "POST".
    pub method: fieldauth_str,
    /// The request target (origin-form path and query).
    pub target: fieldauth_str,
    /// The headers; the first `header_count` are used (Host and
    /// Content-Length included).
    pub headers: [fieldauth_header; FIELDAUTH_MAX_HEADERS],
    /// Number of used entries in `headers`.
    pub header_count: usize,
    /// The body (empty for a Bearer revocation).
    pub body: fieldauth_str,
    /// The complete HTTP/1.1 request (what
    /// fieldauth_session_write_token_request writes).
    pub raw: fieldauth_str,
}

// ------------------------------------------------------------------ HTTP

/// Response head flag: Content-Length was present (`content_length`).
pub const FIELDAUTH_HEAD_CONTENT_LENGTH: u32 = 1;
/// Response head flag: Transfer-Encoding: chunked.
pub const FIELDAUTH_HEAD_CHUNKED: u32 = 2;
/// Response head flag: the server closes the connection after this response.
pub const FIELDAUTH_HEAD_CONNECTION_CLOSE: u32 = 4;
/// Response head flag: the Content-Type is JSON (application/json, +json).
pub const FIELDAUTH_HEAD_CONTENT_TYPE_JSON: u32 = 8;
/// Response head flag: a valid Date was present (`date`).
pub const FIELDAUTH_HEAD_DATE: u32 = 16;
/// Response head flag: Retry-After in seconds (`retry_after`).
pub const FIELDAUTH_HEAD_RETRY_AFTER_DELAY: u32 = 32;
/// Response head flag: Retry-After as a date (`retry_after`, Unix seconds).
pub const FIELDAUTH_HEAD_RETRY_AFTER_DATE: u32 = 64;
/// Response head flag: X-RateLimit-Limit present.
pub const FIELDAUTH_HEAD_X_RATE_LIMIT_LIMIT: u32 = 128;
/// Response head flag: X-RateLimit-Remaining present.
pub const FIELDAUTH_HEAD_X_RATE_LIMIT_REMAINING: u32 = 256;
/// Response head flag: X-RateLimit-Reset present (raw value).
pub const FIELDAUTH_HEAD_X_RATE_LIMIT_RESET: u32 = 512;
/// Response head flag: WWW-Authenticate carried a Bearer challenge.
pub const FIELDAUTH_HEAD_BEARER_CHALLENGE: u32 = 1024;

/// Body framing: exactly `content_length` bytes.
pub const FIELDAUTH_FRAMING_LENGTH: u32 = 1;
/// Body framing: the chunked transfer coding.
pub const FIELDAUTH_FRAMING_CHUNKED: u32 = 2;
/// Body framing: everything until the server closes the connection.
pub const FIELDAUTH_FRAMING_CLOSE: u32 = 3;

/// What a complete response head says (fieldauth_head_get_info).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_response_info {
    /// Content-Length (valid with FIELDAUTH_HEAD_CONTENT_LENGTH); for
    /// FIELDAUTH_FRAMING_LENGTH the body length (0 for 204/304).
    pub content_length: u64,
    /// Date as Unix seconds (valid with FIELDAUTH_HEAD_DATE).
    pub date: u64,
    /// Retry-After: seconds (FIELDAUTH_HEAD_RETRY_AFTER_DELAY) or Unix
    /// seconds (FIELDAUTH_HEAD_RETRY_AFTER_DATE).
    pub retry_after: u64,
    /// X-RateLimit-Reset as sent (FIELDAUTH_HEAD_X_RATE_LIMIT_RESET).
    pub x_rate_limit_reset: u64,
    /// HTTP status, 200 ..= 599 (interim 1xx heads are skipped).
    pub status: u32,
    /// FIELDAUTH_HEAD_* flags.
    pub flags: u32,
    /// FIELDAUTH_FRAMING_*.
    pub framing: u32,
    /// X-RateLimit-Limit (FIELDAUTH_HEAD_X_RATE_LIMIT_LIMIT).
    pub x_rate_limit_limit: u32,
    /// X-RateLimit-Remaining (FIELDAUTH_HEAD_X_RATE_LIMIT_REMAINING).
    pub x_rate_limit_remaining: u32,
    /// Informational fields present but malformed (reported as absent): bit
    /// 1 Date, 2 Retry-After, 4 X-RateLimit-*, 8 IETF RateLimit, 16
    /// WWW-Authenticate.
    pub malformed: u32,
}

/// Progress of fieldauth_body_read.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_body_progress {
    /// Bytes of the input consumed (framing and payload). Bytes after the end
    /// of the body are never consumed.
    pub consumed: usize,
    /// Offset in the input of the payload found among the consumed bytes.
    pub data_offset: usize,
    /// Length of that payload (may be 0).
    pub data_len: usize,
    /// 1 when the whole body has been read (never for FIELDAUTH_FRAMING_CLOSE:
    /// call fieldauth_body_finish at end of stream).
    pub done: u32,
}

// ------------------------------------------------------------------ transport

/// A transport callback's return: the connection was closed by the peer
/// (recv: end of stream). Any other negative value is an I/O error.
pub const FIELDAUTH_TRANSPORT_CLOSED: isize = -2;
/// A transport callback's return: an I/O error (any negative value other than
/// FIELDAUTH_TRANSPORT_CLOSED means the same).
pub const FIELDAUTH_TRANSPORT_ERROR: isize = -1;

/// Blocking or non-blocking byte transport for fieldauth_session_exchange(),
/// e.g. a socket or a TLS stream the caller has connected to the provider.
/// The callbacks return ptrdiff_t (signed, pointer-sized: a POSIX ssize_t
/// converts without loss).
///
/// `send` writes up to `len` bytes of `buf` and returns how many it wrote
/// (1 ..= len), 0 if it would block, or a negative value on error. `recv`
/// reads up to `len` bytes into `buf` and returns how many it read (1 ..=
/// len), 0 if it would block, FIELDAUTH_TRANSPORT_CLOSED at end of stream, or
/// another negative value on error. (POSIX: map recv()'s 0 to
/// FIELDAUTH_TRANSPORT_CLOSED and EAGAIN/EWOULDBLOCK to 0.) Both get `ctx`
/// unchanged. They are called only during fieldauth_session_exchange(), from
/// the calling thread, and must not unwind or longjmp through the library.
/// The library keeps no pointer to this struct or to `ctx` after the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fieldauth_transport {
    /// Passed to both callbacks.
    pub ctx: *mut c_void,
    /// Writes bytes; see above. Required.
    pub send: Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *const u8, len: usize) -> isize>,
    /// Reads bytes; see above. Required.
    pub recv: Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize>,
}
