//! Status codes: the one error type of the C ABI, and its static messages.

use core::ffi::{c_char, CStr};

use fieldauth_core::{Error, HttpError, InputError, JsonError, ResponseError, SnapshotError};

/// The result of every fallible function: FIELDAUTH_OK (0) or one of the
/// FIELDAUTH_ERR_* codes. Codes are stable; they come in families of 100
/// (1..: the call itself, 100: buffers, 200: input values, 300: HTTP, 400:
/// JSON, 500: response contents, 600: state, 700: snapshots, 800: transport,
/// 900: unknown). fieldauth_status_message() describes any value.
pub type fieldauth_status = u32;

/// Success.
pub const FIELDAUTH_OK: fieldauth_status = 0;

/// A required pointer argument is NULL (or a non-empty buffer is NULL).
pub const FIELDAUTH_ERR_NULL_POINTER: fieldauth_status = 1;
/// An object or out-struct pointer is not suitably aligned (objects need 8 bytes).
pub const FIELDAUTH_ERR_MISALIGNED: fieldauth_status = 2;
/// The object was not initialized (or was cleared, or is another kind of object).
pub const FIELDAUTH_ERR_NOT_INITIALIZED: fieldauth_status = 3;
/// A text input is not valid UTF-8.
pub const FIELDAUTH_ERR_INVALID_UTF8: fieldauth_status = 4;
/// An enumeration argument or field has a value that is not one of its constants.
pub const FIELDAUTH_ERR_UNKNOWN_ENUM: fieldauth_status = 5;
/// A number or length is out of range, or buffers overlap each other or the object.
pub const FIELDAUTH_ERR_INVALID_ARGUMENT: fieldauth_status = 6;
/// The transport would block: call fieldauth_session_exchange() again when it is ready.
pub const FIELDAUTH_ERR_WOULD_BLOCK: fieldauth_status = 7;

/// The output buffer is too small; *out_len holds the size needed.
pub const FIELDAUTH_ERR_BUFFER_TOO_SMALL: fieldauth_status = 100;
/// A fixed capacity (token storage, header buffer) is too small for what the
/// server sent, or the configuration does not fit the session.
pub const FIELDAUTH_ERR_CAPACITY_EXCEEDED: fieldauth_status = 101;

/// An input value is unusable (a kind this version does not name).
pub const FIELDAUTH_ERR_INPUT: fieldauth_status = 200;
/// A required value is empty.
pub const FIELDAUTH_ERR_INPUT_EMPTY: fieldauth_status = 201;
/// A value contains CR, LF, NUL or another control character (header injection).
pub const FIELDAUTH_ERR_INPUT_CONTROL_CHARACTER: fieldauth_status = 202;
/// A value contains a character not allowed in its position.
pub const FIELDAUTH_ERR_INPUT_INVALID_CHARACTER: fieldauth_status = 203;
/// The endpoint URL is not http(s)://host[:port]/path.
pub const FIELDAUTH_ERR_INPUT_INVALID_URL: fieldauth_status = 204;
/// Plain http to a non-loopback host without allow_insecure.
pub const FIELDAUTH_ERR_INPUT_INSECURE_SCHEME: fieldauth_status = 205;
/// A value is longer than its format allows.
pub const FIELDAUTH_ERR_INPUT_TOO_LONG: fieldauth_status = 206;
/// A value is shorter than its format requires.
pub const FIELDAUTH_ERR_INPUT_TOO_SHORT: fieldauth_status = 207;
/// A value the operation needs is not configured.
pub const FIELDAUTH_ERR_INPUT_MISSING: fieldauth_status = 208;
/// A header fieldauth sets itself cannot be supplied.
pub const FIELDAUTH_ERR_INPUT_RESERVED: fieldauth_status = 209;
/// The redirect's `state` or `iss` is not the one the login expects.
pub const FIELDAUTH_ERR_INPUT_MISMATCH: fieldauth_status = 210;
/// A parameter appears more than once in the redirect.
pub const FIELDAUTH_ERR_INPUT_DUPLICATE: fieldauth_status = 211;
/// The value needs a feature this build of the library leaves out (a
/// device build without the device flow, Basic authentication, extra
/// request parameters or the redirect parser): rebuild `libfieldauth.a`
/// with that feature.
pub const FIELDAUTH_ERR_INPUT_UNSUPPORTED: fieldauth_status = 212;

