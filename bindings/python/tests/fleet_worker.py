"""One worker process of the fleet test: THREADS threads, each with its own Session and
requests adapter, all sharing one store, calling the emulator's API until DEADLINE.

    python fleet_worker.py BASE_URL PROVIDER STORE THREADS SECONDS FLEET_SIZE [LEASE_TTL_MS]

STORE is ``file:PATH`` or ``redis:PORT:KEY``; ``none`` (no store) and ``image:PATH``
(no store: each thread restores the session snapshot in PATH, the one grant they all
start from) are the controls. Prints one JSON line: ok / failed
counts, the longest gap between two successful calls of one thread (ms), when each
succeeded (CLOCK_MONOTONIC ms, comparable across processes), and the
errors' types (never their text: no secret leaves the worker).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, Dict, List

import requests

from fieldauth.requests import FieldAuth
from fieldauth.stores import FileStore, RedisStore

from fleet_common import API_PATH, config, profile


def make_store(spec: str) -> Any:
    kind, _, rest = spec.partition(":")
    if kind in ("none", "image"):  # the controls: every worker on its own, as without issue #21
        return None
    if kind == "file":
        return FileStore(rest)
    from redis_fixture import client

    port, _, key = rest.partition(":")
    return RedisStore(client(int(port)), key)


def main() -> None:
    base, provider, spec, threads, seconds, fleet = sys.argv[1:7]
    ttl = int(sys.argv[7]) if len(sys.argv) > 7 else 5_000
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    deadline = time.monotonic() + float(seconds)
    results: List[Dict[str, Any]] = []
    lock = threading.Lock()

    def work() -> None:
        store = make_store(spec)
        ok = failed = 0
        gap = 0.0
        errors: Dict[str, int] = {}
        times: List[int] = []
        last = time.monotonic()
        with profile(provider).session(config(base, provider)) as session, requests.Session() as http:
            if spec.startswith("image:"):
                with open(spec.partition(":")[2], "rb") as f:
                    session.restore(f.read())
            http.auth = FieldAuth(session, store=store, fleet_size=int(fleet), lease_ttl_ms=ttl, max_wait_s=30)
            while time.monotonic() < deadline:
                try:
                    r = http.get(base + API_PATH[provider], timeout=10)
                    if r.status_code == 200:
                        ok += 1
                        now = time.monotonic()
                        times.append(int(now * 1000))
                        gap = max(gap, now - last)
                        last = now
                    else:
                        failed += 1
                        errors[f"HTTP {r.status_code}"] = errors.get(f"HTTP {r.status_code}", 0) + 1
                except Exception as exc:  # counted by type only
                    failed += 1
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    time.sleep(0.05)
        with lock:
            results.append({"ok": ok, "failed": failed, "gap_ms": int(gap * 1000), "errors": errors, "times": times})

    workers = [threading.Thread(target=work) for _ in range(int(threads))]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
