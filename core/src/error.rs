//! The one error type of the crate.
//!
//! Every fallible function returns [`Error`]: a small `Copy` value that never
//! contains secret material (no tokens, secrets or passwords, and no bytes of
//! the input), so it can be logged freely. [`Error::message`] gives a static
//! sentence that says what went wrong and what to do.

use core::fmt;

/// Result alias used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;

/// Which configured or supplied value an input error refers to.
///
/// Errors name the *field*, never its contents, so secrets cannot leak
/// through error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The endpoint URL (scheme, host, port or path).
    Url,
    /// The host part of an endpoint.
    Host,
    /// The path / request-target of an endpoint or API request.
    Target,
    /// The OAuth `client_id`.
    ClientId,
    /// The OAuth `client_secret`.
    ClientSecret,
    /// The resource-owner username (password grant, login).
    Username,
    /// The resource-owner password (password grant, login).
    Password,
    /// The requested scope.
    Scope,
    /// The `resource` parameter (RFC 8707).
    Resource,
    /// The `audience` parameter.
    Audience,
    /// The authorization code.
    Code,
    /// The redirect URI.
    RedirectUri,
    /// The PKCE code verifier.
    CodeVerifier,
    /// The `state` parameter.
    State,
    /// The device code (RFC 8628).
    DeviceCode,
    /// A refresh token.
    RefreshToken,
    /// An access token.
    AccessToken,
    /// The token being revoked (RFC 7009).
    Token,
    /// An API key.
    ApiKey,
    /// A header name.
    HeaderName,
    /// A header value.
    HeaderValue,
    /// An authorization scheme (e.g. `Bearer`).
    Scheme,
    /// A query-parameter name.
    ParamName,
    /// A random-bytes input (PKCE verifier or state source).
    Random,
    /// The `iss` of an authorization response (RFC 9207).
    Issuer,
    /// The redirect back from the authorization server as a whole (its query).
    Callback,
    /// Extra request parameters (form-urlencoded `name=value&...`).
    ExtraParams,
}

impl Field {
    /// The field's name as used in messages (`"client_secret"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Field::Url => "url",
            Field::Host => "host",
            Field::Target => "target",
            Field::ClientId => "client_id",
            Field::ClientSecret => "client_secret",
            Field::Username => "username",
            Field::Password => "password",
            Field::Scope => "scope",
            Field::Resource => "resource",
            Field::Audience => "audience",
            Field::Code => "code",
            Field::RedirectUri => "redirect_uri",
            Field::CodeVerifier => "code_verifier",
            Field::State => "state",
            Field::DeviceCode => "device_code",
            Field::RefreshToken => "refresh_token",
            Field::AccessToken => "access_token",
            Field::Token => "token",
            Field::ApiKey => "api_key",
            Field::HeaderName => "header name",
            Field::HeaderValue => "header value",
            Field::Scheme => "scheme",
            Field::ParamName => "parameter name",
            Field::Random => "random bytes",
            Field::Issuer => "iss",
            Field::Callback => "callback",
            Field::ExtraParams => "extra parameters",
        }
    }
}

/// What is wrong with a value the caller supplied (configuration, credentials,
/// request targets). Nothing was written or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputError {
    /// The value is empty but must not be.
    Empty,
    /// CR, LF, NUL or another control character: it would allow header or
    /// request injection.
    ControlCharacter,
    /// A character that is not allowed here (e.g. a space or `:` in a header
    /// name, `@` in a host, a non-ASCII byte in a token).
    InvalidCharacter,
    /// The URL is not `http://` or `https://` with a host and a path.
    InvalidUrl,
    /// Plain `http://` to a host that is not loopback, without the explicit
    /// insecure opt-in.
    InsecureScheme,
    /// The value is too long for its wire format (e.g. a PKCE verifier longer
    /// than 128 characters).
    TooLong,
    /// The value is too short (e.g. a PKCE verifier shorter than 43 characters).
    TooShort,
    /// The requested operation needs a value that is not configured (e.g. a
    /// client secret for HTTP Basic authentication).
    Missing,
    /// A header name fieldauth sets itself or that controls message framing
    /// (`Host`, `Content-Length`, `Transfer-Encoding`, `Content-Type`,
    /// `Authorization`): an extra header may not override it.
    Reserved,
    /// The value differs from the one expected: the `state` or `iss` of an
    /// authorization response (a forged, stale or mixed-up redirect).
    Mismatch,
    /// The parameter appears more than once (RFC 6749 §3.1: it must not).
    Duplicate,
    /// The value needs a cargo feature this build of fieldauth leaves out
    /// (extra request parameters: feature `extra-params`).
    Unsupported,
}

