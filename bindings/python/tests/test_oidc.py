"""End to end against an independent OAuth 2.0 server, panva's oidc-provider (issue #14).

``tests/oidc/server.mjs`` (5 s access tokens) is started once for this module
on 127.0.0.1; every token exchange goes through :meth:`fieldauth.Session.exchange`
over a real socket, every API call to its protected resource ``GET /api/me``
through :meth:`~fieldauth.Session.authorize` and
:meth:`~fieldauth.Session.report_api_result`. The same checks as the C test
(``tests/c/oidc_e2e.c``): client_credentials with Basic (an id and secret that
need form-urlencoding) and with post, a wrong secret, proactive refresh of 5 s
tokens in real time, a 401 at ``/api/me`` and the recovery, revocation of the
access token alone and of the grant.

Needs Node.js; ``tests/oidc/node_modules`` is installed with ``npm ci`` when
missing or older than the lock file (under the lock directory the Rust tests
use). Without ``node`` every test here is skipped with a loud banner, unless
``FIELDAUTH_REQUIRE_OIDC=1`` (set by ``.ci/run``), which makes that a failure.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import fieldauth
from fieldauth import (
    ActionKind,
    ClientAuth,
    Config,
    EventKind,
    Failure,
    Mode,
    Preset,
    Profile,
    RequestKind,
    Revocation,
    Session,
    VerdictKind,
)

from conftest import REPO

OIDC_DIR = REPO / "tests" / "oidc"
BASIC_ID = "basic client:1"
BASIC_SECRET = "p@ss:w/rd+&=%"
POST_ID = "post-client"
POST_SECRET = "post-secret"
RESOURCE = "urn:fieldauth:api"
API = "/api/me"

BANNER = (
    "!!!!!!!!!! OIDC-PROVIDER PYTHON TESTS SKIPPED: `node` is not on the PATH, so the "
    "Python binding was NOT tested against oidc-provider (Debian: apt-get install nodejs npm; "
    "`bash .ci/run` installs them) !!!!!!!!!!"
)


# ---------------------------------------------------------------- the server


def _installed() -> bool:
    done = OIDC_DIR / "node_modules" / ".package-lock.json"
    lock = OIDC_DIR / "package-lock.json"
    return done.is_file() and done.stat().st_mtime >= lock.stat().st_mtime


def _ensure_installed() -> None:
    """``npm ci`` when needed, under ``tests/oidc/.install.lock`` (shared with the Rust tests)."""
    if _installed():
        return
    lock = OIDC_DIR / ".install.lock"
    started = time.monotonic()
    while True:
        try:
            lock.mkdir()
            break
        except FileExistsError:
            if time.time() - lock.stat().st_mtime > 600:
                lock.rmdir()  # left over by a process that died
            elif time.monotonic() - started > 300:
                pytest.fail(f"{lock} is held for 5 minutes")
            time.sleep(0.2)
    try:
        if not _installed():
            print("tests/oidc: npm ci (installing oidc-provider from package-lock.json)", file=sys.stderr)
            out = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(OIDC_DIR)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                pytest.fail(f"npm ci failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    finally:
        lock.rmdir()


class Oidc:
    """A running ``server.mjs``; its stderr is kept for failure messages."""

    def __init__(self, access_ttl_s: int = 5) -> None:
        env = dict(os.environ, OIDC_PORT="0", OIDC_ACCESS_TTL_S=str(access_ttl_s), OIDC_EXIT_ON_STDIN_EOF="1")
        self.proc = subprocess.Popen(
            ["node", str(OIDC_DIR / "server.mjs")],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.log: List[bytes] = []
        stdout, stderr = self.proc.stdout, self.proc.stderr
        threading.Thread(target=lambda: self.log.extend(iter(stderr.readline, b"")), daemon=True).start()
        first: List[bytes] = []
        reader = threading.Thread(target=lambda: first.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        line = first[0].decode().strip() if first else ""
        if not line.isdigit():
            self.stop()
            pytest.fail(f"server.mjs printed no port (first stdout line {line!r}); stderr:\n{self.stderr()}")
        self.port = int(line)
        self.base = f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return b"".join(self.log).decode(errors="replace")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture(scope="module")
def oidc() -> Iterator[Oidc]:
    if shutil.which("node") is None:
        if os.environ.get("FIELDAUTH_REQUIRE_OIDC") == "1":
            pytest.fail(f"{BANNER} (FIELDAUTH_REQUIRE_OIDC=1)")
        # Past pytest's output capture: a skip must not go unnoticed.
        print(f"\n{BANNER}\n", file=sys.__stderr__)
        pytest.skip(BANNER)
    _ensure_installed()
    server = Oidc()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- the client


def session(srv: Oidc, auth: ClientAuth, client_id: str, secret: str, scope: str) -> Session:
    """A client_credentials session with a custom profile for oidc-provider's routes."""
    profile = Profile.preset(Preset.CUSTOM)
    profile.name = "oidc-provider"
    profile.mode = Mode.CLIENT_CREDENTIALS
    profile.client_auth = auth
    profile.token_path = "/token"
    profile.authorize_path = "/auth"
    profile.device_path = "/device/auth"
    profile.revoke_path = "/token/revocation"
    cfg = Config(base_url=srv.base, client_id=client_id, client_secret=secret, scope=scope)
    return Session(profile, cfg)


