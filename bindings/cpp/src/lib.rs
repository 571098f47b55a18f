//! The C++ binding of fieldauth, built with [cxx](https://cxx.rs).
//!
//! Two layers:
//!
//! - This crate: a `#[cxx::bridge]` in namespace `fieldauth::bridge` with an
//!   opaque Rust [`Session`] (the core's
//!   [`fieldauth::session::Session`] plus an HTTP response-head parser) and
//!   plain shared structs and enums. `build.rs` generates the C++
//!   declarations (`<target>/cxxbridge/fieldauth-cpp/src/lib.rs.h`) and
//!   compiles the bridge's C++ half into `libfieldauth_cpp.a`, which also
//!   holds the Rust code: a C++ program links that one archive.
//! - `include/fieldauth.hpp`, hand-written C++17: `fieldauth::Session` (RAII,
//!   move-only, wiped on destruction), `std::string_view` inputs, results as
//!   plain structs, and `fieldauth::Error` exceptions carrying a
//!   [`Status`] code. Read that header for the C++ API; `README.md` beside
//!   it says how to build and link.
//!
//! # Decisions
//! - **One heap allocation per session.** A session lives in a `rust::Box`
//!   (about 3.7 KB: the core session with its 3072-byte arena, and a
//!   256-byte head parser). Requests, credentials and snapshots come back as
//!   owned `rust::Vec<uint8_t>` / `rust::String`; the scratch buffers that
//!   held secrets are wiped before they are freed, and the C++ layer wipes
//!   the secret-bearing byte buffers it hands out when they are destroyed.
//!   The C ABI (`include/fieldauth.h`) never allocates: embedded targets use
//!   it; this binding is for hosts (gateways, desktop tools, servers).
//! - **One table of status codes.** Errors are the C ABI's numbers and
//!   sentences: core errors are mapped by the C ABI crate's own
//!   `status_of` and described by the core's `Display` (the C ABI's sentence
//!   plus the field, member or size involved); binding-level errors use the
//!   C ABI's `message`. Every shared enum's values are the header's
//!   `FIELDAUTH_*` constants, checked at compile time below. The C ABI crate
//!   is linked as an rlib (with its test-only `std` feature: its `no_std`
//!   panic handler would clash with std's); its `extern "C"` functions are
//!   in the archive too but nothing here calls them.
//! - **Errors cross as text.** cxx turns `Err(e)` into a `rust::Error` whose
//!   `what()` is `e`'s `Display`: `"fieldauth error <code>: <sentence>"`.
//!   `fieldauth.hpp` parses the code back into `fieldauth::Error::code()`.
//!   Texts never contain secrets or input bytes (only names of fields).
//! - **Bytes in, not `rust::Str`.** Text inputs cross as byte slices and are
//!   checked here, so invalid UTF-8 is a `Status::InvalidUtf8` error rather
//!   than a `std::invalid_argument` from cxx.
//! - **Head parsing is built in.** The session feeds token-response bytes to
//!   its own head parser (`feed_token_head`), and API responses are parsed
//!   from their raw head bytes (`report_api_response`), so C++ needs no
//!   separate head object. A malformed token-response head counts as a
//!   failed exchange (a retry is scheduled), as a malformed body does in
//!   the core.
//! - **Profiles: presets plus overrides.** A session starts from a preset
//!   (by id or name) whose mode and client authentication may be
//!   overridden (a device-flow or public client on the custom preset).
//!   Fully custom profiles (paths, budgets, placement) are the C ABI's
//!   `fieldauth_profile`; they are not in this binding yet.
//!
//! Not thread-safe: one session is used by one thread at a time; distinct
//! sessions are independent.
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::fmt;

use fieldauth::apply::ApiCredential;
use fieldauth::http::HeadParser;
use fieldauth::preset::{self, Profile};
use fieldauth::request::ClientAuth as CoreClientAuth;
use fieldauth::session::{self as core_session, Config, DEFAULT_CAPACITY};
use fieldauth_c as c;
use zeroize::Zeroize;

pub use bridge::*;

/// The declarations shared with C++ (namespace `fieldauth::bridge`). The
/// values of every enum are the C ABI's constants (checked at compile time).
#[cxx::bridge(namespace = "fieldauth::bridge")]
mod bridge {
    /// A status code: `FIELDAUTH_OK` or a `FIELDAUTH_ERR_*` of the C ABI
    /// (same numbers, same sentences; families of 100).
    #[repr(u32)]
    #[derive(Debug)]
    enum Status {
        /// Success.
        Ok = 0,
        /// A required pointer argument is NULL.
        NullPointer = 1,
        /// A pointer is misaligned.
        Misaligned = 2,
        /// The object is not initialized (in C++: a moved-from session).
        NotInitialized = 3,
        /// A text input is not valid UTF-8.
        InvalidUtf8 = 4,
        /// An enumeration value is not one of its constants.
        UnknownEnum = 5,
        /// A number or length is out of range.
        InvalidArgument = 6,
        /// The transport would block.
        WouldBlock = 7,
        /// An output buffer is too small.
        BufferTooSmall = 100,
        /// A fixed capacity is too small for a value or a response.
        CapacityExceeded = 101,
        /// An input value is unusable (unnamed kind).
        Input = 200,
        /// A required value is empty.
        InputEmpty = 201,
        /// A value contains CR, LF, NUL or another control character.
        InputControlCharacter = 202,
        /// A value contains a character not allowed in its position.
        InputInvalidCharacter = 203,
        /// The endpoint URL is not http(s)://host[:port]/path.
        InputInvalidUrl = 204,
        /// Plain http to a non-loopback host without allow_insecure.
        InputInsecureScheme = 205,
        /// A value is longer than its format allows.
        InputTooLong = 206,
        /// A value is shorter than its format requires.
        InputTooShort = 207,
        /// A value the operation needs is not configured.
        InputMissing = 208,
        /// A header fieldauth sets itself cannot be supplied.
        InputReserved = 209,
        /// The redirect's state or iss is not the one the login expects.
        InputMismatch = 210,
        /// A parameter appears more than once in the redirect.
        InputDuplicate = 211,
        /// The value needs a feature this build of the library leaves out.
        InputUnsupported = 212,
        /// Malformed HTTP response (unnamed kind).
        Http = 300,
        /// Malformed HTTP status line.
        HttpStatusLine = 301,
        /// Malformed HTTP header line.
        HttpHeaderLine = 302,
        /// Malformed Content-Length.
        HttpContentLength = 303,
        /// Conflicting message length.
        HttpConflictingLength = 304,
        /// Unsupported Transfer-Encoding.
        HttpTransferEncoding = 305,
        /// Malformed chunked transfer coding.
        HttpChunk = 306,
        /// Too many header lines.
        HttpTooManyHeaders = 307,
        /// A header value that must be parsed is malformed.
        HttpHeaderValue = 308,
        /// Data after the end of the HTTP message.
        HttpTrailingData = 309,
        /// The body is not valid JSON (unnamed kind).
        Json = 400,
        /// JSON syntax error.
        JsonSyntax = 401,
        /// The body ended before the JSON was complete.
        JsonTruncated = 402,
        /// Invalid UTF-8 in the body.
        JsonInvalidUtf8 = 403,
        /// Invalid escape sequence in a JSON string.
        JsonInvalidEscape = 404,
        /// Raw control character inside a JSON string.
        JsonControlCharacter = 405,
        /// JSON nested too deeply.
        JsonTooDeep = 406,
        /// The JSON body is not an object.
        JsonNotAnObject = 407,
        /// Data after the end of the JSON object.
        JsonTrailingData = 408,
        /// The response is well-formed but unusable (unnamed kind).
        Response = 500,
        /// The response lacks a required member.
        ResponseMissingMember = 501,
        /// The response repeats a member.
        ResponseDuplicateMember = 502,
        /// A member has the wrong JSON type.
        ResponseWrongType = 503,
        /// A number is negative, fractional, malformed or absurd.
        ResponseInvalidNumber = 504,
        /// A token contains characters RFC 6749 does not allow.
        ResponseInvalidCharacters = 505,
        /// token_type is not Bearer.
        ResponseUnsupportedTokenType = 506,
        /// The body is not JSON.
        ResponseNotJson = 507,
        /// Unexpected HTTP status for this operation.
        ResponseUnexpectedStatus = 508,
        /// The authorization server redirected back with `error=`.
        ResponseAuthorizationDenied = 509,
        /// The call is not valid in the session's current state.
        WrongState = 600,
        /// A snapshot cannot be restored (unnamed kind).
        Snapshot = 700,
        /// The snapshot has the wrong length.
        SnapshotLength = 701,
        /// The snapshot is corrupt.
        SnapshotCorrupt = 702,
        /// The snapshot is from another format version.
        SnapshotVersion = 703,
        /// The snapshot belongs to another configuration.
        SnapshotForeign = 704,
        /// The snapshot holds nothing still valid.
        SnapshotExpired = 705,
        /// The transport failed.
        Transport = 800,
        /// An error this version does not know.
        Unknown = 900,
    }

