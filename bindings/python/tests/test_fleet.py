"""A fleet of worker processes sharing one credential through a store (issue #21).

Against the emulator with 5 s tokens and Fentu's refresh-token rotation on: N
processes of M threads, each thread its own Session and requests adapter, all
sharing one FileStore, then one RedisStore. From the emulator's /_stats:

- token requests: about one per token lifetime for the whole fleet (no herd);
- no replayed refresh token, no revoked grant (the grant survives the run);
- API requests within the fleet's budget in every sliding window.

Sizes: FIELDAUTH_FLEET_PROCS (4), FIELDAUTH_FLEET_THREADS (2),
FIELDAUTH_FLEET_SECONDS (12); the issue's full run is
``FIELDAUTH_FLEET_PROCS=8 FIELDAUTH_FLEET_THREADS=4 FIELDAUTH_FLEET_SECONDS=120``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import fieldauth
from fieldauth import ActionKind, EventKind
from fieldauth.stores import FileStore, RedisStore
from conftest import Emulator, http_token_exchange
from fleet_common import API_BUDGET, WINDOW_S, config, profile
from redis_fixture import RedisServer, require_redis

HERE = Path(__file__).resolve().parent
PROCS = int(os.environ.get("FIELDAUTH_FLEET_PROCS", "4"))
THREADS = int(os.environ.get("FIELDAUTH_FLEET_THREADS", "2"))
SECONDS = float(os.environ.get("FIELDAUTH_FLEET_SECONDS", "12"))
LIFETIME_S = 5
EMULATOR_ARGS = ("--lifetime", str(LIFETIME_S), "--rotate-refresh-tokens", "--stats-window", str(WINDOW_S))


@pytest.fixture
def fleet_emulator() -> Iterator[Emulator]:
    emu = Emulator(*EMULATOR_ARGS)
    try:
        yield emu
    finally:
        emu.stop()


def stats(emu: Emulator, reset: bool = False) -> Dict[str, Any]:
    conn = emu.connection()
    try:
        conn.request("POST" if reset else "GET", "/_stats/reset" if reset else "/_stats")
        body: Dict[str, Any] = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return body


def bootstrap_fentu(emu: Emulator, store: Any) -> None:
    """A person logs in once (authorization code): the grant goes into the store as generation 1."""
    with profile("fentu").session(config(emu.base("fentu"), "fentu")) as s:
        assert s.poll().kind == ActionKind.NEED_AUTHORIZATION_CODE
        url = urllib.parse.urlsplit(s.authorization_url())
        conn = emu.connection()
        conn.request("GET", f"{url.path}?{url.query}")
        response = conn.getresponse()
        response.read()
        conn.close()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(response.getheader("Location", "")).query)
        s.set_authorization_code(query["code"][0], query["state"][0])
        assert http_token_exchange(s, emu).kind == EventKind.TOKEN_ISSUED
        assert store.lease(1, 1_000)[0]
        assert store.save(1, 0, s.snapshot()) == ("stored", 1)
        store.release(1)


def run_fleet(emu: Emulator, provider: str, spec: str, seconds: float, ttl_ms: int = 5_000) -> List["subprocess.Popen[str]"]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    return [
        subprocess.Popen(
            [sys.executable, str(HERE / "fleet_worker.py"), emu.base(provider), provider, spec,
             str(THREADS), str(seconds), str(PROCS), str(ttl_ms)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for _ in range(PROCS)
    ]


def results(procs: List["subprocess.Popen[str]"]) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=SECONDS + 120)
        assert p.returncode == 0, stderr
        assert "refresh_token" not in stderr and "Bearer" not in stderr, stderr  # no secret in a log line
        out.extend(json.loads(stdout.strip().splitlines()[-1]))
    return out


def check_fleet(emu: Emulator, threads: List[Dict[str, Any]], seconds: float) -> Dict[str, Any]:
    s = stats(emu)["providers"]["fentu"]
    window = s["windows"][str(WINDOW_S)]
    report = {"threads": threads, "fentu": s}
    # Every worker kept working, and nothing failed.
    assert all(t["ok"] > 0 and t["failed"] == 0 for t in threads), report
    # The grant survives: no rotated-out refresh token was sent again.
    assert s["refresh_replays"] == 0 and s["grants_revoked"] == 0, report
    # One token request per token lifetime for the whole fleet (refresh at 90 % of 5 s), not one per worker.
    assert 1 <= s["token_requests"] <= seconds / (LIFETIME_S * 0.9) + 2, report
    assert s["token_requests"] == s["token_succeeded"], report
    # The fleet's API budget in every sliding window, across all credentials.
    assert window["exact"] and window["api_requests_max"] <= API_BUDGET.requests, report
    assert window["api_requests_max_per_credential"] <= API_BUDGET.requests, report
    assert s["api_rejected"] == 0, report
    return report


def test_fleet_shares_one_grant_through_a_file_store(fleet_emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "fentu.state"
    bootstrap_fentu(fleet_emulator, FileStore(path))
    stats(fleet_emulator, reset=True)
    started = time.monotonic()
    threads = results(run_fleet(fleet_emulator, "fentu", f"file:{path}", SECONDS))
    check_fleet(fleet_emulator, threads, time.monotonic() - started)
    assert FileStore(path).load() is not None


def test_fleet_shares_one_grant_through_redis(fleet_emulator: Emulator) -> None:
    require_redis()
    server = RedisServer()
    try:
        store = RedisStore(server.client(), "fleet:fentu")
        bootstrap_fentu(fleet_emulator, store)
        stats(fleet_emulator, reset=True)
        started = time.monotonic()
        threads = results(run_fleet(fleet_emulator, "fentu", f"redis:{server.port}:fleet:fentu", SECONDS))
        check_fleet(fleet_emulator, threads, time.monotonic() - started)
        loaded = store.load()
        assert loaded is not None and loaded[0] >= 2  # refreshed and saved by the fleet
    finally:
        server.stop()


def test_a_worker_killed_holding_the_lease_delays_the_others_by_the_ttl_at_most(
    fleet_emulator: Emulator, tmp_path: Path
) -> None:
    """A worker takes the lease just before the refresh is due and is SIGKILLed: the
    others use their token until it expires, wait for the dead worker's lease to end
    (2 s), then one of them refreshes."""
    ttl_ms = 2_000
    path = tmp_path / "fentu.state"
    bootstrap_fentu(fleet_emulator, FileStore(path))
    issued = time.monotonic()
    stats(fleet_emulator, reset=True)
    procs = run_fleet(fleet_emulator, "fentu", f"file:{path}", 9, ttl_ms)
    time.sleep(max(0.0, issued + LIFETIME_S * 0.86 - time.monotonic()))  # just before the refresh is due
    doomed = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from fieldauth.stores import FileStore; "
         f"held = FileStore(sys.argv[1]).lease(999, {ttl_ms})[0]; print(held, flush=True); time.sleep(60)",
         str(path)],
        stdout=subprocess.PIPE, text=True,
    )
    assert doomed.stdout is not None
    took = doomed.stdout.readline().strip()
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    assert took == "True", "the doomed worker did not get the lease: a fleet worker refreshed early"
    threads = results(procs)
    s = stats(fleet_emulator)["providers"]["fentu"]
    assert all(t["ok"] > 0 and t["failed"] == 0 for t in threads), threads
    assert s["refresh_replays"] == 0 and s["grants_revoked"] == 0 and s["token_requests"] >= 1, s
    # Token valid for 0.7 s more when the lease was taken, then at most the TTL's rest
    # of waiting, a refresh, and the budget's spacing between one thread's calls.
    # The fleet's longest pause between two successful calls (any thread: one thread alone
    # also waits for its turn in the shared API budget).
    times = sorted(x for t in threads for x in t["times"])
    longest = max(b - a for a, b in zip(times, times[1:]))
    assert longest <= ttl_ms + 1_500, (longest, [t["gap_ms"] for t in threads])


def test_redis_stopped_and_restarted_empty_workers_keep_working_and_rejoin(fleet_emulator: Emulator) -> None:
    """Client credentials (Autotask, 5 s tokens): Redis is stopped for 3 s and comes back
    empty; every worker keeps calling (its own token, its share of the budgets), logs the
    failure once, and rejoins: the store holds the fleet's state again afterwards."""
    require_redis()
    server = RedisServer()
    try:
        procs = run_fleet(fleet_emulator, "autotask", f"redis:{server.port}:fleet:autotask", 11, 2_000)
        time.sleep(3)
        server.stop()
        time.sleep(3)
        server.start()  # empty: no persistence
        logs: List[str] = []
        threads: List[Dict[str, Any]] = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=60)
            assert p.returncode == 0, stderr
            threads.extend(json.loads(stdout.strip().splitlines()[-1]))
            logs.append(stderr)
        assert all(t["ok"] > 0 and t["failed"] == 0 for t in threads), (threads, logs)
        for stderr in logs:
            assert stderr.count("failed (") >= 1 and "answers again" in stderr, stderr
            assert "Bearer" not in stderr and "demo-secret" not in stderr, stderr
        loaded = RedisStore(server.client(), "fleet:autotask").load()
        assert loaded is not None, "nobody saved into the restarted store: the fleet did not rejoin"
        s = stats(fleet_emulator)["providers"]["autotask"]
        assert s["api_rejected"] == 0 and s["token_rate_limited"] == 0, s
    finally:
        server.stop()