/// The HTTP response is malformed (a kind this version does not name).
pub const FIELDAUTH_ERR_HTTP: fieldauth_status = 300;
/// Malformed HTTP status line.
pub const FIELDAUTH_ERR_HTTP_STATUS_LINE: fieldauth_status = 301;
/// Malformed HTTP header line.
pub const FIELDAUTH_ERR_HTTP_HEADER_LINE: fieldauth_status = 302;
/// Malformed Content-Length.
pub const FIELDAUTH_ERR_HTTP_CONTENT_LENGTH: fieldauth_status = 303;
/// Conflicting message length (request-smuggling defence).
pub const FIELDAUTH_ERR_HTTP_CONFLICTING_LENGTH: fieldauth_status = 304;
/// Unsupported Transfer-Encoding.
pub const FIELDAUTH_ERR_HTTP_TRANSFER_ENCODING: fieldauth_status = 305;
/// Malformed chunked transfer coding.
pub const FIELDAUTH_ERR_HTTP_CHUNK: fieldauth_status = 306;
/// Too many header lines.
pub const FIELDAUTH_ERR_HTTP_TOO_MANY_HEADERS: fieldauth_status = 307;
/// A header value that must be parsed is malformed.
pub const FIELDAUTH_ERR_HTTP_HEADER_VALUE: fieldauth_status = 308;
/// Data after the end of the HTTP message.
pub const FIELDAUTH_ERR_HTTP_TRAILING_DATA: fieldauth_status = 309;

/// The response body is not valid JSON (a kind this version does not name).
pub const FIELDAUTH_ERR_JSON: fieldauth_status = 400;
/// JSON syntax error.
pub const FIELDAUTH_ERR_JSON_SYNTAX: fieldauth_status = 401;
/// The body ended before the JSON was complete.
pub const FIELDAUTH_ERR_JSON_TRUNCATED: fieldauth_status = 402;
/// Invalid UTF-8 in the response body.
pub const FIELDAUTH_ERR_JSON_INVALID_UTF8: fieldauth_status = 403;
/// Invalid escape sequence in a JSON string.
pub const FIELDAUTH_ERR_JSON_INVALID_ESCAPE: fieldauth_status = 404;
/// Raw control character inside a JSON string.
pub const FIELDAUTH_ERR_JSON_CONTROL_CHARACTER: fieldauth_status = 405;
/// JSON nested too deeply.
pub const FIELDAUTH_ERR_JSON_TOO_DEEP: fieldauth_status = 406;
/// The JSON body is not an object.
pub const FIELDAUTH_ERR_JSON_NOT_AN_OBJECT: fieldauth_status = 407;
/// Data after the end of the JSON object.
pub const FIELDAUTH_ERR_JSON_TRAILING_DATA: fieldauth_status = 408;

/// The response is well-formed but unusable (a kind this version does not name).
pub const FIELDAUTH_ERR_RESPONSE: fieldauth_status = 500;
/// The response lacks a required member.
pub const FIELDAUTH_ERR_RESPONSE_MISSING_MEMBER: fieldauth_status = 501;
/// The response repeats a member.
pub const FIELDAUTH_ERR_RESPONSE_DUPLICATE_MEMBER: fieldauth_status = 502;
/// A response member has the wrong JSON type.
pub const FIELDAUTH_ERR_RESPONSE_WRONG_TYPE: fieldauth_status = 503;
/// A response number is negative, fractional, malformed or absurd.
pub const FIELDAUTH_ERR_RESPONSE_INVALID_NUMBER: fieldauth_status = 504;
/// A response token contains characters RFC 6749 does not allow.
pub const FIELDAUTH_ERR_RESPONSE_INVALID_CHARACTERS: fieldauth_status = 505;
/// token_type is not Bearer.
pub const FIELDAUTH_ERR_RESPONSE_UNSUPPORTED_TOKEN_TYPE: fieldauth_status = 506;
/// The body is not JSON (HTML error page, empty body).
pub const FIELDAUTH_ERR_RESPONSE_NOT_JSON: fieldauth_status = 507;
/// Unexpected HTTP status for this operation.
pub const FIELDAUTH_ERR_RESPONSE_UNEXPECTED_STATUS: fieldauth_status = 508;
/// The authorization server redirected back with `error=` (e.g. the user
/// declined).
pub const FIELDAUTH_ERR_RESPONSE_AUTHORIZATION_DENIED: fieldauth_status = 509;

