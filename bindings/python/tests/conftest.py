"""Shared fixtures: canned responses, sessions, and the provider emulator on loopback."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

import fieldauth
from fieldauth import Config, Preset, Session

REPO = Path(__file__).resolve().parents[3]
HEADER = REPO / "include" / "fieldauth.h"

BASE = "http://127.0.0.1:9/autotask"
T0 = 1_000_000  # a monotonic "now" for the offline tests


def autotask_config(base: str = BASE) -> Config:
    return Config(base_url=base, client_id="demo-client", client_secret="demo-secret")


@pytest.fixture
def autotask() -> Iterator[Session]:
    with Session(Preset.AUTOTASK, autotask_config(), seed=1) as s:
        yield s


def token_json(token: str = "tok-1", expires_in: int = 3600, **extra: object) -> bytes:
    body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    body.update(extra)
    return json.dumps(body).encode()


JSON = [("Content-Type", "application/json")]


def issue_token(session: Session, now: int = T0, token: str = "tok-1", **extra: object) -> fieldauth.Event:
    """Runs one offline token exchange with a canned 200 response."""
    assert session.poll(now).kind == fieldauth.ActionKind.SEND_TOKEN_REQUEST
    session.write_token_request(now)
    return session.feed_token_response(200, JSON, token_json(token, **extra), now_ms=now)


# ---------------------------------------------------------------- the emulator


def find_emulator() -> Path:
    env = os.environ.get("FIELDAUTH_EMULATOR")
    if env:
        return Path(env)
    for profile in ("debug", "release"):
        candidate = REPO / "target" / profile / "fieldauth-emulator"
        if candidate.is_file():
            return candidate
    pytest.fail(
        "fieldauth-emulator not found under target/: build it with "
        "`cargo build -p fieldauth-emulator` (run-tests.sh does) or set FIELDAUTH_EMULATOR"
    )


class Emulator:
    """A running fieldauth-emulator on a free loopback port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(find_emulator()), "--port", "0", "--quiet", "--seed", "7", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().decode()
        # Keep draining its output: a closed pipe would kill it when it prints.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.host = "127.0.0.1"
        self.port = int(first.strip().rsplit(":", 1)[1])

    def base(self, provider: str) -> str:
        return f"http://{self.host}:{self.port}/{provider}"

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """An emulator; ``@pytest.mark.emulator_args(...)`` passes it flags."""
    marker = request.node.get_closest_marker("emulator_args")
    args: Tuple[str, ...] = tuple(marker.args) if marker else ()
    emu = Emulator(*args)
    try:
        yield emu
    finally:
        emu.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "emulator_args(*args): flags for the emulator fixture")


def http_token_exchange(session: Session, emu: Emulator) -> fieldauth.Event:
    """One token exchange through http.client (write_token_request_parts + feed_token_response)."""
    request = session.write_token_request_parts()
    conn = emu.connection()
    try:
        conn.request(request.method, request.target, body=request.body, headers=dict(request.headers))
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return session.feed_token_response(response.status, response.getheaders(), body, reason=response.reason)


def http_get(session: Session, emu: Emulator, target: str) -> Tuple[int, bytes, fieldauth.Verdict]:
    """One authorized GET through http.client, reported to the session."""
    auth = session.authorize(target)
    assert auth.kind == fieldauth.AuthorizationKind.SEND, auth
    headers = {}
    path = target
    if auth.credential == fieldauth.CredentialForm.HEADER:
        assert auth.header is not None
        headers[auth.header[0]] = auth.header[1]
    else:
        assert auth.target is not None
        path = auth.target
    conn = emu.connection()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    verdict = session.report_api_result(response.status, response.getheaders(), body[:256])
    return response.status, body, verdict


LogT = List[str]
