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

import logging
import os
import random
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Dict, Generator, List, Optional, Tuple, TypeVar, Union

from ._lib import NEVER
from .enums import ActionKind, Adopted, AuthorizationKind, CredentialForm, EventKind, Failure, Status, VerdictKind
from .errors import FieldauthError, WrongState
from .session import Authorization, Budget, HeaderItems, Session, Verdict, monotonic_ms
from .stores import STORED, Store, StoreError, gcra, unix_ms

log = logging.getLogger("fieldauth")
T = TypeVar("T")

#: Default lease time-to-live: longer than a token request may take (the adapters' timeout is 30 s).
DEFAULT_LEASE_TTL_MS = 45_000

#: How often a worker waiting for the lease holder's new token looks in the store.
WAIT_POLL_MS = 100

#: How long a worker whose store failed works on its own before asking the store again.
STORE_RETRY_MS = 1_000

#: Most random milliseconds added to a wait for the fleet's API budget (as the C worker does).
BUDGET_JITTER_MS = 50

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


class _StoreDown(Exception):
    """The store failed (logged once) or is still in its retry pause."""


class Shared:
    """One worker's side of a fleet sharing a credential through a :class:`~fieldauth.stores.Store`.

    Holds the worker's lease holder id (random), whether the store is answering,
    and the budgets it falls back to when it is not (the session profile's
    budgets divided by ``fleet_size``).
    """

    def __init__(self, session: Session, store: Store, fleet_size: int, lease_ttl_ms: int, solo_refresh: bool) -> None:
        for name in ("load", "lease", "save", "release", "charge"):
            if not callable(getattr(store, name, None)):
                raise TypeError(f"store must implement fieldauth.stores.Store: {type(store).__name__} has no {name}()")
        if isinstance(fleet_size, bool) or not isinstance(fleet_size, int) or fleet_size < 1:
            raise ValueError(f"fleet_size must be an int >= 1, not {fleet_size!r}")
        if isinstance(lease_ttl_ms, bool) or not isinstance(lease_ttl_ms, int) or lease_ttl_ms < 100:
            raise ValueError(f"lease_ttl_ms must be an int >= 100, not {lease_ttl_ms!r}")
        self.store = store
        self.fleet_size = fleet_size
        self.lease_ttl_ms = lease_ttl_ms
        self.solo_refresh = solo_refresh
        self.holder = (int.from_bytes(os.urandom(8), "little") >> 1) or 1
        self._rng = random.Random(os.urandom(16))
        self.down = False
        self._retry_at = 0
        #: A token this worker fetched as the lead that the store did not take (it failed at
        #: the save): saved first thing at the next store contact, since a peer that refreshed
        #: with the refresh token it replaced would replay it.
        self.unsaved = False
        self._local: Dict[str, int] = {}
        #: The fleet budget's refusals since this worker's last grant (see :meth:`jitter`).
        self.refused = 0
        profile = session.profile
        self.budgets: Dict[str, Budget] = {"token": profile.token_budget, "api": profile.api_budget}

    def call(self, now: int, fn: Callable[[], T]) -> T:
        """``fn()`` against the store; raises :class:`_StoreDown` if it fails (logged once) or is resting."""
        if self.down and now < self._retry_at:
            raise _StoreDown()
        try:
            result = fn()
        except StoreError as exc:
            if not self.down:
                log.warning(
                    "fieldauth: the shared store %r failed (%s): this worker keeps its own token and "
                    "1/%d of the budgets until the store answers again",
                    self.store,
                    exc,
                    self.fleet_size,
                )
            self.down = True
            self._retry_at = now + STORE_RETRY_MS
            raise _StoreDown() from None
        if self.down:
            self.down = False
            log.warning("fieldauth: the shared store %r answers again: this worker rejoins the fleet", self.store)
        return result

    def sync(self, session: Session, now: int) -> Optional[Adopted]:
        """Loads the newest shared state and adopts it if newer; None if the store is empty or down."""
        self.flush(session, now)
        try:
            got = self.call(now, self.store.load)
        except _StoreDown:
            return None
        if got is None:
            return None
        generation, image = got
        if generation < session.shared_generation:
            # The store lost its state (restarted empty, file removed): count from its numbers again.
            session.set_shared_generation(0)
        try:
            return session.adopt(image, generation, now_ms=now)
        except WrongState:
            return None
        except FieldauthError as exc:  # a foreign or corrupt image: keep our own state
            log.warning(
                "fieldauth: the shared store %r holds a state this session cannot adopt (%s): "
                "is every worker configured alike?",
                self.store,
                type(exc).__name__,
            )
            return None

    def save(self, session: Session, now: int) -> bool:
        """Saves the session's state over the generation it holds (the lease held).

        True if the store has it, or a newer state a peer saved meanwhile (the next sync
        adopts theirs); False if the lease was lost or the store failed (``self.unsaved``
        is then set: :meth:`flush` saves it at the next store contact).
        """
        image = session.snapshot(now_ms=now)
        for _ in range(2):
            try:
                result, generation = self.call(
                    now, lambda: self.store.save(self.holder, session.shared_generation, image)
                )
            except _StoreDown:
                break
            if result == STORED:
                session.set_shared_generation(generation)
                self.unsaved = False
                return True
            if result == "stale" and generation < session.shared_generation:
                session.set_shared_generation(generation)  # the store was reset: save over what it has
                continue
            if result == "stale":
                self.unsaved = False
                return True  # a peer saved a newer state meanwhile: the next sync adopts it
            break  # the lease was lost
        self.unsaved = True
        return False

    def flush(self, session: Session, now: int) -> None:
        """Saves a token the store did not take when it was fetched, under the lease."""
        if not self.unsaved:
            return
        try:
            held, _ = self.call(now, lambda: self.store.lease(self.holder, self.lease_ttl_ms))
        except _StoreDown:
            return
        if held:
            try:
                self.save(session, now)
            finally:
                self.release(now)

    def release(self, now: int) -> None:
        try:
            self.call(now, lambda: self.store.release(self.holder))
        except _StoreDown:
            pass

    def share(self, budget: Budget) -> Tuple[int, int, int]:
        """This worker's share of ``budget`` while the store fails: ``(requests, window_s, burst)``.

        ``requests // fleet_size`` in the same window, or, when the fleet has more workers
        than the budget has requests, one request in a window stretched by
        ``fleet_size / requests`` (rounded up), so that the fleet's workers on their own
        together take no more than the budget on average (a share of at least one request
        per window each would take ``fleet_size / requests`` times it: 32 workers, Autotask's
        10 token requests a minute). No burst while uncoordinated (``burst`` is 1): evenly
        paced from the first request, as the Rust worker (``fieldauth::shared::Worker``)
        does. Each worker's share starts full when the store fails, and the store's
        budgets start full when it comes back empty, so a window that spans a failure or a
        recovery can hold more than the budget (measured in the fleet test's Redis restart).
        """
        if budget.requests >= self.fleet_size:
            requests, window_s = budget.requests // self.fleet_size, budget.window_s
        else:
            requests, window_s = 1, -(-budget.window_s * self.fleet_size // budget.requests)
        return requests, window_s, 1

    def jitter(self) -> int:
        """0 to :data:`BUDGET_JITTER_MS` ms, at random (this worker's own stream), halved for
        each refusal of the fleet's budget before the last one since this worker's last grant
        (as the Rust worker's): a worker that keeps losing the draw for a slot asks again
        before those that did not, so no worker loses it for long."""
        return self._rng.randint(0, BUDGET_JITTER_MS >> min(max(self.refused - 1, 0), 6))

    def charge(self, budget_id: str, now: int) -> int:
        """Charges one request: 0, or how many ms to wait (the fleet's budget, or our share when the store is down)."""
        budget = self.budgets[budget_id]
        if budget.requests <= 0 or budget.window_s <= 0:
            return 0
        # One request of each window is kept as a margin for the time between the charge
        # and the request's arrival at the server: a request charged just inside a window
        # can arrive after a later one, and the server then counts one more than the
        # fleet charged (measured: 41 in a 10 s window of a 40-request budget).
        requests = budget.requests - 1 if budget.requests > 1 else budget.requests
        burst = max(1, min(budget.burst, requests))
        try:
            until = self.call(now, lambda: self.store.charge(budget_id, requests, budget.window_s, burst))
            self.refused = self.refused + 1 if until else 0
            return max(1, until - unix_ms()) if until else 0
        except _StoreDown:
            share, window_s, burst = self.share(budget)
            tat, wait = gcra(self._local.get(budget_id, 0), now, share, window_s, burst)
            if wait:
                # Not past the store's next try: when it answers, the fleet's budget applies.
                return max(1, min(wait, self._retry_at) - now)
            self._local[budget_id] = tat
            return 0


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
        store: Optional[Store] = None,
        fleet_size: int = 1,
        lease_ttl_ms: int = DEFAULT_LEASE_TTL_MS,
        solo_refresh: bool = False,
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
        if store is None and session.store is not None:
            # Session(..., store=, fleet_size=): the adapter shares through the session's store.
            store, fleet_size = session.store, session.fleet_size
        self.shared: Optional[Shared] = (
            Shared(session, store, fleet_size, lease_ttl_ms, solo_refresh) if store is not None else None
        )
        """The fleet side (None without a store)."""

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

        With a store (:class:`Shared`): before a token request the newest
        shared state is adopted if newer; only the lease holder sends the token
        request (and saves the result), the others keep using a still-valid
        token or wait for the holder's; an ``invalid_grant`` answer to a refresh
        adopts a peer's newer state instead of failing; every token and API
        request is charged to the fleet's budget first.
        """
        session = self.session
        shared = self.shared
        charged = shared is None
        if shared is not None:
            shared.flush(session, self.clock())
        rounds = 0
        while rounds < self.max_rounds:
            rounds += 1
            now = self.clock()
            action = session.poll(now)
            if action.kind == ActionKind.SEND_TOKEN_REQUEST:
                if shared is None:
                    yield from self._exchange(now)
                    continue
                decision = yield from self._fleet_token(shared)
                if decision == "adopted":
                    # Progress, not a round: a worker that waits long for the fleet's API budget
                    # adopts every refresh its peers save meanwhile (measured: 16 of them in one
                    # thread's 40 s wait, 32 workers on a 40-per-10-s budget, and the request
                    # failed with NoCredentialError).
                    rounds -= 1
                    continue
                if decision == "retry":
                    continue
                if decision in ("lead", "solo"):
                    leading = decision == "lead"
                    wait = shared.charge("token", self.clock())
                    if wait:
                        if leading:
                            shared.release(self.clock())
                        elif shared.down:
                            rounds -= 1  # waiting for our share or the store: not a round
                        now = self.clock()
                        yield self._pause(now + wait, now)
                        continue
                    saved = True
                    try:
                        failed = yield from self._exchange(self.clock(), raise_failure=False)
                        if leading and not failed:
                            saved = shared.save(session, self.clock())
                    finally:
                        # A token the store did not take keeps the lease (as long as the store
                        # keeps it, peers wait instead of refreshing with the refresh token it
                        # replaced); Shared.flush saves it at the next store contact.
                        if leading and saved:
                            shared.release(self.clock())
                    if failed:
                        if session.info().failure == Failure.INVALID_GRANT and shared.sync(
                            session, self.clock()
                        ) == Adopted.NEWER:
                            # A primary grant refused with invalid_grant (a latched failure) while a
                            # peer saved a newer state: adopt it instead of failing. (A *refresh*
                            # answered invalid_grant is no failure: the session drops the refresh
                            # token and wants its primary grant; the sync before that fetch, or the
                            # NEED_AUTHORIZATION_CODE branch below, adopts the peer's rotation.)
                            continue
                        session.raise_if_failed()
                    continue
                # "use": the lease is busy and our token is still valid: use it.
                now = self.clock()
            elif action.kind == ActionKind.FAILED:
                if shared is not None and shared.sync(session, now) == Adopted.NEWER:
                    continue
                session.raise_if_failed()
            if action.kind == ActionKind.NEED_AUTHORIZATION_CODE:
                if shared is not None and shared.sync(session, now) == Adopted.NEWER:
                    # A peer holds the grant (also when our refresh was answered invalid_grant
                    # because a peer rotated the refresh token first): share it.
                    continue
                raise NoCredentialError(
                    "fieldauth: the session needs an authorization code first: open "
                    "session.authorization_url() in a browser and pass the redirect's code and state "
                    "to session.set_authorization_code()"
                )
            if not charged and session.info().usable:
                assert shared is not None
                # The fleet's API budget, charged when the credential is ready, right before the
                # request goes out: a slot charged before a token wait would be sent late, and
                # the server would count it in a later window than the fleet did (measured: 42
                # in a 10 s window of a 40-request budget, 32 workers starting together). Waits
                # for it are not rounds (peers may take the slot we waited for, again and again,
                # while the budget is tight).
                wait = shared.charge("api", now)
                if wait:
                    rounds -= 1
                    # Up to BUDGET_JITTER_MS more: workers told the same instant would all ask
                    # again at once, and the same ones would win every time (measured: single
                    # threads went 30-40 s without a request while the fleet used its budget).
                    yield self._pause(now + wait + shared.jitter(), now)
                    continue
                charged = True
                now = self.clock()
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
            if action.kind == ActionKind.SEND_TOKEN_REQUEST and shared is not None:
                # "use" said valid, authorize disagreed: wait a little for the holder's token.
                yield self._pause(now + WAIT_POLL_MS, now)
        raise NoCredentialError(
            f"fieldauth: no credential after {self.max_rounds} token requests and waits "
            f"({self._state()}): check the token URL and the credentials in the Config"
        )

    def _exchange(
        self, now: int, raise_failure: bool = True
    ) -> Generator[Step, Optional[TokenReply], bool]:
        """One token request (due now: the first token, a refresh, one after a 401); True if it failed for good."""
        session = self.session
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
            if raise_failure:
                session.raise_if_failed()
            return True
        return False

    def _fleet_token(self, shared: Shared) -> Generator[Step, Optional[TokenReply], str]:
        """Who sends the token request the session wants: ``"lead"`` (we hold the lease),
        ``"solo"`` (the store is down: on our own), ``"use"`` (a peer holds the lease and our
        token is still valid), ``"adopted"`` (a newer state was adopted: poll again) or
        ``"retry"`` (the wait is over: poll again)."""
        session = self.session
        now = self.clock()
        if shared.sync(session, now) == Adopted.NEWER:
            return "adopted"
        info = session.info()
        if not shared.down:
            try:
                held, until = shared.call(now, lambda: shared.store.lease(shared.holder, shared.lease_ttl_ms))
            except _StoreDown:
                held, until = False, 0
            if held:
                # A peer may have saved between our load and our lease.
                if shared.sync(session, self.clock()) == Adopted.NEWER:
                    shared.release(self.clock())
                    return "adopted"
                return "lead"
            if not shared.down:
                if info.usable:
                    return "use"
                # Wait for the holder's token, at most until its lease ends.
                deadline = now + max(0, until - unix_ms()) + WAIT_POLL_MS
                while True:
                    now = self.clock()
                    if now >= deadline:
                        return "retry"
                    yield self._pause(min(deadline, now + WAIT_POLL_MS), now)
                    if shared.sync(session, self.clock()) == Adopted.NEWER:
                        return "adopted"
                    if shared.down:
                        return "retry"
        # The store is down: on our own, with our share of the budgets. A refresh token may
        # rotate: two workers spending the same one would lose the grant, so unless told it is
        # safe (solo_refresh) keep the valid token, or wait for the store to answer.
        if info.refreshable and not shared.solo_refresh:
            if info.usable:
                return "use"
            yield self._pause(now + STORE_RETRY_MS, now)
            return "retry"
        return "solo"

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
