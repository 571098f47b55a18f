"""fieldauth.requests.FieldAuth and fieldauth.httpx.FieldAuth (sync and async) against the emulator.

Every test runs with three clients: requests, httpx.Client and httpx.AsyncClient.
Each client logs the requests that really went out (a counting transport
adapter for requests, the request event hook for httpx), so the tests see the
token requests, the API requests and the retries. Time is virtual for the
session: the injected sleep records how long it was asked to sleep and
advances the injected clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

requests = pytest.importorskip("requests", reason="install the [requests] extra (run-tests.sh does)")
httpx = pytest.importorskip("httpx", reason="install the [httpx] extra (run-tests.sh does)")
from requests.adapters import HTTPAdapter  # noqa: E402

import fieldauth  # noqa: E402
import fieldauth.httpx  # noqa: E402
import fieldauth.requests  # noqa: E402
from fieldauth import Config, Preset, Session  # noqa: E402

from conftest import Emulator  # noqa: E402

AUTOTASK_API = "/autotask/ATServicesRest/V1.0/Companies"
FIELDNATION_API = "/fieldnation/api/rest/v2/workorders"
KINDS = ["requests", "httpx", "httpx-async"]


class VirtualTime:
    """The adapters' clock and sleep: sleeping advances the clock, and is recorded."""

    def __init__(self) -> None:
        self.offset_ms = 0
        self.sleeps: List[float] = []

    def clock(self) -> int:
        return fieldauth.monotonic_ms() + self.offset_ms

    def advance(self, ms: int) -> None:
        self.offset_ms += ms

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(int(seconds * 1000) + 1)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


Sent = Tuple[str, str, Optional[str]]
"""(method, URL, Authorization header) of a request that went out."""


class Client:
    """One HTTP client of the given kind with a FieldAuth on a session; logs what it sends."""

    def __init__(self, kind: str, session: Session, vt: VirtualTime, **options: Any) -> None:
        self.kind = kind
        self.sent: List[Sent] = []
        self.vt = vt
        if kind == "requests":
            log = self.sent

            class Counting(HTTPAdapter):
                def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
                    log.append((request.method, request.url, request.headers.get("Authorization")))
                    return super().send(request, *args, **kwargs)

            self.http = requests.Session()
            self.http.mount("http://", Counting())
            token_client = requests.Session()
            token_client.mount("http://", Counting())
            self.auth: Any = fieldauth.requests.FieldAuth(
                session, token_client=token_client, sleep=vt.sleep, clock=vt.clock, **options
            )
            self.http.auth = self.auth
        else:
            self.auth = fieldauth.httpx.FieldAuth(
                session, sleep=vt.sleep, async_sleep=vt.async_sleep, clock=vt.clock, **options
            )

    def _log(self, request: Any) -> None:
        self.sent.append((request.method, str(request.url), request.headers.get("Authorization")))

    def get(self, url: str) -> Any:
        """GETs ``url``; returns the final response (its body read)."""
        if self.kind == "requests":
            return self.http.get(url, timeout=10)
        if self.kind == "httpx":
            with httpx.Client(auth=self.auth, timeout=10, event_hooks={"request": [self._log]}) as client:
                response = client.get(url)
                response.read()
                return response

        async def log(request: Any) -> None:
            self._log(request)

        async def run() -> Any:
            async with httpx.AsyncClient(auth=self.auth, timeout=10, event_hooks={"request": [log]}) as client:
                response = await client.get(url)
                await response.aread()
                return response

        return asyncio.run(run())

    def close(self) -> None:
        if self.kind == "requests":
            self.http.close()
            self.auth.close()

    # what went out

    def token_requests(self) -> List[Sent]:
        return [s for s in self.sent if s[0] == "POST"]

    def api_requests(self) -> List[Sent]:
        return [s for s in self.sent if s[0] == "GET"]

    def shape(self) -> str:
        """The requests sent, as a string: T for a token request, A for an API request."""
        return "".join("T" if s[0] == "POST" else "A" for s in self.sent)


def status_of(response: Any) -> int:
    return int(response.status_code)


def history_statuses(response: Any) -> List[int]:
    return [int(r.status_code) for r in response.history]


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


def autotask(emu: Emulator, **extra: Any) -> Session:
    cfg = Config(base_url=emu.base("autotask"), client_id="demo-client", client_secret="demo-secret", **extra)
    return Session(Preset.AUTOTASK, cfg)


