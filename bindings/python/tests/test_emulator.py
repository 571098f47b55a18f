"""Lifecycle against the provider emulator over loopback (http.client and raw sockets)."""

from __future__ import annotations

import importlib.util
import socket
import time
import urllib.parse
from pathlib import Path

import pytest

import fieldauth
from fieldauth import ActionKind, Config, EventKind, Failure, Preset, RequestKind, Session, VerdictKind

from fieldauth.stores import FileStore
from conftest import Emulator, http_get, http_token_exchange

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "emulator_demo.py"


def wait_for(session: Session, emu: Emulator, want: ActionKind = ActionKind.READY, rounds: int = 10) -> None:
    """Polls, doing token exchanges and waits, until the action is ``want``."""
    for _ in range(rounds):
        action = session.poll()
        if action.kind == want:
            return
        if action.kind == ActionKind.SEND_TOKEN_REQUEST:
            http_token_exchange(session, emu)
        elif action.kind == ActionKind.WAIT:
            time.sleep(max(0, action.at_ms - fieldauth.monotonic_ms()) / 1000)
        else:
            session.raise_if_failed()
            pytest.fail(f"unexpected action {action}")
    pytest.fail(f"no {want.name} after {rounds} rounds")


@pytest.mark.emulator_args("--lifetime", "3")
def test_lifecycle_token_api_expiry_refetch_close(emulator: Emulator) -> None:
    cfg = Config(base_url=emulator.base("fieldnation"), client_id="demo-client", client_secret="demo-secret")
    target = "/fieldnation/api/rest/v2/workorders"
    with Session(Preset.FIELD_NATION, cfg) as s:
        assert s.poll().kind == ActionKind.SEND_TOKEN_REQUEST
        event = http_token_exchange(s, emulator)
        assert event.kind == EventKind.TOKEN_ISSUED and event.lifetime_s == 3
        status, body, verdict = http_get(s, emulator, target)
        assert status == 200 and verdict.kind == VerdictKind.OK and body.startswith((b"{", b"["))
        first = s.info()
        # Let the token near its expiry: the session asks for a new one by itself.
        time.sleep(max(0, first.refresh_at_ms - fieldauth.monotonic_ms()) / 1000 + 0.05)
        action = s.poll()
        assert action.kind == ActionKind.SEND_TOKEN_REQUEST and action.request_kind == RequestKind.FETCH
        assert http_token_exchange(s, emulator).kind == EventKind.TOKEN_ISSUED
        assert s.info().expires_at_ms > first.expires_at_ms
        status, _, verdict = http_get(s, emulator, target + "?page=2")
        assert status == 200 and verdict.kind == VerdictKind.OK
    with pytest.raises(fieldauth.NotInitialized):
        s.poll()


@pytest.mark.emulator_args("--faults", "fieldnation:api:revoke-after=2")
def test_401_is_recovered_with_a_new_token(emulator: Emulator) -> None:
    cfg = Config(base_url=emulator.base("fieldnation"), client_id="demo-client", client_secret="demo-secret")
    target = "/fieldnation/api/rest/v2/workorders"
    with Session(Preset.FIELD_NATION, cfg) as s:
        wait_for(s, emulator)
        assert http_get(s, emulator, target)[2].kind == VerdictKind.OK
        assert http_get(s, emulator, target)[2].kind == VerdictKind.OK
        status, _, verdict = http_get(s, emulator, target)
        assert status == 401 and verdict.kind == VerdictKind.RETRY_WITH_NEW_TOKEN
        action = s.poll()
        assert action.kind == ActionKind.SEND_TOKEN_REQUEST
        assert http_token_exchange(s, emulator).kind == EventKind.TOKEN_ISSUED
        status, _, verdict = http_get(s, emulator, target)
        assert status == 200 and verdict.kind == VerdictKind.OK