    /// Provider presets (`FIELDAUTH_PRESET_*`).
    #[repr(u32)]
    #[derive(Debug)]
    enum Preset {
        /// Generic RFC 6749 client credentials: the base of custom setups.
        Custom = 0,
        /// Fentu FSM with an API key.
        FentuApiKey = 1,
        /// Fentu FSM with OAuth 2.0 (authorization code).
        FentuOauth = 2,
        /// Field Nation (client credentials, JSON, token in the query).
        FieldNation = 3,
        /// Autotask (client credentials, rate-limited token endpoint).
        Autotask = 4,
        /// Patchworks with an API key.
        PatchworksApiKey = 5,
        /// Patchworks with a username/password login.
        PatchworksLogin = 6,
    }

    /// Authentication mode (`FIELDAUTH_MODE_*`); `Preset` keeps the preset's.
    #[repr(u32)]
    #[derive(Debug)]
    enum Mode {
        /// The preset's own mode.
        Preset = 0,
        /// A static API key.
        ApiKey = 1,
        /// OAuth 2.0 client credentials.
        ClientCredentials = 2,
        /// Resource-owner password grant.
        Password = 3,
        /// Provider login with username/password (Patchworks).
        Login = 4,
        /// Authorization code with PKCE.
        AuthorizationCode = 5,
        /// Device authorization grant (RFC 8628).
        DeviceCode = 6,
    }

    /// Client authentication (`FIELDAUTH_CLIENT_AUTH_*`); `Preset` keeps the
    /// preset's.
    #[repr(u32)]
    #[derive(Debug)]
    enum ClientAuth {
        /// The preset's own client authentication.
        Preset = 0,
        /// client_id and client_secret in the body.
        Body = 1,
        /// HTTP Basic.
        Basic = 2,
        /// Public client (client_id only).
        None = 3,
    }

    /// What to do next (`FIELDAUTH_ACTION_*`).
    #[repr(u32)]
    #[derive(Debug)]
    enum ActionKind {
        /// Write a token request and send it.
        SendTokenRequest = 1,
        /// A token request is in flight: feed its response.
        AwaitResponse = 2,
        /// A credential is usable; poll again by `at_ms`.
        Ready = 3,
        /// Nothing usable yet: poll again at `at_ms`.
        Wait = 4,
        /// Authorization-code mode: run the browser step.
        NeedAuthorizationCode = 5,
        /// A permanent failure (see `failure`).
        Failed = 6,
    }

    /// Token request kinds (`FIELDAUTH_REQUEST_*`).
    #[repr(u32)]
    #[derive(Debug)]
    enum RequestKind {
        /// Not applicable.
        None = 0,
        /// The primary grant.
        Fetch = 1,
        /// The refresh_token grant.
        Refresh = 2,
        /// The RFC 8628 device authorization request.
        DeviceAuthorization = 3,
        /// An RFC 8628 device_code poll.
        DevicePoll = 4,
        /// A revocation request.
        Revoke = 5,
    }

    /// Permanent failures (`FIELDAUTH_FAILURE_*`).
    #[repr(u32)]
    #[derive(Debug)]
    enum Failure {
        /// No failure.
        None = 0,
        /// The server rejected the client credentials.
        InvalidClient = 1,
        /// The client may not use this grant.
        UnauthorizedClient = 2,
        /// The requested scope is invalid.
        InvalidScope = 3,
        /// The username/password (or code) was rejected.
        InvalidGrant = 4,
        /// The API key was rejected.
        InvalidKey = 5,
        /// The user denied the request.
        AccessDenied = 6,
        /// The server rejected the request as malformed.
        Rejected = 7,
        /// Too many consecutive token requests failed.
        RetriesExhausted = 8,
        /// The tokens were revoked (or the session cleared).
        Revoked = 9,
    }

    /// What a token response did (`FIELDAUTH_EVENT_*`).
    #[repr(u32)]
    #[derive(Debug)]
    enum EventKind {
        /// The response is not complete yet.
        None = 0,
        /// A new token is active.
        TokenIssued = 1,
        /// A device code arrived: show `device_display`.
        UserCode = 2,
        /// Device flow: not approved yet.
        AuthorizationPending = 3,
        /// Device flow: poll more slowly.
        SlowDown = 4,
        /// The refresh token was rejected; the primary grant is next.
        RefreshRejected = 5,
        /// Failed transiently; retried at `at_ms`.
        Retrying = 6,
        /// A permanent failure (see `failure`).
        Failed = 7,
        /// The tokens were revoked.
        Revoked = 8,
    }

    /// The answer of `authorize` (`FIELDAUTH_AUTHORIZATION_*`).
    #[repr(u32)]
    #[derive(Debug)]
    enum AuthorizationKind {
        /// Send the request with the credential.
        Send = 1,
        /// Rate limited: do not send before `until_ms`.
        Wait = 2,
        /// No usable credential: poll the session.
        NoCredential = 3,
    }

    /// How a credential is applied (`FIELDAUTH_CREDENTIAL_*`, plus `None`).
    #[repr(u32)]
    #[derive(Debug)]
    enum CredentialForm {
        /// No credential (not `Send`).
        None = 0,
        /// A header: `header_name` and the header value.
        Header = 1,
        /// A query parameter: the value is the target to send the request to.
        Query = 2,
    }