def fieldnation(emu: Emulator) -> Session:
    cfg = Config(base_url=emu.base("fieldnation"), client_id="demo-client", client_secret="demo-secret")
    return Session(Preset.FIELD_NATION, cfg)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(vt: VirtualTime, kind: str) -> Iterator[Callable[..., Client]]:
    made: List[Client] = []

    def make(session: Session, **options: Any) -> Client:
        client = Client(kind, session, vt, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_first_request_fetches_a_token_and_later_ones_reuse_it(
    emulator: Emulator, make_client: Callable[..., Client], vt: VirtualTime
) -> None:
    with autotask(emulator) as session:
        client = make_client(session)
        first = client.get(emulator.base("") + AUTOTASK_API.lstrip("/"))
        assert status_of(first) == 200 and history_statuses(first) in ([], [200])
        assert client.shape() == "TA"
        second = client.get(emulator.base("") + AUTOTASK_API.lstrip("/") + "/1")
        assert status_of(second) == 200 and history_statuses(second) == []
        assert client.shape() == "TAA"
        (_, _, a1), (_, _, a2) = client.api_requests()
        assert a1 is not None and a1.startswith("Bearer ") and a1 == a2
        # At most the preset's client-side API pacing (Autotask spreads bursts), no real wait.
        assert all(s < 0.5 for s in vt.sleeps), vt.sleeps
        assert session.info().usable


def test_a_token_near_expiry_is_refreshed_before_the_request(
    emulator: Emulator, make_client: Callable[..., Client], vt: VirtualTime
) -> None:
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    with autotask(emulator) as session:
        client = make_client(session)
        assert status_of(client.get(url)) == 200
        info = session.info()
        # Move the session's clock past the refresh time (the emulator's token is still valid).
        vt.advance(info.refresh_at_ms - vt.clock() + 10)
        assert status_of(client.get(url)) == 200
        assert client.shape() == "TATA"
        (_, _, a1), (_, _, a2) = client.api_requests()
        assert a1 != a2, "the second request must carry the new token"
        assert session.info().expires_at_ms > info.expires_at_ms


@pytest.mark.emulator_args("--faults", "autotask:api:revoke-after=1")
def test_a_401_fetches_a_new_token_and_resends_once(
    emulator: Emulator, make_client: Callable[..., Client], vt: VirtualTime
) -> None:
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    with autotask(emulator) as session:
        client = make_client(session)
        assert status_of(client.get(url)) == 200
        response = client.get(url)  # the token is revoked server-side: 401, new token, 200
        assert status_of(response) == 200
        assert 401 in history_statuses(response)
        assert client.shape() == "TAATA"
        auths = [a for _, _, a in client.api_requests()]
        assert auths[0] == auths[1] != auths[2]


@pytest.mark.emulator_args("--faults", "autotask:api:revoke-after=0")
def test_a_second_401_is_returned_without_another_retry(
    emulator: Emulator, make_client: Callable[..., Client]
) -> None:
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    with autotask(emulator) as session:
        client = make_client(session)
        response = client.get(url)  # every token dies on its first call
        assert status_of(response) == 401
        assert client.shape() == "TATA", "one retry with a fresh token, then the 401 is returned"
        auths = [a for _, _, a in client.api_requests()]
        assert auths[0] != auths[1]
        # The next request gets a new token; its 401 is final at once: the session
        # answers UNAUTHORIZED for a token that never worked, so no retry.
        assert status_of(client.get(url)) == 401
        assert client.shape() == "TATA" + "TA"


@pytest.mark.emulator_args("--faults", "autotask:api:revoke-after=0")
def test_the_adapter_itself_resends_after_a_401_only_once(
    emulator: Emulator, make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if the session said RETRY_WITH_NEW_TOKEN to every 401, one request is resent once."""
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    with autotask(emulator) as session:
        client = make_client(session)
        report = client.auth.driver.report
        verdicts: List[fieldauth.VerdictKind] = []

        def always_retry(auth: Any, status: int, headers: Any, body: bytes) -> fieldauth.Verdict:
            verdict = report(auth, status, headers, body)
            if status == 401:
                verdict = fieldauth.Verdict(fieldauth.VerdictKind.RETRY_WITH_NEW_TOKEN)
            verdicts.append(verdict.kind)
            return verdict

        monkeypatch.setattr(client.auth.driver, "report", always_retry)
        assert status_of(client.get(url)) == 401
        assert verdicts == [fieldauth.VerdictKind.RETRY_WITH_NEW_TOKEN] * 2
        assert client.shape() == "TATA"


@pytest.mark.emulator_args("--faults", "autotask:api:429=2:once")
def test_a_429_waits_for_retry_after_then_sends(
    emulator: Emulator, make_client: Callable[..., Client], vt: VirtualTime
) -> None:
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    with autotask(emulator) as session:
        client = make_client(session)
        started = time.monotonic()
        response = client.get(url)
        assert status_of(response) == 200
        assert 429 in history_statuses(response)
        assert client.shape() == "TAA"
        long_sleeps = [s for s in vt.sleeps if s >= 0.5]
        assert len(long_sleeps) == 1 and 1.5 <= long_sleeps[0] <= 2.5, vt.sleeps  # Retry-After: 2
        assert time.monotonic() - started < 1.5, "the injected sleep must be the one used"
        auths = [a for _, _, a in client.api_requests()]
        assert auths[0] == auths[1], "a rate limit keeps the token"


@pytest.mark.emulator_args("--faults", "autotask:api:429=2:always")
def test_a_429_is_retried_rate_limit_retries_times(
    emulator: Emulator, make_client: Callable[..., Client], vt: VirtualTime
) -> None:
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    with autotask(emulator) as session:
        client = make_client(session, rate_limit_retries=2)
        response = client.get(url)
        assert status_of(response) == 429
        assert client.shape() == "TAAA"
        assert len([s for s in vt.sleeps if s >= 1.5]) == 2, vt.sleeps


@pytest.mark.emulator_args("--faults", "autotask:api:429=30:once")
def test_a_wait_over_max_wait_s_raises_instead_of_sleeping(
    emulator: Emulator, make_client: Callable[..., Client], vt: VirtualTime
) -> None:
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    with autotask(emulator) as session:
        client = make_client(session, max_wait_s=5)
        with pytest.raises(fieldauth.WaitTooLong) as caught:
            client.get(url)
        assert 29 <= caught.value.wait_s <= 31 and caught.value.limit_s == 5
        assert "max_wait_s" in str(caught.value)
        assert all(s < 0.5 for s in vt.sleeps), vt.sleeps
        assert client.shape() == "TA"


@pytest.mark.emulator_args("--faults", "autotask:api:429=600:once")
def test_the_sessions_max_wait_s_caps_the_sleep(
    emulator: Emulator, make_client: Callable[..., Client], vt: VirtualTime
) -> None:
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    with autotask(emulator, max_wait_s=3) as session:
        client = make_client(session)
        assert status_of(client.get(url)) == 200
        assert max(vt.sleeps) >= 2 and all(s <= 3.1 for s in vt.sleeps), vt.sleeps  # Retry-After: 600, cut to 3 s


@pytest.mark.emulator_args("--faults", "fieldnation:api:revoke-after=1")
def test_query_parameter_credential_and_its_401_retry(
    emulator: Emulator, make_client: Callable[..., Client]
) -> None:
    url = emulator.base("fieldnation") + FIELDNATION_API[len("/fieldnation"):] + "?page=2"
    with fieldnation(emulator) as session:
        client = make_client(session)
        assert status_of(client.get(url)) == 200
        response = client.get(url)  # revoked after one call: 401, new token, 200
        assert status_of(response) == 200 and 401 in history_statuses(response)
        assert client.shape() == "TAATA"
        tokens = []
        for _, sent_url, authorization in client.api_requests():
            assert authorization is None, "Field Nation takes the token in the query"
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(sent_url).query)
            assert query["page"] == ["2"]
            assert len(query["access_token"]) == 1, sent_url.split("access_token")[0]
            tokens.append(query["access_token"][0])
        assert tokens[0] == tokens[1] != tokens[2]


def test_an_api_key_preset_sends_no_token_request(emulator: Emulator, make_client: Callable[..., Client]) -> None:
    cfg = Config(base_url=emulator.base("patchworks"), api_key="pw-demo-key")
    with Session(Preset.PATCHWORKS_API_KEY, cfg) as session:
        client = make_client(session)
        assert status_of(client.get(emulator.base("patchworks") + "/core/v1/flows")) == 200
        assert client.shape() == "A"
        (_, _, authorization), = client.api_requests()
        assert authorization == "pw-demo-key"


def test_a_wrong_secret_raises_session_failed_without_the_secret(
    emulator: Emulator, make_client: Callable[..., Client]
) -> None:
    cfg = Config(base_url=emulator.base("autotask"), client_id="demo-client", client_secret="s3cret-wrong")
    with Session(Preset.AUTOTASK, cfg) as session:
        client = make_client(session)
        with pytest.raises(fieldauth.SessionFailed) as caught:
            client.get(emulator.base("autotask") + AUTOTASK_API[len("/autotask"):])
        assert caught.value.failure == fieldauth.Failure.INVALID_CLIENT
        assert "s3cret-wrong" not in str(caught.value) and "s3cret-wrong" not in repr(caught.value)
        assert client.shape() == "T"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_token_endpoint_is_a_transport_failure(make_client: Callable[..., Client]) -> None:
    port = _closed_port()
    base = f"http://127.0.0.1:{port}/autotask"
    cfg = Config(base_url=base, client_id="demo-client", client_secret="demo-secret")
    with Session(Preset.AUTOTASK, cfg) as session:
        client = make_client(session)
        with pytest.raises((requests.ConnectionError, httpx.ConnectError)):
            client.get(base + AUTOTASK_API[len("/autotask"):])
        # The session knows the request failed (it does not wait for its answer for ever).
        assert session.info().failed_attempts == 1
        assert session.poll().kind != fieldauth.ActionKind.AWAIT_RESPONSE


def test_the_adapters_keep_secrets_out_of_repr(emulator: Emulator, make_client: Callable[..., Client]) -> None:
    with autotask(emulator) as session:
        client = make_client(session)
        assert status_of(client.get(emulator.base("autotask") + AUTOTASK_API[len("/autotask"):])) == 200
        (_, _, authorization), = client.api_requests()
        assert authorization is not None
        token = authorization.split(" ", 1)[1]
        for text in (repr(client.auth), repr(client.auth.driver), str(client.auth)):
            assert token not in text and "demo-secret" not in text


def test_options_are_checked(emulator: Emulator) -> None:
    with autotask(emulator) as session:
        for cls in (fieldauth.requests.FieldAuth, fieldauth.httpx.FieldAuth):
            with pytest.raises(ValueError, match="rate_limit_retries"):
                cls(session, rate_limit_retries=-1)
            with pytest.raises(ValueError, match="max_wait_s"):
                cls(session, max_wait_s=-1)
            with pytest.raises(TypeError, match="fieldauth.Session"):
                cls("not a session")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="requests.Session"):
            fieldauth.requests.FieldAuth(session, token_client="x")  # type: ignore[arg-type]


def test_the_token_client_may_be_the_authenticated_session(emulator: Emulator, vt: VirtualTime) -> None:
    """requests: FieldAuth(token_client=http) on http itself must not authenticate its own token request."""
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    with autotask(emulator) as session, requests.Session() as http:
        http.auth = fieldauth.requests.FieldAuth(session, token_client=http, sleep=vt.sleep, clock=vt.clock)
        assert http.get(url, timeout=10).status_code == 200
        assert http.get(url, timeout=10).status_code == 200


def test_concurrent_async_requests_share_one_token_request(emulator: Emulator, vt: VirtualTime) -> None:
    url = emulator.base("autotask") + AUTOTASK_API[len("/autotask"):]
    posts: List[str] = []

    async def log(request: Any) -> None:
        if request.method == "POST":
            posts.append(str(request.url))

    async def run() -> List[int]:
        auth = fieldauth.httpx.FieldAuth(session, async_sleep=vt.async_sleep, clock=vt.clock)
        async with httpx.AsyncClient(auth=auth, timeout=10, event_hooks={"request": [log]}) as client:
            responses = await asyncio.gather(*(client.get(url) for _ in range(5)))
        return [r.status_code for r in responses]

    with autotask(emulator) as session:
        assert asyncio.run(run()) == [200] * 5
    assert len(posts) == 1


def test_a_session_made_with_a_store_makes_its_adapters_share_through_it(
    emulator: Emulator, make_client: Callable[..., Client], tmp_path: Any
) -> None:
    from fieldauth.stores import FileStore

    path = tmp_path / "autotask.store"
    cfg = Config(base_url=emulator.base("autotask"), client_id="demo-client", client_secret="demo-secret")
    url = emulator.base("") + AUTOTASK_API.lstrip("/")
    with Session(Preset.AUTOTASK, cfg, store=FileStore(path), fleet_size=3) as first:
        assert isinstance(first.store, FileStore) and first.fleet_size == 3
        client = make_client(first)  # FieldAuth(session): no store= of its own
        assert status_of(client.get(url)) == 200
        assert client.shape() == "TA"
    loaded = FileStore(path).load()
    assert loaded is not None and loaded[0] == 1, "the first worker saved its token for the fleet"
    # A second worker's session adopts it and sends no token request of its own.
    with Session(Preset.AUTOTASK, cfg, store=FileStore(path), fleet_size=3) as second:
        client = make_client(second)
        assert status_of(client.get(url)) == 200
        assert client.shape() == "A"
        assert second.shared_generation == 1
    # Without a store, nothing changes.
    with Session(Preset.AUTOTASK, cfg) as alone:
        assert alone.store is None and alone.fleet_size == 1
    with pytest.raises(TypeError, match="has no load"):
        Session(Preset.AUTOTASK, cfg, store=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fleet_size"):
        Session(Preset.AUTOTASK, cfg, store=FileStore(path), fleet_size=0)