/// Why an HTTP/1.1 response head or chunked body was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpError {
    /// The status line is not `HTTP/1.x NNN reason`.
    StatusLine,
    /// A header line is malformed (no colon, bad name, bare CR, obs-fold).
    HeaderLine,
    /// Content-Length is not a decimal number or overflows.
    ContentLength,
    /// Several Content-Length values disagree, or Content-Length is combined
    /// with Transfer-Encoding (request-smuggling defence).
    ConflictingLength,
    /// A Transfer-Encoding other than a final `chunked` that leaves the body
    /// length undefined.
    TransferEncoding,
    /// A chunk-size line or chunk terminator is malformed.
    Chunk,
    /// The head has more header lines than the parser accepts.
    TooManyHeaders,
    /// A header value that must be parsed (Date, Retry-After, rate-limit
    /// fields) is malformed. Parsed as absent by the lenient parsers; returned
    /// only where a caller asked for strict parsing.
    HeaderValue,
    /// Input arrived after the message was complete.
    TrailingData,
}

/// Why a JSON body was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JsonError {
    /// A byte that cannot appear at this point of a JSON text.
    Syntax,
    /// The body ended before the JSON text was complete.
    Truncated,
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// A backslash escape is invalid, or a `\u` escape encodes a lone surrogate.
    InvalidEscape,
    /// A raw control character (below U+0020) inside a string.
    ControlCharacter,
    /// Arrays and objects nest deeper than the parser's fixed limit.
    TooDeep,
    /// The top-level value is not an object.
    NotAnObject,
    /// Non-whitespace after the top-level object.
    TrailingData,
}

/// A well-formed response that does not carry what the protocol requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseError {
    /// A required member is absent (e.g. no `access_token` in a token response).
    MissingMember(Member),
    /// A member appears twice. fieldauth rejects duplicates of every member it
    /// reads, rather than guessing which one the server meant.
    DuplicateMember(Member),
    /// A member has the wrong JSON type (e.g. `access_token` is a number).
    WrongType(Member),
    /// A numeric member (e.g. `expires_in`) is negative, fractional, not a
    /// number, or larger than [`MAX_LIFETIME_SECS`](crate::MAX_LIFETIME_SECS).
    InvalidNumber(Member),
    /// A token or code contains characters not allowed by RFC 6749 Appendix A
    /// (control characters, non-ASCII); using it in a header would be unsafe.
    InvalidCharacters(Member),
    /// `token_type` is present but is not `Bearer` (case-insensitive).
    UnsupportedTokenType,
    /// The body is not JSON (e.g. an HTML error page) or is empty where a JSON
    /// object was required.
    NotJson,
    /// The HTTP status is neither success nor an error status this operation
    /// understands (e.g. a 1xx or 3xx).
    UnexpectedStatus,
    /// The authorization server redirected back with `error=...` instead of
    /// a code (RFC 6749 §4.1.2.1): the user declined, or the request was
    /// refused.
    #[cfg_attr(
        feature = "redirect",
        doc = "[`callback::parse`](crate::callback::parse) gives the `error_description`."
    )]
    #[cfg_attr(
        not(feature = "redirect"),
        doc = "`callback::parse` (feature `redirect`) gives the `error_description`."
    )]
    AuthorizationDenied(crate::body::ErrorCode),
}

/// A member of a JSON response body that fieldauth reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Member {
    /// `access_token` (Patchworks: `token`).
    AccessToken = 0,
    /// `token_type`.
    TokenType,
    /// `expires_in`.
    ExpiresIn,
    /// `refresh_token`.
    RefreshToken,
    /// `refresh_token_expires_in` / `refresh_expires_in`.
    RefreshExpiresIn,
    /// `scope`.
    Scope,
    /// `error`.
    Error,
    /// `error_description`.
    ErrorDescription,
    /// `error_uri`.
    ErrorUri,
    /// `status` (Fentu error bodies).
    Status,
    /// `message` (Patchworks login).
    Message,
    /// `device_code` (RFC 8628).
    DeviceCode,
    /// `user_code` (RFC 8628).
    UserCode,
    /// `verification_uri` (RFC 8628; also `verification_url`).
    VerificationUri,
    /// `verification_uri_complete` (RFC 8628).
    VerificationUriComplete,
    /// `interval` (RFC 8628).
    Interval,
}

impl Member {
    /// Number of members.
    pub const COUNT: usize = 16;

