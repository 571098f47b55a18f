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
