"""The fleet worker's rules (issue #21) driven offline: :class:`fieldauth._adapter.Driver` with a
store, a fake transport (the test answers each token request) and injected clocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Generator, List, Optional

import pytest

from fieldauth import (
    ActionKind,
    Authorization,
    AuthorizationKind,
    Budget,
    Config,
    EventKind,
    Failure,
    Preset,
    Profile,
    Session,
)
from fieldauth._adapter import STORE_RETRY_MS, Driver, NoCredentialError, Pause, Shared, Step, TokenCall, TokenReply
from fieldauth.stores import FileStore, StoreUnavailable
from conftest import JSON, issue_token, token_json

T0 = 1_000_000  # the worker's monotonic clock (ms)
S0 = 1_700_000_000_000  # the store's clock (Unix ms)
LEASE_TTL_MS = 1_000
LIFETIME_S = 100
WORKER, PEER, SEEDER = 0x1111, 0x2222, 0x3333


class Clock:
    """A clock the test moves (ms)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def config(preset: Preset) -> Config:
    if preset == Preset.FENTU_OAUTH:
        return Config(base_url="https://auth.example/fentu", client_id="c", client_secret="s",
                      redirect_uri="https://app.example/cb")
    return Config(base_url="https://auth.example", client_id="c", client_secret="s")


def grant(session: Session, preset: Preset, now: int, token: str, refresh: str) -> None:
    """The session's first token (Fentu: a person approved the authorization code)."""
    if preset == Preset.FENTU_OAUTH:
        url = session.authorization_url()
        session.set_authorization_code("the-code", url.split("state=")[1].split("&")[0])
    issue_token(session, now=now, token=token, refresh_token=refresh, expires_in=LIFETIME_S)


def seed_store(store: FileStore, worker: Session) -> None:
    """Generation 1: the state the fleet starts from, and the worker holds it."""
    assert store.lease(SEEDER, LEASE_TTL_MS)[0]
    assert store.save(SEEDER, 0, worker.snapshot(now_ms=T0)) == ("stored", 1)
    store.release(SEEDER)
    worker.set_shared_generation(1)


def invalid_grant() -> TokenReply:
    body = json.dumps({"error": "invalid_grant", "error_description": "refresh token rotated"}).encode()
    return TokenReply(400, JSON, body)


def run(
    gen: Generator[Step, Optional[TokenReply], Authorization], answer: "Answer"
) -> Authorization:
    """Drives ``credential()``: each TokenCall to ``answer``, each Pause moves the worker's clock."""
    reply: Optional[TokenReply] = None
    try:
        while True:
            step = gen.send(reply)
            if isinstance(step, TokenCall):
                reply = answer(step)
            else:
                assert isinstance(step, Pause)
                answer.clock.now = max(answer.clock.now, step.until_ms)
                reply = None
    except StopIteration as stop:
        auth: Authorization = stop.value
        return auth
    finally:
        gen.close()


def served(auth: Authorization) -> str:
    """The credential an authorization sends (the header's value)."""
    assert auth.kind == AuthorizationKind.SEND and auth.header is not None, auth
    return auth.header[1]


