"""End to end against an independent OAuth 2.0 server, panva's oidc-provider (issue #14).

``tests/oidc/server.mjs`` (5 s access tokens) is started once for this module
on 127.0.0.1; every token exchange goes through :meth:`fieldauth.Session.exchange`
over a real socket, every API call to its protected resource ``GET /api/me``
through :meth:`~fieldauth.Session.authorize` and
:meth:`~fieldauth.Session.report_api_result`. The same checks as the C test
(``tests/c/oidc_e2e.c``): client_credentials with Basic (an id and secret that
need form-urlencoding) and with post, a wrong secret, proactive refresh of 5 s
tokens in real time, a 401 at ``/api/me`` and the recovery, revocation of the
access token alone and of the grant. Then the flows with a user, whose browser
steps the test performs over HTTP (oidc-provider's ``/device`` pages, login
and consent): the device flow to completion with ``offline_access``, refresh
with rotation and a replayed refresh token that revokes the grant; the
authorization code flow with PKCE S256, ``prompt=consent`` (and ``nonce``,
``login_hint``) through ``Config(authorize_params=...)``, the redirect through
:meth:`~fieldauth.Session.on_authorization_callback` (state and ``iss``,
RFC 9207), a rotated refresh, and its control without ``prompt=consent``. The
server runs with ``OIDC_REFRESH_RULE=offline_access`` (oidc-provider's own
refresh-token rule, see ``tests/oidc/README.md``).

Needs Node.js; ``tests/oidc/node_modules`` is installed with ``npm ci`` when
missing or older than the lock file (under the lock directory the Rust tests
use). Without ``node`` every test here is skipped with a loud banner, unless
``FIELDAUTH_REQUIRE_OIDC=1`` (set by ``.ci/run``), which makes that a failure.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

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
    monotonic_ms,
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
        # OIDC_REFRESH_RULE=offline_access: oidc-provider's own rule (a refresh
        # token only for a grant that kept offline_access), without the
        # code-flow override the Rust tests use, so the code flow below gets a
        # refresh token only because the session sent prompt=consent.
        env = dict(
            os.environ,
            OIDC_PORT="0",
            OIDC_ACCESS_TTL_S=str(access_ttl_s),
            OIDC_EXIT_ON_STDIN_EOF="1",
            OIDC_REFRESH_RULE="offline_access",
        )
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


def api_me(s: Session, srv: Oidc, now_ms: Optional[int] = None) -> Tuple[int, Any, fieldauth.Verdict]:
    """``GET /api/me`` with the session's credential, reported back: status, JSON body, verdict."""
    auth = s.authorize(API, now_ms)
    assert auth.kind == fieldauth.AuthorizationKind.SEND, auth
    assert auth.credential == fieldauth.CredentialForm.HEADER and auth.header is not None
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", API, headers={auth.header[0]: auth.header[1], "Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    verdict = s.report_api_result(
        response.status, response.getheaders(), body[:256], now_ms=now_ms, token_id=auth.token_id
    )
    return response.status, json.loads(body or b"null"), verdict


def api_me_ok(s: Session, srv: Oidc, now_ms: Optional[int] = None) -> Any:
    status, me, verdict = api_me(s, srv, now_ms)
    assert (status, verdict.kind) == (200, VerdictKind.OK), (status, me, verdict, srv.stderr())
    return me


def token_of(s: Session, now_ms: Optional[int] = None) -> str:
    """The access token the session hands out now."""
    auth = s.authorize(API, now_ms)
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


# ---------------------------------------------------------------- the browser steps
#
# The device flow and the code flow need a user: the test plays one over HTTP
# against oidc-provider's development pages (devInteractions: any login and
# password are accepted, consent is one button) and its device pages
# (``/device``: a user-code form with an xsrf field, then a confirmation
# form). Redirects are followed by hand (oidc-provider sends relative
# Locations), cookies are kept by http.cookiejar (scoped to their paths).

#: The redirect URI both clients are registered with (server.mjs).
REDIRECT_URI = "http://127.0.0.1/callback"
#: The account the browser logs in as.
USER = "alice"


class Page:
    """A page or a redirect."""

    def __init__(self, status: int, location: Optional[str], body: str) -> None:
        self.status = status
        self.location = location  # as sent: oidc-provider sends relative ones
        self.body = body


