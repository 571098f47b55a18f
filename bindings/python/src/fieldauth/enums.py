"""Enumerations mirroring the ``FIELDAUTH_*`` constants of ``include/fieldauth.h``.

The values are the C ABI's; ``tests/test_enums.py`` checks them against the header.
"""

from enum import IntEnum, IntFlag

__all__ = [
    "Status",
    "Preset",
    "Mode",
    "Format",
    "ClientAuth",
    "RevokeStyle",
    "Revocation",
    "Keys",
    "Placement",
    "ResetMode",
    "ActionKind",
    "RequestKind",
    "Failure",
    "EventKind",
    "AuthorizationKind",
    "CredentialForm",
    "VerdictKind",
    "HeadFlag",
    "Framing",
]


class Status(IntEnum):
    """A ``fieldauth_status``: ``OK`` or an error code (families of 100)."""

    @property
    def family(self) -> int:
        """The code's family: 0 (the call itself), 100 (buffers), 200 (input values),
        300 (HTTP), 400 (JSON), 500 (response contents), 600 (state), 700
        (snapshots), 800 (transport) or 900 (unknown)."""
        return int(self) // 100 * 100

    OK = 0
    """Success."""

    NULL_POINTER = 1
    """A required pointer argument is NULL (or a non-empty buffer is NULL)."""

    MISALIGNED = 2
    """An object or out-struct pointer is not suitably aligned (objects need 8 bytes)."""

    NOT_INITIALIZED = 3
    """The object was not initialized (or was cleared, or is another kind of object)."""

    INVALID_UTF8 = 4
    """A text input is not valid UTF-8."""

    UNKNOWN_ENUM = 5
    """An enumeration argument or field has a value that is not one of its constants."""

    INVALID_ARGUMENT = 6
    """A number or length is out of range, or buffers overlap each other or the object."""

    WOULD_BLOCK = 7
    """The transport would block: call fieldauth_session_exchange() again when it is ready."""

    BUFFER_TOO_SMALL = 100
    """The output buffer is too small; *out_len holds the size needed."""

    CAPACITY_EXCEEDED = 101
    """A fixed capacity (token storage, header buffer) is too small for what the server sent, or the configuration does not fit the session."""

    INPUT = 200
    """An input value is unusable (a kind this version does not name)."""

    INPUT_EMPTY = 201
    """A required value is empty."""

    INPUT_CONTROL_CHARACTER = 202
    """A value contains CR, LF, NUL or another control character (header injection)."""

    INPUT_INVALID_CHARACTER = 203
    """A value contains a character not allowed in its position."""

    INPUT_INVALID_URL = 204
    """The endpoint URL is not http(s)://host[:port]/path."""

    INPUT_INSECURE_SCHEME = 205
    """Plain http to a non-loopback host without allow_insecure."""

    INPUT_TOO_LONG = 206
    """A value is longer than its format allows."""

    INPUT_TOO_SHORT = 207
    """A value is shorter than its format requires."""

    INPUT_MISSING = 208
    """A value the operation needs is not configured."""

    INPUT_RESERVED = 209
    """A header fieldauth sets itself cannot be supplied."""

    INPUT_MISMATCH = 210
    """The redirect's ``state`` or ``iss`` is not the one the login expects."""

    INPUT_DUPLICATE = 211
    """A parameter appears more than once in the redirect."""

    INPUT_UNSUPPORTED = 212
    """The value needs a feature this build of the library leaves out."""

    HTTP = 300
    """The HTTP response is malformed (a kind this version does not name)."""

    HTTP_STATUS_LINE = 301
    """Malformed HTTP status line."""

    HTTP_HEADER_LINE = 302
    """Malformed HTTP header line."""

    HTTP_CONTENT_LENGTH = 303
    """Malformed Content-Length."""

    HTTP_CONFLICTING_LENGTH = 304
    """Conflicting message length (request-smuggling defence)."""

    HTTP_TRANSFER_ENCODING = 305
    """Unsupported Transfer-Encoding."""

    HTTP_CHUNK = 306
    """Malformed chunked transfer coding."""

    HTTP_TOO_MANY_HEADERS = 307
    """Too many header lines."""

    HTTP_HEADER_VALUE = 308
    """A header value that must be parsed is malformed."""

    HTTP_TRAILING_DATA = 309
    """Data after the end of the HTTP message."""

    JSON = 400
    """The response body is not valid JSON (a kind this version does not name)."""

    JSON_SYNTAX = 401
    """JSON syntax error."""

    JSON_TRUNCATED = 402
    """The body ended before the JSON was complete."""

    JSON_INVALID_UTF8 = 403
    """Invalid UTF-8 in the response body."""

    JSON_INVALID_ESCAPE = 404
    """Invalid escape sequence in a JSON string."""

    JSON_CONTROL_CHARACTER = 405
    """Raw control character inside a JSON string."""

    JSON_TOO_DEEP = 406
    """JSON nested too deeply."""

    JSON_NOT_AN_OBJECT = 407
    """The JSON body is not an object."""

    JSON_TRAILING_DATA = 408
    """Data after the end of the JSON object."""

    RESPONSE = 500
    """The response is well-formed but unusable (a kind this version does not name)."""

    RESPONSE_MISSING_MEMBER = 501
    """The response lacks a required member."""

    RESPONSE_DUPLICATE_MEMBER = 502
    """The response repeats a member."""

    RESPONSE_WRONG_TYPE = 503
    """A response member has the wrong JSON type."""

    RESPONSE_INVALID_NUMBER = 504
    """A response number is negative, fractional, malformed or absurd."""

    RESPONSE_INVALID_CHARACTERS = 505
    """A response token contains characters RFC 6749 does not allow."""

    RESPONSE_UNSUPPORTED_TOKEN_TYPE = 506
    """token_type is not Bearer."""

    RESPONSE_NOT_JSON = 507
    """The body is not JSON (HTML error page, empty body)."""

    RESPONSE_UNEXPECTED_STATUS = 508
    """Unexpected HTTP status for this operation."""

    RESPONSE_AUTHORIZATION_DENIED = 509
    """The authorization server redirected back with ``error=`` (e.g. the user declined)."""

    WRONG_STATE = 600
    """The call is not valid in the object's current state."""

    SNAPSHOT = 700
    """A snapshot image cannot be restored (a kind this version does not name)."""

    SNAPSHOT_LENGTH = 701
    """The snapshot image has the wrong length for this session."""

    SNAPSHOT_CORRUPT = 702
    """The snapshot image is corrupt."""

    SNAPSHOT_VERSION = 703
    """The snapshot image is from another format version."""

    SNAPSHOT_FOREIGN = 704
    """The snapshot image belongs to another configuration or arena size."""

    SNAPSHOT_EXPIRED = 705
    """The snapshot image holds nothing still valid."""

    TRANSPORT = 800
    """The transport failed (I/O error, connection closed early, or no response in time); the session schedules a retry."""

    UNKNOWN = 900
    """An error this version of the C ABI does not know (a newer core)."""