def fleet_numbers(emu: Emulator, provider: str, spec: str, seconds: float) -> Dict[str, Any]:
    """One fleet run: its threads and the emulator's counters for the provider."""
    stats(emu, reset=True)
    started = time.monotonic()
    threads = results(run_fleet(emu, provider, spec, seconds))
    elapsed = time.monotonic() - started
    s = stats(emu)["providers"][provider]
    return {
        "seconds": round(elapsed, 1),
        "token_requests": s["token_requests"],
        "api_ok": sum(t["ok"] for t in threads),
        "api_max_per_window": s["windows"][str(WINDOW_S)]["api_requests_max"],
    }


def test_without_a_store_the_same_fleet_overspends(fleet_emulator: Emulator, tmp_path: Path) -> None:
    """The control of the fleet checks (they can fail): the same workers (Autotask, client
    credentials) without a store each fetch their own token and spend their own budget, so
    the fleet sends far more token requests and more API requests per window than the
    budget allows; with a FileStore the same run stays inside both. Prints both for
    BENCHMARKS.md."""
    seconds = 8.0
    # Shared first: the control overspends the token endpoint's 10 a minute, and its
    # 429s would hold up a run after it.
    shared = fleet_numbers(fleet_emulator, "autotask", f"file:{tmp_path / 'autotask.state'}", seconds)
    alone = fleet_numbers(fleet_emulator, "autotask", "none", seconds)
    print(f"\nfleet {PROCS}x{THREADS}, Autotask, {LIFETIME_S} s tokens: without a store {alone}; "
          f"with a FileStore {shared}")
    bound = seconds / (LIFETIME_S * 0.9) + 2
    assert alone["token_requests"] > bound, alone
    assert alone["api_max_per_window"] > API_BUDGET.requests, alone
    assert shared["token_requests"] <= bound + 1, shared
    assert shared["api_max_per_window"] <= API_BUDGET.requests, shared
