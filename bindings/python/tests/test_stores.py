"""The stores' contract (issue #21): FileStore and RedisStore, the same tests for both."""

from __future__ import annotations

import os
import random
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
    gcra_params,
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


def test_gcra_params_give_the_librarys_step() -> None:
    """The Redis script's step (Lua on the server, from gcra_params) and the library's
    (fieldauth_store_charge_cell, which FileStore and C stores use) agree on random budgets
    and arrival times, so every store charges by one rule."""
    rng = random.Random(21)
    for _ in range(300):
        requests = rng.randint(1, 700)
        window_s, burst = rng.randint(1, 3_600), rng.randint(0, requests + 3)
        interval, tolerance = gcra_params(requests, window_s, burst)
        tat = lua_tat = 0
        now = rng.randint(0, 2**41)
        for _ in range(20):
            now += rng.randint(0, 2 * interval)
            # The Lua script: tat = max(stored, now); wait if tat - now > tolerance.
            t = max(lua_tat, now)
            lua = (lua_tat, t - tolerance) if t - now > tolerance else (t + interval, 0)
            tat, wait = gcra(tat, now, requests, window_s, burst)
            assert (tat, wait) == lua, (requests, window_s, burst, now)
            lua_tat = tat
    for bad in ((0, 0, 0, 10, 1), (0, 0, 1, 0, 1), (-1, 0, 1, 1, 1), (0, 0, 2**32, 1, 1), (0, 0, 1, 1, True)):
        with pytest.raises(ValueError):
            gcra(*bad)


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
    (tmp_path / "state").unlink()
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


GOLDEN = Path(__file__).resolve().parents[3] / "core" / "tests" / "fixtures" / "file-store-v1.bin"
T = 1_700_000_000_000
A = 0x0102_0304_0506_0708
B = 0x1122_3344_5566_7788
TWO = b"state two \x00\x01\xfe\xff"


class FakeClock:
    """The store's clock, set by the test (Unix ms)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_file_store_writes_the_rust_golden_file(tmp_path: Path) -> None:
    """The operations of core/tests/file_store.rs golden_file_of_a_fixed_sequence, with the
    same answers and byte for byte the same file (format FAst v1, the Rust FileStore's)."""
    clock = FakeClock(T)
    path = tmp_path / "fleet.store"
    a = FileStore(path, clock=clock)
    b = FileStore(path, clock=clock)
    assert a.lease(A, 30_000) == (True, T + 30_000)
    assert a.save(A, 0, b"state one") == ("stored", 1)
    assert a.charge("token", 10, 60, 1) == 0
    clock.now = T + 1
    for _ in range(4):
        assert a.charge("api", 40, 10, 4) == 0
    assert a.charge("api", 40, 10, 4) == T + 1 + 271  # 10 s / (40 - 4 + 1), 3 of them tolerance
    clock.now = T + 1_000
    assert b.lease(B, 5_000) == (False, T + 30_000)
    clock.now = T + 2_000
    a.release(A)
    assert b.lease(B, 5_000) == (True, T + 7_000)
    assert b.save(B, 0, b"x") == ("stale", 1)
    assert b.save(B, 1, TWO) == ("stored", 2)
    assert a.save(A, 2, b"x") == ("not_holder", 2)
    clock.now = T + 3_000
    assert b.charge("api:tenant-42", 3, 1, 2) == 0
    assert b.charge("token", 10, 60, 1) == T + 6_000
    assert path.read_bytes() == GOLDEN.read_bytes()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["fleet.store", "fleet.store.lock"]


def test_file_store_reads_the_rust_golden_file(tmp_path: Path) -> None:
    """The file the Rust FileStore wrote: its state, generation, lease and budgets."""
    path = tmp_path / "fleet.store"
    path.write_bytes(GOLDEN.read_bytes())
    os.chmod(path, 0o600)
    clock = FakeClock(T + 1)
    store = FileStore(path, clock=clock)
    assert store.load() == (2, TWO)
    assert store.lease(A, 1_000) == (False, T + 7_000)  # B's lease
    assert store.charge("token", 10, 60, 1) == T + 6_000  # one granted at T, one a minute
    assert store.charge("api", 40, 10, 4) == T + 1 + 271  # four granted at T + 1
    clock.now = T + 3_000
    assert store.charge("api:tenant-42", 3, 1, 2) == 0  # one granted at T + 3 s, a burst of 2
    assert store.charge("api:tenant-42", 3, 1, 2) == T + 3_000 + 500
    clock.now = T + 7_000
    assert store.lease(A, 1_000) == (True, T + 8_000)  # B's lease ended
    assert path.read_bytes() != GOLDEN.read_bytes()


def test_file_store_format_errors_are_store_corrupt(tmp_path: Path) -> None:
    """The Rust FileStore's corruption checks, with its reasons; nothing is written over the file."""
    path = tmp_path / "fleet.store"
    good = GOLDEN.read_bytes()
    store = FileStore(path, clock=FakeClock(T))
    flipped = bytearray(good)
    flipped[-8] ^= 1
    version = bytearray(good)
    version[4] = 2
    cases = [
        (bytes(flipped), "checksum mismatch"),
        (good[:-1], "checksum mismatch"),
        (b"", "too short"),
        (bytes(64), "not a fieldauth store file"),
        (bytes(version), "unknown format version"),
    ]
    for data, reason in cases:
        path.write_bytes(data)
        for call in (store.load, lambda: store.lease(9, 1_000), lambda: store.charge("api", 1, 1, 1),
                     lambda: FileStore(path)):
            with pytest.raises(StoreCorrupt) as err:
                call()
            assert f"({reason})" in str(err.value) and "state two" not in str(err.value)
        assert path.read_bytes() == data
    path.unlink()  # the remedy: the next operation starts an empty store
    assert store.load() is None
    assert store.lease(9, 1_000)[0] and store.save(9, 0, b"anew") == ("stored", 1)


def test_file_store_syncs_the_directory_only_for_a_new_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rewrite syncs the file before its rename (a power loss leaves the old file or the
    new one); only a new state, which may hold a rotated refresh token, also syncs the directory
    so that the rename survives. A lease, a release or a charge alone skips that sync."""
    import fieldauth.stores as stores

    store = FileStore(tmp_path / "state")
    synced: List[str] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(stores.os, "fsync", counting_fsync)

    def syncs(step: Callable[[], Any]) -> List[str]:
        synced.clear()
        step()
        return list(synced)

    assert syncs(lambda: store.lease(7, 5_000)) == ["file"]
    assert syncs(lambda: store.charge("api", 2, 60, 2)) == ["file"]
    assert syncs(lambda: store.save(7, 0, b"state one")) == ["file", "dir"]
    assert syncs(lambda: store.save(7, 1, b"state two")) == ["file", "dir"]
    assert syncs(lambda: store.charge("api", 2, 60, 2)) == ["file"]
    assert syncs(lambda: store.charge("api", 2, 60, 2)) == []  # refused: nothing written
    assert syncs(lambda: store.release(7)) == ["file"]
    assert syncs(lambda: store.release(7)) == []  # nothing changed: nothing written
    assert store.load() == (2, b"state two")


def test_file_store_budget_names(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s")
    for bad in ("", "x" * 33, "\u00e9" * 17):
        with pytest.raises(ValueError):
            store.charge(bad, 1, 1, 1)
    assert store.charge("x" * 32, 1, 1, 1) == 0
    for i in range(31):
        assert store.charge(f"b{i}", 1, 1, 1) == 0
    with pytest.raises(StoreError) as err:
        store.charge("one-too-many", 1, 1, 1)
    assert "32 budget names" in str(err.value)


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