class Preset(IntEnum):
    """A provider preset (``FIELDAUTH_PRESET_*``)."""

    CUSTOM = 0
    """Preset id: a generic RFC 6749 client-credentials profile (form body, HTTP Basic, `/oauth/token`, Bearer header, no budgets): the starting point of a custom profile."""

    FENTU_API_KEY = 1
    """Preset id: Fentu FSM with an API key (`Authorization: Bearer KEY`)."""

    FENTU_OAUTH = 2
    """Preset id: Fentu FSM with OAuth 2.0 (authorization code, refresh, revocation)."""

    FIELD_NATION = 3
    """Preset id: Field Nation (client credentials, JSON body, token as a query parameter)."""

    AUTOTASK = 4
    """Preset id: Autotask (client credentials, rate-limited token endpoint)."""

    PATCHWORKS_API_KEY = 5
    """Preset id: Patchworks with an API key (the key alone in `Authorization`)."""

    PATCHWORKS_LOGIN = 6
    """Preset id: Patchworks with a username/password login."""


class Mode(IntEnum):
    """A profile's authentication mode (``FIELDAUTH_MODE_*``)."""

    API_KEY = 1
    """Profile mode: a static API key; no token endpoint, always ready."""

    CLIENT_CREDENTIALS = 2
    """Profile mode: OAuth 2.0 client credentials (RFC 6749 §4.4)."""

    PASSWORD = 3
    """Profile mode: resource-owner password grant (RFC 6749 §4.3)."""

    LOGIN = 4
    """Profile mode: a provider login with {"username","password"} (Patchworks)."""

    AUTHORIZATION_CODE = 5
    """Profile mode: authorization code with PKCE (RFC 6749 §4.1, RFC 7636)."""

    DEVICE_CODE = 6
    """Profile mode: device authorization grant (RFC 8628)."""


class Format(IntEnum):
    """Token-request body encoding (``FIELDAUTH_FORMAT_*``)."""

    FORM = 1
    """Token-request body: application/x-www-form-urlencoded."""

    JSON = 2
    """Token-request body: application/json."""


class ClientAuth(IntEnum):
    """Client authentication (``FIELDAUTH_CLIENT_AUTH_*``)."""

    BODY = 1
    """Client authentication: client_id and client_secret in the body."""

    BASIC = 2
    """Client authentication: HTTP Basic (client_secret_basic)."""

    NONE = 3
    """Client authentication: public client (client_id only)."""