    /// The canonical JSON member name.
    pub const fn name(self) -> &'static str {
        match self {
            Member::AccessToken => "access_token",
            Member::TokenType => "token_type",
            Member::ExpiresIn => "expires_in",
            Member::RefreshToken => "refresh_token",
            Member::RefreshExpiresIn => "refresh_token_expires_in",
            Member::Scope => "scope",
            Member::Error => "error",
            Member::ErrorDescription => "error_description",
            Member::ErrorUri => "error_uri",
            Member::Status => "status",
            Member::Message => "message",
            Member::DeviceCode => "device_code",
            Member::UserCode => "user_code",
            Member::VerificationUri => "verification_uri",
            Member::VerificationUriComplete => "verification_uri_complete",
            Member::Interval => "interval",
        }
    }
}

/// Why a snapshot image was not restored (the session is left as it was).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The image is not [`Session::snapshot_len`](crate::session::Session::snapshot_len) bytes long.
    Length,
    /// Bad magic number or checksum.
    Corrupt,
    /// Written by another format version.
    Version,
    /// Written by a session with another arena size or configuration.
    Foreign,
    /// Neither the token nor the refresh token in it is still valid.
    Expired,
}

/// Every way a fieldauth operation can fail.
///
/// The value is `Copy`, carries no secret material and no input bytes, and
/// leaves the state of the object that returned it as it was before the call
/// (unless the method documents otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The caller's output buffer is too small; call again with a buffer of
    /// at least `needed` bytes. Nothing usable was written.
    BufferTooSmall {
        /// Bytes the complete output needs.
        needed: u32,
    },
    /// A fixed capacity (token storage, header buffer) is too small for what
    /// the server sent: `needed` bytes were required, `capacity` available.
    /// Raise the capacity (a const generic) to at least `needed`.
    CapacityExceeded {
        /// Bytes required.
        needed: u32,
        /// Bytes available.
        capacity: u32,
    },
    /// A value the caller supplied is unusable; see [`InputError`].
    InvalidInput {
        /// Which value.
        field: Field,
        /// What is wrong with it.
        kind: InputError,
    },
    /// The HTTP response head or chunked framing is malformed.
    Http(HttpError),
    /// The response body is not valid JSON.
    Json {
        /// What is wrong.
        kind: JsonError,
        /// Byte offset in the body where it was detected.
        offset: u32,
    },
    /// The response is well-formed but unusable.
    Response(ResponseError),
    /// A method was called in a state where it makes no sense (e.g. feeding a
    /// body before the head, or after the parser finished).
    WrongState,
    /// A snapshot image cannot be restored; see [`SnapshotError`].
    Snapshot(SnapshotError),
    /// The transport failed (I/O error or connection closed early).
    Transport,
}

impl Error {
    /// [`Error::BufferTooSmall`] from a byte count (saturating at `u32::MAX`).
    pub fn buffer_too_small(needed: usize) -> Self {
        Error::BufferTooSmall {
            needed: u32::try_from(needed).unwrap_or(u32::MAX),
        }
    }

    /// [`Error::CapacityExceeded`] from byte counts (saturating at `u32::MAX`).
    pub fn capacity_exceeded(needed: usize, capacity: usize) -> Self {
        Error::CapacityExceeded {
            needed: u32::try_from(needed).unwrap_or(u32::MAX),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
        }
    }

    /// Shorthand for an [`Error::InvalidInput`].
    pub const fn input(field: Field, kind: InputError) -> Self {
        Error::InvalidInput { field, kind }
    }