/// The call is not valid in the object's current state.
pub const FIELDAUTH_ERR_WRONG_STATE: fieldauth_status = 600;

/// A snapshot image cannot be restored (a kind this version does not name).
pub const FIELDAUTH_ERR_SNAPSHOT: fieldauth_status = 700;
/// The snapshot image has the wrong length for this session.
pub const FIELDAUTH_ERR_SNAPSHOT_LENGTH: fieldauth_status = 701;
/// The snapshot image is corrupt.
pub const FIELDAUTH_ERR_SNAPSHOT_CORRUPT: fieldauth_status = 702;
/// The snapshot image is from another format version.
pub const FIELDAUTH_ERR_SNAPSHOT_VERSION: fieldauth_status = 703;
/// The snapshot image belongs to another configuration or arena size.
pub const FIELDAUTH_ERR_SNAPSHOT_FOREIGN: fieldauth_status = 704;
/// The snapshot image holds nothing still valid.
pub const FIELDAUTH_ERR_SNAPSHOT_EXPIRED: fieldauth_status = 705;

/// The transport failed (I/O error, connection closed early, or no response
/// in time); the session schedules a retry.
pub const FIELDAUTH_ERR_TRANSPORT: fieldauth_status = 800;

/// An error this version of the C ABI does not know (a newer core).
pub const FIELDAUTH_ERR_UNKNOWN: fieldauth_status = 900;

