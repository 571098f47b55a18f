"""``httpx`` authentication (sync and async) through a :class:`fieldauth.Session`.

Install with the extra: ``pip install ./bindings/python[httpx]``.

>>> import httpx
>>> from fieldauth import Config, Preset, Session
>>> from fieldauth.httpx import FieldAuth
>>> cfg = Config(base_url="https://api.example.com", client_id="...", client_secret="...")
>>> with Session(Preset.AUTOTASK, cfg) as session:
...     with httpx.Client(auth=FieldAuth(session)) as http:
...         response = http.get("https://api.example.com/ATServicesRest/V1.0/Companies")
...     # or: async with httpx.AsyncClient(auth=FieldAuth(session)) as http: await http.get(...)

The token requests the session writes go out through the same client (its
transport, proxies, certificates, timeout and event hooks) as part of httpx's
auth flow; their responses, like those of a retried request, end up in
``response.history``. Before each request :class:`FieldAuth` asks the session
for a credential (fetching or refreshing the token when the session says so)
and applies it as the session says (a header, or the ``access_token`` query
parameter). After the response:

- a 401 the session answers with ``RETRY_WITH_NEW_TOKEN``: a new token is
  fetched and the request is sent once more (once: a second 401 is returned);
- a 429 (or a rate-limit header the session understands): the flow sleeps until
  the session allows requests again (``Retry-After``, capped by
  :attr:`fieldauth.Config.max_wait_s`) and sends it again, ``rate_limit_retries``
  times at most. The sync flow sleeps with ``sleep``, the async one awaits
  ``async_sleep``.

The request body is read before the flow starts (``requires_request_body``),
so that it can be sent again.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any, AsyncGenerator, Awaitable, Callable, Generator, Optional

import httpx

from ._adapter import (
    DEFAULT_LEASE_TTL_MS,
    Driver,
    NoCredentialError,
    Pause,
    Step,
    TokenCall,
    TokenReply,
    WaitTooLong,
    retry_kind,
)
from .enums import CredentialForm
from .session import Authorization, Session
from .stores import Store

__all__ = ["FieldAuth", "WaitTooLong", "NoCredentialError"]


class FieldAuth(httpx.Auth):
    """An :class:`httpx.Auth` that authenticates with a :class:`fieldauth.Session`.

    Works with :class:`httpx.Client` and :class:`httpx.AsyncClient`.
    ``session`` holds the tokens (you create and close it; one adapter per
    session). ``sleep`` (default :func:`time.sleep`), ``async_sleep`` (default
    :func:`asyncio.sleep`) and ``clock`` (default :func:`fieldauth.monotonic_ms`)
    are injectable for tests. ``max_wait_s``: raise :class:`WaitTooLong` rather
    than sleep longer than that (default: as long as the session says).
    ``rate_limit_retries``: how often one request is sent again after
    rate-limit answers.

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

    Token requests are made one at a time: across threads for sync clients, and
    within each event loop for async ones. Use one adapter per session.
    """

    requires_request_body = True
    """The body is read first, so the request can be sent again after a 401 or 429."""

    def __init__(
        self,
        session: Session,
        *,
        sleep: Callable[[float], Any] = time.sleep,
        async_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Optional[Callable[[], int]] = None,
        max_wait_s: Optional[float] = None,
        rate_limit_retries: int = 1,
        store: Optional[Store] = None,
        fleet_size: int = 1,
        lease_ttl_ms: int = DEFAULT_LEASE_TTL_MS,
        solo_refresh: bool = False,
    ) -> None:
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
        self.sleep = sleep
        """The sync flow's sleep for rate-limit and backoff waits."""
        self.async_sleep = async_sleep
        """The async flow's sleep."""
        self.rate_limit_retries = rate_limit_retries
        """Retries of one request after rate-limit answers."""
        self._async_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = (
            weakref.WeakKeyDictionary()
        )

    @property
    def session(self) -> Session:
        """The :class:`fieldauth.Session` that holds the tokens."""
        return self.driver.session

    def __repr__(self) -> str:
        return f"<fieldauth.httpx.FieldAuth for {self.session!r}>"

    # -- helpers shared by both flows

    @staticmethod
    def _token_request(call: TokenCall, api_request: httpx.Request) -> httpx.Request:
        extensions = {}
        if "timeout" in api_request.extensions:
            extensions["timeout"] = api_request.extensions["timeout"]
        return httpx.Request(call.method, call.url, headers=call.headers, content=call.body, extensions=extensions)

    @staticmethod
    def _reply(response: httpx.Response) -> TokenReply:
        return TokenReply(response.status_code, response.headers.raw, response.content, response.reason_phrase)

    @staticmethod
    def _apply(request: httpx.Request, url: httpx.URL, auth: Authorization) -> None:
        if auth.header is not None:
            request.headers[auth.header[0]] = auth.header[1]
        if auth.credential == CredentialForm.QUERY and auth.target is not None:
            request.url = url.copy_with(raw_path=auth.target.encode("ascii"))
        else:
            request.url = url

    # -- sync

    def _credential_sync(self, request: httpx.Request, target: str) -> Generator[httpx.Request, httpx.Response, Authorization]:
        with self.driver.lock:
            steps = self.driver.credential(target)
            reply: Optional[TokenReply] = None
            while True:
                try:
                    step: Step = steps.send(reply)
                except StopIteration as done:
                    auth: Authorization = done.value
                    return auth
                reply = None
                if isinstance(step, Pause):
                    self.sleep(step.seconds)
                    continue
                try:
                    response = yield self._token_request(step, request)
                    response.read()
                except BaseException as exc:  # GeneratorExit too: httpx closes the flow when sending fails
                    steps.throw(exc)  # records the transport failure, re-raises exc
                    raise
                reply = self._reply(response)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The sync flow: credential (with token requests and waits), send, retry once on 401 or 429."""
        request.read()
        url = request.url
        target = url.raw_path.decode("ascii")
        retried_401 = False
        rate_left = self.rate_limit_retries
        while True:
            auth = yield from self._credential_sync(request, target)
            self._apply(request, url, auth)
            response = yield request
            if response.status_code >= 400:
                response.read()
            body = response.content if response.status_code >= 400 else b""
            verdict = self.driver.report(auth, response.status_code, response.headers.raw, body)
            kind = retry_kind(verdict, retried_401, rate_left)
            if kind is None:
                return
            if kind == "401":
                retried_401 = True
            else:
                rate_left -= 1

    # -- async

    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = asyncio.Lock()
            self._async_locks[loop] = lock
        return lock

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The async flow: the sync flow's steps, with ``async_sleep`` and an event-loop lock."""
        await request.aread()
        url = request.url
        target = url.raw_path.decode("ascii")
        retried_401 = False
        rate_left = self.rate_limit_retries
        while True:
            async with self._async_lock():
                steps = self.driver.credential(target)
                reply: Optional[TokenReply] = None
                while True:
                    try:
                        step: Step = steps.send(reply)
                    except StopIteration as done:
                        auth: Authorization = done.value
                        break
                    reply = None
                    if isinstance(step, Pause):
                        await self.async_sleep(step.seconds)
                        continue
                    try:
                        token_response = yield self._token_request(step, request)
                        await token_response.aread()
                    except BaseException as exc:  # GeneratorExit too: httpx closes the flow when sending fails
                        steps.throw(exc)  # records the transport failure, re-raises exc
                        raise
                    reply = self._reply(token_response)
            self._apply(request, url, auth)
            response = yield request
            if response.status_code >= 400:
                await response.aread()
            body = response.content if response.status_code >= 400 else b""
            verdict = self.driver.report(auth, response.status_code, response.headers.raw, body)
            kind = retry_kind(verdict, retried_401, rate_left)
            if kind is None:
                return
            if kind == "401":
                retried_401 = True
            else:
                rate_left -= 1