@pytest.mark.emulator_args("--faults", "autotask:api:429=1:once")
def test_429_makes_authorize_wait_for_retry_after(emulator: Emulator) -> None:
    cfg = Config(base_url=emulator.base("autotask"), client_id="demo-client", client_secret="demo-secret")
    target = "/autotask/ATServicesRest/V1.0/Companies"
    with Session(Preset.AUTOTASK, cfg) as s:
        wait_for(s, emulator)
        before = fieldauth.monotonic_ms()
        status, _, verdict = http_get(s, emulator, target)
        assert status == 429 and verdict.kind == VerdictKind.RATE_LIMITED
        assert 500 <= verdict.until_ms - before <= 2500
        auth = s.authorize(target)
        assert auth.kind == fieldauth.AuthorizationKind.WAIT and auth.until_ms == verdict.until_ms
        time.sleep(max(0, verdict.until_ms - fieldauth.monotonic_ms()) / 1000)
        status, _, verdict = http_get(s, emulator, target)
        assert status == 200 and verdict.kind == VerdictKind.OK


@pytest.mark.emulator_args("--faults", "autotask:token:429=1:once")
def test_token_endpoint_429_is_retried(emulator: Emulator) -> None:
    cfg = Config(base_url=emulator.base("autotask"), client_id="demo-client", client_secret="demo-secret")
    with Session(Preset.AUTOTASK, cfg) as s:
        s.poll()
        event = http_token_exchange(s, emulator)
        assert event.kind == EventKind.RETRYING and event.http_status == 429
        wait_for(s, emulator)
        assert s.info().usable


def test_wrong_secret_fails_with_the_emulators_description(emulator: Emulator) -> None:
    cfg = Config(base_url=emulator.base("autotask"), client_id="demo-client", client_secret="wrong")
    with Session(Preset.AUTOTASK, cfg) as s:
        s.poll()
        event = http_token_exchange(s, emulator)
        assert event.kind == EventKind.FAILED and event.failure == Failure.INVALID_CLIENT
        with pytest.raises(fieldauth.SessionFailed) as caught:
            s.raise_if_failed()
        assert caught.value.description  # the emulator's error_description
        assert caught.value.description == s.failure_description()
        assert "wrong" not in str(caught.value)


@pytest.mark.parametrize("chunked", [False, True])
def test_exchange_over_a_real_socket(chunked: bool) -> None:
    args = ("--faults", "patchworks:token:chunked=5") if chunked else ()
    emu = Emulator(*args)
    try:
        cfg = Config(base_url=emu.base("patchworks"), username="me@patchworks.com", password="a1b2c3d4e5f6")
        with Session(Preset.PATCHWORKS_LOGIN, cfg) as s:
            assert s.poll().kind == ActionKind.SEND_TOKEN_REQUEST
            with socket.create_connection((emu.host, emu.port), timeout=10) as sock:
                event = s.exchange(sock, buffer_size=64)
            assert event.kind == EventKind.TOKEN_ISSUED
            status, _, verdict = http_get(s, emu, "/patchworks/core/v1/flows")
            assert status == 200 and verdict.kind == VerdictKind.OK
            # A closed connection is a transport error, and the session schedules a retry.
            s.revoke()
            s.restart()
            assert s.poll(fieldauth.monotonic_ms() + 600_000).kind == ActionKind.SEND_TOKEN_REQUEST
            a, b = socket.socketpair()
            b.close()
            with a, pytest.raises(fieldauth.TransportError):
                s.exchange(a, fieldauth.monotonic_ms() + 600_000)
            assert s.info().failed_attempts == 1
    finally:
        emu.stop()


def test_authorization_code_flow_and_revocation(emulator: Emulator) -> None:
    cfg = Config(
        base_url=emulator.base("fentu"),
        client_id="demo-client",
        client_secret="demo-secret",
        redirect_uri="http://127.0.0.1:9/callback",
        scope="read:work-orders",
    )
    with Session(Preset.FENTU_OAUTH, cfg) as s:
        assert s.poll().kind == ActionKind.NEED_AUTHORIZATION_CODE
        url = urllib.parse.urlsplit(s.authorization_url())
        conn = emulator.connection()
        conn.request("GET", f"{url.path}?{url.query}")
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 302, response.status
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(response.getheader("Location", "")).query)
        s.set_authorization_code(query["code"][0], query["state"][0])
        assert s.poll().request_kind == RequestKind.FETCH
        event = http_token_exchange(s, emulator)
        assert event.kind == EventKind.TOKEN_ISSUED and event.refreshable
        assert s.granted_scope() == "read:work-orders"
        status, _, verdict = http_get(s, emulator, "/fentu/v1/work-orders")
        assert status == 200 and verdict.kind == VerdictKind.OK
        s.revoke()
        action = s.poll()
        assert action.kind == ActionKind.SEND_TOKEN_REQUEST and action.request_kind == RequestKind.REVOKE
        event = http_token_exchange(s, emulator)
        assert event.kind == EventKind.REVOKED
        action = s.poll()
        assert action.kind == ActionKind.FAILED and action.failure == Failure.REVOKED