/// The status of a core error. Public for the Rust side of other bindings
/// (the C++ binding reports the same codes); not part of the C API.
pub fn status_of(e: Error) -> fieldauth_status {
    match e {
        Error::BufferTooSmall { .. } => FIELDAUTH_ERR_BUFFER_TOO_SMALL,
        Error::CapacityExceeded { .. } => FIELDAUTH_ERR_CAPACITY_EXCEEDED,
        Error::InvalidInput { kind, .. } => match kind {
            InputError::Empty => FIELDAUTH_ERR_INPUT_EMPTY,
            InputError::ControlCharacter => FIELDAUTH_ERR_INPUT_CONTROL_CHARACTER,
            InputError::InvalidCharacter => FIELDAUTH_ERR_INPUT_INVALID_CHARACTER,
            InputError::InvalidUrl => FIELDAUTH_ERR_INPUT_INVALID_URL,
            InputError::InsecureScheme => FIELDAUTH_ERR_INPUT_INSECURE_SCHEME,
            InputError::TooLong => FIELDAUTH_ERR_INPUT_TOO_LONG,
            InputError::TooShort => FIELDAUTH_ERR_INPUT_TOO_SHORT,
            InputError::Missing => FIELDAUTH_ERR_INPUT_MISSING,
            InputError::Reserved => FIELDAUTH_ERR_INPUT_RESERVED,
            InputError::Mismatch => FIELDAUTH_ERR_INPUT_MISMATCH,
            InputError::Duplicate => FIELDAUTH_ERR_INPUT_DUPLICATE,
            InputError::Unsupported => FIELDAUTH_ERR_INPUT_UNSUPPORTED,
            _ => FIELDAUTH_ERR_INPUT,
        },
        Error::Http(kind) => match kind {
            HttpError::StatusLine => FIELDAUTH_ERR_HTTP_STATUS_LINE,
            HttpError::HeaderLine => FIELDAUTH_ERR_HTTP_HEADER_LINE,
            HttpError::ContentLength => FIELDAUTH_ERR_HTTP_CONTENT_LENGTH,
            HttpError::ConflictingLength => FIELDAUTH_ERR_HTTP_CONFLICTING_LENGTH,
            HttpError::TransferEncoding => FIELDAUTH_ERR_HTTP_TRANSFER_ENCODING,
            HttpError::Chunk => FIELDAUTH_ERR_HTTP_CHUNK,
            HttpError::TooManyHeaders => FIELDAUTH_ERR_HTTP_TOO_MANY_HEADERS,
            HttpError::HeaderValue => FIELDAUTH_ERR_HTTP_HEADER_VALUE,
            HttpError::TrailingData => FIELDAUTH_ERR_HTTP_TRAILING_DATA,
            _ => FIELDAUTH_ERR_HTTP,
        },
        Error::Json { kind, .. } => match kind {
            JsonError::Syntax => FIELDAUTH_ERR_JSON_SYNTAX,
            JsonError::Truncated => FIELDAUTH_ERR_JSON_TRUNCATED,
            JsonError::InvalidUtf8 => FIELDAUTH_ERR_JSON_INVALID_UTF8,
            JsonError::InvalidEscape => FIELDAUTH_ERR_JSON_INVALID_ESCAPE,
            JsonError::ControlCharacter => FIELDAUTH_ERR_JSON_CONTROL_CHARACTER,
            JsonError::TooDeep => FIELDAUTH_ERR_JSON_TOO_DEEP,
            JsonError::NotAnObject => FIELDAUTH_ERR_JSON_NOT_AN_OBJECT,
            JsonError::TrailingData => FIELDAUTH_ERR_JSON_TRAILING_DATA,
            _ => FIELDAUTH_ERR_JSON,
        },
        Error::Response(kind) => match kind {
            ResponseError::MissingMember(_) => FIELDAUTH_ERR_RESPONSE_MISSING_MEMBER,
            ResponseError::DuplicateMember(_) => FIELDAUTH_ERR_RESPONSE_DUPLICATE_MEMBER,
            ResponseError::WrongType(_) => FIELDAUTH_ERR_RESPONSE_WRONG_TYPE,
            ResponseError::InvalidNumber(_) => FIELDAUTH_ERR_RESPONSE_INVALID_NUMBER,
            ResponseError::InvalidCharacters(_) => FIELDAUTH_ERR_RESPONSE_INVALID_CHARACTERS,
            ResponseError::UnsupportedTokenType => FIELDAUTH_ERR_RESPONSE_UNSUPPORTED_TOKEN_TYPE,
            ResponseError::NotJson => FIELDAUTH_ERR_RESPONSE_NOT_JSON,
            ResponseError::UnexpectedStatus => FIELDAUTH_ERR_RESPONSE_UNEXPECTED_STATUS,
            ResponseError::AuthorizationDenied(_) => FIELDAUTH_ERR_RESPONSE_AUTHORIZATION_DENIED,
            _ => FIELDAUTH_ERR_RESPONSE,
        },
        Error::WrongState => FIELDAUTH_ERR_WRONG_STATE,
        Error::Snapshot(kind) => match kind {
            SnapshotError::Length => FIELDAUTH_ERR_SNAPSHOT_LENGTH,
            SnapshotError::Corrupt => FIELDAUTH_ERR_SNAPSHOT_CORRUPT,
            SnapshotError::Version => FIELDAUTH_ERR_SNAPSHOT_VERSION,
            SnapshotError::Foreign => FIELDAUTH_ERR_SNAPSHOT_FOREIGN,
            SnapshotError::Expired => FIELDAUTH_ERR_SNAPSHOT_EXPIRED,
            _ => FIELDAUTH_ERR_SNAPSHOT,
        },
        Error::Transport => FIELDAUTH_ERR_TRANSPORT,
        _ => FIELDAUTH_ERR_UNKNOWN,
    }
}

