"""The Pythonic API over the C ABI: :class:`Session`, :class:`Head`, :class:`Body`.

Memory: every object the library writes into (session storage, head and body
parsers, output buffers, out-structs) is a ctypes object owned by the Python
object or by the call's own frame, and outlives every library call that uses
it. Outputs are copied into Python values before the call's buffers go away;
buffers that held secrets are zeroed after the copy. No pointer into library
memory is kept.

Time: ``now_ms`` arguments are a monotonic clock in milliseconds; when left
out they default to :func:`monotonic_ms`. ``unix_ms`` is wall-clock time.

Threads: the library's objects are not thread-safe, so every :class:`Session`
and :class:`Head` serializes calls with its own lock; calling back into a
session from inside its own :meth:`Session.exchange` raises
:class:`~fieldauth.WrongState`.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterable,
    List,
    Mapping,
    Optional,
    Protocol,
    Tuple,
    TypeVar,
    Union,
)

from . import _lib as _c
from .enums import (
    ActionKind,
    Adopted,
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
    Revocation,
    ResetMode,
    RevokeStyle,
    Status,
    VerdictKind,
)
from .errors import AuthorizationDenied, SessionFailed, WrongState, error_for

if TYPE_CHECKING:  # fieldauth.stores imports nothing of this module; the type only
    from .stores import Store

__all__ = [
    "Session",
    "DEFAULT_TOKEN_CAPACITY",
    "Head",
    "Body",
    "Config",
    "Profile",
    "Budget",
    "Backoff",
    "Action",
    "Event",
    "TokenRequest",
    "Authorization",
    "Verdict",
    "DeviceDisplay",
    "SessionInfo",
    "ResponseInfo",
    "BodyProgress",
    "Transport",
    "monotonic_ms",
    "version",
    "version_number",
    "status_message",
    "preset_name",
    "presets",
]

Text = Union[str, bytes, bytearray, memoryview]
"""A text input: ``str`` (encoded as UTF-8) or bytes (passed as they are; the
library checks that they are UTF-8)."""

BytesLike = Union[bytes, bytearray, memoryview]

#: First guess for output buffers (retried once with the size the library asks for).
_FIRST_GUESS = 1024

#: Bytes of each of a :class:`Session`'s two token slots by default: room for a
#: 4 KB signed JWT access token, a 1 KB refresh token and a scope (the
#: decoded text of one token response). Pass ``token_capacity=`` for more.
DEFAULT_TOKEN_CAPACITY = 6144

T = TypeVar("T")


# ---------------------------------------------------------------- input checks


def monotonic_ms() -> int:
    """The default clock for ``now_ms``: :func:`time.monotonic_ns` in milliseconds."""
    return time.monotonic_ns() // 1_000_000


def _int(name: str, value: object, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= limit:
        raise ValueError(f"{name} must be between 0 and {limit}, got {value}")
    return value


def _u64(name: str, value: object) -> int:
    return _int(name, value, _c.U64_MAX)


def _u32(name: str, value: object) -> int:
    return _int(name, value, _c.U32_MAX)


def _now(now_ms: Optional[int]) -> int:
    return monotonic_ms() if now_ms is None else _u64("now_ms", now_ms)


def _text(name: str, value: object) -> bytes:
    """UTF-8 bytes of a text input (``None`` is empty)."""
    if value is None:
        return b""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{name} cannot be encoded as UTF-8 ({exc.reason} at index {exc.start}): "
                "pass valid text"
            ) from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be str or bytes, not {type(value).__name__}")


def _data(name: str, value: object) -> bytes:
    """Bytes of a binary input (``None`` is empty)."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def _in_buf(data: bytes) -> Tuple[Any, int]:
    """A ctypes copy of ``data`` to pass as ``(const uint8_t *, size_t)``; (None, 0) if empty."""
    if not data:
        return None, 0
    return (ctypes.c_uint8 * len(data)).from_buffer_copy(data), len(data)


class _Keep:
    """Holds the ctypes buffers that a struct's ``fieldauth_str`` fields point into."""

    def __init__(self) -> None:
        self.buffers: List[Any] = []

    def str_(self, name: str, value: object) -> _c.Str:
        data = _text(name, value)
        buf, n = _in_buf(data)
        if buf is None:
            return _c.Str(None, 0)
        self.buffers.append(buf)
        return _c.Str(ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint8)), n)

    def wipe(self) -> None:
        for buf in self.buffers:
            ctypes.memset(buf, 0, ctypes.sizeof(buf))
        self.buffers.clear()


def _out_str(s: _c.Str) -> bytes:
    if not s.ptr or s.len == 0:
        return b""
    return ctypes.string_at(s.ptr, s.len)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _message(status: int) -> str:
    raw = _c.lib().fieldauth_status_message(status)
    return raw.decode("utf-8", errors="replace") if raw else f"status {status}"


def _raise(status: int, context: str, needed: int = 0) -> None:
    if status != Status.OK:
        raise error_for(status, _message(status), context, needed)


def _sized(
    context: str, call: Callable[[Any, int, Any], int], secret: bool = False
) -> bytes:
    """Runs ``call(buf, buf_len, out_len)`` with a buffer sized from the library.

    Tries a first guess, then once more with the size a BUFFER_TOO_SMALL
    reported. Returns the ``*out_len`` bytes written; zeroes the buffer after
    copying when it held a secret.
    """
    size = _FIRST_GUESS
    for _ in range(2):
        buf = (ctypes.c_uint8 * size)()
        out_len = ctypes.c_size_t(0)
        status = call(buf, size, ctypes.byref(out_len))
        try:
            if status == Status.BUFFER_TOO_SMALL and out_len.value > size:
                size = out_len.value
                continue
            _raise(status, context, out_len.value)
            return ctypes.string_at(buf, min(out_len.value, size))
        finally:
            if secret:
                ctypes.memset(buf, 0, ctypes.sizeof(buf))
    raise error_for(Status.BUFFER_TOO_SMALL, _message(Status.BUFFER_TOO_SMALL), context, size)


# ---------------------------------------------------------------- module functions


def version() -> str:
    """The library's version, ``"MAJOR.MINOR.PATCH"``."""
    raw = _c.lib().fieldauth_version()
    return raw.decode("ascii") if raw else ""


def version_number() -> int:
    """The library's version as ``MAJOR << 16 | MINOR << 8 | PATCH``."""
    return int(_c.lib().fieldauth_version_number())


def status_message(status: int) -> str:
    """The library's English sentence for any status code (known or not)."""
    return _message(_u32("status", status))


def preset_name(preset: int) -> Optional[str]:
    """The library's name of preset ``preset``, or ``None`` for an unknown id."""
    raw = _c.lib().fieldauth_preset_name(_u32("preset", preset))
    return raw.decode("utf-8") if raw else None


def presets() -> List[Tuple[Preset, str]]:
    """Every preset the library offers, with its name."""
    out: List[Tuple[Preset, str]] = []
    for preset in Preset:
        name = preset_name(preset)
        if name is not None:
            out.append((preset, name))
    return out


# ---------------------------------------------------------------- configuration


