"""The stores' contract (issue #21): FileStore and RedisStore, the same tests for both."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from fieldauth.stores import (
    FileStore,
    RedisStore,
    Store,
    StoreCorrupt,
    StoreError,
    StorePermissionError,
    StoreUnavailable,
    gcra,
    unix_ms,
)
from redis_fixture import RedisServer, free_port, require_redis
from redis_fixture import client as redis_client

SECRET = b"refresh-token-SECRET-4711"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    require_redis()
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "file":
        s = FileStore(tmp_path / "state")
        yield s
        s.close()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = server.client()
        client.flushall()
        yield RedisStore(client, "fieldauth:test")
        client.close()


def test_empty_store_loads_none(store: Store) -> None:
    assert store.load() is None


def test_compare_and_set(store: Store) -> None:
    assert store.save(1, 0, b"x") == ("not_holder", 0)  # no lease
    assert store.lease(1, 5_000)[0]
    assert store.save(1, 1, b"x") == ("stale", 0)
    assert store.save(1, 0, b"first") == ("stored", 1)
    assert store.load() == (1, b"first")
    assert store.save(1, 0, b"again") == ("stale", 1)  # over the generation it read, only
    assert store.save(2, 1, b"peer") == ("not_holder", 1)
    assert store.save(1, 1, b"second\x00\xff") == ("stored", 2)
    assert store.load() == (2, b"second\x00\xff")


def test_lease_is_exclusive_renewable_and_released(store: Store) -> None:
    before = unix_ms()
    held, until = store.lease(1, 2_000)
    assert held and before + 1_900 <= until <= unix_ms() + 2_100
    held2, until2 = store.lease(2, 2_000)
    assert not held2 and abs(until2 - until) <= 50  # busy: when the holder's lease ends
    time.sleep(0.05)
    held, renewed = store.lease(1, 2_000)  # the holder renews
    assert held and renewed > until
    store.release(2)  # not the holder: nothing
    assert not store.lease(2, 2_000)[0]
    store.release(1)
    assert store.lease(2, 2_000)[0]
    assert store.save(1, 0, b"x") == ("not_holder", 0)


def test_lease_expires_by_itself(store: Store) -> None:
    assert store.lease(1, 150)[0]
    assert not store.lease(2, 1_000)[0]
    time.sleep(0.2)
    assert store.save(1, 0, b"late") == ("not_holder", 0)  # an expired lease saves nothing
    held, _ = store.lease(2, 1_000)
    assert held


def test_charge_keeps_every_sliding_window(store: Store) -> None:
    # 5 requests per 1 s, 2 back to back: hammer for 1.5 s and count in every window.
    # Each grant's store time lies between the clock read before the call and the one
    # after it (the budget is exact on the store's clock: the 6th grant can come exactly
    # 1,000 ms after the 1st, so a timestamp taken after the call alone can make a
    # correct store look one over). A window is overspent only if six grants surely
    # fall within 1 s: the sixth's "after" less than 1 s past the first's "before".
    granted: List[Tuple[int, int]] = []
    waits = 0
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        before = unix_ms()
        wait = store.charge("api", 5, 1, 2)
        after = unix_ms()
        if wait == 0:
            granted.append((before, after))
        else:
            waits += 1
            assert wait > unix_ms() - 5
            time.sleep(max(0.0, (wait - unix_ms()) / 1000))
    assert waits > 0
    assert 6 <= len(granted) <= 9  # 2 at once, then one per 250 ms (5 a second, the burst included)
    for first, sixth in zip(granted, granted[5:]):
        assert sixth[1] - first[0] >= 1_000, (first, sixth, granted)
    assert granted[1][1] - granted[0][0] < 50  # the burst


def test_charge_budgets_are_separate_and_denial_charges_nothing(store: Store) -> None:
    assert store.charge("token", 1, 60, 1) == 0
    wait = store.charge("token", 1, 60, 1)
    assert unix_ms() + 59_000 <= wait <= unix_ms() + 60_100
    assert store.charge("token", 1, 60, 1) == pytest.approx(wait, abs=50)  # denied: not pushed further
    assert store.charge("api", 1, 60, 1) == 0


def test_charge_across_threads_never_overspends(store: Store) -> None:
    granted: List[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(30):
            if store.charge("burst", 10, 60, 10) == 0:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 10


def test_gcra_bound() -> None:
    # requests=3 per 10 s, burst 3: three at once, then nothing for 10 s.
    tat = 0
    for _ in range(3):
        tat, wait = gcra(tat, 1_000, 3, 10, 3)
        assert wait == 0
    assert gcra(tat, 1_000, 3, 10, 3)[1] == 11_000
    assert gcra(tat, 11_000, 3, 10, 3)[1] == 0


def test_secrets_stay_out_of_repr_and_errors(store: Store) -> None:
    store.lease(7, 5_000)
    store.save(7, 0, SECRET)
    assert SECRET.decode() not in repr(store)
    assert store.load() == (1, SECRET)


# ---------------------------------------------------------------- FileStore only


def test_file_store_creates_0600_files(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = FileStore(tmp_path / "state")
        store.lease(1, 1_000)
        assert store.save(1, 0, SECRET) == ("stored", 1)
    finally:
        os.umask(old)
    for p in (tmp_path / "state", tmp_path / "state.lock"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert sorted(x.name for x in tmp_path.iterdir()) == ["state", "state.lock"]  # no temp file left


@pytest.mark.parametrize("which", ["state", "state.lock"])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o602])
def test_file_store_refuses_files_others_can_use(tmp_path: Path, which: str, mode: int) -> None:
    path = tmp_path / which
    path.write_bytes(b"")
    os.chmod(path, mode)
    with pytest.raises(StorePermissionError) as err:
        FileStore(tmp_path / "state").load()
    assert isinstance(err.value, StoreError) and "chmod 600" in str(err.value)


def test_file_store_error_texts_hold_no_state(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "state")
    store.lease(1, 5_000)
    store.save(1, 0, SECRET)
    os.chmod(tmp_path / "state", 0o644)
    with pytest.raises(StorePermissionError) as err:
        store.load()
    assert SECRET.decode() not in str(err.value) and SECRET.decode() not in repr(err.value)
    (tmp_path / "state").write_bytes(b"garbage " + SECRET)
    os.chmod(tmp_path / "state", 0o600)
    with pytest.raises(StoreCorrupt) as corrupt:
        store.load()
    assert SECRET.decode() not in str(corrupt.value)
    os.chmod(tmp_path, 0o500)  # the directory read-only: the save fails
    try:
        if os.geteuid() != 0:  # root writes anyway
            with pytest.raises(StoreUnavailable) as unwritable:
                store.save(1, 0, SECRET)
            assert SECRET.decode() not in str(unwritable.value)
    finally:
        os.chmod(tmp_path, 0o700)


def test_file_store_across_processes(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "state")
    assert store.lease(1, 5_000)[0]
    pid = os.fork()
    if pid == 0:  # the child: its own lock, the same lease
        code = 0 if (not store.lease(2, 5_000)[0] and store.save(2, 0, b"x")[0] == "not_holder") else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


# ---------------------------------------------------------------- RedisStore only


def test_redis_store_down_raises_store_unavailable(redis_server: RedisServer) -> None:
    store = RedisStore(redis_client(free_port()), "k")  # nothing listens there
    calls: List[Callable[[], Any]] = [
        store.load,
        lambda: store.lease(1, 100),
        lambda: store.save(1, 0, SECRET),
        lambda: store.release(1),
        lambda: store.charge("api", 1, 1, 1),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable) as err:
            call()
        assert SECRET.decode() not in str(err.value)


def test_redis_store_uses_the_documented_keys(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.flushall()
    store = RedisStore(client, "fa")
    store.lease(5, 10_000)
    assert client.get("fa:lease") == b"5" and 0 < client.pttl("fa:lease") <= 10_000
    store.save(5, 0, b"img")
    assert client.hgetall("fa") == {b"gen": b"1", b"state": b"img"}
    store.charge("api", 600, 60, 1)
    assert client.exists("fa:budget:api") and client.pttl("fa:budget:api") > 0