/// The message of a status, NUL-terminated. The texts of the codes that come
/// from core errors are `Error::message()`'s (a test checks they match).
/// Public for the Rust side of other bindings; C callers use
/// fieldauth_status_message().
pub fn message(status: fieldauth_status) -> &'static CStr {
    match status {
        FIELDAUTH_OK => c"success",
        FIELDAUTH_ERR_NULL_POINTER => c"a required pointer argument is NULL",
        FIELDAUTH_ERR_MISALIGNED => {
            c"a pointer is not suitably aligned: objects need 8-byte alignment"
        }
        FIELDAUTH_ERR_NOT_INITIALIZED => {
            c"the object is not initialized (or was cleared): call its init function first"
        }
        FIELDAUTH_ERR_INVALID_UTF8 => c"a text argument is not valid UTF-8",
        FIELDAUTH_ERR_UNKNOWN_ENUM => {
            c"an enumeration value is not one of the constants the header defines"
        }
        FIELDAUTH_ERR_INVALID_ARGUMENT => {
            c"an argument is out of range, or buffers overlap each other or the object"
        }
        FIELDAUTH_ERR_WOULD_BLOCK => {
            c"the transport would block: call again when it is ready (the exchange resumes)"
        }
        FIELDAUTH_ERR_BUFFER_TOO_SMALL => {
            c"output buffer too small: call again with a buffer of at least `needed` bytes"
        }
        FIELDAUTH_ERR_CAPACITY_EXCEEDED => {
            c"capacity exceeded: the configuration or the server's response needs more storage than the session (or parser) has; give it at least `needed` bytes: Rust, a larger Session<N> or SessionIn::with_storage; C, fieldauth_session_init_with_storage sized from fieldauth_session_info.slot_needed; Python, Session(token_capacity=...)"
        }
        FIELDAUTH_ERR_INPUT => c"an input value is unusable",
        FIELDAUTH_ERR_INPUT_EMPTY => c"a required value is empty: supply a non-empty value",
        FIELDAUTH_ERR_INPUT_CONTROL_CHARACTER => {
            c"a value contains CR, LF, NUL or another control character (header injection): remove it"
        }
        FIELDAUTH_ERR_INPUT_INVALID_CHARACTER => {
            c"a value contains a character not allowed in its position: check the value"
        }
        FIELDAUTH_ERR_INPUT_INVALID_URL => {
            c"invalid endpoint URL: expected http(s)://host[:port]/path"
        }
        FIELDAUTH_ERR_INPUT_INSECURE_SCHEME => {
            c"refusing plain http to a non-loopback host: use https or set the explicit insecure flag"
        }
        FIELDAUTH_ERR_INPUT_TOO_LONG => c"a value is longer than its format allows",
        FIELDAUTH_ERR_INPUT_TOO_SHORT => c"a value is shorter than its format requires",
        FIELDAUTH_ERR_INPUT_MISSING => {
            c"a value this operation needs is not configured: add it to the configuration"
        }
        FIELDAUTH_ERR_INPUT_RESERVED => {
            c"a header fieldauth sets itself (Host, Content-Length, Transfer-Encoding, Content-Type, Authorization) cannot be supplied as an extra header"
        }
        FIELDAUTH_ERR_INPUT_MISMATCH => {
            c"the redirect's state or iss is not the one this login expects (forged, stale or from another server): ignore it and start the login again"
        }
        FIELDAUTH_ERR_INPUT_DUPLICATE => {
            c"a parameter appears more than once in the redirect: ignore it and start the login again"
        }
        FIELDAUTH_ERR_INPUT_UNSUPPORTED => {
            c"this build of libfieldauth leaves out the feature this value needs (device flow, Basic auth, extra parameters, redirect parser): rebuild it with that cargo feature"
        }
        FIELDAUTH_ERR_HTTP => c"malformed HTTP response",
        FIELDAUTH_ERR_HTTP_STATUS_LINE => c"malformed HTTP status line",
        FIELDAUTH_ERR_HTTP_HEADER_LINE => c"malformed HTTP header line",
        FIELDAUTH_ERR_HTTP_CONTENT_LENGTH => c"malformed Content-Length",
        FIELDAUTH_ERR_HTTP_CONFLICTING_LENGTH => {
            c"conflicting message length (Content-Length vs Transfer-Encoding); response rejected"
        }
        FIELDAUTH_ERR_HTTP_TRANSFER_ENCODING => c"unsupported Transfer-Encoding",
        FIELDAUTH_ERR_HTTP_CHUNK => c"malformed chunked transfer coding",
        FIELDAUTH_ERR_HTTP_TOO_MANY_HEADERS => c"too many header lines in the response head",
        FIELDAUTH_ERR_HTTP_HEADER_VALUE => c"malformed header value",
        FIELDAUTH_ERR_HTTP_TRAILING_DATA => c"data after the end of the HTTP message",
        FIELDAUTH_ERR_JSON => c"response body is not valid JSON",
        FIELDAUTH_ERR_JSON_SYNTAX => c"response body is not valid JSON (syntax error)",
        FIELDAUTH_ERR_JSON_TRUNCATED => c"response body ended before the JSON was complete",
        FIELDAUTH_ERR_JSON_INVALID_UTF8 => c"response body contains invalid UTF-8",
        FIELDAUTH_ERR_JSON_INVALID_ESCAPE => c"invalid escape sequence in a JSON string",
        FIELDAUTH_ERR_JSON_CONTROL_CHARACTER => c"raw control character inside a JSON string",
        FIELDAUTH_ERR_JSON_TOO_DEEP => c"JSON nesting deeper than the parser's fixed limit",
        FIELDAUTH_ERR_JSON_NOT_AN_OBJECT => c"response body is JSON but not an object",
        FIELDAUTH_ERR_JSON_TRAILING_DATA => c"data after the end of the JSON object",
        FIELDAUTH_ERR_RESPONSE => c"the response is well-formed but unusable",
        FIELDAUTH_ERR_RESPONSE_MISSING_MEMBER => c"response lacks a required member",
        FIELDAUTH_ERR_RESPONSE_DUPLICATE_MEMBER => {
            c"response repeats a member; rejected rather than guessing which one counts"
        }
        FIELDAUTH_ERR_RESPONSE_WRONG_TYPE => c"response member has the wrong JSON type",
        FIELDAUTH_ERR_RESPONSE_INVALID_NUMBER => {
            c"response number is negative, fractional, malformed or absurdly large"
        }
        FIELDAUTH_ERR_RESPONSE_INVALID_CHARACTERS => {
            c"response token contains characters RFC 6749 does not allow"
        }
        FIELDAUTH_ERR_RESPONSE_UNSUPPORTED_TOKEN_TYPE => {
            c"token_type is not Bearer; fieldauth only applies Bearer tokens"
        }
        FIELDAUTH_ERR_RESPONSE_NOT_JSON => {
            c"response body is not JSON (e.g. an HTML error page or empty body)"
        }
        FIELDAUTH_ERR_RESPONSE_UNEXPECTED_STATUS => c"unexpected HTTP status for this operation",
        FIELDAUTH_ERR_RESPONSE_AUTHORIZATION_DENIED => {
            c"the authorization server answered the login with an error (e.g. access_denied: the user declined); start the login again if the user wants to"
        }
        FIELDAUTH_ERR_WRONG_STATE => c"call not valid in the current state",
        FIELDAUTH_ERR_SNAPSHOT => c"snapshot image cannot be restored",
        FIELDAUTH_ERR_SNAPSHOT_LENGTH => {
            c"snapshot image has the wrong length for this session: use Session::snapshot_len"
        }
        FIELDAUTH_ERR_SNAPSHOT_CORRUPT => {
            c"snapshot image is corrupt (bad magic or checksum): discard it and log in again"
        }
        FIELDAUTH_ERR_SNAPSHOT_VERSION => {
            c"snapshot image is from another format version: discard it and log in again"
        }
        FIELDAUTH_ERR_SNAPSHOT_FOREIGN => {
            c"snapshot image belongs to another configuration or arena size: discard it"
        }
        FIELDAUTH_ERR_SNAPSHOT_EXPIRED => {
            c"snapshot image holds nothing still valid: discard it and log in again"
        }
        FIELDAUTH_ERR_TRANSPORT => c"transport failed: I/O error or connection closed early",
        FIELDAUTH_ERR_UNKNOWN => c"an error this version of the C ABI does not know",
        _ => c"unknown fieldauth status code",
    }
}