@dataclass
class Config:
    """Where the provider is and the credentials (``fieldauth_config``).

    Text fields take ``str`` (UTF-8 encoded) or ``bytes``; ``None`` means
    "not configured". The session copies them at init. Secrets are left out
    of ``repr()``.
    """

    base_url: Optional[Text] = None
    """Base URL the profile's paths are appended to, e.g. ``https://api.fieldnation.com``."""
    client_id: Optional[Text] = None
    """OAuth ``client_id``."""
    client_secret: Optional[Text] = field(default=None, repr=False)
    """OAuth ``client_secret`` (secret)."""
    username: Optional[Text] = None
    """Username (password grant, login)."""
    password: Optional[Text] = field(default=None, repr=False)
    """Password (secret)."""
    api_key: Optional[Text] = field(default=None, repr=False)
    """API key (API-key mode; secret)."""
    scope: Optional[Text] = None
    """Scope; ``None`` uses the profile's default."""
    redirect_uri: Optional[Text] = None
    """Redirect URI (authorization-code mode)."""
    allow_insecure: bool = False
    """Allow plain http to a non-loopback host (test rigs only)."""
    max_wait_s: int = 0
    """The longest wait (seconds) a server answer may impose: ``Retry-After``,
    rate-limit resets, a device-flow ``slow_down``. Longer ones are cut to it.
    ``0`` means the default, one hour."""
    resource: Optional[Text] = None
    """``resource`` (RFC 8707: the API the token is for), sent with the scope on
    token requests and in the authorization URL."""
    audience: Optional[Text] = None
    """``audience`` (some providers' name for it), sent with the scope on token requests."""
    token_params: Optional[Params] = field(default=None, repr=False)
    """More parameters for every token request (not revocations): a mapping or
    ``(name, value)`` pairs (encoded here), or already form-urlencoded text
    (``"tenant=acme&x=a%20b"``). Names fieldauth sets itself are refused.
    Left out of ``repr()``: it may carry secrets."""
    authorize_params: Optional[Params] = None
    """More query parameters for the authorization URL, the same way:
    ``{"prompt": "consent", "login_hint": "tech@acme.example", "nonce": ...}``."""

    def _to_c(self, keep: _Keep) -> _c.Config:
        if not isinstance(self.allow_insecure, bool):
            raise TypeError(
                f"allow_insecure must be a bool, not {type(self.allow_insecure).__name__}"
            )
        if (
            not isinstance(self.max_wait_s, int)
            or isinstance(self.max_wait_s, bool)
            or not 0 <= self.max_wait_s <= 0xFFFF_FFFF
        ):
            raise ValueError(
                f"max_wait_s must be an int from 0 to 4294967295 seconds, not {self.max_wait_s!r}"
            )
        return _c.Config(
            keep.str_("base_url", self.base_url),
            keep.str_("client_id", self.client_id),
            keep.str_("client_secret", self.client_secret),
            keep.str_("username", self.username),
            keep.str_("password", self.password),
            keep.str_("api_key", self.api_key),
            keep.str_("scope", self.scope),
            keep.str_("redirect_uri", self.redirect_uri),
            1 if self.allow_insecure else 0,
            self.max_wait_s,
            keep.str_("resource", self.resource),
            keep.str_("audience", self.audience),
            keep.str_("token_params", _form("token_params", self.token_params)),
            keep.str_("authorize_params", _form("authorize_params", self.authorize_params)),
        )


Params = Union[Text, Mapping[str, str], Iterable[Tuple[str, str]]]
"""Extra request parameters: form-urlencoded text, a mapping, or ``(name, value)`` pairs."""


def _form(name: str, params: Optional[Params]) -> Optional[Text]:
    """``params`` as form-urlencoded text (text passes through, to be checked by the library)."""
    if params is None or isinstance(params, (str, bytes)):
        return params
    from urllib.parse import urlencode

    try:
        pairs: Iterable[Any] = params.items() if isinstance(params, Mapping) else params
        items: List[Tuple[str, str]] = []
        for pair in pairs:
            k, v = pair
            items.append((str(k), str(v)))
        return urlencode(items)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be form-urlencoded text, a mapping or (name, value) pairs, "
            f"not {type(params).__name__}"
        ) from None


@dataclass
class Budget:
    """A client-side request budget: ``requests`` per ``window_s``, up to ``burst`` at once.

    ``requests == 0`` means no budget.
    """

    requests: int = 0
    """Requests per window (0: no budget)."""
    window_s: int = 0
    """Window length in seconds."""
    burst: int = 0
    """Requests allowed back to back (1 ..= requests)."""


@dataclass
class Backoff:
    """Retry policy for failed token requests (full-jitter exponential backoff)."""

    base_ms: int = 0
    """First delay bound in milliseconds."""
    cap_ms: int = 0
    """Largest delay bound in milliseconds."""
    max_attempts: int = 0
    """Consecutive failures after which the session slows down to one attempt
    per 150-300 s while no valid token is left (1 ..= 255)."""