    /// What an API response means (`FIELDAUTH_VERDICT_*`).
    #[repr(u32)]
    #[derive(Debug)]
    enum Verdict {
        /// Success, or an error unrelated to authentication.
        Ok = 1,
        /// The token was rejected and dropped: poll, then retry once.
        RetryWithNewToken = 2,
        /// Rejected again right after a retry: not retried.
        Unauthorized = 3,
        /// The API key was rejected (permanent failure).
        InvalidKey = 4,
        /// The credential lacks permission (403).
        Forbidden = 5,
        /// Rate limited: retry at `until_ms`.
        RateLimited = 6,
    }

    /// What to do next, from `poll`.
    #[derive(Debug)]
    struct Action {
        /// What to do.
        kind: ActionKind,
        /// Ready: poll again by this time; Wait: poll again at this time.
        at_ms: u64,
        /// SendTokenRequest: which request.
        request: RequestKind,
        /// Failed: why.
        failure: Failure,
    }

    /// What a completed token response (or a transport error) did.
    #[derive(Debug)]
    struct Event {
        /// What happened.
        kind: EventKind,
        /// Retrying: when the retry may go out.
        at_ms: u64,
        /// TokenIssued: which request obtained the token.
        request: RequestKind,
        /// TokenIssued: the token's lifetime in seconds.
        lifetime_s: u32,
        /// TokenIssued: a refresh token is held.
        refreshable: bool,
        /// Retrying: the HTTP status (0: transport failure).
        http_status: u16,
        /// Failed: why.
        failure: Failure,
    }

    /// Progress of `feed_token_head`.
    #[derive(Debug)]
    struct HeadProgress {
        /// The head is complete (the session has it).
        complete: bool,
        /// Bytes of the input that belonged to the head; the rest is body.
        consumed: usize,
        /// The response's HTTP status, once complete (else 0).
        http_status: u16,
    }

    /// Progress of `feed_token_body`.
    #[derive(Debug)]
    struct BodyProgress {
        /// Bytes of the chunk that belonged to the body.
        consumed: usize,
        /// What the session made of the response; kind `None` until complete.
        event: Event,
    }

    /// The answer of `authorize`. `value` holds the secret.
    struct Authorization {
        /// Send, Wait or NoCredential.
        kind: AuthorizationKind,
        /// Wait: when a request may go out.
        until_ms: u64,
        /// Send: how to apply the credential.
        form: CredentialForm,
        /// Header form: the header name (e.g. `Authorization`).
        header_name: String,
        /// Header form: the header value (e.g. `Bearer <token>`); query
        /// form: the request target with the credential appended.
        value: Vec<u8>,
    }

    /// The answer of `report_api_response`.
    #[derive(Debug)]
    struct ApiVerdict {
        /// What the response means.
        kind: Verdict,
        /// RateLimited: when requests may resume.
        until_ms: u64,
    }

    /// Device flow: what the user needs to see.
    #[derive(Debug)]
    struct DeviceDisplay {
        /// The code to enter.
        user_code: String,
        /// Where to enter it.
        verification_uri: String,
        /// A URI with the code included (empty if the server sent none).
        verification_uri_complete: String,
        /// When the code expires (monotonic ms).
        expires_at_ms: u64,
    }

    /// The session's state for display and logs (no secrets).
    #[derive(Debug)]
    struct Info {
        /// A token (or API key) is usable now.
        usable: bool,
        /// When the token expires (`u64::MAX`: never).
        expires_at_ms: u64,
        /// When the session will refresh it.
        refresh_at_ms: u64,
        /// A refresh token is held.
        refreshable: bool,
        /// Consecutive failed token requests.
        failed_attempts: u8,
        /// API requests are blocked until this time (0: not).
        api_blocked_until_ms: u64,
        /// The token endpoint is blocked until this time (0: not).
        token_blocked_until_ms: u64,
        /// The permanent failure, if any.
        failure: Failure,
        /// HTTP status of the last token-endpoint response (0: none, or a
        /// transport failure or timeout).
        last_http_status: u16,
        /// Whether that response declared a JSON body.
        last_content_json: bool,
    }

    extern "Rust" {
        /// The session (opaque to C++; owned through `rust::Box`).
        type Session;

        /// A session for `preset`, optionally with another `mode` and
        /// `client_auth`, with the configuration strings (UTF-8; empty means
        /// not configured) and a jitter seed.
        #[allow(clippy::too_many_arguments)]
        fn new_session(
            preset: Preset,
            mode: Mode,
            client_auth: ClientAuth,
            base_url: &[u8],
            client_id: &[u8],
            client_secret: &[u8],
            username: &[u8],
            password: &[u8],
            api_key: &[u8],
            scope: &[u8],
            redirect_uri: &[u8],
            allow_insecure: bool,
            max_wait_s: u32,
            seed: u64,
        ) -> Result<Box<Session>>;

        /// The preset with this name (case and punctuation ignored).
        fn preset_by_name(name: &[u8]) -> Result<Preset>;
        /// The preset's display name (`preset_display_name`: a plain
        /// `preset_name` would be found by argument-dependent lookup from
        /// `fieldauth::preset_name(Preset)` and make calls ambiguous).
        fn preset_display_name(preset: Preset) -> Result<&'static str>;
        /// Number of presets (ids 0 .. count - 1).
        fn preset_count() -> u32;
        /// The C ABI's sentence for a status code (any value).
        fn status_message(status: u32) -> &'static str;
        /// The library version, e.g. `0.1.0`.
        fn version() -> &'static str;

        /// What to do next at monotonic time `now_ms`.
        fn poll(self: &mut Session, now_ms: u64) -> Action;
        /// Writes the due token request as complete HTTP/1.1 bytes and marks
        /// it in flight.
        fn write_token_request(self: &mut Session, now_ms: u64) -> Result<Vec<u8>>;
        /// The URL the current or next token request goes to.
        fn token_request_url(self: &Session) -> Result<String>;
        /// Feeds bytes of the token response head.
        fn feed_token_head(self: &mut Session, now_ms: u64, bytes: &[u8]) -> Result<HeadProgress>;
        /// Feeds a piece of the token response body.
        fn feed_token_body(self: &mut Session, now_ms: u64, chunk: &[u8]) -> Result<BodyProgress>;
        /// The connection closed.
        fn feed_token_eof(self: &mut Session, now_ms: u64) -> Result<Event>;
        /// The token request failed at the transport.
        fn report_transport_error(self: &mut Session, now_ms: u64) -> Event;
        /// Permission and credential for one API request to `target`.
        fn authorize(self: &mut Session, now_ms: u64, target: &[u8]) -> Result<Authorization>;
        /// Reports an API response: its raw head and the first body bytes.
        fn report_api_response(
            self: &mut Session,
            now_ms: u64,
            head: &[u8],
            body_prefix: &[u8],
        ) -> Result<ApiVerdict>;
        /// Size of this session's snapshot image.
        fn snapshot_len(self: &Session) -> usize;
        /// The snapshot image (holds the tokens: store it like a password).
        fn snapshot(self: &Session, now_ms: u64, unix_ms: u64) -> Result<Vec<u8>>;
        /// Restores a snapshot image.
        fn restore(self: &mut Session, now_ms: u64, unix_ms: u64, image: &[u8]) -> Result<()>;
        /// Device flow: what to show the user.
        fn device_display(self: &Session) -> Result<DeviceDisplay>;
        /// Authorization-code mode: the URL to open in a browser.
        fn authorization_url(
            self: &mut Session,
            verifier_random: &[u8],
            state_random: &[u8],
        ) -> Result<String>;
        /// Authorization-code mode: the code and state the redirect brought.
        fn set_authorization_code(self: &mut Session, code: &[u8], state: &[u8]) -> Result<()>;
        /// Records the wall clock (`unix_ms` at monotonic `now_ms`).
        fn set_wall_clock(self: &mut Session, now_ms: u64, unix_ms: u64);
        /// Mixes new randomness into the jitter generator.
        fn reseed(self: &mut Session, seed: u64);
        /// Asks the session to revoke its tokens.
        fn revoke(self: &mut Session);
        /// Leaves a permanent failure and resets the retry counter.
        fn restart(self: &mut Session);
        /// Wipes every secret and token; the session reports `Revoked`.
        fn clear(self: &mut Session);
        /// State for display and logs.
        fn info(self: &Session) -> Info;
        /// The server's error_description for the last token error.
        fn failure_description(self: &Session) -> String;
        /// The scope granted with the active token.
        fn granted_scope(self: &Session) -> String;
    }
}

