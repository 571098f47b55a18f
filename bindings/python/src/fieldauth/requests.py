"""``requests`` authentication through a :class:`fieldauth.Session`.

Install with the extra: ``pip install ./bindings/python[requests]``.

>>> import requests
>>> from fieldauth import Config, Preset, Session
>>> from fieldauth.requests import FieldAuth
>>> cfg = Config(base_url="https://api.example.com", client_id="...", client_secret="...")
>>> with Session(Preset.AUTOTASK, cfg) as session, requests.Session() as http:
...     http.auth = FieldAuth(session)
...     response = http.get("https://api.example.com/ATServicesRest/V1.0/Companies")

Before each request :class:`FieldAuth` asks the session for a credential: the
first time (and whenever the session wants a new token: near expiry, after a
401) it sends the token request the session writes, with requests, and feeds
the answer back. It applies the credential as the session says (a header, or
the ``access_token`` query parameter), and after the response:

- a 401 the session answers with ``RETRY_WITH_NEW_TOKEN``: a new token is
  fetched and the request is sent once more (once: a second 401 is returned);
- a 429 (or a rate-limit header the session understands): the adapter sleeps
  until the session allows requests again (``Retry-After``, capped by
  :attr:`fieldauth.Config.max_wait_s`) and sends it again, ``rate_limit_retries``
  times at most.

Earlier responses of a retried request are in ``response.history``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Generator, Optional, Tuple, Union

import requests
from requests.auth import AuthBase
from requests.models import PreparedRequest, Response

from ._adapter import (
    DEFAULT_LEASE_TTL_MS,
    Driver,
    NoCredentialError,
    Pause,
    Step,
    TokenCall,
    TokenReply,
    WaitTooLong,
    applied_url,
    origin_form,
    retry_kind,
)
from .session import Authorization, Session
from .stores import Store

__all__ = ["FieldAuth", "WaitTooLong", "NoCredentialError"]

Timeout = Union[None, float, Tuple[float, float]]
"""requests' ``timeout``: seconds, or (connect, read) seconds, or None."""


def _no_auth(request: PreparedRequest) -> PreparedRequest:
    """Sends the token request as it is, even through a ``requests.Session`` whose ``auth`` is ours."""
    return request


