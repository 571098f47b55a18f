#!/usr/bin/env python3
"""Get tokens from the fieldauth provider emulator and call its APIs with http.client.

    cargo build -p fieldauth-ffi --release && cargo build -p fieldauth-emulator
    python bindings/python/examples/emulator_demo.py            # starts its own emulator
    python bindings/python/examples/emulator_demo.py --port 8080 # or uses a running one

When it starts its own emulator, it injects two faults so you can watch the
session recover:

* Field Nation revokes every token server-side after 2 API calls: the third
  call gets 401, the session answers RETRY_WITH_NEW_TOKEN, the next poll asks
  for a new token, and the call is retried with it.
* Autotask answers the first API call with 429 and ``Retry-After: 1``: the
  session answers RATE_LIMITED, then ``authorize()`` says WAIT until the time
  the server gave, and the call goes out again after it.

No provider-specific logic lives here: every decision (fetch, wait, retry)
comes from the session. Exit status 0 when every call succeeded and both
recoveries were seen.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import fieldauth
from fieldauth import (
    ActionKind,
    AuthorizationKind,
    Config,
    CredentialForm,
    EventKind,
    Preset,
    Session,
    VerdictKind,
)

#: The faults this demo injects when it starts the emulator itself.
FAULTS = "fieldnation:api:revoke-after=2,autotask:api:429=1:once"


def find_emulator() -> Path:
    """``$FIELDAUTH_EMULATOR``, or ``target/{debug,release}/fieldauth-emulator`` above this file."""
    env = os.environ.get("FIELDAUTH_EMULATOR")
    if env:
        return Path(env)
    tried = []
    here = Path(__file__).resolve().parent
    for ancestor in (here, *here.parents):
        for profile in ("debug", "release"):
            candidate = ancestor / "target" / profile / "fieldauth-emulator"
            tried.append(str(candidate))
            if candidate.is_file():
                return candidate
    raise SystemExit(
        "emulator_demo: fieldauth-emulator not found (tried "
        + ", ".join(tried[:4])
        + ", ...): build it with `cargo build -p fieldauth-emulator` or set FIELDAUTH_EMULATOR"
    )


def start_emulator(*args: str) -> Tuple["subprocess.Popen[bytes]", int]:
    """Starts the emulator on a free loopback port; returns the process and the port."""
    proc = subprocess.Popen(
        [str(find_emulator()), "--port", "0", "--quiet", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().decode("utf-8", "replace").strip()
    # "fieldauth-emulator listening on http://127.0.0.1:PORT"
    try:
        port = int(first.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        proc.kill()
        raise SystemExit(f"emulator_demo: no port in the emulator's first line: {first!r}")
    # Keep draining its output (it prints the provider table next): a closed
    # pipe would kill it.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, port


class Client:
    """Drives one session against one provider of the emulator."""

    def __init__(self, host: str, port: int, session: Session, log: List[str]) -> None:
        self.host, self.port, self.session, self.log = host, port, session, log

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def token_exchange(self) -> None:
        """Sends the token request the session asked for and feeds it the response."""
        request = self.session.write_token_request_parts()
        conn = self.connection()
        try:
            conn.request(
                request.method, request.target, body=request.body, headers=dict(request.headers)
            )
            response = conn.getresponse()
            body = response.read()
        except OSError as exc:
            event = self.session.report_transport_error()
            self.log.append(f"token request failed at the transport ({exc}): retry at {event.at_ms}")
            return
        finally:
            conn.close()
        event = self.session.feed_token_response(
            response.status, response.getheaders(), body, reason=response.reason
        )
        if event.kind == EventKind.TOKEN_ISSUED:
            self.log.append(
                f"token issued ({event.request_kind.name.lower()}): lifetime {event.lifetime_s} s"
            )
        else:
            self.log.append(f"token response: {event.kind.name} (HTTP {event.http_status})")

    def get(self, target: str, max_rounds: int = 12) -> bytes:
        """One authorized GET, with whatever fetching, waiting and retrying the session asks for."""
        for _ in range(max_rounds):
            action = self.session.poll()
            if action.kind == ActionKind.SEND_TOKEN_REQUEST:
                self.token_exchange()
                continue
            if action.kind == ActionKind.WAIT:
                sleep_until(action.at_ms)
                continue
            if action.kind == ActionKind.FAILED:
                self.session.raise_if_failed()
            if action.kind != ActionKind.READY:
                raise RuntimeError(f"unexpected action {action.kind.name}")

            auth = self.session.authorize(target)
            if auth.kind == AuthorizationKind.WAIT:
                self.log.append(f"rate limited: waiting {auth.until_ms - fieldauth.monotonic_ms()} ms")
                sleep_until(auth.until_ms)
                continue
            if auth.kind == AuthorizationKind.NO_CREDENTIAL:
                continue
            headers: Dict[str, str] = {"Accept": "application/json"}
            path = target
            if auth.credential == CredentialForm.HEADER and auth.header is not None:
                headers[auth.header[0]] = auth.header[1]
            elif auth.target is not None:
                path = auth.target

            conn = self.connection()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            verdict = self.session.report_api_result(
                response.status, response.getheaders(), body[:256], reason=response.reason
            )
            self.log.append(f"GET {target}: HTTP {response.status} -> {verdict.kind.name}")
            if verdict.kind == VerdictKind.OK:
                if not 200 <= response.status <= 299:
                    raise RuntimeError(f"GET {target}: HTTP {response.status}: {body[:200]!r}")
                return body
            if verdict.kind in (VerdictKind.RETRY_WITH_NEW_TOKEN, VerdictKind.RATE_LIMITED):
                continue  # the session now wants a new token, or authorize() will say WAIT
            raise RuntimeError(f"GET {target}: {verdict.kind.name} (HTTP {response.status})")
        raise RuntimeError(f"GET {target}: no success after {max_rounds} rounds")


def sleep_until(at_ms: int) -> None:
    delay = at_ms - fieldauth.monotonic_ms()
    if delay > 0:
        time.sleep(min(delay, 5000) / 1000)


PROVIDERS: Dict[str, Tuple[Preset, str, str, Dict[str, Any]]] = {
    # name: (preset, path prefix, API target, config fields)
    "autotask": (
        Preset.AUTOTASK,
        "/autotask",
        "/autotask/ATServicesRest/V1.0/Companies",
        {"client_id": "demo-client", "client_secret": "demo-secret"},
    ),
    "fieldnation": (
        Preset.FIELD_NATION,
        "/fieldnation",
        "/fieldnation/api/rest/v2/workorders",
        {"client_id": "demo-client", "client_secret": "demo-secret"},
    ),
    "patchworks": (
        Preset.PATCHWORKS_LOGIN,
        "/patchworks",
        "/patchworks/core/v1/flows",
        {"username": "me@patchworks.com", "password": "a1b2c3d4e5f6"},
    ),
    "fentu-key": (
        Preset.FENTU_API_KEY,
        "/fentu",
        "/fentu/v1/work-orders",
        {"api_key": "fentu-demo-key"},
    ),
}


def run(
    host: str, port: int, calls: int = 3, out: Callable[[str], None] = print
) -> Dict[str, List[str]]:
    """Makes ``calls`` API calls per provider; returns each provider's log."""
    logs: Dict[str, List[str]] = {}
    for name, (preset, prefix, target, fields) in PROVIDERS.items():
        config = Config(base_url=f"http://{host}:{port}{prefix}", **fields)
        log: List[str] = []
        with Session(preset, config) as session:
            client = Client(host, port, session, log)
            for _ in range(calls):
                client.get(target)
            info = session.info()
            log.append(f"done: usable={info.usable} failed_attempts={info.failed_attempts}")
        logs[name] = log
        out(f"== {fieldauth.preset_name(preset)}")
        for line in log:
            out(f"   {line}")
    return logs


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="a running emulator's port (default: start one)")
    parser.add_argument("--calls", type=int, default=3, help="API calls per provider")
    args = parser.parse_args(argv)
    print(f"fieldauth {fieldauth.version()}")
    proc = None
    port = args.port
    if port is None:
        proc, port = start_emulator("--seed", "7", "--faults", FAULTS)
        print(f"emulator on port {port}, faults {FAULTS}")
    try:
        logs = run(args.host, port, args.calls)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
    if proc is not None:
        recovered_401 = any("HTTP 401 -> RETRY_WITH_NEW_TOKEN" in l for l in logs["fieldnation"])
        recovered_429 = any("HTTP 429 -> RATE_LIMITED" in l for l in logs["autotask"])
        if not (recovered_401 and recovered_429):
            print("emulator_demo: the injected 401 and 429 were not both seen", file=sys.stderr)
            return 1
        print("recovered from 401 (new token) and 429 (waited for Retry-After)")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