def basic_session(srv: Oidc, scope: str = "api:read") -> Session:
    return session(srv, ClientAuth.BASIC, BASIC_ID, BASIC_SECRET, scope)


def post_session(srv: Oidc, scope: str = "api:read") -> Session:
    return session(srv, ClientAuth.BODY, POST_ID, POST_SECRET, scope)


def exchange(s: Session, srv: Oidc, request_kind: RequestKind = RequestKind.FETCH) -> fieldauth.Event:
    """Polls (a token request of ``request_kind`` must be due) and runs the exchange on a new socket."""
    action = s.poll()
    assert action.kind == ActionKind.SEND_TOKEN_REQUEST, action
    assert action.request_kind == request_kind, action
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        return s.exchange(sock)


def assert_issued(event: fieldauth.Event) -> None:
    assert event.kind == EventKind.TOKEN_ISSUED, event
    assert event.request_kind == RequestKind.FETCH, event
    assert (event.lifetime_s, event.refreshable) == (5, False), event


def raw(srv: Oidc, method: str, path: str, headers: Dict[str, str], body: str = "") -> Tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, body=body.encode() or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def api_me(s: Session, srv: Oidc) -> Tuple[int, Any, fieldauth.Verdict]:
    """``GET /api/me`` with the session's credential, reported back: status, JSON body, verdict."""
    auth = s.authorize(API)
    assert auth.kind == fieldauth.AuthorizationKind.SEND, auth
    assert auth.credential == fieldauth.CredentialForm.HEADER and auth.header is not None
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", API, headers={auth.header[0]: auth.header[1], "Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    verdict = s.report_api_result(response.status, response.getheaders(), body[:256])
    return response.status, json.loads(body or b"null"), verdict


def api_me_ok(s: Session, srv: Oidc) -> Any:
    status, me, verdict = api_me(s, srv)
    assert (status, verdict.kind) == (200, VerdictKind.OK), (status, me, verdict, srv.stderr())
    return me


def token_of(s: Session) -> str:
    """The access token the session hands out now."""
    auth = s.authorize(API)
    assert auth.kind == fieldauth.AuthorizationKind.SEND and auth.header is not None, auth
    name, value = auth.header
    assert name == "Authorization" and value.startswith("Bearer "), name
    return value[len("Bearer ") :]


def raw_get_me(srv: Oidc, token: str) -> int:
    return raw(srv, "GET", API, {"Authorization": f"Bearer {token}"})[0]


def revoke_behind_the_back(srv: Oidc, token: str) -> None:
    status, body = raw(
        srv,
        "POST",
        "/token/revocation",
        {"Content-Type": "application/x-www-form-urlencoded"},
        f"token={token}&client_id={POST_ID}&client_secret={POST_SECRET}",
    )
    assert status == 200, body


# ---------------------------------------------------------------- tests


def test_client_credentials_basic_with_special_character_secret(oidc: Oidc) -> None:
    with basic_session(oidc) as s:
        assert_issued(exchange(s, oidc))
        assert s.info().last_http_status == 200
        assert s.granted_scope() == "api:read"
        me = api_me_ok(s, oidc)
        assert (me["client_id"], me["scope"], me["aud"]) == (BASIC_ID, "api:read", RESOURCE)