class Answer:
    """The fake token endpoint: records every request's body and answers from a script."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.bodies: List[bytes] = []
        self.script: List[object] = []

    def __call__(self, call: TokenCall) -> TokenReply:
        self.bodies.append(call.body)
        action = self.script.pop(0)
        if callable(action):
            action = action()
        assert isinstance(action, TokenReply)
        return action


@pytest.mark.parametrize("preset", [Preset.FENTU_OAUTH, Preset.CUSTOM], ids=["fentu", "client-credentials"])
def test_invalid_grant_after_a_peer_rotated_adopts_the_peers_state(tmp_path: Path, preset: Preset) -> None:
    """The refresh this worker sends is answered invalid_grant because a peer rotated the
    refresh token meanwhile (this worker's lease ran out while its request was out, the peer
    took the lease, refreshed and saved generation 2). The worker adopts generation 2 and
    serves the peer's token instead of failing, and its next refresh sends the peer's refresh
    token: the rejected one never again.

    The session answers a rejected refresh with REFRESH_REJECTED (it drops the refresh token
    and wants its primary grant): Fentu (authorization code) then needs a person's code, and
    the driver adopts the peer's state in its NEED_AUTHORIZATION_CODE branch; a client that
    can fetch without a person (CUSTOM: client credentials) adopts it in the sync before that
    fetch, which it then does not send."""
    clock = Clock(T0)
    store_clock = Clock(S0)
    store = FileStore(tmp_path / "fleet.store", clock=store_clock)
    with Session(preset, config(preset), seed=1) as worker, Session(preset, config(preset), seed=2) as peer:
        grant(worker, preset, T0, "at-1", "rt-1")
        grant(peer, preset, T0, "at-1", "rt-1")
        seed_store(store, worker)
        driver = Driver(worker, clock=clock, store=store, lease_ttl_ms=LEASE_TTL_MS)
        answer = Answer(clock)

        def peer_rotates_first() -> TokenReply:
            # The worker's request is out; its lease ends (the store's clock moves past it),
            # the peer takes the lease, refreshes rt-1 into rt-2 and saves generation 2.
            store_clock.now += LEASE_TTL_MS + 1
            assert store.lease(PEER, LEASE_TTL_MS)[0]
            assert peer.poll(clock.now).kind == ActionKind.SEND_TOKEN_REQUEST
            assert b"refresh_token=rt-1" in peer.write_token_request_parts(clock.now).body
            fresh = token_json("at-peer", refresh_token="rt-2", expires_in=LIFETIME_S)
            assert peer.feed_token_response(200, JSON, fresh, now_ms=clock.now).kind == EventKind.TOKEN_ISSUED
            assert store.save(PEER, 1, peer.snapshot(now_ms=clock.now)) == ("stored", 2)
            store.release(PEER)
            return invalid_grant()  # rt-1 was rotated out: the provider rejects this worker's refresh

        # The token expired: the worker leads the refresh with rt-1.
        clock.now = T0 + LIFETIME_S * 1000 + 1
        answer.script = [peer_rotates_first]
        auth = run(driver.credential("/api"), answer)
        assert auth.kind == AuthorizationKind.SEND
        assert served(auth).endswith("at-peer"), auth
        assert worker.shared_generation == 2
        assert [b"refresh_token=rt-1" in body for body in answer.bodies] == [True]
        # Nothing was saved over the peer's generation (this worker's refresh failed).
        loaded = store.load()
        assert loaded is not None and loaded[0] == 2

        # The peer's token expires in turn: this worker refreshes with rt-2, never rt-1 again.
        clock.now += LIFETIME_S * 1000 + 1
        store_clock.now += LIFETIME_S * 1000 + 1
        answer.script = [TokenReply(200, JSON, token_json("at-3", refresh_token="rt-3", expires_in=LIFETIME_S))]
        auth = run(driver.credential("/api"), answer)
        assert served(auth).endswith("at-3"), auth
        assert len(answer.bodies) == 2 and b"refresh_token=rt-2" in answer.bodies[1]
        assert all(b"rt-1" not in body for body in answer.bodies[1:])
        loaded = store.load()
        assert loaded is not None and loaded[0] == 3 and worker.shared_generation == 3


def test_invalid_grant_for_a_code_a_peer_redeemed_adopts_the_peers_state(tmp_path: Path) -> None:
    """The session's own failure INVALID_GRANT (a primary grant refused: here the authorization
    code, which a peer redeemed first and saved the grant of as generation 2): the driver's
    invalid_grant branch adopts the peer's state instead of raising SessionFailed."""
    preset = Preset.FENTU_OAUTH
    clock = Clock(T0)
    store_clock = Clock(S0)
    store = FileStore(tmp_path / "fleet.store", clock=store_clock)
    with Session(preset, config(preset), seed=1) as worker, Session(preset, config(preset), seed=2) as peer:
        # Generation 1: a state without a grant yet (nobody has logged in).
        assert store.lease(SEEDER, LEASE_TTL_MS)[0]
        assert store.save(SEEDER, 0, worker.snapshot(now_ms=T0)) == ("stored", 1)
        store.release(SEEDER)
        worker.set_shared_generation(1)
        url = worker.authorization_url()
        worker.set_authorization_code("the-code", url.split("state=")[1].split("&")[0])
        driver = Driver(worker, clock=clock, store=store, lease_ttl_ms=LEASE_TTL_MS)
        answer = Answer(clock)

        def peer_redeemed_it() -> TokenReply:
            store_clock.now += LEASE_TTL_MS + 1
            assert store.lease(PEER, LEASE_TTL_MS)[0]
            grant(peer, preset, clock.now, "at-peer", "rt-peer")
            assert store.save(PEER, 1, peer.snapshot(now_ms=clock.now)) == ("stored", 2)
            store.release(PEER)
            body = json.dumps({"error": "invalid_grant", "error_description": "code already used"}).encode()
            return TokenReply(400, JSON, body)

        answer.script = [peer_redeemed_it]
        auth = run(driver.credential("/api"), answer)
        assert served(auth).endswith("at-peer"), auth
        assert worker.shared_generation == 2 and len(answer.bodies) == 1
        assert b"code=the-code" in answer.bodies[0]
        assert worker.info().failure == Failure.NONE