// ------------------------------------------------------------------ enum values

/// Checks at compile time that each shared enum value is the C ABI's
/// constant, and lists the pairs for the tests.
macro_rules! c_values {
    ($list:ident: $($ours:expr => $theirs:expr),* $(,)?) => {
        /// (binding value, C ABI constant) pairs.
        #[cfg(test)]
        const $list: &[(u32, u32)] = &[$(($ours.repr, $theirs)),*];
        $(const _: () = assert!($ours.repr == $theirs);)*
    };
}

c_values!(STATUS_VALUES:
    Status::Ok => c::FIELDAUTH_OK,
    Status::NullPointer => c::FIELDAUTH_ERR_NULL_POINTER,
    Status::Misaligned => c::FIELDAUTH_ERR_MISALIGNED,
    Status::NotInitialized => c::FIELDAUTH_ERR_NOT_INITIALIZED,
    Status::InvalidUtf8 => c::FIELDAUTH_ERR_INVALID_UTF8,
    Status::UnknownEnum => c::FIELDAUTH_ERR_UNKNOWN_ENUM,
    Status::InvalidArgument => c::FIELDAUTH_ERR_INVALID_ARGUMENT,
    Status::WouldBlock => c::FIELDAUTH_ERR_WOULD_BLOCK,
    Status::BufferTooSmall => c::FIELDAUTH_ERR_BUFFER_TOO_SMALL,
    Status::CapacityExceeded => c::FIELDAUTH_ERR_CAPACITY_EXCEEDED,
    Status::Input => c::FIELDAUTH_ERR_INPUT,
    Status::InputEmpty => c::FIELDAUTH_ERR_INPUT_EMPTY,
    Status::InputControlCharacter => c::FIELDAUTH_ERR_INPUT_CONTROL_CHARACTER,
    Status::InputInvalidCharacter => c::FIELDAUTH_ERR_INPUT_INVALID_CHARACTER,
    Status::InputInvalidUrl => c::FIELDAUTH_ERR_INPUT_INVALID_URL,
    Status::InputInsecureScheme => c::FIELDAUTH_ERR_INPUT_INSECURE_SCHEME,
    Status::InputTooLong => c::FIELDAUTH_ERR_INPUT_TOO_LONG,
    Status::InputTooShort => c::FIELDAUTH_ERR_INPUT_TOO_SHORT,
    Status::InputMissing => c::FIELDAUTH_ERR_INPUT_MISSING,
    Status::InputReserved => c::FIELDAUTH_ERR_INPUT_RESERVED,
    Status::InputMismatch => c::FIELDAUTH_ERR_INPUT_MISMATCH,
    Status::InputDuplicate => c::FIELDAUTH_ERR_INPUT_DUPLICATE,
    Status::InputUnsupported => c::FIELDAUTH_ERR_INPUT_UNSUPPORTED,
    Status::Http => c::FIELDAUTH_ERR_HTTP,
    Status::HttpStatusLine => c::FIELDAUTH_ERR_HTTP_STATUS_LINE,
    Status::HttpHeaderLine => c::FIELDAUTH_ERR_HTTP_HEADER_LINE,
    Status::HttpContentLength => c::FIELDAUTH_ERR_HTTP_CONTENT_LENGTH,
    Status::HttpConflictingLength => c::FIELDAUTH_ERR_HTTP_CONFLICTING_LENGTH,
    Status::HttpTransferEncoding => c::FIELDAUTH_ERR_HTTP_TRANSFER_ENCODING,
    Status::HttpChunk => c::FIELDAUTH_ERR_HTTP_CHUNK,
    Status::HttpTooManyHeaders => c::FIELDAUTH_ERR_HTTP_TOO_MANY_HEADERS,
    Status::HttpHeaderValue => c::FIELDAUTH_ERR_HTTP_HEADER_VALUE,
    Status::HttpTrailingData => c::FIELDAUTH_ERR_HTTP_TRAILING_DATA,
    Status::Json => c::FIELDAUTH_ERR_JSON,
    Status::JsonSyntax => c::FIELDAUTH_ERR_JSON_SYNTAX,
    Status::JsonTruncated => c::FIELDAUTH_ERR_JSON_TRUNCATED,
    Status::JsonInvalidUtf8 => c::FIELDAUTH_ERR_JSON_INVALID_UTF8,
    Status::JsonInvalidEscape => c::FIELDAUTH_ERR_JSON_INVALID_ESCAPE,
    Status::JsonControlCharacter => c::FIELDAUTH_ERR_JSON_CONTROL_CHARACTER,
    Status::JsonTooDeep => c::FIELDAUTH_ERR_JSON_TOO_DEEP,
    Status::JsonNotAnObject => c::FIELDAUTH_ERR_JSON_NOT_AN_OBJECT,
    Status::JsonTrailingData => c::FIELDAUTH_ERR_JSON_TRAILING_DATA,
    Status::Response => c::FIELDAUTH_ERR_RESPONSE,
    Status::ResponseMissingMember => c::FIELDAUTH_ERR_RESPONSE_MISSING_MEMBER,
    Status::ResponseDuplicateMember => c::FIELDAUTH_ERR_RESPONSE_DUPLICATE_MEMBER,
    Status::ResponseWrongType => c::FIELDAUTH_ERR_RESPONSE_WRONG_TYPE,
    Status::ResponseInvalidNumber => c::FIELDAUTH_ERR_RESPONSE_INVALID_NUMBER,
    Status::ResponseInvalidCharacters => c::FIELDAUTH_ERR_RESPONSE_INVALID_CHARACTERS,
    Status::ResponseUnsupportedTokenType => c::FIELDAUTH_ERR_RESPONSE_UNSUPPORTED_TOKEN_TYPE,
    Status::ResponseNotJson => c::FIELDAUTH_ERR_RESPONSE_NOT_JSON,
    Status::ResponseUnexpectedStatus => c::FIELDAUTH_ERR_RESPONSE_UNEXPECTED_STATUS,
    Status::ResponseAuthorizationDenied => c::FIELDAUTH_ERR_RESPONSE_AUTHORIZATION_DENIED,
    Status::WrongState => c::FIELDAUTH_ERR_WRONG_STATE,
    Status::Snapshot => c::FIELDAUTH_ERR_SNAPSHOT,
    Status::SnapshotLength => c::FIELDAUTH_ERR_SNAPSHOT_LENGTH,
    Status::SnapshotCorrupt => c::FIELDAUTH_ERR_SNAPSHOT_CORRUPT,
    Status::SnapshotVersion => c::FIELDAUTH_ERR_SNAPSHOT_VERSION,
    Status::SnapshotForeign => c::FIELDAUTH_ERR_SNAPSHOT_FOREIGN,
    Status::SnapshotExpired => c::FIELDAUTH_ERR_SNAPSHOT_EXPIRED,
    Status::Transport => c::FIELDAUTH_ERR_TRANSPORT,
    Status::Unknown => c::FIELDAUTH_ERR_UNKNOWN,
);