/// A static, NUL-terminated English sentence describing `status` (any value,
/// including unknown ones). Never NULL; never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn fieldauth_status_message(status: fieldauth_status) -> *const c_char {
    message(status).as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldauth_core::{Field, Member};

    /// Every core error maps to its own code, and the code's message is the
    /// core's message.
    #[test]
    fn core_errors_map_to_codes_with_the_core_messages() {
        let m = Member::AccessToken;
        let errors = [
            Error::BufferTooSmall { needed: 1 },
            Error::CapacityExceeded {
                needed: 1,
                capacity: 0,
            },
            Error::input(Field::Url, InputError::Empty),
            Error::input(Field::Url, InputError::ControlCharacter),
            Error::input(Field::Url, InputError::InvalidCharacter),
            Error::input(Field::Url, InputError::InvalidUrl),
            Error::input(Field::Url, InputError::InsecureScheme),
            Error::input(Field::Url, InputError::TooLong),
            Error::input(Field::Url, InputError::TooShort),
            Error::input(Field::Url, InputError::Missing),
            Error::input(Field::Url, InputError::Reserved),
            Error::input(Field::State, InputError::Mismatch),
            Error::input(Field::State, InputError::Duplicate),
            Error::Http(HttpError::StatusLine),
            Error::Http(HttpError::HeaderLine),
            Error::Http(HttpError::ContentLength),
            Error::Http(HttpError::ConflictingLength),
            Error::Http(HttpError::TransferEncoding),
            Error::Http(HttpError::Chunk),
            Error::Http(HttpError::TooManyHeaders),
            Error::Http(HttpError::HeaderValue),
            Error::Http(HttpError::TrailingData),
            Error::Json {
                kind: JsonError::Syntax,
                offset: 0,
            },
            Error::Json {
                kind: JsonError::Truncated,
                offset: 0,
            },
            Error::Json {
                kind: JsonError::InvalidUtf8,
                offset: 0,
            },
            Error::Json {
                kind: JsonError::InvalidEscape,
                offset: 0,
            },
            Error::Json {
                kind: JsonError::ControlCharacter,
                offset: 0,
            },
            Error::Json {
                kind: JsonError::TooDeep,
                offset: 0,
            },
            Error::Json {
                kind: JsonError::NotAnObject,
                offset: 0,
            },
            Error::Json {
                kind: JsonError::TrailingData,
                offset: 0,
            },
            Error::Response(ResponseError::MissingMember(m)),
            Error::Response(ResponseError::DuplicateMember(m)),
            Error::Response(ResponseError::WrongType(m)),
            Error::Response(ResponseError::InvalidNumber(m)),
            Error::Response(ResponseError::InvalidCharacters(m)),
            Error::Response(ResponseError::UnsupportedTokenType),
            Error::Response(ResponseError::NotJson),
            Error::Response(ResponseError::UnexpectedStatus),
            Error::Response(ResponseError::AuthorizationDenied(
                fieldauth_core::body::ErrorCode::AccessDenied,
            )),
            Error::WrongState,
            Error::Snapshot(SnapshotError::Length),
            Error::Snapshot(SnapshotError::Corrupt),
            Error::Snapshot(SnapshotError::Version),
            Error::Snapshot(SnapshotError::Foreign),
            Error::Snapshot(SnapshotError::Expired),
            Error::Transport,
        ];
        let mut seen = std::vec::Vec::new();
        for e in errors {
            let s = status_of(e);
            assert!(!seen.contains(&s), "{e:?} shares code {s}");
            seen.push(s);
            assert_eq!(message(s).to_str().unwrap(), e.message(), "{e:?} ({s})");
        }
    }

    #[test]
    fn every_code_has_its_own_message() {
        let unknown = message(12345);
        let mut seen = std::vec::Vec::new();
        for s in (0..1000).filter(|&s| message(s) != unknown) {
            assert!(!seen.contains(&message(s)), "{s} repeats a message");
            seen.push(message(s));
        }
        assert_eq!(seen.len(), 61);
    }
}