class RevokeStyle(IntEnum):
    """Revocation style (``FIELDAUTH_REVOKE_*``)."""

    NONE = 1
    """Revocation: the provider has no revocation endpoint."""

    RFC7009 = 2
    """Revocation: RFC 7009 (token in the body)."""

    BEARER = 3
    """Revocation: POST with `Authorization: Bearer <token>` and no body (Fentu)."""


class Keys(IntEnum):
    """Token-response member names (``FIELDAUTH_KEYS_*``)."""

    STANDARD = 1
    """Token-response member names: the standard OAuth ones."""

    PATCHWORKS = 2
    """Token-response member names: Patchworks (`token` for the access token)."""


class Placement(IntEnum):
    """Where the credential goes on API requests (``FIELDAUTH_PLACEMENT_*``)."""

    BEARER = 1
    """Credential placement: `Authorization: Bearer <credential>`."""

    RAW = 2
    """Credential placement: `Authorization: <credential>` (no scheme)."""

    HEADER = 3
    """Credential placement: a custom header named by `placement_name`."""

    QUERY = 4
    """Credential placement: a query parameter named by `placement_name`."""


class ResetMode(IntEnum):
    """How ``X-RateLimit-Reset`` is read (``FIELDAUTH_RESET_*``)."""

    AUTO = 1
    """X-RateLimit-Reset: guess epoch ms / epoch s / delta s from the magnitude."""

    EPOCH_SECONDS = 2
    """X-RateLimit-Reset: Unix time in seconds."""

    DELTA_SECONDS = 3
    """X-RateLimit-Reset: seconds from the response."""


class ActionKind(IntEnum):
    """What the session wants next (``FIELDAUTH_ACTION_*``)."""

    SEND_TOKEN_REQUEST = 1
    """Action: write a token request (fieldauth_session_write_token_request*) and send it, or run fieldauth_session_exchange()."""

    AWAIT_RESPONSE = 2
    """Action: a token request is in flight: feed its response."""

    READY = 3
    """Action: a credential is usable: authorize API requests; poll again by `at_ms` at the latest."""

    WAIT = 4
    """Action: nothing is usable yet: poll again at `at_ms`."""

    NEED_AUTHORIZATION_CODE = 5
    """Action: authorization-code mode without a usable token: run the browser step (fieldauth_session_authorization_url)."""

    FAILED = 6
    """Action: a permanent failure (see `failure`); reconfigure or fieldauth_session_restart()."""


class Revocation(IntEnum):
    """Which tokens :meth:`Session.revoke` revokes (``FIELDAUTH_REVOCATION_*``)."""

    GRANT = 0
    """The refresh token if held, else the access token; the session then reports ``Failure.REVOKED``."""

    ACCESS = 1
    """The access token only; the session goes on."""

    BOTH = 2
    """The refresh token, then the access token; the session then reports ``Failure.REVOKED``."""


class Adopted(IntEnum):
    """What :meth:`Session.adopt` did with a shared state (``FIELDAUTH_ADOPTED_*``)."""

    NONE = 0
    """The C worker's sync found nothing to adopt (the store empty, failing, or foreign); never from :meth:`Session.adopt`."""

    NEWER = 1
    """The image was newer: the session now holds its token, rate-limit state and server blocks."""

    NOT_NEWER = 2
    """The session already holds this generation or a newer one: nothing changed."""

    NOTHING_USABLE = 3
    """Newer, but its tokens all expired: the generation is recorded, the session keeps its own state."""


class RequestKind(IntEnum):
    """Kind of token request (``FIELDAUTH_REQUEST_*``)."""

    NONE = 0
    """Token request kind: none (in outputs where it does not apply)."""

    FETCH = 1
    """Token request kind: the primary grant."""

    REFRESH = 2
    """Token request kind: the refresh_token grant."""

    DEVICE_AUTHORIZATION = 3
    """Token request kind: the RFC 8628 device authorization request."""

    DEVICE_POLL = 4
    """Token request kind: an RFC 8628 device_code poll."""

    REVOKE = 5
    """Token request kind: a revocation request."""