c_values!(PRESET_VALUES:
    Preset::Custom => c::FIELDAUTH_PRESET_CUSTOM,
    Preset::FentuApiKey => c::FIELDAUTH_PRESET_FENTU_API_KEY,
    Preset::FentuOauth => c::FIELDAUTH_PRESET_FENTU_OAUTH,
    Preset::FieldNation => c::FIELDAUTH_PRESET_FIELD_NATION,
    Preset::Autotask => c::FIELDAUTH_PRESET_AUTOTASK,
    Preset::PatchworksApiKey => c::FIELDAUTH_PRESET_PATCHWORKS_API_KEY,
    Preset::PatchworksLogin => c::FIELDAUTH_PRESET_PATCHWORKS_LOGIN,
);

c_values!(MODE_VALUES:
    Mode::ApiKey => c::FIELDAUTH_MODE_API_KEY,
    Mode::ClientCredentials => c::FIELDAUTH_MODE_CLIENT_CREDENTIALS,
    Mode::Password => c::FIELDAUTH_MODE_PASSWORD,
    Mode::Login => c::FIELDAUTH_MODE_LOGIN,
    Mode::AuthorizationCode => c::FIELDAUTH_MODE_AUTHORIZATION_CODE,
    Mode::DeviceCode => c::FIELDAUTH_MODE_DEVICE_CODE,
);

c_values!(CLIENT_AUTH_VALUES:
    ClientAuth::Body => c::FIELDAUTH_CLIENT_AUTH_BODY,
    ClientAuth::Basic => c::FIELDAUTH_CLIENT_AUTH_BASIC,
    ClientAuth::None => c::FIELDAUTH_CLIENT_AUTH_NONE,
);

c_values!(ACTION_VALUES:
    ActionKind::SendTokenRequest => c::FIELDAUTH_ACTION_SEND_TOKEN_REQUEST,
    ActionKind::AwaitResponse => c::FIELDAUTH_ACTION_AWAIT_RESPONSE,
    ActionKind::Ready => c::FIELDAUTH_ACTION_READY,
    ActionKind::Wait => c::FIELDAUTH_ACTION_WAIT,
    ActionKind::NeedAuthorizationCode => c::FIELDAUTH_ACTION_NEED_AUTHORIZATION_CODE,
    ActionKind::Failed => c::FIELDAUTH_ACTION_FAILED,
);

c_values!(REQUEST_VALUES:
    RequestKind::None => c::FIELDAUTH_REQUEST_NONE,
    RequestKind::Fetch => c::FIELDAUTH_REQUEST_FETCH,
    RequestKind::Refresh => c::FIELDAUTH_REQUEST_REFRESH,
    RequestKind::DeviceAuthorization => c::FIELDAUTH_REQUEST_DEVICE_AUTHORIZATION,
    RequestKind::DevicePoll => c::FIELDAUTH_REQUEST_DEVICE_POLL,
    RequestKind::Revoke => c::FIELDAUTH_REQUEST_REVOKE,
);

c_values!(FAILURE_VALUES:
    Failure::None => c::FIELDAUTH_FAILURE_NONE,
    Failure::InvalidClient => c::FIELDAUTH_FAILURE_INVALID_CLIENT,
    Failure::UnauthorizedClient => c::FIELDAUTH_FAILURE_UNAUTHORIZED_CLIENT,
    Failure::InvalidScope => c::FIELDAUTH_FAILURE_INVALID_SCOPE,
    Failure::InvalidGrant => c::FIELDAUTH_FAILURE_INVALID_GRANT,
    Failure::InvalidKey => c::FIELDAUTH_FAILURE_INVALID_KEY,
    Failure::AccessDenied => c::FIELDAUTH_FAILURE_ACCESS_DENIED,
    Failure::Rejected => c::FIELDAUTH_FAILURE_REJECTED,
    Failure::RetriesExhausted => c::FIELDAUTH_FAILURE_RETRIES_EXHAUSTED,
    Failure::Revoked => c::FIELDAUTH_FAILURE_REVOKED,
);

c_values!(EVENT_VALUES:
    EventKind::None => c::FIELDAUTH_EVENT_NONE,
    EventKind::TokenIssued => c::FIELDAUTH_EVENT_TOKEN_ISSUED,
    EventKind::UserCode => c::FIELDAUTH_EVENT_USER_CODE,
    EventKind::AuthorizationPending => c::FIELDAUTH_EVENT_AUTHORIZATION_PENDING,
    EventKind::SlowDown => c::FIELDAUTH_EVENT_SLOW_DOWN,
    EventKind::RefreshRejected => c::FIELDAUTH_EVENT_REFRESH_REJECTED,
    EventKind::Retrying => c::FIELDAUTH_EVENT_RETRYING,
    EventKind::Failed => c::FIELDAUTH_EVENT_FAILED,
    EventKind::Revoked => c::FIELDAUTH_EVENT_REVOKED,
);

c_values!(AUTHORIZATION_VALUES:
    AuthorizationKind::Send => c::FIELDAUTH_AUTHORIZATION_SEND,
    AuthorizationKind::Wait => c::FIELDAUTH_AUTHORIZATION_WAIT,
    AuthorizationKind::NoCredential => c::FIELDAUTH_AUTHORIZATION_NO_CREDENTIAL,
    CredentialForm::Header => c::FIELDAUTH_CREDENTIAL_HEADER,
    CredentialForm::Query => c::FIELDAUTH_CREDENTIAL_QUERY,
);

c_values!(VERDICT_VALUES:
    Verdict::Ok => c::FIELDAUTH_VERDICT_OK,
    Verdict::RetryWithNewToken => c::FIELDAUTH_VERDICT_RETRY_WITH_NEW_TOKEN,
    Verdict::Unauthorized => c::FIELDAUTH_VERDICT_UNAUTHORIZED,
    Verdict::InvalidKey => c::FIELDAUTH_VERDICT_INVALID_KEY,
    Verdict::Forbidden => c::FIELDAUTH_VERDICT_FORBIDDEN,
    Verdict::RateLimited => c::FIELDAUTH_VERDICT_RATE_LIMITED,
);

// ------------------------------------------------------------------ errors

/// An error as it crosses into C++: a C ABI status code and a sentence.
/// `Display` is `fieldauth error <code>: <sentence>` (the form
/// `fieldauth.hpp` parses). Never contains secrets or input bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingError {
    status: u32,
    text: String,
}

impl BindingError {
    /// An error with the C ABI's sentence for `status`, followed by `detail`
    /// (which must not contain secrets) when it is not empty.
    fn new(status: u32, detail: &str) -> Self {
        let mut text = c::message(status).to_string_lossy().into_owned();
        if !detail.is_empty() {
            text.push_str(" (");
            text.push_str(detail);
            text.push(')');
        }
        BindingError { status, text }
    }