@dataclass
class Profile:
    """Everything the session needs to know about a provider (``fieldauth_profile``).

    Start from :meth:`Profile.preset` and change what differs. The enumeration
    fields take the :mod:`fieldauth.enums` values; the library rejects any
    other value with :class:`~fieldauth.InvalidArgument`.
    """

    name: Text
    """Human-readable name (informational)."""
    mode: int
    """A :class:`~fieldauth.Mode`."""
    format: int
    """A :class:`~fieldauth.Format`: token-request body encoding."""
    client_auth: int
    """A :class:`~fieldauth.ClientAuth`."""
    revoke_style: int
    """A :class:`~fieldauth.RevokeStyle`."""
    token_path: Text
    """Token endpoint path, appended to the base URL (empty in API-key mode)."""
    authorize_path: Text
    """Authorization endpoint path (authorization-code mode)."""
    device_path: Text
    """Device authorization endpoint path (device mode)."""
    revoke_path: Text
    """Revocation endpoint path (empty: none)."""
    scope: Text
    """Scope to request when the configuration gives none."""
    keys: int
    """A :class:`~fieldauth.Keys`: member names of token responses."""
    placement: int
    """A :class:`~fieldauth.Placement`: where the credential goes on API requests."""
    placement_name: Text
    """Header or query-parameter name for ``Placement.HEADER`` / ``QUERY``."""
    default_lifetime_s: int
    """Lifetime assumed when a token response has no ``expires_in``."""
    refresh_lifetime_s: int
    """Refresh-token lifetime when the server does not say (0: unlimited)."""
    refresh_margin_s: int
    """Refresh at most this many seconds before expiry..."""
    refresh_fraction_pct: int
    """...and at most this percentage (0 ..= 100) of the lifetime."""
    token_budget: Budget
    """Client-side budget for the token endpoint."""
    api_budget: Budget
    """Client-side budget for API requests."""
    api_budget_per_token: bool
    """The API budget starts afresh with every new token."""
    reset_mode: int
    """A :class:`~fieldauth.ResetMode`: how ``X-RateLimit-Reset`` is read."""
    backoff: Backoff
    """Token-request retry policy."""
    expired_token_phrase: Text
    """A phrase in a 400 API response body that means "token expired" (empty: none)."""

    @classmethod
    def preset(cls, preset: int) -> "Profile":
        """The library's profile for ``preset`` (a :class:`~fieldauth.Preset`)."""
        preset = _u32("preset", preset)
        raw = _c.Profile()
        _raise(
            _c.lib().fieldauth_profile_preset(preset, ctypes.byref(raw)),
            f"Profile.preset({preset})",
        )

        def enum(kind: Any, value: int) -> int:
            try:
                return kind(value)  # type: ignore[no-any-return]
            except ValueError:
                return value

        def text(s: _c.Str) -> str:
            return _decode(_out_str(s))

        return cls(
            name=text(raw.name),
            mode=enum(Mode, raw.mode),
            format=enum(Format, raw.format),
            client_auth=enum(ClientAuth, raw.client_auth),
            revoke_style=enum(RevokeStyle, raw.revoke_style),
            token_path=text(raw.token_path),
            authorize_path=text(raw.authorize_path),
            device_path=text(raw.device_path),
            revoke_path=text(raw.revoke_path),
            scope=text(raw.scope),
            keys=enum(Keys, raw.keys),
            placement=enum(Placement, raw.placement),
            placement_name=text(raw.placement_name),
            default_lifetime_s=raw.default_lifetime_s,
            refresh_lifetime_s=raw.refresh_lifetime_s,
            refresh_margin_s=raw.refresh_margin_s,
            refresh_fraction_pct=raw.refresh_fraction_pct,
            token_budget=Budget(
                raw.token_budget.requests, raw.token_budget.window_s, raw.token_budget.burst
            ),
            api_budget=Budget(
                raw.api_budget.requests, raw.api_budget.window_s, raw.api_budget.burst
            ),
            api_budget_per_token=bool(raw.api_budget_per_token),
            reset_mode=enum(ResetMode, raw.reset_mode),
            backoff=Backoff(raw.backoff.base_ms, raw.backoff.cap_ms, raw.backoff.max_attempts),
            expired_token_phrase=text(raw.expired_token_phrase),
        )

    def _to_c(self, keep: _Keep) -> _c.Profile:
        def budget(name: str, b: object) -> _c.Budget:
            if not isinstance(b, Budget):
                raise TypeError(f"{name} must be a Budget, not {type(b).__name__}")
            return _c.Budget(
                _u32(f"{name}.requests", b.requests),
                _u32(f"{name}.window_s", b.window_s),
                _u32(f"{name}.burst", b.burst),
            )

        if not isinstance(self.backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff, not {type(self.backoff).__name__}")
        if not isinstance(self.api_budget_per_token, bool):
            raise TypeError("api_budget_per_token must be a bool")
        return _c.Profile(
            name=keep.str_("name", self.name),
            mode=_u32("mode", self.mode),
            format=_u32("format", self.format),
            client_auth=_u32("client_auth", self.client_auth),
            revoke_style=_u32("revoke_style", self.revoke_style),
            token_path=keep.str_("token_path", self.token_path),
            authorize_path=keep.str_("authorize_path", self.authorize_path),
            device_path=keep.str_("device_path", self.device_path),
            revoke_path=keep.str_("revoke_path", self.revoke_path),
            scope=keep.str_("scope", self.scope),
            keys=_u32("keys", self.keys),
            placement=_u32("placement", self.placement),
            placement_name=keep.str_("placement_name", self.placement_name),
            default_lifetime_s=_u32("default_lifetime_s", self.default_lifetime_s),
            refresh_lifetime_s=_u32("refresh_lifetime_s", self.refresh_lifetime_s),
            refresh_margin_s=_u32("refresh_margin_s", self.refresh_margin_s),
            refresh_fraction_pct=_u32("refresh_fraction_pct", self.refresh_fraction_pct),
            token_budget=budget("token_budget", self.token_budget),
            api_budget=budget("api_budget", self.api_budget),
            api_budget_per_token=1 if self.api_budget_per_token else 0,
            reset_mode=_u32("reset_mode", self.reset_mode),
            backoff=_c.Backoff(
                _u32("backoff.base_ms", self.backoff.base_ms),
                _u32("backoff.cap_ms", self.backoff.cap_ms),
                _u32("backoff.max_attempts", self.backoff.max_attempts),
            ),
            expired_token_phrase=keep.str_("expired_token_phrase", self.expired_token_phrase),
        )


# ---------------------------------------------------------------- results


def _enum(kind: Callable[[int], T], value: int) -> Union[T, int]:
    try:
        return kind(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class Action:
    """What the session wants next (:meth:`Session.poll`)."""

    kind: ActionKind
    """What to do."""
    at_ms: int
    """``READY``: poll again by this time; ``WAIT``: poll again at this time; else 0."""
    request_kind: RequestKind
    """``SEND_TOKEN_REQUEST``: which request; else ``RequestKind.NONE``."""
    failure: Failure
    """``FAILED``: why; else ``Failure.NONE``."""

    @classmethod
    def _from(cls, a: _c.Action) -> "Action":
        return cls(
            ActionKind(a.kind), a.at_ms, RequestKind(a.request_kind), Failure(a.failure)
        )


@dataclass(frozen=True)
class Event:
    """What the session did with a token response (or a transport failure)."""

    kind: EventKind
    """What happened (``EventKind.NONE``: the response is not complete yet)."""
    at_ms: int = 0
    """``RETRYING``: when the retry may go out; else 0."""
    request_kind: RequestKind = RequestKind.NONE
    """``TOKEN_ISSUED``: which request obtained it."""
    lifetime_s: int = 0
    """``TOKEN_ISSUED``: the token's lifetime in seconds."""
    refreshable: bool = False
    """``TOKEN_ISSUED``: a refresh token is held."""
    http_status: int = 0
    """``RETRYING``: HTTP status of the failed response (0: transport failure)."""
    failure: Failure = Failure.NONE
    """``FAILED``: why."""
    reusable: Optional[bool] = None
    """:meth:`Session.exchange` only: whether the connection may carry the next
    request (``False``: the server sent ``Connection: close``, answered
    HTTP/1.0 without keep-alive, or delimited the body by closing; the
    transport was closed). ``None`` elsewhere."""
    date: Optional[int] = None
    """:meth:`Session.exchange` only: the response's ``Date`` (Unix seconds), if sent."""

    @classmethod
    def _from(cls, e: _c.Event) -> "Event":
        return cls(
            EventKind(e.kind),
            e.at_ms,
            RequestKind(e.request_kind),
            e.lifetime_s,
            bool(e.refreshable),
            e.http_status,
            Failure(e.failure),
        )


@dataclass(frozen=True)
class TokenRequest:
    """A token request as parts, for an HTTP client (:meth:`Session.write_token_request_parts`).

    It contains credentials: ``repr()`` shows only the method and target.
    """

    method: str
    """Always ``"POST"``."""
    target: str
    """Origin-form target (path and query)."""
    headers: List[Tuple[str, str]] = field(repr=False)
    """The headers in order (``Host`` and ``Content-Length`` included)."""
    body: bytes = field(repr=False)
    """The body (empty for a Bearer revocation)."""
    raw: bytes = field(repr=False)
    """The complete HTTP/1.1 request."""
    url: str = ""
    """The absolute URL it goes to (:meth:`Session.token_request_url`)."""


@dataclass(frozen=True)
class Authorization:
    """The permission to send one API request (:meth:`Session.authorize`).

    ``SEND`` with ``CredentialForm.HEADER``: add ``header`` (name, value) to
    the request and send it to the original target. ``SEND`` with
    ``CredentialForm.QUERY``: send the request to ``target`` (the original
    target with the credential appended). ``WAIT``: do not send before
    ``until_ms``. ``NO_CREDENTIAL``: poll the session. The credential is a
    secret: ``repr()`` hides it.
    """

    kind: AuthorizationKind
    """Send, wait or poll."""
    until_ms: int = 0
    """``WAIT``: when a request may go out; else 0."""
    credential: Union[CredentialForm, int] = 0
    """``SEND``: how the credential is written; else 0."""
    header: Optional[Tuple[str, str]] = field(default=None, repr=False)
    """``SEND`` + ``HEADER``: the header's name and value."""
    target: Optional[str] = field(default=None, repr=False)
    """``SEND`` + ``QUERY``: the target with the credential appended."""
    token_id: Optional[int] = None
    """``SEND``: which token the credential is; give it to
    :meth:`Session.report_api_response` (``token_id=``) so that a late
    rejection of an older token leaves a newer one alone."""

    @property
    def ok(self) -> bool:
        """True when the request may be sent now."""
        return self.kind == AuthorizationKind.SEND


@dataclass(frozen=True)
class BearerChallenge:
    """The ``Bearer`` challenge of ``WWW-Authenticate`` (RFC 6750 §3): why a token was rejected.

    Absent parameters are ``""``.
    """

    error: str
    """``error`` as sent (``invalid_token``, ``insufficient_scope``, ...)."""
    error_description: str = ""
    """``error_description``: the server's words."""
    scope: str = ""
    """``scope``: the scope the resource requires (space-separated)."""
    realm: str = ""
    """``realm``."""
    error_uri: str = ""
    """``error_uri``."""


@dataclass(frozen=True)
class Verdict:
    """What an API response means (:meth:`Session.report_api_response`)."""

    kind: VerdictKind
    """Retry or not, and how."""
    until_ms: int = 0
    """``RATE_LIMITED``: when requests may resume; else 0."""
    challenge: Optional[BearerChallenge] = None
    """The response's ``Bearer`` challenge with its texts, if it had one."""


@dataclass(frozen=True)
class DeviceDisplay:
    """What the user needs to see in the device flow (RFC 8628 §3.3)."""

    user_code: str
    """The code to enter."""
    verification_uri: str
    """Where to enter it."""
    verification_uri_complete: str
    """A URI with the code included (empty if the server sent none)."""
    expires_at_ms: int
    """Monotonic time (ms) when the code expires."""


@dataclass(frozen=True)
class SessionInfo:
    """The session's state for display and logs (no secrets)."""

    usable: bool
    """A token (or API key) is usable now."""
    refreshable: bool
    """A refresh token is held."""
    expires_at_ms: int
    """When the token expires (``NEVER`` for API keys)."""
    refresh_at_ms: int
    """When the session will refresh it."""
    api_blocked_until_ms: int
    """API requests are blocked until this time by a rate limit (0: not)."""
    token_blocked_until_ms: int
    """The token endpoint is blocked until this time (0: not)."""
    failed_attempts: int
    """Consecutive failed token requests."""
    failure: Failure
    """``Failure.NONE`` or why the session failed."""
    last_http_status: int = 0
    """HTTP status of the last token-endpoint response (0: none yet, or the last
    exchange failed at the transport or timed out). A 404 with a non-JSON body
    means a wrong token URL, not bad credentials."""
    last_content_json: bool = False
    """Whether that response declared a JSON body."""
    slot_needed: int = 0
    """The token slot size the last token response needed when it did not fit
    (0: none fell short since the last token): create the session with
    ``token_capacity`` at least this large."""
    slot_capacity: int = 0
    """The bytes each of the session's two token slots holds."""


@dataclass(frozen=True)
class ResponseInfo:
    """What a complete response head says (:meth:`Head.info`)."""

    status: int
    """HTTP status, 200 ..= 599."""
    flags: HeadFlag
    """Which optional fields are present."""
    framing: Framing
    """How the body is delimited."""
    content_length: int
    """Content-Length (with ``HeadFlag.CONTENT_LENGTH``)."""
    date: int
    """Date as Unix seconds (with ``HeadFlag.DATE``)."""
    retry_after: int
    """Retry-After: seconds or Unix seconds (``RETRY_AFTER_DELAY`` / ``_DATE``)."""
    x_rate_limit_limit: int
    """X-RateLimit-Limit."""
    x_rate_limit_remaining: int
    """X-RateLimit-Remaining."""
    x_rate_limit_reset: int
    """X-RateLimit-Reset as sent."""
    malformed: int
    """Informational fields present but malformed (bit flags, see the header)."""


@dataclass(frozen=True)
class BodyProgress:
    """Progress of :meth:`Body.read`."""

    consumed: int
    """Bytes of the input consumed (framing and payload)."""
    data: bytes
    """The payload found among the consumed bytes (may be empty)."""
    done: bool
    """The whole body has been read."""


class Transport(Protocol):
    """What :meth:`Session.exchange` needs: a connected, socket-like byte stream.

    A :class:`socket.socket` is one. ``send`` returns how many bytes it wrote;
    ``recv`` returns up to ``n`` bytes, ``b""`` at end of stream. Raising
    :class:`BlockingIOError` or :class:`TimeoutError` means "would block"; any
    other exception is an I/O error (re-raised by :meth:`Session.exchange`).
    """

    def send(self, data: bytes) -> int:
        """Writes some of ``data``; returns how many bytes were written."""

    def recv(self, n: int) -> bytes:
        """Reads up to ``n`` bytes; ``b""`` at end of stream."""


# ---------------------------------------------------------------- guards


class _Guard:
    """A per-object lock that also refuses re-entrant calls from callbacks."""

    def __init__(self, what: str) -> None:
        self._lock = threading.RLock()
        self._busy = False
        self._what = what

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._busy:
            self._lock.release()
            raise WrongState(
                Status.WRONG_STATE,
                f"the {self._what} is in use by a call that has not returned (a transport "
                "callback cannot call into the session it serves)",
            )
        self._busy = True

    def __exit__(self, *exc: object) -> None:
        self._busy = False
        self._lock.release()


# ---------------------------------------------------------------- head and body


def _latin1(name: str, value: object) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif isinstance(value, str):
        try:
            data = value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"{name} has characters HTTP headers cannot carry") from None
    else:
        raise TypeError(f"{name} must be str or bytes, not {type(value).__name__}")
    if b"\r" in data or b"\n" in data:
        raise ValueError(f"{name} contains CR or LF")
    return data


HeaderItems = Union[Mapping[Any, Any], Iterable[Tuple[Any, Any]]]
"""Response headers: a mapping or ``(name, value)`` pairs, e.g.
``http.client.HTTPResponse.getheaders()``."""


class Head:
    """An HTTP/1.1 response-head parser (``fieldauth_head``); holds no secrets."""

    def __init__(self) -> None:
        self._storage = _c.HeadStorage()
        self._guard = _Guard("head")
        self.reset()

    @property
    def _ptr(self) -> Any:
        return ctypes.byref(self._storage)

    def reset(self) -> None:
        """Starts over for a new response."""
        with self._guard:
            _raise(_c.lib().fieldauth_head_init(self._ptr), "Head.reset")

    def feed(self, chunk: BytesLike) -> Tuple[int, bool]:
        """Feeds bytes received from the connection.

        Returns ``(consumed, complete)``: when ``complete``, the head ended
        after ``consumed`` bytes of ``chunk`` (the rest starts the body).
        Raises :class:`~fieldauth.HttpError` for a malformed head and
        :class:`~fieldauth.WrongState` once the head is complete.
        """
        data = _data("chunk", chunk)
        buf, n = _in_buf(data)
        consumed = ctypes.c_size_t(0)
        complete = ctypes.c_uint32(0)
        with self._guard:
            _raise(
                _c.lib().fieldauth_head_feed(
                    self._ptr, buf, n, ctypes.byref(consumed), ctypes.byref(complete)
                ),
                "Head.feed",
            )
        return consumed.value, bool(complete.value)

    def info(self) -> ResponseInfo:
        """What the complete head says; :class:`~fieldauth.WrongState` before it is complete."""
        raw = _c.ResponseInfo()
        with self._guard:
            _raise(_c.lib().fieldauth_head_get_info(self._ptr, ctypes.byref(raw)), "Head.info")
        return ResponseInfo(
            status=raw.status,
            flags=HeadFlag(raw.flags),
            framing=Framing(raw.framing),
            content_length=raw.content_length,
            date=raw.date,
            retry_after=raw.retry_after,
            x_rate_limit_limit=raw.x_rate_limit_limit,
            x_rate_limit_remaining=raw.x_rate_limit_remaining,
            x_rate_limit_reset=raw.x_rate_limit_reset,
            malformed=raw.malformed,
        )

    def bearer(self) -> Optional[BearerChallenge]:
        """The complete head's ``Bearer`` challenge with its texts, or ``None`` if it had none.

        :class:`~fieldauth.WrongState` before the head is complete.
        """
        self.info()  # WrongState before the head is complete
        size = 256
        with self._guard:
            for _ in range(2):
                buf = (ctypes.c_uint8 * size)()
                out_len = ctypes.c_size_t(0)
                out = _c.BearerChallenge()
                status = _c.lib().fieldauth_head_get_bearer(
                    self._ptr, buf, size, ctypes.byref(out_len), ctypes.byref(out)
                )
                if status == Status.WRONG_STATE:
                    return None  # complete, without a challenge
                if status == Status.BUFFER_TOO_SMALL and out_len.value > size:
                    size = out_len.value
                    continue
                _raise(status, "Head.bearer", out_len.value)
                return BearerChallenge(
                    _decode(_out_str(out.error)),
                    _decode(_out_str(out.error_description)),
                    _decode(_out_str(out.scope)),
                    _decode(_out_str(out.realm)),
                    _decode(_out_str(out.error_uri)),
                )
        raise error_for(Status.BUFFER_TOO_SMALL, _message(Status.BUFFER_TOO_SMALL), "Head.bearer", size)

    @property
    def complete(self) -> bool:
        """True once the head has been parsed completely."""
        raw = _c.ResponseInfo()
        with self._guard:
            return bool(_c.lib().fieldauth_head_get_info(self._ptr, ctypes.byref(raw)) == Status.OK)

    @classmethod
    def from_response(
        cls,
        status: int,
        headers: HeaderItems,
        body_length: int,
        reason: Text = "",
    ) -> "Head":
        """A parsed head for a response an HTTP client has already read.

        For clients such as :mod:`http.client` that decode the body: the
        head is rebuilt from the status and headers, with the framing
        (``Transfer-Encoding``, ``Content-Length``) replaced by
        ``Content-Length: body_length`` because the body that follows is
        the decoded one. Everything else (Date, Retry-After, rate-limit
        fields, WWW-Authenticate, Content-Type) is parsed by the library.
        """
        code = _int("status", status, 999)
        if code < 100:
            raise ValueError(f"status must be an HTTP status (100 ..= 999), got {code}")
        length = _u64("body_length", body_length)
        lines = [b"HTTP/1.1 %d %s\r\n" % (code, _latin1("reason", _text("reason", reason)))]
        items = headers.items() if isinstance(headers, Mapping) else headers
        if isinstance(items, (str, bytes)):
            raise TypeError("headers must be a mapping or (name, value) pairs")
        for item in items:
            try:
                name, value = item
            except (TypeError, ValueError):
                raise TypeError("headers must be a mapping or (name, value) pairs") from None
            n = _latin1("header name", name)
            if n.lower() in (b"transfer-encoding", b"content-length"):
                continue
            lines.append(n + b": " + _latin1(f"header {n!r}", value) + b"\r\n")
        lines.append(b"Content-Length: %d\r\n\r\n" % length)
        head = cls()
        raw = b"".join(lines)
        consumed, complete = head.feed(raw)
        if not complete or consumed != len(raw):
            raise ValueError("the headers do not form one complete HTTP head")
        return head


class Body:
    """A response-body framing reader (``fieldauth_body``) for the head it was made from."""

    def __init__(self, head: Head) -> None:
        if not isinstance(head, Head):
            raise TypeError(f"head must be a Head, not {type(head).__name__}")
        self._storage = _c.BodyStorage()
        self._guard = _Guard("body")
        with head._guard:
            _raise(
                _c.lib().fieldauth_body_init(ctypes.byref(self._storage), head._ptr),
                "Body",
            )

    def read(self, data: BytesLike) -> BodyProgress:
        """Strips the framing from ``data`` (bytes after the head); call again with the rest.

        Raises :class:`~fieldauth.HttpError` for malformed chunked framing.
        """
        raw = _data("data", data)
        buf, n = _in_buf(raw)
        progress = _c.BodyProgress()
        with self._guard:
            _raise(
                _c.lib().fieldauth_body_read(
                    ctypes.byref(self._storage), buf, n, ctypes.byref(progress)
                ),
                "Body.read",
            )
        start = progress.data_offset
        payload = raw[start : start + progress.data_len]
        return BodyProgress(progress.consumed, payload, bool(progress.done))

    def finish(self) -> None:
        """The connection closed: raises :class:`~fieldauth.TransportError` if the body was cut short."""
        with self._guard:
            _raise(_c.lib().fieldauth_body_finish(ctypes.byref(self._storage)), "Body.finish")


# ---------------------------------------------------------------- session


class Session:
    """The token state machine of one account (``fieldauth_session``).

    ``provider`` is a :class:`~fieldauth.Preset` or a :class:`Profile`;
    ``config`` the :class:`Config`. ``seed`` seeds the retry jitter (random
    by default). ``token_capacity`` is the size of each of the session's two
    token slots: the longest access token + refresh token + scope one token
    response brings (default :data:`DEFAULT_TOKEN_CAPACITY`, 6 KiB: a 4 KB
    JWT with a 1 KB refresh token fits). The session's storage, with its
    secrets, belongs to this object; :meth:`close` (or leaving a ``with`` block, or garbage
    collection) wipes it. Calls after :meth:`close` raise
    :class:`~fieldauth.NotInitialized`.

    ``store`` (a :class:`fieldauth.stores.Store`: ``FileStore``,
    ``RedisStore``) makes the session one worker of a fleet sharing this
    credential, of ``fleet_size`` workers: the requests/httpx adapters built
    on it (``FieldAuth(session)``) then share the token, the lease and the
    rate budgets through the store (see :mod:`fieldauth.stores`), as if the
    store had been passed to the adapter. The session's own calls
    (``poll``, ``authorize``, ...) do not use it.

    >>> with Session(Preset.AUTOTASK, Config(base_url=..., client_id=..., client_secret=...)) as s:
    ...     action = s.poll()
    """

    def __init__(
        self,
        provider: Union[Preset, int, Profile],
        config: Config,
        *,
        seed: Optional[int] = None,
        token_capacity: int = DEFAULT_TOKEN_CAPACITY,
        store: Optional["Store"] = None,
        fleet_size: int = 1,
    ) -> None:
        if store is not None:
            for name in ("load", "lease", "save", "release", "charge"):
                if not callable(getattr(store, name, None)):
                    raise TypeError(
                        f"store must implement fieldauth.stores.Store: {type(store).__name__} has no {name}()"
                    )
        if isinstance(fleet_size, bool) or not isinstance(fleet_size, int) or fleet_size < 1:
            raise ValueError(f"fleet_size must be an int >= 1, not {fleet_size!r}")
        self._store = store
        self._fleet_size = fleet_size
        self._storage = _c.SessionHeaderStorage()
        self._tokens: Any = None
        self._guard = _Guard("session")
        self._exchange_head: Optional[Head] = None
        self._profile: Optional[Profile] = None
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {type(config).__name__}")
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        seed = _u64("seed", seed)
        if ctypes.addressof(self._storage) % _c.SESSION_ALIGN != 0:
            raise MemoryError("ctypes returned misaligned session storage")
        if (
            not isinstance(token_capacity, int)
            or isinstance(token_capacity, bool)
            or not 256 <= token_capacity <= 32_000
        ):
            raise ValueError(
                f"token_capacity must be an int from 256 to 32000 bytes, not {token_capacity!r}"
            )
        keep = _Keep()
        try:
            c_config = config._to_c(keep)
            lib = _c.lib()
            c_profile = _c.Profile()
            if isinstance(provider, Profile):
                c_profile = provider._to_c(keep)
            elif isinstance(provider, int) and not isinstance(provider, bool):
                _raise(
                    lib.fieldauth_profile_preset(_u32("preset", provider), ctypes.byref(c_profile)),
                    "Session",
                )
            else:
                raise TypeError(
                    f"provider must be a Preset or a Profile, not {type(provider).__name__}"
                )
            size = ctypes.c_size_t(0)
            _raise(
                lib.fieldauth_session_storage_size(
                    ctypes.byref(c_profile), ctypes.byref(c_config), token_capacity, ctypes.byref(size)
                ),
                "Session",
            )
            # The token storage, lent to the library until close(): it holds the secrets.
            self._tokens = (ctypes.c_uint8 * size.value)()
            status = lib.fieldauth_session_init_with_storage(
                self._ptr,
                self._tokens,
                size.value,
                ctypes.byref(c_profile),
                ctypes.byref(c_config),
                seed,
            )
            _raise(status, "Session")
            self._profile = (
                replace(provider, token_budget=replace(provider.token_budget), api_budget=replace(provider.api_budget))
                if isinstance(provider, Profile)
                else Profile.preset(provider)
            )
        finally:
            keep.wipe()

    @property
    def store(self) -> Optional["Store"]:
        """The fleet's store this session was created with (``store=``), or None."""
        return self._store

    @property
    def fleet_size(self) -> int:
        """How many workers share the credential (``fleet_size=``; 1 without a store)."""
        return self._fleet_size

    @property
    def profile(self) -> Profile:
        """A copy of the profile this session was created with (the preset's, or yours).

        The adapters read its budgets to charge a fleet-wide budget in a store
        (:mod:`fieldauth.stores`); changing the copy changes nothing.
        """
        assert self._profile is not None
        return replace(
            self._profile,
            token_budget=replace(self._profile.token_budget),
            api_budget=replace(self._profile.api_budget),
            backoff=replace(self._profile.backoff),
        )

    @property
    def _ptr(self) -> Any:
        # A fieldauth_session_header passed as the fieldauth_session * every
        # function takes (its token storage is lent separately).
        return ctypes.cast(ctypes.addressof(self._storage), _c._sess)

    def _call(self, context: str, fn: str, *args: Any) -> None:
        with self._guard:
            self._check(getattr(_c.lib(), fn)(self._ptr, *args), context)

    def _check(self, status: int, context: str) -> None:
        """``_raise``, with the token slot size needed for CAPACITY_EXCEEDED."""
        needed = 0
        if status == Status.CAPACITY_EXCEEDED:
            info = _c.SessionInfo()
            if _c.lib().fieldauth_session_get_info(self._ptr, ctypes.byref(info)) == Status.OK:
                needed = info.slot_needed
        _raise(status, context, needed)

    # -- lifetime

    def close(self) -> None:
        """Wipes every secret and token; later calls raise :class:`~fieldauth.NotInitialized`.

        Safe to call more than once.
        """
        with self._guard:
            _raise(_c.lib().fieldauth_session_clear(self._ptr), "Session.close")

    clear = close

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        storage = getattr(self, "_storage", None)
        tokens = getattr(self, "_tokens", None)
        if storage is not None:
            try:
                _c.lib().fieldauth_session_clear(ctypes.cast(ctypes.addressof(storage), _c._sess))
            except Exception:  # interpreter shutdown: fall back to zeroing the bytes
                ctypes.memset(ctypes.byref(storage), 0, ctypes.sizeof(storage))
                if tokens is not None:
                    ctypes.memset(tokens, 0, ctypes.sizeof(tokens))

    def __repr__(self) -> str:
        try:
            info = self.info()
        except Exception:
            return "<fieldauth.Session (closed)>"
        return f"<fieldauth.Session usable={info.usable} failure={info.failure.name}>"

    # -- the state machine

    def poll(self, now_ms: Optional[int] = None) -> Action:
        """What to do next (call it whenever time passes or a response completes)."""
        out = _c.Action()
        self._call("Session.poll", "fieldauth_session_poll", _now(now_ms), ctypes.byref(out))
        return Action._from(out)

    def info(self) -> SessionInfo:
        """The session's state for display and logs (no secrets)."""
        out = _c.SessionInfo()
        self._call("Session.info", "fieldauth_session_get_info", ctypes.byref(out))
        return SessionInfo(
            usable=bool(out.usable),
            refreshable=bool(out.refreshable),
            expires_at_ms=out.expires_at_ms,
            refresh_at_ms=out.refresh_at_ms,
            api_blocked_until_ms=out.api_blocked_until_ms,
            token_blocked_until_ms=out.token_blocked_until_ms,
            failed_attempts=out.failed_attempts,
            failure=Failure(out.failure),
            last_http_status=out.last_http_status,
            last_content_json=bool(out.last_content_json),
            slot_needed=out.slot_needed,
            slot_capacity=out.slot_capacity,
        )

    def failure_description(self) -> str:
        """The server's ``error_description`` for the last token error (``""`` if none)."""
        return self._text_out("Session.failure_description", "fieldauth_session_failure_description")

    def granted_scope(self) -> str:
        """The scope the server granted with the active token (``""`` if it said none)."""
        return self._text_out("Session.granted_scope", "fieldauth_session_granted_scope")

    def raise_if_failed(self) -> None:
        """Raises :class:`~fieldauth.SessionFailed` if the session is in a permanent failure."""
        failure = self.info().failure
        if failure != Failure.NONE:
            raise SessionFailed(failure, self.failure_description())

    def _text_out(self, context: str, fn: str) -> str:
        with self._guard:
            func = getattr(_c.lib(), fn)
            data = _sized(context, lambda b, n, o: func(self._ptr, b, n, o))
        return _decode(data)

    # -- token requests

    def write_token_request(self, now_ms: Optional[int] = None) -> bytes:
        """The token request :meth:`poll` asked for, as complete HTTP/1.1 bytes; marks it in flight.

        The bytes contain credentials. Send them, then feed the response
        (:meth:`feed_token_head` / :meth:`feed_token_body`, or
        :meth:`feed_token_response`). :class:`~fieldauth.WrongState` if no
        request is due.
        """
        now = _now(now_ms)
        with self._guard:
            fn = _c.lib().fieldauth_session_write_token_request
            return _sized(
                "Session.write_token_request",
                lambda b, n, o: fn(self._ptr, now, b, n, o),
                secret=True,
            )

    def write_token_request_window(
        self, offset: int, size: int = 128, now_ms: Optional[int] = None
    ) -> Tuple[bytes, int]:
        """One window of the token request: ``(bytes from offset, total length)``.

        Call with ``offset`` 0 first (that marks the request in flight), then
        with ``offset`` advanced by the bytes returned until it reaches the
        total.
        """
        offset = _int("offset", offset, 2**63)
        size = _int("size", size, 1 << 24)
        now = _now(now_ms)
        buf = (ctypes.c_uint8 * max(size, 1))()
        written = ctypes.c_size_t(0)
        total = ctypes.c_size_t(0)
        try:
            self._call(
                "Session.write_token_request_window",
                "fieldauth_session_write_token_request_window",
                now,
                offset,
                buf,
                size,
                ctypes.byref(written),
                ctypes.byref(total),
            )
            return ctypes.string_at(buf, written.value), total.value
        finally:
            ctypes.memset(buf, 0, ctypes.sizeof(buf))

    def write_token_request_parts(self, now_ms: Optional[int] = None) -> TokenRequest:
        """Like :meth:`write_token_request`, as method, target, headers and body for an HTTP client."""
        now = _now(now_ms)
        size = _FIRST_GUESS
        with self._guard:
            fn = _c.lib().fieldauth_session_write_token_request_parts
            for _ in range(2):
                buf = (ctypes.c_uint8 * size)()
                out_len = ctypes.c_size_t(0)
                parts = _c.RequestParts()
                try:
                    status = fn(
                        self._ptr, now, buf, size, ctypes.byref(out_len), ctypes.byref(parts)
                    )
                    if status == Status.BUFFER_TOO_SMALL and out_len.value > size:
                        size = out_len.value
                        continue
                    _raise(status, "Session.write_token_request_parts", out_len.value)
                    count = min(parts.header_count, _c.MAX_HEADERS)
                    headers = [
                        (
                            _decode(_out_str(parts.headers[i].name)),
                            _decode(_out_str(parts.headers[i].value)),
                        )
                        for i in range(count)
                    ]
                    request = TokenRequest(
                        method=_decode(_out_str(parts.method)),
                        target=_decode(_out_str(parts.target)),
                        headers=headers,
                        body=_out_str(parts.body),
                        raw=_out_str(parts.raw),
                    )
                finally:
                    ctypes.memset(buf, 0, ctypes.sizeof(buf))
                url = _decode(
                    _sized(
                        "Session.token_request_url",
                        lambda b, n, o: _c.lib().fieldauth_session_token_request_url(
                            self._ptr, b, n, o
                        ),
                    )
                )
                return TokenRequest(
                    request.method, request.target, request.headers, request.body, request.raw, url
                )
        raise error_for(
            Status.BUFFER_TOO_SMALL,
            _message(Status.BUFFER_TOO_SMALL),
            "Session.write_token_request_parts",
            size,
        )

    def token_request_url(self) -> str:
        """The absolute URL the current or next token request goes to."""
        return self._text_out("Session.token_request_url", "fieldauth_session_token_request_url")

    def feed_token_head(self, head: Head, now_ms: Optional[int] = None) -> None:
        """The token response's head is complete in ``head``; feed the body next."""
        if not isinstance(head, Head):
            raise TypeError(f"head must be a Head, not {type(head).__name__}")
        now = _now(now_ms)
        with self._guard, head._guard:
            _raise(
                _c.lib().fieldauth_session_feed_token_head(self._ptr, now, head._ptr),
                "Session.feed_token_head",
            )

    def feed_token_body(
        self, chunk: BytesLike, now_ms: Optional[int] = None
    ) -> Tuple[int, Event]:
        """Feeds a piece of the token response body: ``(bytes consumed, event)``.

        The event's kind is ``EventKind.NONE`` until the body is complete.
        A bad body raises a :class:`~fieldauth.ProtocolError` (the session
        has then scheduled a retry).
        """
        data = _data("chunk", chunk)
        buf, n = _in_buf(data)
        now = _now(now_ms)
        consumed = ctypes.c_size_t(0)
        event = _c.Event()
        try:
            self._call(
                "Session.feed_token_body",
                "fieldauth_session_feed_token_body",
                now,
                buf,
                n,
                ctypes.byref(consumed),
                ctypes.byref(event),
            )
        finally:
            if buf is not None:
                ctypes.memset(buf, 0, n)
        return consumed.value, Event._from(event)

    def feed_token_eof(self, now_ms: Optional[int] = None) -> Event:
        """The connection closed while the token response was expected."""
        event = _c.Event()
        self._call(
            "Session.feed_token_eof", "fieldauth_session_feed_token_eof", _now(now_ms),
            ctypes.byref(event),
        )
        return Event._from(event)

    def report_transport_error(self, now_ms: Optional[int] = None) -> Event:
        """The token request failed at the transport; the session schedules a retry."""
        event = _c.Event()
        self._call(
            "Session.report_transport_error",
            "fieldauth_session_report_transport_error",
            _now(now_ms),
            ctypes.byref(event),
        )
        return Event._from(event)

    def feed_token_response(
        self,
        status: int,
        headers: HeaderItems,
        body: BytesLike,
        *,
        reason: Text = "",
        now_ms: Optional[int] = None,
    ) -> Event:
        """Feeds a whole token response an HTTP client has read (status, headers, decoded body).

        Builds the head with :meth:`Head.from_response`, then runs
        :meth:`feed_token_head` and :meth:`feed_token_body`. Returns what the
        session made of it. If the headers are unusable (a ``ValueError``),
        the exchange is reported as a transport failure before re-raising,
        so the session does not wait for a response that will never come.
        """
        data = _data("body", body)
        try:
            head = Head.from_response(status, headers, len(data), reason)
        except Exception:
            self.report_transport_error(now_ms)
            raise
        self.feed_token_head(head, now_ms)
        consumed, event = self.feed_token_body(data, now_ms)
        if event.kind == EventKind.NONE:
            event = self.feed_token_eof(now_ms)
        return event

    def exchange(
        self,
        transport: Transport,
        now_ms: Optional[int] = None,
        *,
        buffer_size: int = 4096,
    ) -> Event:
        """Runs one token exchange over a connected socket-like ``transport``.

        Poll first: the action must be ``SEND_TOKEN_REQUEST``. On success
        returns the event, with :attr:`Event.reusable` and :attr:`Event.date`
        from the response head: when the server closes the connection
        (``Connection: close``, HTTP/1.0), the transport is closed (if it has a
        ``close()``) and ``reusable`` is ``False``: connect again before the
        next request. :class:`~fieldauth.WouldBlock` when the transport
        would block (call again, same session and connection, when it is
        ready); :class:`~fieldauth.TransportError` for an I/O error (chained
        to the transport's exception) or a cut-short response; a
        :class:`~fieldauth.ProtocolError` for a bad response.
        """
        if not (callable(getattr(transport, "send", None)) and callable(getattr(transport, "recv", None))):
            raise TypeError("transport must have send(bytes) -> int and recv(int) -> bytes")
        size = _int("buffer_size", buffer_size, 1 << 24)
        if size == 0:
            raise ValueError("buffer_size must be at least 1")
        now = _now(now_ms)
        raised: List[BaseException] = []

        def send(_ctx: Any, buf: Any, n: int) -> int:
            try:
                k = transport.send(ctypes.string_at(buf, n))
                if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
                    raise TypeError(f"transport.send returned {k!r}, not a count 0..={n}")
                return k
            except (BlockingIOError, TimeoutError, socket.timeout):
                return 0
            except BaseException as exc:  # noqa: B902 - must not unwind into C
                raised.append(exc)
                return _c.TRANSPORT_ERROR

        def recv(_ctx: Any, buf: Any, n: int) -> int:
            try:
                data = transport.recv(n)
                if not isinstance(data, (bytes, bytearray, memoryview)):
                    raise TypeError(f"transport.recv returned {type(data).__name__}, not bytes")
                data = bytes(data)
                if not data:
                    return _c.TRANSPORT_CLOSED
                if len(data) > n:
                    raise ValueError(f"transport.recv returned {len(data)} bytes, asked for {n}")
                ctypes.memmove(buf, data, len(data))
                return len(data)
            except (BlockingIOError, TimeoutError, socket.timeout):
                return 0
            except BaseException as exc:  # noqa: B902 - must not unwind into C
                raised.append(exc)
                return _c.TRANSPORT_ERROR

        send_fn = _c.TransportFn(send)
        recv_fn = _c.TransportFn(recv)
        c_transport = _c.Transport(None, send_fn, recv_fn)
        buf = (ctypes.c_uint8 * size)()
        event = _c.Event()
        if self._exchange_head is None:
            self._exchange_head = Head()
        head = self._exchange_head
        try:
            with self._guard, head._guard:
                status = _c.lib().fieldauth_session_exchange(
                    self._ptr,
                    head._ptr,
                    now,
                    ctypes.byref(c_transport),
                    buf,
                    size,
                    ctypes.byref(event),
                )
        finally:
            ctypes.memset(buf, 0, ctypes.sizeof(buf))
        if raised and not isinstance(raised[0], Exception):
            raise raised[0]  # KeyboardInterrupt, SystemExit: not a transport failure
        if status != Status.OK:
            needed = 0
            if status == Status.CAPACITY_EXCEEDED:
                info = _c.SessionInfo()
                if _c.lib().fieldauth_session_get_info(self._ptr, ctypes.byref(info)) == Status.OK:
                    needed = info.slot_needed
            error = error_for(status, _message(status), "Session.exchange", needed)
            if raised:
                raise error from raised[0]
            raise error
        head_info = head.info()
        reusable = not (head_info.flags & HeadFlag.CONNECTION_CLOSE) and head_info.framing != Framing.CLOSE
        if not reusable:
            # The server closes this connection: do not let the next request
            # go into it (it would fail and count as a failed attempt).
            close = getattr(transport, "close", None)
            if callable(close):
                close()
        date = head_info.date if head_info.flags & HeadFlag.DATE else None
        return replace(Event._from(event), reusable=reusable, date=date)

    # -- API requests

    def authorize(self, target: Optional[Text] = None, now_ms: Optional[int] = None) -> Authorization:
        """Permission and credential for one API request (counted against the API budget).

        ``target`` is the request's origin-form target (``/path?query``) or an
        absolute URL; it is needed for query credentials (Field Nation).
        """
        data = _text("target", target)
        tbuf, tn = _in_buf(data)
        now = _now(now_ms)
        out = _c.Authorization()
        with self._guard:
            fn = _c.lib().fieldauth_session_authorize
            cred = _sized(
                "Session.authorize",
                lambda b, n, o: fn(self._ptr, now, tbuf, tn, b, n, o, ctypes.byref(out)),
                secret=True,
            )
        kind = AuthorizationKind(out.kind)
        if kind != AuthorizationKind.SEND:
            return Authorization(kind, until_ms=out.until_ms)
        form = _enum(CredentialForm, out.credential)
        if form == CredentialForm.HEADER:
            line = cred.rstrip(b"\r\n")
            name_len = out.header_name_len
            header = (line[:name_len].decode("latin-1"), line[name_len + 2 :].decode("latin-1"))
            return Authorization(kind, credential=form, header=header, token_id=out.token_id)
        return Authorization(kind, credential=form, target=cred.decode("latin-1"), token_id=out.token_id)

    def report_api_response(
        self,
        head: Head,
        body_prefix: BytesLike = b"",
        now_ms: Optional[int] = None,
        *,
        token_id: Optional[int] = None,
    ) -> Verdict:
        """Reports an API response (its complete head and the first body bytes); says whether to retry.

        ``token_id`` is :attr:`Authorization.token_id` of the request: with it,
        a rejection of a token that is no longer current drops nothing (with
        several requests in flight while the token was renewed).
        """
        if not isinstance(head, Head):
            raise TypeError(f"head must be a Head, not {type(head).__name__}")
        if token_id is not None and (
            not isinstance(token_id, int) or isinstance(token_id, bool) or not 0 <= token_id <= 0xFFFF_FFFF
        ):
            raise ValueError(f"token_id must be an Authorization.token_id, not {token_id!r}")
        data = _data("body_prefix", body_prefix)
        buf, n = _in_buf(data)
        now = _now(now_ms)
        out = _c.Verdict()
        lib = _c.lib()
        with self._guard, head._guard:
            if token_id is None:
                status = lib.fieldauth_session_report_api_response(
                    self._ptr, now, head._ptr, buf, n, ctypes.byref(out)
                )
            else:
                status = lib.fieldauth_session_report_api_response_for(
                    self._ptr, now, head._ptr, buf, n, token_id, ctypes.byref(out)
                )
            _raise(status, "Session.report_api_response")
        challenge = head.bearer() if head.info().flags & HeadFlag.BEARER_CHALLENGE else None
        return Verdict(VerdictKind(out.kind), out.until_ms, challenge)

    def report_api_result(
        self,
        status: int,
        headers: HeaderItems,
        body_prefix: BytesLike = b"",
        *,
        reason: Text = "",
        now_ms: Optional[int] = None,
        token_id: Optional[int] = None,
    ) -> Verdict:
        """:meth:`report_api_response` for a response an HTTP client has already read."""
        data = _data("body_prefix", body_prefix)
        head = Head.from_response(status, headers, len(data), reason)
        return self.report_api_response(head, data, now_ms, token_id=token_id)

    # -- snapshots

    def snapshot_len(self) -> int:
        """The size of this session's snapshot image."""
        out = ctypes.c_size_t(0)
        self._call("Session.snapshot_len", "fieldauth_session_snapshot_len", ctypes.byref(out))
        return out.value

    def snapshot(self, unix_ms: Optional[int] = None, now_ms: Optional[int] = None) -> bytes:
        """A checksummed image of the token and rate-limit state (contains the tokens)."""
        unix = int(time.time() * 1000) if unix_ms is None else _u64("unix_ms", unix_ms)
        now = _now(now_ms)
        with self._guard:
            fn = _c.lib().fieldauth_session_snapshot
            return _sized(
                "Session.snapshot",
                lambda b, n, o: fn(self._ptr, now, unix, b, n, o),
                secret=True,
            )

    def restore(
        self, image: BytesLike, unix_ms: Optional[int] = None, now_ms: Optional[int] = None
    ) -> None:
        """Restores an image from :meth:`snapshot` of a session with the same configuration."""
        data = _data("image", image)
        unix = int(time.time() * 1000) if unix_ms is None else _u64("unix_ms", unix_ms)
        now = _now(now_ms)
        buf, n = _in_buf(data)
        try:
            self._call("Session.restore", "fieldauth_session_restore", now, unix, buf, n)
        finally:
            if buf is not None:
                ctypes.memset(buf, 0, n)

    # -- shared state (a fleet of workers sharing one credential, issue #21)

    @property
    def shared_generation(self) -> int:
        """The generation of the shared state this session holds (0: none).

        The number a store gave the image the session adopted (:meth:`adopt`)
        or saved last (:meth:`set_shared_generation`). Snapshots carry it.
        """
        out = ctypes.c_uint64(0)
        self._call(
            "Session.shared_generation", "fieldauth_session_shared_generation", ctypes.byref(out)
        )
        return out.value

    def set_shared_generation(self, generation: int) -> None:
        """Records that a store saved this session's snapshot as ``generation``."""
        self._call(
            "Session.set_shared_generation",
            "fieldauth_session_set_shared_generation",
            _u64("generation", generation),
        )

    def adopt(
        self,
        image: BytesLike,
        generation: int,
        unix_ms: Optional[int] = None,
        now_ms: Optional[int] = None,
    ) -> Adopted:
        """Adopts a shared state a store returned: a :meth:`snapshot` of a session
        with the same configuration, and its generation.

        Only a generation newer than :attr:`shared_generation` is taken (as
        :meth:`restore` takes an image); the session keeps its own random stream.
        Returns ``Adopted.NEWER``, ``NOT_NEWER`` or ``NOTHING_USABLE`` (its tokens
        expired: the generation is recorded). Raises like :meth:`restore` (the
        session unchanged), ``WrongState`` while its own token request is in flight.
        """
        data = _data("image", image)
        gen = _u64("generation", generation)
        unix = int(time.time() * 1000) if unix_ms is None else _u64("unix_ms", unix_ms)
        now = _now(now_ms)
        out = ctypes.c_uint32(0)
        buf, n = _in_buf(data)
        try:
            self._call(
                "Session.adopt", "fieldauth_session_adopt", now, unix, buf, n, gen, ctypes.byref(out)
            )
        finally:
            if buf is not None:
                ctypes.memset(buf, 0, n)
        return Adopted(out.value)

    # -- device and authorization-code flows

    def device_display(self) -> DeviceDisplay:
        """Device flow (after ``EventKind.USER_CODE``): what to show the user."""
        size = _FIRST_GUESS
        with self._guard:
            fn = _c.lib().fieldauth_session_device_display
            for _ in range(2):
                buf = (ctypes.c_uint8 * size)()
                out_len = ctypes.c_size_t(0)
                out = _c.DeviceDisplay()
                status = fn(self._ptr, buf, size, ctypes.byref(out_len), ctypes.byref(out))
                if status == Status.BUFFER_TOO_SMALL and out_len.value > size:
                    size = out_len.value
                    continue
                _raise(status, "Session.device_display", out_len.value)
                return DeviceDisplay(
                    _decode(_out_str(out.user_code)),
                    _decode(_out_str(out.verification_uri)),
                    _decode(_out_str(out.verification_uri_complete)),
                    out.expires_at_ms,
                )
        raise error_for(
            Status.BUFFER_TOO_SMALL, _message(Status.BUFFER_TOO_SMALL), "Session.device_display", size
        )

    def authorization_url(
        self,
        verifier_random: Optional[BytesLike] = None,
        state_random: Optional[BytesLike] = None,
    ) -> str:
        """Authorization-code mode: the URL to open in a browser.

        ``verifier_random`` (32–96 bytes) and ``state_random`` (16–48 bytes)
        default to :func:`os.urandom`.
        """
        verifier = os.urandom(32) if verifier_random is None else _data("verifier_random", verifier_random)
        state = os.urandom(16) if state_random is None else _data("state_random", state_random)
        vbuf, vn = _in_buf(verifier)
        sbuf, sn = _in_buf(state)
        with self._guard:
            fn = _c.lib().fieldauth_session_authorization_url
            url = _sized(
                "Session.authorization_url",
                lambda b, n, o: fn(self._ptr, vbuf, vn, sbuf, sn, b, n, o),
            )
        for buf, n in ((vbuf, vn), (sbuf, sn)):
            if buf is not None:
                ctypes.memset(buf, 0, n)
        return _decode(url)

    def set_authorization_code(self, code: Text, state: Text) -> None:
        """Authorization-code mode: the ``code`` and ``state`` the redirect brought."""
        cbuf, cn = _in_buf(_text("code", code))
        sbuf, sn = _in_buf(_text("state", state))
        self._call(
            "Session.set_authorization_code",
            "fieldauth_session_set_authorization_code",
            cbuf,
            cn,
            sbuf,
            sn,
        )

    def on_authorization_callback(self, url: Text, issuer: Optional[Text] = None) -> None:
        """Authorization-code mode: the redirect back from the authorization server.

        ``url`` is the URL the browser was sent to (or its query). The
        session reads ``code``, ``state``, ``iss`` and ``error``, checks
        ``state`` against the one :meth:`authorization_url` created and, when
        ``issuer`` is given (the server advertises RFC 9207
        ``authorization_response_iss_parameter_supported``; pass its issuer
        identifier), that ``iss`` is present and equal. Then it keeps the
        code: the code exchange is the next token request.

        Raises :class:`~fieldauth.AuthorizationDenied` when the server sent
        ``error=`` (with its ``error`` and ``error_description``);
        :class:`~fieldauth.InputError` (``INPUT_MISMATCH``, ``INPUT_MISSING``,
        ``INPUT_DUPLICATE``, ...) for a redirect that is not from this login
        or malformed; :class:`~fieldauth.WrongState` when no login is in
        progress. The login survives a refused redirect.
        """
        ubuf, un = _in_buf(_text("url", url))
        ibuf, inn = _in_buf(_text("issuer", issuer or ""))
        denied = ctypes.c_uint32(0)
        with self._guard:
            status = _c.lib().fieldauth_session_on_authorization_callback(
                self._ptr, ubuf, un, ibuf, inn, ctypes.byref(denied)
            )
        if status == Status.RESPONSE_AUTHORIZATION_DENIED:
            from urllib.parse import parse_qs, urlsplit

            text = str(url)
            query = urlsplit(text).query if "?" in text else text
            params = parse_qs(query)
            raise AuthorizationDenied(
                status,
                _message(status),
                "Session.on_authorization_callback",
                Failure(denied.value),
                params.get("error", [""])[0],
                params.get("error_description", [""])[0],
            )
        self._check(status, "Session.on_authorization_callback")

    # -- housekeeping

    def set_wall_clock(self, unix_ms: Optional[int] = None, now_ms: Optional[int] = None) -> None:
        """Records the wall clock ``unix_ms`` at monotonic ``now_ms`` (both default to now)."""
        unix = int(time.time() * 1000) if unix_ms is None else _u64("unix_ms", unix_ms)
        self._call(
            "Session.set_wall_clock", "fieldauth_session_set_wall_clock", _now(now_ms), unix
        )

    def reseed(self, seed: Optional[int] = None) -> None:
        """Mixes new randomness into the jitter generator (random by default)."""
        value = int.from_bytes(os.urandom(8), "little") if seed is None else _u64("seed", seed)
        self._call("Session.reseed", "fieldauth_session_reseed", value)

    def revoke(self, which: Revocation = Revocation.GRANT) -> None:
        """Asks the session to revoke tokens (the next token requests are the revocations).

        ``Revocation.GRANT`` (the default: the refresh token if held, else the
        access token) and ``Revocation.BOTH`` (refresh token, then access token)
        end the session (``Failure.REVOKED``); ``Revocation.ACCESS`` revokes the
        access token only and the session goes on.
        """
        if not isinstance(which, Revocation):
            raise TypeError(f"which must be a Revocation, not {type(which).__name__}")
        self._call("Session.revoke", "fieldauth_session_revoke_tokens", int(which))

    def restart(self) -> None:
        """Leaves a permanent failure and resets the retry counter."""
        self._call("Session.restart", "fieldauth_session_restart")
