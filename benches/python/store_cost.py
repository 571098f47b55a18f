"""The added cost of a shared store per API request (issue #21), Python binding.

One process, one thread: the median of N calls of `Session.authorize()` alone,
and of the store's `charge("api", ...)` followed by `authorize()`, for the
FileStore (flock, temporary file, fsync, rename) and the RedisStore (one Lua
script, one round trip to a redis-server on 127.0.0.1), in the same run.

    target/py-venv/bin/python benches/python/store_cost.py [N]

Needs the package installed (bash bindings/python/run-tests.sh builds
target/py-venv) and redis-server on PATH for the Redis row.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python" / "tests"))

import fieldauth  # noqa: E402
from fieldauth import Config, Preset, Profile, Session  # noqa: E402
from fieldauth.stores import FileStore, RedisStore  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
TOKEN = (
    b'{"access_token":"' + b"t" * 900 + b'","token_type":"Bearer","expires_in":86400}'
)


def session() -> Session:
    p = Profile.preset(Preset.AUTOTASK)
    p.api_budget = fieldauth.Budget(1_000_000_000, 1, 1_000_000_000)  # never the limit here
    s = Session(p, Config(base_url="http://127.0.0.1:9", client_id="id", client_secret="secret"))
    s.write_token_request()
    s.feed_token_response(200, [("Content-Type", "application/json")], TOKEN)
    return s


def median_us(f, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        f()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000


def main() -> None:
    s = session()
    rows = {"authorize() alone": median_us(lambda: s.authorize("/x"), N)}
    with tempfile.TemporaryDirectory() as d:
        fs = FileStore(Path(d) / "bench.state")
        rows["FileStore.charge + authorize()"] = median_us(
            lambda: (fs.charge("api", 1_000_000_000, 1, 1_000_000_000), s.authorize("/x")), N
        )
    try:
        from redis_fixture import RedisServer

        server = RedisServer()
        try:
            rs = RedisStore(server.client(), "bench")
            rows["RedisStore.charge + authorize()"] = median_us(
                lambda: (rs.charge("api", 1_000_000_000, 1, 1_000_000_000), s.authorize("/x")), N
            )
        finally:
            server.stop()
    except Exception as e:  # no redis-server or redis-py here
        print(f"(RedisStore row skipped: {type(e).__name__})")
    base = rows["authorize() alone"]
    for name, us in rows.items():
        print(f"{name:34} median {us:8.1f} µs   (+{us - base:7.1f} µs)")


if __name__ == "__main__":
    main()