    /// The C ABI status code.
    pub fn status(&self) -> u32 {
        self.status
    }
}

impl From<fieldauth::Error> for BindingError {
    fn from(e: fieldauth::Error) -> Self {
        BindingError {
            status: c::status_of(e),
            // The core's sentence (the C ABI's, checked by its tests) plus
            // the field, member, offset or size involved.
            text: e.to_string(),
        }
    }
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fieldauth error {}: {}", self.status, self.text)
    }
}

impl std::error::Error for BindingError {}

/// Result of the bridge functions.
pub type Result<T> = std::result::Result<T, BindingError>;

fn wrong_state(detail: &str) -> BindingError {
    BindingError::new(c::FIELDAUTH_ERR_WRONG_STATE, detail)
}

/// A UTF-8 text input; `what` names it in the error (never its bytes).
fn text<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes)
        .map_err(|_| BindingError::new(c::FIELDAUTH_ERR_INVALID_UTF8, &format!("field: {what}")))
}

/// Runs a core writer with a growing buffer: a first try with `initial`
/// bytes, then once more with exactly the size it asked for. Buffers that
/// are dropped are wiped first (they may hold secrets).
fn grow(
    initial: usize,
    mut write: impl FnMut(&mut [u8]) -> fieldauth::Result<usize>,
) -> Result<Vec<u8>> {
    let mut size = initial;
    loop {
        let mut buf = vec![0u8; size];
        match write(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(fieldauth::Error::BufferTooSmall { needed })
                if usize::try_from(needed).is_ok_and(|n| n > size) =>
            {
                buf.zeroize();
                size = usize::try_from(needed).unwrap_or(size);
            }
            Err(e) => {
                buf.zeroize();
                return Err(e.into());
            }
        }
    }
}

// ------------------------------------------------------------------ presets

/// The core profile of a preset.
fn profile(p: Preset) -> Result<Profile<'static>> {
    if p == Preset::Custom {
        return Ok(preset::custom());
    }
    usize::try_from(p.repr)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| preset::ALL.get(i))
        .map(|p| **p)
        .ok_or_else(|| {
            BindingError::new(
                c::FIELDAUTH_ERR_UNKNOWN_ENUM,
                &format!(
                    "preset id {}: expected 0 .. {}",
                    p.repr,
                    c::FIELDAUTH_PRESET_COUNT.saturating_sub(1)
                ),
            )
        })
}

/// Every preset, by id.
fn presets() -> impl Iterator<Item = Preset> {
    (0..c::FIELDAUTH_PRESET_COUNT).map(|repr| Preset { repr })
}

/// Letters and digits, lower-cased: "Field Nation" and "field-nation" match.
fn fold(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn preset_by_name(name: &[u8]) -> Result<Preset> {
    let want = fold(text(name, "preset name")?);
    for p in presets() {
        if fold(profile(p)?.name) == want {
            return Ok(p);
        }
    }
    let names: Vec<&str> = presets()
        .filter_map(|p| profile(p).ok().map(|p| p.name))
        .collect();
    Err(BindingError::new(
        c::FIELDAUTH_ERR_UNKNOWN_ENUM,
        &format!("unknown preset name; use one of: {}", names.join(", ")),
    ))
}

fn preset_display_name(p: Preset) -> Result<&'static str> {
    Ok(profile(p)?.name)
}

fn preset_count() -> u32 {
    c::FIELDAUTH_PRESET_COUNT
}

fn status_message(status: u32) -> &'static str {
    c::message(status)
        .to_str()
        .unwrap_or("unknown fieldauth status code")
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn core_mode(m: Mode) -> Result<Option<preset::Mode>> {
    Ok(Some(match m {
        Mode::Preset => return Ok(None),
        Mode::ApiKey => preset::Mode::ApiKey,
        Mode::ClientCredentials => preset::Mode::ClientCredentials,
        Mode::Password => preset::Mode::Password,
        Mode::Login => preset::Mode::Login,
        Mode::AuthorizationCode => preset::Mode::AuthorizationCode,
        Mode::DeviceCode => preset::Mode::DeviceCode,
        _ => {
            return Err(BindingError::new(
                c::FIELDAUTH_ERR_UNKNOWN_ENUM,
                &format!("mode {}", m.repr),
            ))
        }
    }))
}

fn core_client_auth(a: ClientAuth) -> Result<Option<CoreClientAuth>> {
    Ok(Some(match a {
        ClientAuth::Preset => return Ok(None),
        ClientAuth::Body => CoreClientAuth::Body,
        ClientAuth::Basic => CoreClientAuth::Basic,
        ClientAuth::None => CoreClientAuth::None,
        _ => {
            return Err(BindingError::new(
                c::FIELDAUTH_ERR_UNKNOWN_ENUM,
                &format!("client_auth {}", a.repr),
            ))
        }
    }))
}

// ------------------------------------------------------------------ conversions

fn request_kind(k: core_session::RequestKind) -> RequestKind {
    match k {
        core_session::RequestKind::Fetch => RequestKind::Fetch,
        core_session::RequestKind::Refresh => RequestKind::Refresh,
        core_session::RequestKind::DeviceAuthorization => RequestKind::DeviceAuthorization,
        core_session::RequestKind::DevicePoll => RequestKind::DevicePoll,
        core_session::RequestKind::Revoke => RequestKind::Revoke,
    }
}

fn failure(f: Option<core_session::Failure>) -> Failure {
    use core_session::Failure as F;
    match f {
        None => Failure::None,
        Some(F::InvalidClient) => Failure::InvalidClient,
        Some(F::UnauthorizedClient) => Failure::UnauthorizedClient,
        Some(F::InvalidScope) => Failure::InvalidScope,
        Some(F::InvalidGrant) => Failure::InvalidGrant,
        Some(F::InvalidKey) => Failure::InvalidKey,
        Some(F::AccessDenied) => Failure::AccessDenied,
        Some(F::Rejected) => Failure::Rejected,
        Some(F::RetriesExhausted) => Failure::RetriesExhausted,
        Some(F::Revoked) => Failure::Revoked,
    }
}

const NO_EVENT: Event = Event {
    kind: EventKind::None,
    at_ms: 0,
    request: RequestKind::None,
    lifetime_s: 0,
    refreshable: false,
    http_status: 0,
    failure: Failure::None,
};

fn event(e: Option<core_session::Event>) -> Event {
    use core_session::Event as E;
    let Some(e) = e else { return NO_EVENT };
    match e {
        E::TokenIssued {
            kind,
            lifetime_s,
            refreshable,
        } => Event {
            kind: EventKind::TokenIssued,
            request: request_kind(kind),
            lifetime_s,
            refreshable,
            ..NO_EVENT
        },
        E::UserCode => Event {
            kind: EventKind::UserCode,
            ..NO_EVENT
        },
        E::AuthorizationPending => Event {
            kind: EventKind::AuthorizationPending,
            ..NO_EVENT
        },
        E::SlowDown => Event {
            kind: EventKind::SlowDown,
            ..NO_EVENT
        },
        E::RefreshRejected => Event {
            kind: EventKind::RefreshRejected,
            ..NO_EVENT
        },
        E::Retrying { status, at } => Event {
            kind: EventKind::Retrying,
            at_ms: at,
            http_status: status,
            ..NO_EVENT
        },
        E::Failed(f) => Event {
            kind: EventKind::Failed,
            failure: failure(Some(f)),
            ..NO_EVENT
        },
        E::Revoked => Event {
            kind: EventKind::Revoked,
            ..NO_EVENT
        },
    }
}

