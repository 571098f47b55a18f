"""A throwaway redis-server on 127.0.0.1 (a free port, no persistence) for the store tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Any, List, Optional

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_redis() -> Any:
    """The redis module, or a skip naming what is missing (CI has both)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("FIELDAUTH_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not installed and FIELDAUTH_REQUIRE_REDIS=1 (.ci/run installs it)")
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)")
    try:
        import redis
    except ImportError:
        if os.environ.get("FIELDAUTH_REQUIRE_REDIS") == "1":
            pytest.fail("redis-py is missing and FIELDAUTH_REQUIRE_REDIS=1: pip install './bindings/python[redis]'")
        pytest.skip("redis-py is missing: pip install './bindings/python[redis]'")
    return redis


class RedisServer:
    """``redis-server --port P --save "" --appendonly no`` on loopback; stop() and start() again (empty)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.start()

    def start(self) -> None:
        args: List[str] = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--loglevel", "warning", "--dir", "/tmp",
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def client(self) -> Any:
        return client(self.port)


def client(port: int) -> Any:
    """A client that fails fast (short timeouts, no retries): what a worker wants from its store."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