class FieldAuth(AuthBase):
    """A :class:`requests.auth.AuthBase` that authenticates with a :class:`fieldauth.Session`.

    ``session`` holds the tokens (you create and close it; one adapter per
    session). ``token_client`` sends the token requests: a
    :class:`requests.Session` of yours to share its proxies, certificates and
    adapters (it may be the one this auth is attached to), else one of the
    adapter's own (:meth:`close` closes it). ``timeout`` applies to token
    requests. ``sleep`` (default :func:`time.sleep`) and ``clock`` (default
    :func:`fieldauth.monotonic_ms`) are injectable for tests. ``max_wait_s``:
    raise :class:`WaitTooLong` rather than sleep longer than that (default: sleep
    as long as the session says). ``rate_limit_retries``: how often one request
    is sent again after a rate-limit answer.

    ``store`` (a :class:`fieldauth.stores.Store`) shares the token and the
    provider's budgets with the other workers using the same credential (see
    :mod:`fieldauth.stores`): only the worker holding the store's lease
    (``lease_ttl_ms``, longer than a token request may take) fetches or
    refreshes, and every token and API request is charged to the fleet's
    budget first. ``fleet_size`` is how many workers share it: while the
    store fails each one keeps its token and uses 1/``fleet_size`` of the
    budgets. ``solo_refresh=True`` lets a worker refresh on its own while the
    store is down; only safe when the provider does not rotate refresh tokens.
    Without ``store``, the session's own (``Session(..., store=...,
    fleet_size=...)``) is used, if it has one.

    Thread-safe: token requests are made one at a time. A request body that
    cannot be rewound (a generator) is not sent again; its 401 or 429 response
    is returned.
    """

    def __init__(
        self,
        session: Session,
        *,
        token_client: Optional[requests.Session] = None,
        timeout: Timeout = 30.0,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Optional[Callable[[], int]] = None,
        max_wait_s: Optional[float] = None,
        rate_limit_retries: int = 1,
        store: Optional[Store] = None,
        fleet_size: int = 1,
        lease_ttl_ms: int = DEFAULT_LEASE_TTL_MS,
        solo_refresh: bool = False,
    ) -> None:
        if token_client is not None and not isinstance(token_client, requests.Session):
            raise TypeError(f"token_client must be a requests.Session, not {type(token_client).__name__}")
        if isinstance(rate_limit_retries, bool) or not isinstance(rate_limit_retries, int) or rate_limit_retries < 0:
            raise ValueError(f"rate_limit_retries must be an int >= 0, not {rate_limit_retries!r}")
        self.driver = Driver(
            session,
            clock=clock,
            max_wait_s=max_wait_s,
            store=store,
            fleet_size=fleet_size,
            lease_ttl_ms=lease_ttl_ms,
            solo_refresh=solo_refresh,
        )
        """The session steps this adapter runs."""
        self.timeout = timeout
        """Timeout of token requests (requests' ``timeout``)."""
        self.sleep = sleep
        """The sleep function for rate-limit and backoff waits."""
        self.rate_limit_retries = rate_limit_retries
        """Retries of one request after rate-limit answers."""
        self._own_client = token_client is None
        self._client = token_client

    @property
    def session(self) -> Session:
        """The :class:`fieldauth.Session` that holds the tokens."""
        return self.driver.session

    def __repr__(self) -> str:
        return f"<fieldauth.requests.FieldAuth for {self.session!r}>"

    def close(self) -> None:
        """Closes the token client if the adapter created it (the session is yours to close)."""
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    # -- the credential

    def _token_client(self) -> requests.Session:
        if self._client is None:
            self._client = requests.Session()
        return self._client

    def _send_token_request(self, call: TokenCall) -> TokenReply:
        response = self._token_client().request(
            call.method,
            call.url,
            data=call.body,
            headers=dict(call.headers),
            timeout=self.timeout,
            allow_redirects=False,
            auth=_no_auth,
        )
        try:
            body = response.content
        finally:
            response.close()
        return TokenReply(response.status_code, list(response.headers.items()), body, response.reason or "")

    def _run(self, steps: Generator[Step, Optional[TokenReply], Authorization]) -> Authorization:
        reply: Optional[TokenReply] = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as done:
                auth: Authorization = done.value
                return auth
            if isinstance(step, Pause):
                self.sleep(step.seconds)
                reply = None
                continue
            try:
                reply = self._send_token_request(step)
            except Exception as exc:
                # The session records the transport failure; the generator re-raises exc.
                steps.throw(exc)
                raise

    def _authorize(self, request: PreparedRequest, url: str) -> Authorization:
        with self.driver.lock:
            auth = self._run(self.driver.credential(origin_form(url)))
        if auth.header is not None:
            request.headers[auth.header[0]] = auth.header[1]
        request.url = applied_url(url, auth)
        return auth

    # -- requests' hooks

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Authorizes ``request`` (fetching a token first if needed) and watches its response."""
        url = request.url or ""
        original = request.copy()
        auth = self._authorize(request, url)
        body_position: Optional[int] = None
        tell = getattr(request.body, "tell", None)
        if callable(tell):
            try:
                body_position = int(tell())
            except (OSError, ValueError):
                body_position = None
        state = _Pending(original, request, url, auth, body_position)
        request.hooks.setdefault("response", []).append(lambda r, **kw: self._on_response(state, r, **kw))
        return request

    def _on_response(self, state: "_Pending", response: Response, **kwargs: Any) -> Response:
        retried_401 = False
        rate_left = self.rate_limit_retries
        while True:
            body = response.content if response.status_code >= 400 else b""
            verdict = self.driver.report(state.auth, response.status_code, list(response.headers.items()), body)
            kind = retry_kind(verdict, retried_401, rate_left)
            # A redirect hop's response (requests re-sends a copy, hooks and all) is not
            # resent from here: the original URL would be the wrong one.
            if kind is None or response.request is not state.sent or not state.rewind():
                return response
            if kind == "401":
                retried_401 = True
            else:
                rate_left -= 1
            response.content  # noqa: B018 - read it all, so the connection can be reused
            response.close()
            retry = state.original.copy()
            state.auth = self._authorize(retry, state.url)
            connection = response.connection
            new = connection.send(retry, **kwargs)
            new.history.append(response)
            new.history[:0] = response.history
            new.request = retry
            state.sent = retry
            response = new


class _Pending:
    """One request's state between sending it and its final response."""

    def __init__(
        self,
        original: PreparedRequest,
        sent: PreparedRequest,
        url: str,
        auth: Authorization,
        body_position: Optional[int],
    ) -> None:
        self.original = original
        self.sent = sent
        self.url = url
        self.auth = auth
        self.body_position = body_position

    def rewind(self) -> bool:
        """Makes the body sendable again; False if it cannot be (a generator, an unseekable file)."""
        body = self.original.body
        if body is None or isinstance(body, (bytes, str)):
            return True
        seek = getattr(body, "seek", None)
        if self.body_position is None or not callable(seek):
            return False
        try:
            seek(self.body_position)
        except (OSError, ValueError):
            return False
        return True