fn action(a: core_session::Action) -> Action {
    use core_session::Action as A;
    let base = Action {
        kind: ActionKind::AwaitResponse,
        at_ms: 0,
        request: RequestKind::None,
        failure: Failure::None,
    };
    match a {
        A::SendTokenRequest(k) => Action {
            kind: ActionKind::SendTokenRequest,
            request: request_kind(k),
            ..base
        },
        A::AwaitResponse => base,
        A::Ready { next } => Action {
            kind: ActionKind::Ready,
            at_ms: next,
            ..base
        },
        A::Wait { until } => Action {
            kind: ActionKind::Wait,
            at_ms: until,
            ..base
        },
        A::NeedAuthorizationCode => Action {
            kind: ActionKind::NeedAuthorizationCode,
            ..base
        },
        A::Failed(f) => Action {
            kind: ActionKind::Failed,
            failure: failure(Some(f)),
            ..base
        },
    }
}

/// Writes what a credential adds to a request: the header value, or the
/// target with the query parameter.
fn write_credential(
    c: &ApiCredential<'_>,
    target: &str,
    buf: &mut [u8],
) -> fieldauth::Result<usize> {
    match c.header_name() {
        Some(_) => c.write_header_value(buf),
        None => c.write_target(target, buf),
    }
}

// ------------------------------------------------------------------ session

/// The session behind a C++ `fieldauth::Session`: the core session and the
/// parser of the token response head in flight.
pub struct Session {
    inner: core_session::Session<DEFAULT_CAPACITY>,
    head: HeadParser<256>,
    /// The token response body being read.
    body: core_session::TokenBody,
    /// A token request was written and its head is not complete yet.
    awaiting_head: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The core's Debug shows no secrets.
        f.debug_struct("Session")
            .field("inner", &self.inner)
            .field("awaiting_head", &self.awaiting_head)
            .finish_non_exhaustive()
    }
}

#[allow(clippy::too_many_arguments)]
fn new_session(
    preset: Preset,
    mode: Mode,
    client_auth: ClientAuth,
    base_url: &[u8],
    client_id: &[u8],
    client_secret: &[u8],
    username: &[u8],
    password: &[u8],
    api_key: &[u8],
    scope: &[u8],
    redirect_uri: &[u8],
    allow_insecure: bool,
    max_wait_s: u32,
    seed: u64,
) -> Result<Box<Session>> {
    let mut p = profile(preset)?;
    if let Some(m) = core_mode(mode)? {
        p.mode = m;
    }
    if let Some(a) = core_client_auth(client_auth)? {
        p.client_auth = a;
    }
    let config = Config {
        base_url: text(base_url, "base_url")?,
        client_id: text(client_id, "client_id")?,
        client_secret: text(client_secret, "client_secret")?,
        username: text(username, "username")?,
        password: text(password, "password")?,
        api_key: text(api_key, "api_key")?,
        scope: text(scope, "scope")?,
        redirect_uri: text(redirect_uri, "redirect_uri")?,
        allow_insecure,
        max_wait_s,
        // resource, audience and extra parameters are not bound in C++ yet.
        ..Config::default()
    };
    Ok(Box::new(Session {
        inner: core_session::Session::new(&p, &config, seed)?,
        head: HeadParser::new(),
        body: core_session::TokenBody::new(),
        awaiting_head: false,
    }))
}

impl Session {
    fn poll(&mut self, now_ms: u64) -> Action {
        action(self.inner.poll(now_ms))
    }

    fn write_token_request(&mut self, now_ms: u64) -> Result<Vec<u8>> {
        let inner = &mut self.inner;
        let req = grow(1024, |buf| inner.write_token_request(now_ms, buf))?;
        self.head = HeadParser::new();
        self.awaiting_head = true;
        Ok(req)
    }

    fn token_request_url(&self) -> Result<String> {
        let url = grow(256, |buf| self.inner.token_request_url(buf))?;
        Ok(String::from_utf8_lossy(&url).into_owned())
    }

    fn feed_token_head(&mut self, now_ms: u64, bytes: &[u8]) -> Result<HeadProgress> {
        if !self.awaiting_head {
            return Err(wrong_state(
                "no token response head is expected: write a token request first",
            ));
        }
        match self.head.feed(bytes) {
            Ok(None) => Ok(HeadProgress {
                complete: false,
                consumed: bytes.len(),
                http_status: 0,
            }),
            Ok(Some(n)) => {
                self.awaiting_head = false;
                let head = *self
                    .head
                    .head()
                    .ok_or_else(|| wrong_state("the head parser has no head"))?;
                self.inner.on_token_head(now_ms, &head, &mut self.body)?;
                Ok(HeadProgress {
                    complete: true,
                    consumed: n,
                    http_status: head.status,
                })
            }
            Err(e) => {
                // A malformed head ends the exchange like a malformed body
                // does in the core: a retry is scheduled.
                self.awaiting_head = false;
                self.inner.on_transport_error(now_ms);
                Err(e.into())
            }
        }
    }

    fn feed_token_body(&mut self, now_ms: u64, chunk: &[u8]) -> Result<BodyProgress> {
        let p = self.inner.on_token_body(now_ms, &mut self.body, chunk)?;
        Ok(BodyProgress {
            consumed: p.consumed,
            event: event(p.event),
        })
    }

    fn feed_token_eof(&mut self, now_ms: u64) -> Result<Event> {
        self.awaiting_head = false;
        Ok(event(Some(
            self.inner.on_token_eof(now_ms, &mut self.body)?,
        )))
    }

    fn report_transport_error(&mut self, now_ms: u64) -> Event {
        self.awaiting_head = false;
        event(Some(self.inner.on_transport_error(now_ms)))
    }

    fn authorize(&mut self, now_ms: u64, target: &[u8]) -> Result<Authorization> {
        let target = text(target, "target")?;
        // Validate the target and the credential first, without counting a
        // request against the budget (as the C ABI does).
        if let Some(c) = self.inner.credential() {
            grow(512, |buf| write_credential(&c, target, buf))?.zeroize();
        }
        let none = Authorization {
            kind: AuthorizationKind::NoCredential,
            until_ms: 0,
            form: CredentialForm::None,
            header_name: String::new(),
            value: Vec::new(),
        };
        Ok(match self.inner.authorize(now_ms) {
            core_session::Authorization::Send(c) => {
                let value = grow(512, |buf| write_credential(&c, target, buf))?;
                match c.header_name() {
                    Some(name) => Authorization {
                        kind: AuthorizationKind::Send,
                        form: CredentialForm::Header,
                        header_name: name.to_owned(),
                        value,
                        ..none
                    },
                    None => Authorization {
                        kind: AuthorizationKind::Send,
                        form: CredentialForm::Query,
                        value,
                        ..none
                    },
                }
            }
            core_session::Authorization::Wait { until } => Authorization {
                kind: AuthorizationKind::Wait,
                until_ms: until,
                ..none
            },
            core_session::Authorization::NoCredential => none,
        })
    }

