"""fieldauth: OAuth 2.0 / API-key authentication for field-service APIs, over ctypes.

A pure-Python binding of ``libfieldauth`` (the allocation-free, sans-IO C ABI
of the fieldauth Rust core). The library decides *when* to fetch or refresh a
token, writes the token requests, parses the responses and tells you how to
authorize each API call and whether to retry it; your code moves the bytes
(with :mod:`http.client`, :mod:`socket`, or any HTTP client).

>>> import fieldauth
>>> cfg = fieldauth.Config(base_url="http://127.0.0.1:8080/autotask",
...                        client_id="demo-client", client_secret="demo-secret")
>>> with fieldauth.Session(fieldauth.Preset.AUTOTASK, cfg) as session:
...     action = session.poll()          # ActionKind.SEND_TOKEN_REQUEST first

HTTP clients: :mod:`fieldauth.requests` and :mod:`fieldauth.httpx` provide
``FieldAuth``, an auth object for requests and for httpx (sync and async) that
runs the session for you (extras ``[requests]`` and ``[httpx]``).

The shared library is found through ``FIELDAUTH_LIB``, inside this package
(where ``pip install`` puts it), or in a cargo ``target/`` directory (see
:mod:`fieldauth._lib`).
"""

from ._lib import (
    NEVER,
    LibraryMismatchError,
    LibraryNotFoundError,
    candidate_paths,
)
from ._adapter import NoCredentialError, WaitTooLong
from .enums import (
    ActionKind,
    AuthorizationKind,
    ClientAuth,
    CredentialForm,
    EventKind,
    Failure,
    Format,
    Framing,
    HeadFlag,
    Keys,
    Mode,
    Placement,
    Preset,
    RequestKind,
    ResetMode,
    RevokeStyle,
    Adopted,
    Revocation,
    Status,
    VerdictKind,
)
from .errors import (
    BufferTooSmall,
    CallError,
    CapacityExceeded,
    FieldauthError,
    HttpError,
    InputError,
    InvalidArgument,
    JsonError,
    NotInitialized,
    ProtocolError,
    ResponseError,
    SessionFailed,
    AuthorizationDenied,
    SizeError,
    SnapshotError,
    TransportError,
    UnknownError,
    WouldBlock,
    WrongState,
)
from .session import (
    Action,
    Authorization,
    Backoff,
    Body,
    BodyProgress,
    Budget,
    Config,
    DeviceDisplay,
    Event,
    Head,
    Profile,
    ResponseInfo,
    DEFAULT_TOKEN_CAPACITY,
    Session,
    SessionInfo,
    TokenRequest,
    Transport,
    Verdict,
    BearerChallenge,
    monotonic_ms,
    preset_name,
    presets,
    status_message,
    version,
    version_number,
)

__version__ = "0.1.0"

__all__ = [
    "NEVER",
    "LibraryMismatchError",
    "LibraryNotFoundError",
    "candidate_paths",
    "NoCredentialError",
    "WaitTooLong",
    "ActionKind",
    "AuthorizationKind",
    "ClientAuth",
    "CredentialForm",
    "EventKind",
    "Failure",
    "Format",
    "Framing",
    "HeadFlag",
    "Keys",
    "Mode",
    "Placement",
    "Preset",
    "RequestKind",
    "ResetMode",
    "RevokeStyle",
    "Adopted",
    "Revocation",
    "Status",
    "VerdictKind",
    "BufferTooSmall",
    "CallError",
    "CapacityExceeded",
    "FieldauthError",
    "HttpError",
    "InputError",
    "InvalidArgument",
    "JsonError",
    "NotInitialized",
    "ProtocolError",
    "ResponseError",
    "SessionFailed",
    "AuthorizationDenied",
    "SizeError",
    "SnapshotError",
    "TransportError",
    "UnknownError",
    "WouldBlock",
    "WrongState",
    "Action",
    "Authorization",
    "Backoff",
    "Body",
    "BodyProgress",
    "Budget",
    "Config",
    "DeviceDisplay",
    "Event",
    "Head",
    "Profile",
    "ResponseInfo",
    "Session",
    "SessionInfo",
    "DEFAULT_TOKEN_CAPACITY",
    "TokenRequest",
    "Transport",
    "Verdict",
    "BearerChallenge",
    "monotonic_ms",
    "preset_name",
    "presets",
    "status_message",
    "version",
    "version_number",
]