class Failure(IntEnum):
    """Why a session failed permanently (``FIELDAUTH_FAILURE_*``)."""

    NONE = 0
    """Failure: none."""

    INVALID_CLIENT = 1
    """Failure: the server rejected the client credentials (invalid_client)."""

    UNAUTHORIZED_CLIENT = 2
    """Failure: the client may not use this grant."""

    INVALID_SCOPE = 3
    """Failure: the requested scope is invalid."""

    INVALID_GRANT = 4
    """Failure: the username/password (or authorization code) was rejected."""

    INVALID_KEY = 5
    """Failure: the API key was rejected."""

    ACCESS_DENIED = 6
    """Failure: the user denied the request (access_denied)."""

    REJECTED = 7
    """Failure: the server rejected the primary grant's request as malformed
    (``invalid_request``: configuration). A 4xx without an error code is retried."""

    RETRIES_EXHAUSTED = 8
    """No longer reported: a session whose retries ran out keeps trying, one
    attempt per 150-300 s, until the server answers. The value stays reserved."""

    REVOKED = 9
    """Failure: the tokens were revoked (or the session was cleared)."""


class EventKind(IntEnum):
    """What the session did with a token response (``FIELDAUTH_EVENT_*``)."""

    NONE = 0
    """Event: none (the response is not complete yet)."""

    TOKEN_ISSUED = 1
    """Event: a new token is active."""

    USER_CODE = 2
    """Event: a device code arrived: show fieldauth_session_device_display()."""

    AUTHORIZATION_PENDING = 3
    """Event: device flow: the user has not approved yet; polling continues."""

    SLOW_DOWN = 4
    """Event: device flow: the server asked to poll more slowly."""

    REFRESH_REJECTED = 5
    """Event: the refresh token was rejected; the primary grant is tried next."""

    RETRYING = 6
    """Event: the request failed transiently; retried at `at_ms`."""

    FAILED = 7
    """Event: the session entered a permanent failure (`failure`)."""

    REVOKED = 8
    """Event: the tokens were revoked."""


class AuthorizationKind(IntEnum):
    """The answer to an API authorization (``FIELDAUTH_AUTHORIZATION_*``)."""

    SEND = 1
    """Authorization: send the request with the credential written to the buffer."""

    WAIT = 2
    """Authorization: a rate limit applies: do not send before `until_ms`."""

    NO_CREDENTIAL = 3
    """Authorization: no usable credential: poll the session."""


class CredentialForm(IntEnum):
    """How a granted credential is written (``FIELDAUTH_CREDENTIAL_*``)."""

    HEADER = 1
    """Credential form: the buffer holds a header line `Name: value\r\n`; send the request to the original target with this line added."""

    QUERY = 2
    """Credential form: the buffer holds the request target with the credential appended as a query parameter; send the request to that target."""


class VerdictKind(IntEnum):
    """What an API response means (``FIELDAUTH_VERDICT_*``)."""

    OK = 1
    """Verdict: success, or an error unrelated to authentication."""

    RETRY_WITH_NEW_TOKEN = 2
    """Verdict: the token was rejected and dropped: poll (a new token is fetched) and retry the request once."""

    UNAUTHORIZED = 3
    """Verdict: the token was rejected again right after a retry: not retried."""

    INVALID_KEY = 4
    """Verdict: the API key was rejected (permanent failure)."""

    FORBIDDEN = 5
    """Verdict: the credential lacks permission (403): not retried."""

    RATE_LIMITED = 6
    """Verdict: rate limited: retry the request at `until_ms`."""


class HeadFlag(IntFlag):
    """Flags of a parsed response head (``FIELDAUTH_HEAD_*``)."""

    CONTENT_LENGTH = 1
    """Response head flag: Content-Length was present (`content_length`)."""

    CHUNKED = 2
    """Response head flag: Transfer-Encoding: chunked."""

    CONNECTION_CLOSE = 4
    """Response head flag: the server closes the connection after this response."""

    CONTENT_TYPE_JSON = 8
    """Response head flag: the Content-Type is JSON (application/json, +json)."""

    DATE = 16
    """Response head flag: a valid Date was present (`date`)."""

    RETRY_AFTER_DELAY = 32
    """Response head flag: Retry-After in seconds (`retry_after`)."""

    RETRY_AFTER_DATE = 64
    """Response head flag: Retry-After as a date (`retry_after`, Unix seconds)."""

    X_RATE_LIMIT_LIMIT = 128
    """Response head flag: X-RateLimit-Limit present."""

    X_RATE_LIMIT_REMAINING = 256
    """Response head flag: X-RateLimit-Remaining present."""

    X_RATE_LIMIT_RESET = 512
    """Response head flag: X-RateLimit-Reset present (raw value)."""

    BEARER_CHALLENGE = 1024
    """Response head flag: WWW-Authenticate carried a Bearer challenge."""


class Framing(IntEnum):
    """How a response body is delimited (``FIELDAUTH_FRAMING_*``)."""

    LENGTH = 1
    """Body framing: exactly `content_length` bytes."""

    CHUNKED = 2
    """Body framing: the chunked transfer coding."""

    CLOSE = 3
    """Body framing: everything until the server closes the connection."""