    /// A static sentence describing the error and what to do about it.
    ///
    /// Contains no secrets and no input bytes.
    pub const fn message(&self) -> &'static str {
        match self {
            Error::BufferTooSmall { .. } => {
                "output buffer too small: call again with a buffer of at least `needed` bytes"
            }
            Error::CapacityExceeded { .. } => {
                "capacity exceeded: the configuration or the server's response needs more storage than the session (or parser) has; give it at least `needed` bytes: Rust, a larger Session<N> or SessionIn::with_storage; C, fieldauth_session_init_with_storage sized from fieldauth_session_info.slot_needed; Python, Session(token_capacity=...)"
            }
            Error::InvalidInput { kind, .. } => match kind {
                InputError::Empty => "a required value is empty: supply a non-empty value",
                InputError::ControlCharacter => {
                    "a value contains CR, LF, NUL or another control character (header injection): remove it"
                }
                InputError::InvalidCharacter => {
                    "a value contains a character not allowed in its position: check the value"
                }
                InputError::InvalidUrl => {
                    "invalid endpoint URL: expected http(s)://host[:port]/path"
                }
                InputError::InsecureScheme => {
                    "refusing plain http to a non-loopback host: use https or set the explicit insecure flag"
                }
                InputError::TooLong => "a value is longer than its format allows",
                InputError::TooShort => "a value is shorter than its format requires",
                InputError::Missing => {
                    "a value this operation needs is not configured: add it to the configuration"
                }
                InputError::Reserved => {
                    "a header fieldauth sets itself (Host, Content-Length, Transfer-Encoding, Content-Type, Authorization) cannot be supplied as an extra header"
                }
                InputError::Mismatch => {
                    "the redirect's state or iss is not the one this login expects (forged, stale or from another server): ignore it and start the login again"
                }
                InputError::Duplicate => {
                    "a parameter appears more than once in the redirect: ignore it and start the login again"
                }
                InputError::Unsupported => {
                    "this build of fieldauth leaves out the feature this value needs (extra request parameters): rebuild with feature `extra-params`"
                }
            },
            Error::Http(kind) => match kind {
                HttpError::StatusLine => "malformed HTTP status line",
                HttpError::HeaderLine => "malformed HTTP header line",
                HttpError::ContentLength => "malformed Content-Length",
                HttpError::ConflictingLength => {
                    "conflicting message length (Content-Length vs Transfer-Encoding); response rejected"
                }
                HttpError::TransferEncoding => "unsupported Transfer-Encoding",
                HttpError::Chunk => "malformed chunked transfer coding",
                HttpError::TooManyHeaders => "too many header lines in the response head",
                HttpError::HeaderValue => "malformed header value",
                HttpError::TrailingData => "data after the end of the HTTP message",
            },
            Error::Json { kind, .. } => match kind {
                JsonError::Syntax => "response body is not valid JSON (syntax error)",
                JsonError::Truncated => "response body ended before the JSON was complete",
                JsonError::InvalidUtf8 => "response body contains invalid UTF-8",
                JsonError::InvalidEscape => "invalid escape sequence in a JSON string",
                JsonError::ControlCharacter => "raw control character inside a JSON string",
                JsonError::TooDeep => "JSON nesting deeper than the parser's fixed limit",
                JsonError::NotAnObject => "response body is JSON but not an object",
                JsonError::TrailingData => "data after the end of the JSON object",
            },
            Error::Response(kind) => match kind {
                ResponseError::MissingMember(_) => "response lacks a required member",
                ResponseError::DuplicateMember(_) => {
                    "response repeats a member; rejected rather than guessing which one counts"
                }
                ResponseError::WrongType(_) => "response member has the wrong JSON type",
                ResponseError::InvalidNumber(_) => {
                    "response number is negative, fractional, malformed or absurdly large"
                }
                ResponseError::InvalidCharacters(_) => {
                    "response token contains characters RFC 6749 does not allow"
                }
                ResponseError::UnsupportedTokenType => {
                    "token_type is not Bearer; fieldauth only applies Bearer tokens"
                }
                ResponseError::NotJson => {
                    "response body is not JSON (e.g. an HTML error page or empty body)"
                }
                ResponseError::UnexpectedStatus => "unexpected HTTP status for this operation",
                ResponseError::AuthorizationDenied(_) => {
                    "the authorization server answered the login with an error (e.g. access_denied: the user declined); start the login again if the user wants to"
                }
            },
            Error::WrongState => "call not valid in the current state",
            Error::Snapshot(kind) => match kind {
                SnapshotError::Length => {
                    "snapshot image has the wrong length for this session: use Session::snapshot_len"
                }
                SnapshotError::Corrupt => {
                    "snapshot image is corrupt (bad magic or checksum): discard it and log in again"
                }
                SnapshotError::Version => {
                    "snapshot image is from another format version: discard it and log in again"
                }
                SnapshotError::Foreign => {
                    "snapshot image belongs to another configuration or arena size: discard it"
                }
                SnapshotError::Expired => {
                    "snapshot image holds nothing still valid: discard it and log in again"
                }
            },
            Error::Transport => "transport failed: I/O error or connection closed early",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())?;
        match self {
            Error::BufferTooSmall { needed } => write!(f, " (needed {needed} bytes)"),
            Error::CapacityExceeded { needed, capacity } => {
                write!(f, " (needed {needed} bytes, capacity {capacity})")
            }
            Error::InvalidInput { field, .. } => write!(f, " (field: {})", field.name()),
            Error::Json { offset, .. } => write!(f, " (at byte {offset})"),
            Error::Response(
                ResponseError::MissingMember(m)
                | ResponseError::DuplicateMember(m)
                | ResponseError::WrongType(m)
                | ResponseError::InvalidNumber(m)
                | ResponseError::InvalidCharacters(m),
            ) => write!(f, " (member: {})", m.name()),
            _ => Ok(()),
        }
    }
}

impl core::error::Error for Error {}
