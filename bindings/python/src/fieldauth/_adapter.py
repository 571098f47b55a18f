"""What the HTTP-client adapters share: the session steps, without any I/O.

:mod:`fieldauth.requests` and :mod:`fieldauth.httpx` drive a
:class:`~fieldauth.Session` the same way; only how they send a request and how
they sleep differ. :meth:`Driver.credential` is a generator that *yields* the
I/O it needs (a :class:`TokenCall` to send, a :class:`Pause` to sleep) and
*returns* the :class:`~fieldauth.Authorization` for the API request, so a
synchronous and an asynchronous adapter run the very same steps.

This module imports neither requests nor httpx.
"""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Generator, List, Optional, Tuple, Union

from ._lib import NEVER
from .enums import ActionKind, AuthorizationKind, CredentialForm, EventKind, Status, VerdictKind
from .errors import WrongState
from .session import Authorization, HeaderItems, Session, Verdict, monotonic_ms

__all__ = [
    "WaitTooLong",
    "NoCredentialError",
    "TokenCall",
    "TokenReply",
    "Pause",
    "Step",
    "Driver",
    "BODY_PREFIX",
    "DEFAULT_MAX_ROUNDS",
]

#: Bytes of an API error response's body reported to the session.
BODY_PREFIX = 256

#: Token requests and waits one API request may go through before giving up.
DEFAULT_MAX_ROUNDS = 16

#: Token-request headers the HTTP client writes itself (from the URL and body).
_CLIENT_OWNED = ("host", "content-length", "connection")


class WaitTooLong(Exception):
    """The session says to wait longer than the adapter's ``max_wait_s`` allows.

    Raised instead of sleeping, before the request is sent (again). The
    session's own cap, :attr:`fieldauth.Config.max_wait_s` (one hour by
    default), already shortened the wait; the adapter's cap is for callers that
    would rather fail fast. Retry after :attr:`wait_s` seconds.
    """

    def __init__(self, wait_s: float, limit_s: float, until_ms: int) -> None:
        self.wait_s = wait_s
        """Seconds the session asked to wait."""
        self.limit_s = limit_s
        """The adapter's ``max_wait_s``."""
        self.until_ms = until_ms
        """When requests may go out again (the session's monotonic clock, ms)."""
        super().__init__(
            f"fieldauth: the provider asks to wait {wait_s:.1f} s (rate limit or token-endpoint "
            f"backoff), more than this adapter's max_wait_s={limit_s:g}: retry the request after "
            "that, or raise max_wait_s"
        )


class NoCredentialError(Exception):
    """The session gave no credential after ``max_rounds`` token requests and waits.

    The message carries the session's state (no secrets) and what to check.
    """


@dataclass(frozen=True)
class TokenCall:
    """A token request for the adapter to send with its HTTP client.

    It carries credentials: ``repr()`` shows the method and URL only.
    """

    method: str
    """Always ``"POST"``."""
    url: str
    """The absolute URL."""
    headers: List[Tuple[str, str]] = field(repr=False)
    """The headers to send (``Host`` and ``Content-Length`` left to the client)."""
    body: bytes = field(repr=False)
    """The body."""


@dataclass(frozen=True)
class TokenReply:
    """The token endpoint's answer, as the HTTP client read it (body decoded)."""

    status: int
    """HTTP status."""
    headers: HeaderItems = field(repr=False)
    """Response headers (a mapping or ``(name, value)`` pairs; str or bytes)."""
    body: bytes = field(repr=False)
    """The whole (decoded) body; it holds the token."""
    reason: str = ""
    """The reason phrase, if the client kept it."""


@dataclass(frozen=True)
class Pause:
    """Sleep ``seconds`` before going on (a rate-limit or backoff wait)."""

    seconds: float
    """How long to sleep."""
    until_ms: int
    """The session's time (ms) at which the wait ends."""


Step = Union[TokenCall, Pause]
"""What :meth:`Driver.credential` yields."""


def origin_form(url: str) -> str:
    """The origin-form target (``/path?query``) of an absolute URL."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return target


def with_target(url: str, target: str) -> str:
    """``url`` with its path and query replaced by the origin-form ``target``."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{target}"