def test_invalid_grant_with_nothing_newer_in_the_store_is_the_grants_end(tmp_path: Path) -> None:
    """The other side of the rule: a refresh answered invalid_grant while the store holds
    nothing newer means the grant is gone (Fentu: a person approves again); the rejected
    refresh token is not sent again either."""
    preset = Preset.FENTU_OAUTH
    clock = Clock(T0)
    store = FileStore(tmp_path / "fleet.store", clock=Clock(S0))
    with Session(preset, config(preset), seed=1) as worker:
        grant(worker, preset, T0, "at-1", "rt-1")
        seed_store(store, worker)
        driver = Driver(worker, clock=clock, store=store, lease_ttl_ms=LEASE_TTL_MS)
        answer = Answer(clock)
        answer.script = [invalid_grant()]
        clock.now = T0 + LIFETIME_S * 1000 + 1
        with pytest.raises(NoCredentialError, match="authorization code"):
            run(driver.credential("/api"), answer)
        assert len(answer.bodies) == 1
        # Its state (no refresh token) went to the store, so the peers learn the grant is gone.
        loaded = store.load()
        assert loaded is not None and loaded[0] == 2


def test_a_fetch_refused_invalid_grant_after_a_peer_saved_adopts_the_peers_state(tmp_path: Path) -> None:
    """The session's own failure INVALID_GRANT (latched: a client-credentials fetch refused
    with invalid_grant) while a peer saved a newer state meanwhile: the driver's invalid_grant
    branch adopts the peer's state instead of raising SessionFailed."""
    preset = Preset.CUSTOM
    clock = Clock(T0)
    store_clock = Clock(S0)
    store = FileStore(tmp_path / "fleet.store", clock=store_clock)
    with Session(preset, config(preset), seed=1) as worker, Session(preset, config(preset), seed=2) as peer:
        seed_store(store, worker)  # generation 1: no token yet
        driver = Driver(worker, clock=clock, store=store, lease_ttl_ms=LEASE_TTL_MS)
        answer = Answer(clock)

        def peer_fetched_first() -> TokenReply:
            store_clock.now += LEASE_TTL_MS + 1
            assert store.lease(PEER, LEASE_TTL_MS)[0]
            grant(peer, preset, clock.now, "at-peer", "rt-peer")
            assert store.save(PEER, 1, peer.snapshot(now_ms=clock.now)) == ("stored", 2)
            store.release(PEER)
            return invalid_grant()

        answer.script = [peer_fetched_first]
        auth = run(driver.credential("/api"), answer)
        assert served(auth).endswith("at-peer"), auth
        assert worker.shared_generation == 2 and len(answer.bodies) == 1
        assert b"grant_type=client_credentials" in answer.bodies[0]


class DownStore:
    """A store whose backend is down: every operation fails."""

    def _down(self, *args: object) -> Any:
        raise StoreUnavailable("fieldauth store: down")

    load = lease = save = release = charge = _down


class SpentStore(DownStore):
    """A store whose budgets are spent until ``open`` is set: charges wait 1 s, or are granted."""

    def __init__(self) -> None:
        self.open = False

    def charge(self, *args: object) -> int:
        return 0 if self.open else T0 + 1_000