def test_client_credentials_post(oidc: Oidc) -> None:
    with post_session(oidc, "api:read api:write") as s:
        assert_issued(exchange(s, oidc))
        assert s.granted_scope() == "api:read api:write"
        me = api_me_ok(s, oidc)
        assert (me["client_id"], me["scope"]) == (POST_ID, "api:read api:write")


@pytest.mark.parametrize(
    "auth,client_id,secret",
    [(ClientAuth.BASIC, BASIC_ID, "p@ss:w/rd+&="), (ClientAuth.BODY, POST_ID, "not-the-secret")],
)
def test_wrong_secret_is_invalid_client(oidc: Oidc, auth: ClientAuth, client_id: str, secret: str) -> None:
    with session(oidc, auth, client_id, secret, "") as s:
        event = exchange(s, oidc)
        assert event.kind == EventKind.FAILED and event.failure == Failure.INVALID_CLIENT, event
        action = s.poll()
        assert action.kind == ActionKind.FAILED and action.failure == Failure.INVALID_CLIENT
        info = s.info()
        assert (info.last_http_status, info.last_content_json, info.usable) == (401, True, False)
        with pytest.raises(fieldauth.SessionFailed) as caught:
            s.raise_if_failed()
        assert caught.value.failure == Failure.INVALID_CLIENT
        assert caught.value.description == "client authentication failed"
        assert secret not in str(caught.value)


def test_proactive_refresh_of_five_second_tokens(oidc: Oidc) -> None:
    """About 7 s of calls every 200 ms: each next token is fetched early (at
    least 2 s before expiry), the old one still works meanwhile, no call fails."""
    tokens: List[str] = []
    calls = 0
    with basic_session(oidc) as s:
        end = time.monotonic() + 7
        while time.monotonic() < end:
            action = s.poll()
            if action.kind == ActionKind.SEND_TOKEN_REQUEST:
                if tokens:
                    assert s.info().usable, "refresh due only after expiry"
                    assert raw_get_me(oidc, token_of(s)) == 200
                assert_issued(exchange(s, oidc))
                info = s.info()
                assert info.expires_at_ms - info.refresh_at_ms >= 2000
                token = token_of(s)
                assert token not in tokens
                tokens.append(token)
            else:
                assert action.kind == ActionKind.READY, action
            assert api_me_ok(s, oidc)["client_id"] == BASIC_ID
            calls += 1
            time.sleep(0.2)
    assert len(tokens) >= 3 and calls >= 20, (len(tokens), calls)


def test_api_401_for_a_revoked_token_fetches_a_new_one(oidc: Oidc) -> None:
    with post_session(oidc) as s:
        assert_issued(exchange(s, oidc))
        api_me_ok(s, oidc)
        old = token_of(s)
        revoke_behind_the_back(oidc, old)
        status, body, verdict = api_me(s, oidc)
        assert status == 401 and body["error"] == "invalid_token", body
        assert verdict.kind == VerdictKind.RETRY_WITH_NEW_TOKEN
        assert not s.info().usable
        assert_issued(exchange(s, oidc))
        assert token_of(s) != old
        api_me_ok(s, oidc)


def test_revocation_of_the_access_token_then_of_the_grant(oidc: Oidc) -> None:
    with post_session(oidc) as s:
        assert_issued(exchange(s, oidc))
        first = token_of(s)
        s.revoke(Revocation.ACCESS)
        assert exchange(s, oidc, RequestKind.REVOKE).kind == EventKind.REVOKED
        info = s.info()
        assert (info.last_http_status, info.last_content_json) == (200, False), "oidc-provider answers text/plain"
        assert info.failure == Failure.NONE and not info.usable
        assert raw_get_me(oidc, first) == 401
        # The session goes on: a new token.
        assert_issued(exchange(s, oidc))
        second = token_of(s)
        assert second != first
        api_me_ok(s, oidc)

        s.revoke(Revocation.GRANT)
        assert exchange(s, oidc, RequestKind.REVOKE).kind == EventKind.REVOKED
        action = s.poll()
        assert action.kind == ActionKind.FAILED and action.failure == Failure.REVOKED
        assert s.authorize(API).kind == fieldauth.AuthorizationKind.NO_CREDENTIAL
        assert raw_get_me(oidc, second) == 401