class Driver:
    """Runs a :class:`~fieldauth.Session` for an HTTP-client adapter.

    ``clock`` is the session's monotonic clock in milliseconds (default
    :func:`fieldauth.monotonic_ms`); a test that injects a sleep that does not
    really sleep injects a clock that the sleep advances. ``max_wait_s`` (None:
    no limit beyond the session's own cap) makes waits longer than that raise
    :class:`WaitTooLong` instead of sleeping. ``max_rounds`` bounds the token
    requests and waits one API request goes through.
    """

    def __init__(
        self,
        session: Session,
        *,
        clock: Optional[Callable[[], int]] = None,
        max_wait_s: Optional[float] = None,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
    ) -> None:
        if not isinstance(session, Session):
            raise TypeError(f"session must be a fieldauth.Session, not {type(session).__name__}")
        if max_wait_s is not None and (isinstance(max_wait_s, bool) or not max_wait_s >= 0):
            raise ValueError(f"max_wait_s must be None or a number of seconds >= 0, not {max_wait_s!r}")
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise ValueError(f"max_rounds must be an int >= 1, not {max_rounds!r}")
        self.session = session
        """The session that holds the tokens."""
        self.clock: Callable[[], int] = clock if clock is not None else monotonic_ms
        """The monotonic clock (ms) passed to every session call."""
        self.max_wait_s = max_wait_s
        """Longest sleep allowed (None: whatever the session says)."""
        self.max_rounds = max_rounds
        """Token requests and waits per API request."""
        self.lock = threading.Lock()
        """Serialises credential fetches of synchronous callers (one token request at a time)."""

    def __repr__(self) -> str:
        return f"<fieldauth adapter driver for {self.session!r}>"

    def _pause(self, until_ms: int, now: int) -> Pause:
        if until_ms == NEVER:
            raise NoCredentialError(
                "fieldauth: the session waits for ever (a permanent failure or a flow that needs the "
                f"user): {self._state()}"
            )
        seconds = max(0, until_ms - now + 1) / 1000
        if self.max_wait_s is not None and seconds > self.max_wait_s:
            raise WaitTooLong(seconds, self.max_wait_s, until_ms)
        return Pause(seconds, until_ms)

    def _state(self) -> str:
        info = self.session.info()
        text = (
            f"usable={info.usable}, failed_attempts={info.failed_attempts}, "
            f"failure={info.failure.name}, last token response HTTP {info.last_http_status or 'none'}"
        )
        description = self.session.failure_description()
        if description:
            text += f", server said: {description!r}"
        return text

    def credential(self, target: str) -> Generator[Step, Optional[TokenReply], Authorization]:
        """The steps to a credential for an API request to the origin-form ``target``.

        Yields a :class:`TokenCall` (send it, then send the generator a
        :class:`TokenReply`; if sending fails, ``throw()`` the exception into
        the generator: the session records a transport failure and it is
        re-raised) or a :class:`Pause` (sleep, then send ``None``). Returns the
        :class:`~fieldauth.Authorization` (``SEND``). Raises
        :class:`~fieldauth.SessionFailed` when the session fails for good,
        :class:`WaitTooLong`, or :class:`NoCredentialError`.
        """
        session = self.session
        for _ in range(self.max_rounds):
            now = self.clock()
            action = session.poll(now)
            if action.kind == ActionKind.SEND_TOKEN_REQUEST:
                # Due now: the first token, a refresh before expiry, or one after a 401.
                request = session.write_token_request_parts(now)
                call = TokenCall(
                    request.method,
                    request.url,
                    [(k, v) for k, v in request.headers if k.lower() not in _CLIENT_OWNED],
                    request.body,
                )
                try:
                    reply = yield call
                except BaseException:
                    session.report_transport_error(self.clock())
                    raise
                if reply is None:
                    raise TypeError("credential(): send a TokenReply after a TokenCall")
                event = session.feed_token_response(
                    reply.status, reply.headers, reply.body, reason=reply.reason, now_ms=self.clock()
                )
                if event.kind == EventKind.FAILED:
                    session.raise_if_failed()
                continue
            if action.kind == ActionKind.FAILED:
                session.raise_if_failed()
            if action.kind == ActionKind.NEED_AUTHORIZATION_CODE:
                raise NoCredentialError(
                    "fieldauth: the session needs an authorization code first: open "
                    "session.authorization_url() in a browser and pass the redirect's code and state "
                    "to session.set_authorization_code()"
                )
            auth = session.authorize(target, now)
            if auth.kind == AuthorizationKind.SEND:
                return auth
            if auth.kind == AuthorizationKind.WAIT:
                yield self._pause(auth.until_ms, now)
                continue
            # NO_CREDENTIAL: the token endpoint is backing off, or another caller's request is out.
            if action.kind == ActionKind.WAIT:
                yield self._pause(action.at_ms, now)
                continue
            if action.kind == ActionKind.AWAIT_RESPONSE:
                raise WrongState(
                    Status.WRONG_STATE,
                    "fieldauth: a token request of this session is already in flight from another "
                    "client: share one adapter per session between sync and async callers, not two",
                )
        raise NoCredentialError(
            f"fieldauth: no credential after {self.max_rounds} token requests and waits "
            f"({self._state()}): check the token URL and the credentials in the Config"
        )

    def report(self, auth: Authorization, status: int, headers: HeaderItems, body: bytes) -> Verdict:
        """Reports an API response to the session (first :data:`BODY_PREFIX` bytes of the body)."""
        return self.session.report_api_result(
            status, headers, body[:BODY_PREFIX], now_ms=self.clock(), token_id=auth.token_id
        )


def applied_url(url: str, auth: Authorization) -> str:
    """The URL to send an authorized request to (``url`` itself for a header credential)."""
    if auth.credential == CredentialForm.QUERY and auth.target is not None:
        return with_target(url, auth.target)
    return url


def retry_kind(verdict: Verdict, retried_401: bool, rate_retries_left: int) -> Optional[str]:
    """``"401"`` or ``"429"`` if the request should be sent again, else ``None``.

    A 401 that the session answers with ``RETRY_WITH_NEW_TOKEN`` is retried
    once per request (a second one is returned to the caller: the new token is
    refused as well, so a loop would not help); a ``RATE_LIMITED`` answer while
    retries for it are left.
    """
    if verdict.kind == VerdictKind.RETRY_WITH_NEW_TOKEN and not retried_401:
        return "401"
    if verdict.kind == VerdictKind.RATE_LIMITED and rate_retries_left > 0:
        return "429"
    return None