    fn report_api_response(
        &mut self,
        now_ms: u64,
        head: &[u8],
        body_prefix: &[u8],
    ) -> Result<ApiVerdict> {
        let mut parser: HeadParser<256> = HeadParser::new();
        if parser.feed(head)?.is_none() {
            return Err(wrong_state(
                "the response head is incomplete: pass every byte up to and including the empty line",
            ));
        }
        let h = *parser
            .head()
            .ok_or_else(|| wrong_state("the head parser has no head"))?;
        use core_session::ApiVerdict as V;
        let (kind, until_ms) = match self.inner.on_api_response(now_ms, &h, body_prefix) {
            V::Ok => (Verdict::Ok, 0),
            V::RetryWithNewToken => (Verdict::RetryWithNewToken, 0),
            V::Unauthorized => (Verdict::Unauthorized, 0),
            V::InvalidKey => (Verdict::InvalidKey, 0),
            V::Forbidden => (Verdict::Forbidden, 0),
            V::RateLimited { until } => (Verdict::RateLimited, until),
        };
        Ok(ApiVerdict { kind, until_ms })
    }

    fn snapshot_len(&self) -> usize {
        self.inner.snapshot_len()
    }

    fn snapshot(&self, now_ms: u64, unix_ms: u64) -> Result<Vec<u8>> {
        grow(self.inner.snapshot_len(), |buf| {
            self.inner.snapshot(now_ms, unix_ms, buf)
        })
    }

    fn restore(&mut self, now_ms: u64, unix_ms: u64, image: &[u8]) -> Result<()> {
        Ok(self.inner.restore(now_ms, unix_ms, image)?)
    }

    fn device_display(&self) -> Result<DeviceDisplay> {
        let d = self
            .inner
            .device_display()
            .ok_or_else(|| wrong_state("no device code is active: wait for EventKind::UserCode"))?;
        Ok(DeviceDisplay {
            user_code: d.user_code.to_owned(),
            verification_uri: d.verification_uri.to_owned(),
            verification_uri_complete: d.verification_uri_complete.unwrap_or("").to_owned(),
            expires_at_ms: d.expires_at,
        })
    }

    fn authorization_url(&mut self, verifier_random: &[u8], state_random: &[u8]) -> Result<String> {
        let inner = &mut self.inner;
        let url = grow(512, |buf| {
            inner.authorization_url(verifier_random, state_random, buf)
        })?;
        Ok(String::from_utf8_lossy(&url).into_owned())
    }

    fn set_authorization_code(&mut self, code: &[u8], state: &[u8]) -> Result<()> {
        let code = text(code, "code")?;
        let state = text(state, "state")?;
        Ok(self.inner.set_authorization_code(code, state)?)
    }

    fn set_wall_clock(&mut self, now_ms: u64, unix_ms: u64) {
        self.inner.set_wall_clock(now_ms, unix_ms);
    }

    fn reseed(&mut self, seed: u64) {
        self.inner.reseed(seed);
    }

    fn revoke(&mut self) {
        self.inner.revoke();
    }

    fn restart(&mut self) {
        self.inner.restart();
    }

    fn clear(&mut self) {
        self.inner.clear();
        self.head = HeadParser::new();
        self.awaiting_head = false;
    }

    fn info(&self) -> Info {
        let s = self.inner.status();
        Info {
            usable: s.usable,
            expires_at_ms: s.expires_at,
            refresh_at_ms: s.refresh_at,
            refreshable: s.refreshable,
            failed_attempts: s.failed_attempts,
            api_blocked_until_ms: s.api_blocked_until,
            token_blocked_until_ms: s.token_blocked_until,
            failure: failure(s.failure),
            last_http_status: s.last_http_status,
            last_content_json: s.last_content_json,
        }
    }

    fn failure_description(&self) -> String {
        self.inner.failure_description().unwrap_or("").to_owned()
    }

    fn granted_scope(&self) -> String {
        self.inner.granted_scope().unwrap_or("").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status code the C ABI describes has its variant here, and
    /// every variant is a code the C ABI describes.
    #[test]
    fn status_enum_covers_every_c_abi_code() {
        let unknown = c::message(123_456);
        let described: Vec<u32> = (0..1000).filter(|&s| c::message(s) != unknown).collect();
        let ours: Vec<u32> = STATUS_VALUES.iter().map(|&(o, _)| o).collect();
        assert_eq!(described, ours);
    }

    #[test]
    fn other_enums_pair_up() {
        for list in [
            PRESET_VALUES,
            MODE_VALUES,
            CLIENT_AUTH_VALUES,
            ACTION_VALUES,
            REQUEST_VALUES,
            FAILURE_VALUES,
            EVENT_VALUES,
            AUTHORIZATION_VALUES,
            VERDICT_VALUES,
        ] {
            for &(ours, theirs) in list {
                assert_eq!(ours, theirs);
            }
        }
        assert_eq!(PRESET_VALUES.len(), preset_count() as usize);
    }

    #[test]
    fn errors_carry_the_c_abi_code_and_the_core_sentence() {
        let e = BindingError::from(fieldauth::Error::input(
            fieldauth::Field::ClientSecret,
            fieldauth::InputError::Empty,
        ));
        assert_eq!(e.status(), c::FIELDAUTH_ERR_INPUT_EMPTY);
        assert_eq!(
            e.to_string(),
            "fieldauth error 201: a required value is empty: supply a non-empty value (field: client_secret)"
        );
        let e = text(b"\xff", "client_id").unwrap_err();
        assert_eq!(
            e.to_string(),
            "fieldauth error 4: a text argument is not valid UTF-8 (field: client_id)"
        );
    }

    #[test]
    fn presets_by_name_and_id() {
        for p in presets() {
            let name = preset_display_name(p).unwrap();
            assert_eq!(preset_by_name(name.as_bytes()).unwrap(), p);
            let c_name = c::fieldauth_preset_name(p.repr);
            // SAFETY: the C ABI returns a static NUL-terminated name for ids
            // below FIELDAUTH_PRESET_COUNT.
            let c_name = unsafe { std::ffi::CStr::from_ptr(c_name) };
            assert_eq!(c_name.to_str().unwrap(), name);
        }
        assert_eq!(
            preset_by_name(b"field-nation").unwrap(),
            Preset::FieldNation
        );
        let e = preset_by_name(b"nope").unwrap_err();
        assert_eq!(e.status(), c::FIELDAUTH_ERR_UNKNOWN_ENUM);
        assert!(e.to_string().contains("Autotask"), "{e}");
        assert!(preset_display_name(Preset { repr: 7 }).is_err());
    }

    #[test]
    fn grow_retries_once_with_the_size_asked_for() {
        let mut calls = Vec::new();
        let v = grow(4, |buf| {
            calls.push(buf.len());
            if buf.len() < 10 {
                return Err(fieldauth::Error::buffer_too_small(10));
            }
            buf[..10].copy_from_slice(b"0123456789");
            Ok(10)
        })
        .unwrap();
        assert_eq!(v, b"0123456789");
        assert_eq!(calls, [4, 10]);
        // A writer that keeps asking for what it has is an error, not a loop.
        let e = grow(8, |_| Err(fieldauth::Error::buffer_too_small(8))).unwrap_err();
        assert_eq!(e.status(), c::FIELDAUTH_ERR_BUFFER_TOO_SMALL);
    }
}