def test_a_worker_that_keeps_losing_the_draw_asks_again_sooner() -> None:
    """The jitter on a wait for the fleet's budget halves with each refusal since the worker's
    last grant (50 ms, 25, 12, 6, 3, 1, then none), as in the Rust worker: a worker that lost
    the draw for a slot asks before those that did not. A grant starts the count again."""
    with Session(Preset.AUTOTASK, Config(base_url="https://x.example", client_id="c", client_secret="s")) as s:
        store = SpentStore()
        shared = Shared(s, store, fleet_size=8, lease_ttl_ms=1_000, solo_refresh=False)
        for k in range(1, 10):
            assert shared.charge("api", T0) > 0
            assert shared.refused == k
            spans = {shared.jitter() for _ in range(300)}
            assert max(spans) <= 50 >> min(k - 1, 6), (k, max(spans))
            if k <= 3:
                assert max(spans) > (50 >> min(k, 6)), (k, max(spans))  # the span is used
        assert shared.jitter() == 0
        store.open = True
        assert shared.charge("api", T0) == 0 and shared.refused == 0
        store.open = False
        shared.charge("api", T0)
        assert max(shared.jitter() for _ in range(300)) > 25


def test_a_worker_on_its_own_takes_its_share_of_the_fleets_budget() -> None:
    """While the store fails, a worker charges 1/fleet_size of each budget itself; a fleet with
    more workers than the budget has requests stretches the window instead of giving each
    worker a whole request per window (32 workers x 1 a minute = 32 token requests a minute
    against Autotask's 10). Its waits end when the store is tried again."""
    with Session(Preset.AUTOTASK, Config(base_url="https://x.example", client_id="c", client_secret="s")) as s:
        shared = Shared(s, DownStore(), fleet_size=32, lease_ttl_ms=1_000, solo_refresh=False)
        assert shared.share(Budget(10, 60, 1)) == (1, 192, 1)
        assert shared.share(Budget(40, 10, 4)) == (1, 10, 1)
        assert shared.share(Budget(600, 60, 100)) == (18, 60, 1)
        assert Shared(s, DownStore(), 1, 1_000, False).share(Budget(10, 60, 2)) == (10, 60, 1)
        grants = []
        now = T0
        while now < T0 + 600_000:  # ten minutes of asking every 100 ms
            wait = shared.charge("token", now)
            assert 0 <= wait <= STORE_RETRY_MS
            if wait == 0:
                grants.append(now)
            now += 100
        # Autotask's token budget (10 a minute, with headroom: 10 in 66 s) for the fleet: each of
        # 32 workers one per 66 s x 3.2.
        token = shared.budgets["token"]
        requests, window_s, _ = shared.share(token)
        assert requests == 1 and window_s == -(-token.window_s * 32 // token.requests) >= 192
        assert len(grants) == -(-600 // window_s)
        assert all(b - a >= window_s * 1000 for a, b in zip(grants, grants[1:]))


def test_a_long_wait_for_the_fleets_api_budget_adopts_every_refresh_and_still_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker waits a minute for the fleet's API budget, which its peers keep spending,
    while a peer (holding the lease) refreshes the 5 s token whenever it is due and saves
    each one: the worker adopts them as its own refreshes come due, sends no token request,
    and then serves the newest token. Adoptions are not rounds: counted as rounds (as before
    the fix), the 17th ended the request with NoCredentialError, which the fleet run at the
    issue's size showed (32 workers on a 40-per-10-s budget)."""
    clock = Clock(T0)

    def store_time() -> int:
        return S0 + clock.now - T0

    class FakeTime:
        """The ``time`` module as fieldauth.session sees it: the test's clocks."""

        @staticmethod
        def time() -> float:
            return store_time() / 1000

        @staticmethod
        def monotonic_ns() -> int:
            return clock.now * 1_000_000

    monkeypatch.setattr("fieldauth.session.time", FakeTime)
    monkeypatch.setattr("fieldauth._adapter.unix_ms", store_time)
    profile = Profile.preset(Preset.CUSTOM)
    profile.api_budget = Budget(40, 10, 4)
    store = FileStore(tmp_path / "fleet.store", clock=store_time)
    cfg = config(Preset.CUSTOM)
    with Session(profile, cfg, seed=1) as worker, Session(profile, cfg, seed=2) as peer:
        issue_token(worker, now=T0, token="at-0", expires_in=5)
        seed_store(store, worker)
        loaded = store.load()
        assert loaded is not None
        peer.adopt(loaded[1], 1, now_ms=T0)
        driver = Driver(worker, clock=clock, store=store, lease_ttl_ms=LEASE_TTL_MS)
        refreshes = 0
        adopted = []

        def peers_act() -> None:
            nonlocal refreshes
            assert store.lease(PEER, 60_000)[0]  # the peer keeps the lease: it refreshes for all
            if clock.now < T0 + 60_000:
                if peer.poll(clock.now).kind == ActionKind.SEND_TOKEN_REQUEST:
                    refreshes += 1
                    peer.write_token_request(clock.now)
                    fresh = token_json(f"at-{refreshes}", expires_in=5)
                    peer.feed_token_response(200, JSON, fresh, now_ms=clock.now)
                    assert store.save(PEER, refreshes, peer.snapshot(now_ms=clock.now)) == ("stored", refreshes + 1)
                while store.charge("api", 39, 10, 4) == 0:  # the peers spend every free slot
                    pass
            else:
                store.release(PEER)

        peers_act()
        gen = driver.credential("/api")
        try:
            while True:
                step = gen.send(None)
                assert isinstance(step, Pause), "the worker sent a token request of its own"
                clock.now = max(clock.now, step.until_ms)
                if worker.shared_generation not in adopted:
                    adopted.append(worker.shared_generation)
                peers_act()
        except StopIteration as stop:
            auth = stop.value
        assert clock.now >= T0 + 60_000 and refreshes >= 20
        assert len(adopted) > 17, adopted  # more than max_rounds
        assert worker.shared_generation == refreshes + 1
        assert served(auth) == f"Bearer at-{refreshes}"


class _SaveFails(FileStore):
    """A FileStore whose saves fail while ``failing`` is set (a store down at the wrong moment)."""

    failing = False

    def save(self, holder: int, expected_generation: int, image: bytes) -> Any:
        if self.failing:
            raise StoreUnavailable("the store is down")
        return super().save(holder, expected_generation, image)


def test_a_refresh_the_store_did_not_take_keeps_the_lease_and_is_saved_first(tmp_path: Path) -> None:
    """The worker refreshed (rt-1 is spent, rt-2 is the new one) but the store failed at the
    save: it keeps the lease, so a peer does not refresh with rt-1 (a replay that would revoke
    the grant), and saves its state first thing at its next call, after which the peer adopts
    rt-2."""
    preset = Preset.FENTU_OAUTH
    clock = Clock(T0)
    store_clock = Clock(S0)
    store = _SaveFails(tmp_path / "fleet.store", clock=store_clock)
    with Session(preset, config(preset), seed=1) as worker, Session(preset, config(preset), seed=2) as peer:
        grant(worker, preset, T0, "at-1", "rt-1")
        grant(peer, preset, T0, "at-1", "rt-1")
        seed_store(store, worker)
        peer.set_shared_generation(1)
        driver = Driver(worker, clock=clock, store=store, lease_ttl_ms=LEASE_TTL_MS)
        answer = Answer(clock)

        def rotated_then_the_store_fails() -> TokenReply:
            store.failing = True
            return TokenReply(200, JSON, token_json("at-2", refresh_token="rt-2", expires_in=LIFETIME_S))

        clock.now = T0 + LIFETIME_S * 1000 + 1
        answer.script = [rotated_then_the_store_fails]
        auth = run(driver.credential("/api"), answer)
        assert served(auth).endswith("at-2")
        assert driver.shared is not None and driver.shared.unsaved
        # The lease stays the worker's: a peer asking for it is told to wait.
        held, _ = store.lease(PEER, LEASE_TTL_MS)
        assert not held
        loaded = store.load()
        assert loaded is not None and loaded[0] == 1

        # The store answers again: the worker's next call saves generation 2 first.
        store.failing = False
        clock.now += STORE_RETRY_MS + 1
        answer.script = []
        auth = run(driver.credential("/api"), answer)
        assert served(auth).endswith("at-2")
        assert not driver.shared.unsaved and worker.shared_generation == 2
        loaded = store.load()
        assert loaded is not None and loaded[0] == 2
        assert store.lease(PEER, LEASE_TTL_MS)[0], "released after the save"
        store.release(PEER)
        # The peer adopts it: its refresh token is rt-2 now.
        generation, image = loaded
        peer.adopt(image, generation, now_ms=clock.now)
        peer_clock = Clock(clock.now + LIFETIME_S * 1000 + 1)
        assert peer.poll(peer_clock.now).kind == ActionKind.SEND_TOKEN_REQUEST
        assert b"refresh_token=rt-2" in peer.write_token_request_parts(peer_clock.now).body