class Browser:
    """One user's browser: cookies, and the URLs it was sent to."""

    def __init__(self, srv: Oidc) -> None:
        self.srv = srv
        self.jar = http.cookiejar.CookieJar()
        self.relative_locations = 0
        self.prompts: List[str] = []
        self.login_page = ""  # the last login form shown

    def request(self, method: str, url: str, form: Optional[Dict[str, str]] = None) -> Page:
        url = urllib.parse.urljoin(self.srv.base + "/", url)
        assert url.startswith(self.srv.base + "/"), f"a page elsewhere: {url}"
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=body, method=method)
        self.jar.add_cookie_header(req)
        headers = {"Accept": "text/html", **dict(req.header_items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        try:
            conn.request(method, req.selector, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
            self.jar.extract_cookies(response, req)
        finally:
            conn.close()
        assert response.status < 400, f"{method} {url}: {response.status}\n{text}\nstderr:\n{self.srv.stderr()}"
        location = response.getheader("Location")
        if location is not None and location.startswith("/"):
            self.relative_locations += 1
        return Page(response.status, location, text)

    def log_in_and_consent(self, location: str) -> Tuple[Optional[str], str]:
        """Follows redirects from ``location`` and answers the login and consent
        pages until a redirect to :data:`REDIRECT_URI` (``(url, "")``) or a page
        that asks nothing more (``(None, its body)``)."""
        url = urllib.parse.urljoin(self.srv.base + "/", location)
        for _ in range(12):
            if url.startswith(REDIRECT_URI):
                return url, ""
            page = self.request("GET", url)
            if page.location is not None:
                url = urllib.parse.urljoin(url, page.location)
                continue
            prompt = field(page.body, "prompt")
            if prompt is None:
                return None, page.body
            if prompt == "login":
                form = {"prompt": "login", "login": USER, "password": "anything"}
                self.login_page = page.body
            elif prompt == "consent":
                form = {"prompt": "consent"}
            else:
                pytest.fail(f"unexpected prompt {prompt!r}:\n{page.body}")
            self.prompts.append(prompt)
            answer = self.request("POST", url, form)
            assert answer.location is not None, f"{url}: no redirect after the form\n{answer.body}"
            url = urllib.parse.urljoin(url, answer.location)
        pytest.fail(f"more than 12 steps, at {url}")


def field(html: str, name: str) -> Optional[str]:
    """The value of the ``<input name="NAME" value="...">`` in an HTML page."""
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), html)
    return None if m is None else m.group(1)


def query(url: str) -> Dict[str, str]:
    """The query parameters of ``url`` (each must appear once)."""
    pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    params = dict(pairs)
    assert len(params) == len(pairs), f"a repeated parameter: {url}"
    return params


def approve_device(srv: Oidc, verification_uri: str, user_code: str) -> Browser:
    """The user enters ``user_code`` at ``/device``, confirms it, logs in and consents."""
    b = Browser(srv)
    entry = b.request("GET", verification_uri)
    assert "op.deviceInputForm" in entry.body, entry.body
    xsrf = field(entry.body, "xsrf")
    assert xsrf is not None, entry.body
    confirm = b.request("POST", "/device", {"xsrf": xsrf, "user_code": user_code})
    assert "op.deviceConfirmForm" in confirm.body, confirm.body
    assert field(confirm.body, "user_code") == user_code
    xsrf = field(confirm.body, "xsrf")
    assert xsrf is not None, confirm.body
    go = b.request("POST", "/device", {"xsrf": xsrf, "user_code": user_code, "confirm": "yes"})
    assert go.location is not None, f"no redirect to the login:\n{go.body}"
    callback, done = b.log_in_and_consent(go.location)
    assert callback is None, callback
    assert "Sign-in Success" in done, done
    assert b.prompts == ["login", "consent"], b.prompts
    assert b.relative_locations >= 2, "no relative Location seen"
    return b


# ---------------------------------------------------------------- recording the wire


class Recorded:
    """A socket that keeps a copy of what went each way (a :class:`fieldauth.Transport`)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent = bytearray()
        self.got = bytearray()

    def send(self, data: bytes) -> int:
        n = self.sock.send(data)
        self.sent += data[:n]
        return n

    def recv(self, n: int) -> bytes:
        data = self.sock.recv(n)
        self.got += data
        return data

    def close(self) -> None:
        self.sock.close()


class Wire:
    """One recorded token exchange: the request's form fields and the response's JSON."""

    def __init__(self, rec: Recorded) -> None:
        head, _, body = bytes(rec.sent).partition(b"\r\n\r\n")
        self.request_line = head.split(b"\r\n")[0].decode()
        self.request_headers = head.decode("latin-1")
        self.form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        rhead, _, rbody = bytes(rec.got).partition(b"\r\n\r\n")
        if b"\r\ntransfer-encoding: chunked" in rhead.lower():
            rbody = dechunk(rbody)
        self.response: Any = json.loads(rbody) if rbody.strip() else None


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        data = rest[size + 2 :]


def recorded_exchange(
    s: Session, srv: Oidc, now_ms: int, request_kind: RequestKind
) -> Tuple[fieldauth.Event, Wire]:
    """Polls at ``now_ms`` (a token request of ``request_kind`` must be due) and
    runs the exchange on a new, recorded connection."""
    action = s.poll(now_ms)
    assert action.kind == ActionKind.SEND_TOKEN_REQUEST, action
    assert action.request_kind == request_kind, action
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        rec = Recorded(sock)
        event = s.exchange(rec, now_ms)
    return event, Wire(rec)


def raw_refresh(srv: Oidc, refresh_token: str) -> Tuple[int, Any]:
    """What a refresh_token grant answers to ``refresh_token`` sent by hand."""
    status, body = raw(
        srv,
        "POST",
        "/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        urllib.parse.urlencode(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": POST_ID,
                "client_secret": POST_SECRET,
            }
        ),
    )
    return status, json.loads(body or b"null")


def flow_profile(auth: ClientAuth, mode: Mode) -> Profile:
    profile = Profile.preset(Preset.CUSTOM)
    profile.name = "oidc-provider"
    profile.mode = mode
    profile.client_auth = auth
    profile.token_path = "/token"
    profile.authorize_path = "/auth"
    profile.device_path = "/device/auth"
    profile.revoke_path = "/token/revocation"
    return profile


# ---------------------------------------------------------------- the device flow


def test_device_flow_to_completion_then_refresh_with_rotation(oidc: Oidc) -> None:
    """RFC 8628 to completion: no ``interval`` in the device authorization
    response, so the session asks for a poll every 5 s (its clock is moved on
    instead of sleeping: oidc-provider does not time the polls); the polls are
    ``authorization_pending`` until the user (the test, over HTTP) has entered
    the code, logged in and consented; then a token and, with
    ``offline_access``, a refresh token.

    Then three refreshes with rotation: each answer carries a new refresh
    token, and the session sends the newest one and never one it sent before
    (read off the wire; a replay would also have made oidc-provider revoke the
    grant, and the next refresh fail). Finally oidc-provider's side of
    rotation: a rotated-out refresh token replayed by hand revokes the whole
    grant, which the session meets as a 401 at the API and a rejected refresh
    token, and it starts the device flow over."""
    now = monotonic_ms()
    cfg = Config(
        base_url=oidc.base, client_id=POST_ID, client_secret=POST_SECRET, scope="openid offline_access api:read"
    )
    with Session(flow_profile(ClientAuth.BODY, Mode.DEVICE_CODE), cfg) as s:
        event, wire = recorded_exchange(s, oidc, now, RequestKind.DEVICE_AUTHORIZATION)
        assert event.kind == EventKind.USER_CODE, (event, wire.response)
        assert wire.request_line == "POST /device/auth HTTP/1.1", wire.request_line
        assert "interval" not in wire.response, f"oidc-provider sent an interval: {wire.response}"
        d = s.device_display()
        assert d.verification_uri == f"{oidc.base}/device"
        assert d.user_code == wire.response["user_code"]
        assert d.verification_uri_complete == f"{d.verification_uri}?user_code={d.user_code}"
        assert now < d.expires_at_ms <= now + wire.response["expires_in"] * 1000
        device_code = wire.response["device_code"]

        # No interval: the RFC 8628 default of 5 s between polls.
        action = s.poll(now)
        assert (action.kind, action.at_ms) == (ActionKind.WAIT, now + 5000), action
        now = action.at_ms
        event, wire = recorded_exchange(s, oidc, now, RequestKind.DEVICE_POLL)
        assert event.kind == EventKind.AUTHORIZATION_PENDING, (event, wire.response)
        assert wire.response["error"] == "authorization_pending"
        assert wire.form["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
        assert wire.form["device_code"] == device_code
        action = s.poll(now)
        assert (action.kind, action.at_ms) == (ActionKind.WAIT, now + 5000), action
        assert s.device_display().user_code == d.user_code, "the code is still shown"
        assert s.authorize(API, now).kind == fieldauth.AuthorizationKind.NO_CREDENTIAL

        approve_device(oidc, d.verification_uri, d.user_code)

        now = action.at_ms
        event, wire = recorded_exchange(s, oidc, now, RequestKind.DEVICE_POLL)
        assert event.kind == EventKind.TOKEN_ISSUED, (event, wire.response, oidc.stderr())
        assert (event.request_kind, event.lifetime_s, event.refreshable) == (RequestKind.DEVICE_POLL, 5, True), event
        assert "api:read" in wire.response["scope"].split(), wire.response
        with pytest.raises(fieldauth.WrongState):
            s.device_display()
        issued = [wire.response["refresh_token"]]
        me = api_me_ok(s, oidc, now)
        assert (me["client_id"], me["sub"]) == (POST_ID, USER), me

        # Refresh with rotation, each at the time the session refreshes.
        sent: List[str] = []
        for _ in range(3):
            old_access = token_of(s, now)
            refresh_at = s.info().refresh_at_ms
            assert refresh_at > now
            assert s.poll(refresh_at - 1).kind == ActionKind.READY, "a refresh before its time"
            now = refresh_at
            event, wire = recorded_exchange(s, oidc, now, RequestKind.REFRESH)
            assert wire.form["grant_type"] == "refresh_token"
            assert "scope" not in wire.form, "a refresh asks for the scope granted (RFC 6749 §6)"
            rt = wire.form["refresh_token"]
            assert rt == issued[-1], "not the newest refresh token"
            assert rt not in sent, "the session replayed a refresh token"
            sent.append(rt)
            assert event.kind == EventKind.TOKEN_ISSUED, (event, wire.response, oidc.stderr())
            assert (event.request_kind, event.lifetime_s, event.refreshable) == (RequestKind.REFRESH, 5, True), event
            new_rt = wire.response["refresh_token"]
            assert new_rt not in issued, "not rotated"
            issued.append(new_rt)
            assert token_of(s, now) != old_access
            assert api_me_ok(s, oidc, now)["sub"] == USER

        # oidc-provider's side of rotation: a rotated-out refresh token is
        # refused, and its use revokes the whole grant.
        current = token_of(s, now)
        assert raw_get_me(oidc, current) == 200
        status, body = raw_refresh(oidc, issued[0])
        assert (status, body["error"]) == (400, "invalid_grant"), body
        assert raw_get_me(oidc, current) == 401, "the grant survived a replay"
        status, body, verdict = api_me(s, oidc, now)
        assert (status, body["error"]) == (401, "invalid_token"), body
        assert verdict.kind == VerdictKind.RETRY_WITH_NEW_TOKEN, verdict
        assert verdict.challenge is not None and verdict.challenge.error == "invalid_token", verdict
        event, wire = recorded_exchange(s, oidc, now, RequestKind.REFRESH)
        assert wire.form["refresh_token"] == issued[-1], "the session sent an older refresh token"
        assert event.kind == EventKind.REFRESH_REJECTED, (event, wire.response)
        assert wire.response["error"] == "invalid_grant"
        info = s.info()
        assert not info.refreshable and not info.usable, info
        action = s.poll(now)
        assert (action.kind, action.request_kind) == (
            ActionKind.SEND_TOKEN_REQUEST,
            RequestKind.DEVICE_AUTHORIZATION,
        ), "the device flow starts over"
        event, wire = recorded_exchange(s, oidc, now, RequestKind.DEVICE_AUTHORIZATION)
        assert event.kind == EventKind.USER_CODE, (event, wire.response)
        assert s.device_display().user_code != d.user_code


# ---------------------------------------------------------------- the authorization code flow

#: The ``nonce`` sent through ``Config(authorize_params=...)``; the ID token must carry it.
NONCE = "n-0S6_WzA2Mj"


def code_session(
    srv: Oidc, auth: ClientAuth, client_id: str, secret: str, authorize_params: Optional[Dict[str, str]]
) -> Session:
    cfg = Config(
        base_url=srv.base,
        client_id=client_id,
        client_secret=secret,
        scope="openid offline_access api:read",
        redirect_uri=REDIRECT_URI,
        authorize_params=authorize_params,
    )
    return Session(flow_profile(auth, Mode.AUTHORIZATION_CODE), cfg)


def log_in(srv: Oidc, s: Session, client_id: str, now: int) -> Tuple[Dict[str, str], Browser, str]:
    """The code flow's browser step: the session's authorization URL (checked:
    client, redirect URI, S256 challenge, state), then login and consent over
    HTTP. Returns the URL's query, the browser and the redirect back (checked:
    ``code``, the ``state`` sent, ``iss`` the issuer, RFC 9207)."""
    action = s.poll(now)
    assert action.kind == ActionKind.NEED_AUTHORIZATION_CODE, action
    url = s.authorization_url(b"\x5a" * 32, b"\xc3" * 16)
    assert url.startswith(f"{srv.base}/auth?"), url
    q = query(url)
    assert (q["client_id"], q["response_type"], q["redirect_uri"]) == (client_id, "code", REDIRECT_URI), q
    assert q["scope"] == "openid offline_access api:read", q
    assert q["code_challenge_method"] == "S256" and q["code_challenge"] and q["state"], q
    b = Browser(srv)
    first = b.request("GET", url)
    assert first.location is not None, f"no redirect to the login:\n{first.body}"
    callback, page = b.log_in_and_consent(first.location)
    assert callback is not None, f"no redirect to {REDIRECT_URI}:\n{page}"
    assert b.prompts == ["login", "consent"], b.prompts
    assert b.relative_locations >= 2, "no relative Location seen"
    cq = query(callback)
    assert "error" not in cq, callback
    assert cq["code"] and cq["state"] == q["state"], (cq, q)
    assert cq["iss"] == srv.base, "iss is the issuer (RFC 9207)"
    return q, b, callback


def b64url_sha256(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def jwt_claims(jwt: str) -> Any:
    """The payload of a JWS (not verified: the test only reads what the server put in)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_authorization_code_flow_with_pkce_s256_prompt_consent_and_rotation(oidc: Oidc) -> None:
    """The authorization code flow with PKCE S256, with the Basic client (whose
    id needs encoding in the URL and in the credentials) and
    ``Config(authorize_params=...)``: ``prompt=consent``, ``login_hint`` and
    ``nonce`` in the authorization URL. The user (the test, over HTTP) logs in
    (the page is prefilled from ``login_hint``) and consents through
    oidc-provider's pages (relative Locations, path-scoped cookies); the
    redirect goes through :meth:`Session.on_authorization_callback` with the
    issuer, after a wrong ``iss``, a missing ``iss`` and a wrong ``state`` were
    each refused with :class:`fieldauth.InputError` and left the login
    intact. The code exchange sends the verifier whose S256 hash was the
    challenge; the ID token carries the nonce.

    This module's server issues refresh tokens by oidc-provider's own rule
    (``OIDC_REFRESH_RULE=offline_access``), and the code flow keeps
    ``offline_access`` only with ``prompt=consent``: the refresh token that
    comes back is the proof the prompt arrived (the control is the next
    test). It is used once, and rotated."""
    now = monotonic_ms()
    params = {"prompt": "consent", "login_hint": USER, "nonce": NONCE}
    with code_session(oidc, ClientAuth.BASIC, BASIC_ID, BASIC_SECRET, params) as s:
        q, b, callback = log_in(oidc, s, BASIC_ID, now)
        assert (q["prompt"], q["login_hint"], q["nonce"]) == ("consent", USER, NONCE), q
        assert re.search(r'name="login"[^>]*value="%s"' % USER, b.login_page), b.login_page

        # Redirects that are not this login's: refused, and the login goes on.
        state = query(callback)["state"]
        wrong_iss = callback.replace(
            "iss=" + urllib.parse.quote(oidc.base, safe=""), "iss=" + urllib.parse.quote("http://127.0.0.1:1", safe="")
        )
        assert wrong_iss != callback, callback
        no_iss = re.sub(r"[&?]iss=[^&]*", "", callback)
        assert "iss=" not in no_iss and "code=" in no_iss, no_iss
        wrong_state = callback.replace("state=" + state, "state=" + state[:-2] + ("AA" if state[-2:] != "AA" else "BB"))
        assert wrong_state != callback, callback
        refused = [
            (callback, "http://127.0.0.1:1"),  # the right redirect, another issuer expected
            (wrong_iss, oidc.base),
            (no_iss, oidc.base),
            (wrong_state, oidc.base),
        ]
        for url, issuer in refused:
            with pytest.raises(fieldauth.InputError):
                s.on_authorization_callback(url, issuer=issuer)
            assert s.poll(now).kind == ActionKind.NEED_AUTHORIZATION_CODE, (url, issuer)
        s.on_authorization_callback(callback, issuer=oidc.base)

        event, wire = recorded_exchange(s, oidc, now, RequestKind.FETCH)
        assert "\r\nAuthorization: Basic " in wire.request_headers, wire.request_headers
        assert "client_secret" not in wire.form
        assert wire.form["grant_type"] == "authorization_code"
        assert wire.form["code"] == query(callback)["code"]
        assert wire.form["redirect_uri"] == REDIRECT_URI
        verifier = wire.form["code_verifier"]
        assert 43 <= len(verifier) <= 128 and re.fullmatch(r"[A-Za-z0-9._~-]+", verifier), verifier
        assert b64url_sha256(verifier) == q["code_challenge"], "the challenge is not S256 of the verifier"
        assert event.kind == EventKind.TOKEN_ISSUED, (event, wire.response, oidc.stderr())
        assert (event.request_kind, event.lifetime_s) == (RequestKind.FETCH, 5), event
        assert event.refreshable and "refresh_token" in wire.response, (
            "no refresh token: offline_access was dropped (prompt=consent not sent?)",
            wire.response,
        )
        claims = jwt_claims(wire.response["id_token"])
        assert (claims["nonce"], claims["sub"], claims["aud"], claims["iss"]) == (NONCE, USER, BASIC_ID, oidc.base)
        me = api_me_ok(s, oidc, now)
        assert (me["client_id"], me["sub"], me["scope"]) == (BASIC_ID, USER, "api:read"), me

        # The refresh token works, and is rotated.
        rt = wire.response["refresh_token"]
        old_access = token_of(s, now)
        now = s.info().refresh_at_ms
        event, wire = recorded_exchange(s, oidc, now, RequestKind.REFRESH)
        assert wire.form["refresh_token"] == rt
        assert "scope" not in wire.form
        assert event.kind == EventKind.TOKEN_ISSUED, (event, wire.response, oidc.stderr())
        assert (event.request_kind, event.refreshable) == (RequestKind.REFRESH, True), event
        assert wire.response["refresh_token"] != rt, "not rotated"
        assert token_of(s, now) != old_access
        assert api_me_ok(s, oidc, now)["sub"] == USER
        # The rotated-out one is dead (and its replay revokes the grant).
        status, body = raw(
            oidc,
            "POST",
            "/token",
            {"Content-Type": "application/x-www-form-urlencoded"},
            urllib.parse.urlencode(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": rt,
                    "client_id": BASIC_ID,
                    "client_secret": BASIC_SECRET,
                }
            ),
        )
        assert (status, json.loads(body)["error"]) == (400, "invalid_grant"), body
        assert raw_get_me(oidc, token_of(s, now)) == 401, "the grant survived a replay"


def test_code_flow_without_prompt_consent_gets_no_refresh_token(oidc: Oidc) -> None:
    """The control for the test above: the same login without
    ``authorize_params`` (the consent page is still shown and answered)
    loses ``offline_access`` at oidc-provider, so the token comes without a
    refresh token and the session knows it cannot refresh."""
    now = monotonic_ms()
    with code_session(oidc, ClientAuth.BODY, POST_ID, POST_SECRET, None) as s:
        q, _, callback = log_in(oidc, s, POST_ID, now)
        assert not {"prompt", "login_hint", "nonce"} & set(q), q
        s.on_authorization_callback(callback, issuer=oidc.base)
        event, wire = recorded_exchange(s, oidc, now, RequestKind.FETCH)
        assert b64url_sha256(wire.form["code_verifier"]) == q["code_challenge"]
        assert event.kind == EventKind.TOKEN_ISSUED, (event, wire.response, oidc.stderr())
        assert (event.request_kind, event.refreshable) == (RequestKind.FETCH, False), (event, wire.response)
        assert "refresh_token" not in wire.response, wire.response
        assert not s.info().refreshable
        assert api_me_ok(s, oidc, now)["sub"] == USER