@pytest.mark.emulator_args("--seed", "7", "--faults", "fieldnation:api:revoke-after=2,autotask:api:429=1:once")
def test_the_example_recovers_from_401_and_429(emulator: Emulator) -> None:
    spec = importlib.util.spec_from_file_location("emulator_demo", EXAMPLE)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    lines: list = []
    logs = demo.run(emulator.host, emulator.port, calls=3, out=lines.append)
    assert set(logs) == {"autotask", "fieldnation", "patchworks", "fentu-key"}
    assert any("HTTP 401 -> RETRY_WITH_NEW_TOKEN" in l for l in logs["fieldnation"])
    assert sum("token issued" in l for l in logs["fieldnation"]) == 2
    assert any("HTTP 429 -> RATE_LIMITED" in l for l in logs["autotask"])
    for name, log in logs.items():
        assert sum("-> OK" in l for l in log) == 3, (name, log)


def readme_python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file."""
    blocks, inside, lines = [], False, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not inside and line.strip() == "```python":
            inside, lines = True, []
        elif inside and line.strip() == "```":
            inside = False
            blocks.append("\n".join(lines))
        elif inside:
            lines.append(line)
    return blocks


@pytest.mark.parametrize("readme", ["README.md", "bindings/python/README.md"])
def test_readme_python_examples_run_against_the_emulator(readme: str, emulator: Emulator) -> None:
    path = Path(__file__).resolve().parents[3] / readme
    if not path.is_file():
        pytest.skip(f"{path} is not part of this installation (run from the repository)")
    blocks = readme_python_blocks(path)
    # The first block of each README is the getting-started loop; it talks to
    # an emulator on port 8080, which here is the fixture's free port.
    assert blocks, f"no python example in {readme}"
    code = blocks[0].replace("8080", str(emulator.port))
    if "import requests" in code:
        pytest.importorskip("requests", reason="install the [requests] extra (run-tests.sh does)")
    scope: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, f"{readme} (first python block)", "exec"), scope)
    if "response" in scope:  # the adapter example: an API response the adapter authorized
        status = getattr(scope["response"], "status_code")
        assert status == 200, status
        return
    verdict = scope["verdict"]
    assert isinstance(verdict, fieldauth.Verdict)
    assert verdict.kind == VerdictKind.OK, verdict


def test_readme_fleet_example_runs_against_the_emulator(emulator: Emulator, tmp_path: Path) -> None:
    """README.md's "Many workers, one credential" block: a worker with a FileStore."""
    path = Path(__file__).resolve().parents[3] / "README.md"
    if not path.is_file():
        pytest.skip(f"{path} is not part of this installation (run from the repository)")
    pytest.importorskip("requests", reason="install the [requests] extra (run-tests.sh does)")
    blocks = [b for b in readme_python_blocks(path) if "FileStore(" in b]
    assert len(blocks) == 1, "README.md's store example is missing"
    store = tmp_path / "autotask.store"
    code = blocks[0].replace("8080", str(emulator.port)).replace("/var/lib/dispatch/autotask.store", str(store))
    scope: dict[str, object] = {"__name__": "readme_fleet_example"}
    exec(compile(code, "README.md (store example)", "exec"), scope)
    assert getattr(scope["response"], "status_code") == 200
    # The worker saved the token it fetched for the fleet, in a file only its user can read.
    assert store.stat().st_mode & 0o777 == 0o600
    assert FileStore(store).load() is not None
