"""Every public method of Session, Head and Body, offline with canned responses."""

from __future__ import annotations

import ctypes
import json
import threading
from typing import List

import pytest

import fieldauth
from fieldauth import (
    ActionKind,
    AuthorizationKind,
    Body,
    Config,
    CredentialForm,
    EventKind,
    Failure,
    Framing,
    Head,
    HeadFlag,
    Mode,
    Preset,
    Profile,
    RequestKind,
    Session,
    VerdictKind,
)

from conftest import BASE, JSON, T0, autotask_config, issue_token, token_json


def field_nation() -> Session:
    return Session(
        Preset.FIELD_NATION,
        Config(base_url="http://127.0.0.1:9/fieldnation", client_id="fn-id", client_secret="fn-secret"),
        seed=2,
    )


# ---------------------------------------------------------------- lifecycle


def test_first_poll_asks_for_a_token(autotask: Session) -> None:
    action = autotask.poll(T0)
    assert action.kind == ActionKind.SEND_TOKEN_REQUEST
    assert action.request_kind == RequestKind.FETCH
    assert action.failure == Failure.NONE
    info = autotask.info()
    assert not info.usable and info.failure == Failure.NONE and info.failed_attempts == 0


def test_write_token_request_is_the_autotask_form_post(autotask: Session) -> None:
    autotask.poll(T0)
    raw = autotask.write_token_request(T0)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /autotask/ATServicesRest/oauth/token HTTP/1.1\r\n")
    assert b"Content-Type: application/x-www-form-urlencoded" in head
    assert body == b"grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret"
    assert autotask.poll(T0).kind == ActionKind.AWAIT_RESPONSE
    with pytest.raises(fieldauth.WrongState, match="write_token_request"):
        autotask.write_token_request(T0)  # one is in flight


def test_write_token_request_parts_and_url(autotask: Session) -> None:
    autotask.poll(T0)
    assert autotask.token_request_url() == BASE + "/ATServicesRest/oauth/token"
    request = autotask.write_token_request_parts(T0)
    assert request.method == "POST"
    assert request.target == "/autotask/ATServicesRest/oauth/token"
    assert request.url == BASE + "/ATServicesRest/oauth/token"
    headers = dict(request.headers)
    assert headers["Host"] == "127.0.0.1:9"
    assert headers["Content-Length"] == str(len(request.body))
    assert request.raw.endswith(b"\r\n\r\n" + request.body)
    assert b"demo-secret" in request.body
    assert "demo-secret" not in repr(request)


def test_write_token_request_window_reassembles_the_request() -> None:
    with field_nation() as s:
        s.poll(T0)
        first, total = s.write_token_request_window(0, 16, now_ms=T0)
        assert len(first) == 16 and total > 16
        pieces = [first]
        offset = len(first)
        while offset < total:
            piece, again = s.write_token_request_window(offset, 16, now_ms=T0)
            assert again == total and piece
            pieces.append(piece)
            offset += len(piece)
        raw = b"".join(pieces)
        assert raw.startswith(b"POST /fieldnation/authentication/api/oauth/token HTTP/1.1\r\n")
        assert raw.endswith(b'"client_secret":"fn-secret","scope":"api"}')
        with pytest.raises(fieldauth.InvalidArgument):
            s.write_token_request_window(total + 1, 16, now_ms=T0)


def test_feed_token_response_issues_a_token_with_its_scope(autotask: Session) -> None:
    event = issue_token(autotask, scope="read write")
    assert event.kind == EventKind.TOKEN_ISSUED
    assert event.request_kind == RequestKind.FETCH
    assert event.lifetime_s == 3600 and not event.refreshable
    assert autotask.granted_scope() == "read write"
    info = autotask.info()
    assert info.usable and info.expires_at_ms == T0 + 3_600_000
    assert T0 < info.refresh_at_ms < info.expires_at_ms
    action = autotask.poll(T0)
    assert action.kind == ActionKind.READY and action.at_ms == info.refresh_at_ms
    with pytest.raises(fieldauth.WrongState):
        autotask.write_token_request(T0)  # nothing is due


def test_feed_head_and_body_piece_by_piece(autotask: Session) -> None:
    autotask.poll(T0)
    autotask.write_token_request(T0)
    body = token_json("tok-pieces")
    head = Head()
    raw_head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    consumed, complete = head.feed(raw_head[:10])
    assert (consumed, complete) == (10, False) and not head.complete
    consumed, complete = head.feed(raw_head[10:] + body[:5])
    assert complete and consumed == len(raw_head) - 10 and head.complete
    autotask.feed_token_head(head, T0)
    used, event = autotask.feed_token_body(body[:5], T0)
    assert used == 5 and event.kind == EventKind.NONE
    used, event = autotask.feed_token_body(body[5:] + b"NEXT", T0)
    assert used == len(body) - 5 and event.kind == EventKind.TOKEN_ISSUED


def test_close_delimited_body_completes_at_eof(autotask: Session) -> None:
    autotask.poll(T0)
    autotask.write_token_request(T0)
    head = Head()
    head.feed(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    assert head.info().framing == Framing.CLOSE
    autotask.feed_token_head(head, T0)
    _, event = autotask.feed_token_body(token_json(), T0)
    assert event.kind == EventKind.NONE
    assert autotask.feed_token_eof(T0).kind == EventKind.TOKEN_ISSUED


def test_transport_error_schedules_a_retry(autotask: Session) -> None:
    autotask.poll(T0)
    autotask.write_token_request(T0)
    event = autotask.report_transport_error(T0)
    assert event.kind == EventKind.RETRYING and event.at_ms > T0 and event.http_status == 0
    assert autotask.info().failed_attempts == 1
    assert autotask.poll(T0).kind == ActionKind.WAIT


def test_eof_before_the_response_is_a_transport_error(autotask: Session) -> None:
    autotask.poll(T0)
    autotask.write_token_request(T0)
    with pytest.raises(fieldauth.TransportError, match="feed_token_eof"):
        autotask.feed_token_eof(T0)
    assert autotask.poll(T0).kind == ActionKind.WAIT


def test_invalid_client_fails_with_the_servers_description(autotask: Session) -> None:
    autotask.poll(T0)
    autotask.write_token_request(T0)
    body = b'{"error":"invalid_client","error_description":"unknown client or wrong secret"}'
    event = autotask.feed_token_response(401, JSON, body, reason="Unauthorized", now_ms=T0)
    assert event.kind == EventKind.FAILED and event.failure == Failure.INVALID_CLIENT
    action = autotask.poll(T0)
    assert action.kind == ActionKind.FAILED and action.failure == Failure.INVALID_CLIENT
    assert autotask.failure_description() == "unknown client or wrong secret"
    with pytest.raises(fieldauth.SessionFailed) as caught:
        autotask.raise_if_failed()
    assert caught.value.failure == Failure.INVALID_CLIENT
    assert caught.value.description == "unknown client or wrong secret"
    assert "unknown client or wrong secret" in str(caught.value)
    autotask.restart()
    autotask.raise_if_failed()  # no longer failed
    assert autotask.poll(T0 + 120_000).kind == ActionKind.SEND_TOKEN_REQUEST


def test_bad_json_raises_json_error_and_schedules_a_retry(autotask: Session) -> None:
    autotask.poll(T0)
    autotask.write_token_request(T0)
    with pytest.raises(fieldauth.JsonError) as caught:
        autotask.feed_token_response(200, JSON, b'{"access_token": "x",', now_ms=T0)
    assert isinstance(caught.value, fieldauth.ProtocolError)
    assert caught.value.status == fieldauth.Status.JSON_TRUNCATED
    assert autotask.poll(T0).kind == ActionKind.WAIT
    assert autotask.info().failed_attempts == 1


def test_header_credential_and_401_retry(autotask: Session) -> None:
    issue_token(autotask, token="tok-A")
    auth = autotask.authorize("/autotask/ATServicesRest/V1.0/Companies", now_ms=T0)
    assert auth.ok and auth.kind == AuthorizationKind.SEND
    assert auth.credential == CredentialForm.HEADER
    assert auth.header == ("Authorization", "Bearer tok-A")
    assert auth.target is None
    assert "tok-A" not in repr(auth)
    verdict = autotask.report_api_result(200, JSON, b"[]", now_ms=T0)
    assert verdict.kind == VerdictKind.OK
    verdict = autotask.report_api_result(
        401, [("WWW-Authenticate", 'Bearer error="invalid_token"')], b"", now_ms=T0 + 1000
    )
    assert verdict.kind == VerdictKind.RETRY_WITH_NEW_TOKEN
    assert autotask.authorize(now_ms=T0 + 1000).kind == AuthorizationKind.NO_CREDENTIAL
    assert not autotask.info().usable


def test_query_credential_and_429_wait() -> None:
    with field_nation() as s:
        issue_token(s, token="fn-tok")
        auth = s.authorize("/fieldnation/api/rest/v2/workorders?page=2", now_ms=T0)
        assert auth.credential == CredentialForm.QUERY and auth.header is None
        assert auth.target == "/fieldnation/api/rest/v2/workorders?page=2&access_token=fn-tok"
        verdict = s.report_api_result(429, [("Retry-After", "5")], b"", now_ms=T0)
        assert verdict.kind == VerdictKind.RATE_LIMITED and verdict.until_ms == T0 + 5000
        wait = s.authorize("/x", now_ms=T0 + 1)
        assert wait.kind == AuthorizationKind.WAIT and wait.until_ms == T0 + 5000 and not wait.ok
        assert s.info().api_blocked_until_ms == T0 + 5000
        assert s.authorize("/x", now_ms=T0 + 5000).ok


def test_report_api_response_with_a_parsed_head(autotask: Session) -> None:
    issue_token(autotask)
    head = Head()
    head.feed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert autotask.report_api_response(head, b"", T0).kind == VerdictKind.FORBIDDEN


def test_revoke_without_endpoint_wipes_the_tokens(autotask: Session) -> None:
    issue_token(autotask)
    autotask.revoke()
    action = autotask.poll(T0)
    assert action.kind == ActionKind.FAILED and action.failure == Failure.REVOKED
    autotask.restart()
    assert autotask.poll(T0 + 120_000).kind == ActionKind.SEND_TOKEN_REQUEST


def test_snapshot_and_restore_move_the_token() -> None:
    with field_nation() as a, field_nation() as b:
        issue_token(a, token="moved")
        image = a.snapshot(unix_ms=1_700_000_000_000, now_ms=T0)
        assert len(image) == a.snapshot_len() > 0
        b.restore(image, unix_ms=1_700_000_001_000, now_ms=50)
        assert b.info().usable
        assert b.authorize("/w", now_ms=60).target == "/w?access_token=moved"
        corrupt = bytearray(image)
        corrupt[len(corrupt) // 2] ^= 0xFF
        with pytest.raises(fieldauth.SnapshotError):
            b.restore(bytes(corrupt), unix_ms=1_700_000_001_000, now_ms=50)
        with pytest.raises(fieldauth.SnapshotError) as caught:
            b.restore(image[:-1])
        assert caught.value.status == fieldauth.Status.SNAPSHOT_LENGTH


def test_adopt_takes_a_newer_shared_state_once() -> None:
    """Issue #21: a store's image and generation move the token to a peer."""
    with field_nation() as a, field_nation() as b:
        issue_token(a, token="shared")
        a.set_shared_generation(1)
        assert a.shared_generation == 1
        image = a.snapshot(unix_ms=1_700_000_000_000, now_ms=T0)
        assert b.shared_generation == 0
        corrupt = bytearray(image)
        corrupt[len(corrupt) // 2] ^= 0xFF
        with pytest.raises(fieldauth.SnapshotError):
            b.adopt(bytes(corrupt), 2, unix_ms=1_700_000_001_000, now_ms=50)
        assert b.shared_generation == 0
        assert b.adopt(image, 2, unix_ms=1_700_000_001_000, now_ms=50) == fieldauth.Adopted.NEWER
        assert b.shared_generation == 2
        assert b.authorize("/w", now_ms=60).target == "/w?access_token=shared"
        assert b.adopt(image, 2, unix_ms=1_700_000_001_000, now_ms=70) == fieldauth.Adopted.NOT_NEWER
        # Newer but long expired: the generation is recorded, nothing else.
        later = 1_700_000_000_000 + 86_400_000
        assert b.adopt(image, 3, unix_ms=later, now_ms=80) == fieldauth.Adopted.NOTHING_USABLE
        assert b.shared_generation == 3
        with pytest.raises(ValueError):
            b.set_shared_generation(-1)


def test_set_wall_clock_and_reseed(autotask: Session) -> None:
    autotask.set_wall_clock(1_700_000_000_000, T0)
    autotask.set_wall_clock()
    autotask.reseed(42)
    autotask.reseed()
    assert autotask.poll(T0).kind == ActionKind.SEND_TOKEN_REQUEST


def test_authorization_code_flow_offline() -> None:
    cfg = Config(
        base_url="http://127.0.0.1:9/fentu",
        client_id="fentu-app",
        client_secret="fentu-secret",
        redirect_uri="http://127.0.0.1:9/cb",
    )
    with Session(Preset.FENTU_OAUTH, cfg) as s:
        assert s.poll(T0).kind == ActionKind.NEED_AUTHORIZATION_CODE
        url = s.authorization_url(b"v" * 32, b"s" * 16)
        assert url.startswith("http://127.0.0.1:9/fentu/oauth/authorize?")
        assert "code_challenge_method=S256" in url and "client_id=fentu-app" in url
        state = url.split("state=")[1].split("&")[0]
        with pytest.raises(fieldauth.InputError):
            s.set_authorization_code("the-code", "not-the-state")
        s.set_authorization_code("the-code", state)
        action = s.poll(T0)
        assert action.kind == ActionKind.SEND_TOKEN_REQUEST
        body = s.write_token_request_parts(T0).body
        assert b"grant_type=authorization_code" in body and b"code=the-code" in body
        assert b"code_verifier=" in body
        event = s.feed_token_response(200, JSON, token_json("fentu-at", refresh_token="fentu-rt"), now_ms=T0)
        assert event.kind == EventKind.TOKEN_ISSUED and event.refreshable
        assert s.info().refreshable
        assert len(s.authorization_url()) > 0  # default randomness also works


def test_authorization_callback() -> None:
    """The redirect itself (issue #14 §2.7): state and iss checked, error= typed."""
    cfg = Config(
        base_url="http://127.0.0.1:9/fentu",
        client_id="fentu-app",
        client_secret="fentu-secret",
        redirect_uri="https://app.example/cb",
        allow_insecure=True,
    )
    with Session(Preset.FENTU_OAUTH, cfg) as s:
        with pytest.raises(fieldauth.WrongState):
            s.on_authorization_callback("code=c&state=s")
        url = s.authorization_url()
        state = url.split("state=")[1].split("&")[0]
        iss = "https://as.example"
        with pytest.raises(fieldauth.InputError) as e:
            s.on_authorization_callback("https://app.example/cb?code=x&state=forged")
        assert e.value.status == fieldauth.Status.INPUT_MISMATCH
        with pytest.raises(fieldauth.InputError) as e:
            s.on_authorization_callback(f"/cb?code=x&state={state}&iss=https%3A%2F%2Fevil", issuer=iss)
        assert e.value.status == fieldauth.Status.INPUT_MISMATCH
        with pytest.raises(fieldauth.InputError) as e:
            s.on_authorization_callback(f"/cb?code=x&state={state}", issuer=iss)
        assert e.value.status == fieldauth.Status.INPUT_MISSING
        with pytest.raises(fieldauth.InputError) as e:
            s.on_authorization_callback(f"/cb?code=x&code=y&state={state}")
        assert e.value.status == fieldauth.Status.INPUT_DUPLICATE
        with pytest.raises(fieldauth.AuthorizationDenied) as d:
            s.on_authorization_callback(
                f"https://app.example/cb?error=access_denied&error_description=User+said+no&state={state}"
            )
        assert d.value.failure == fieldauth.Failure.ACCESS_DENIED
        assert d.value.error == "access_denied" and d.value.description == "User said no"
        assert isinstance(d.value, fieldauth.ResponseError)
        assert s.poll(T0).kind == ActionKind.NEED_AUTHORIZATION_CODE
        s.on_authorization_callback(f"https://app.example/cb?code=c%2Bd&state={state}&iss=https%3A%2F%2Fas.example", issuer=iss)
        assert s.poll(T0).kind == ActionKind.SEND_TOKEN_REQUEST
        assert b"code=c%2Bd" in s.write_token_request_parts(T0).body


def test_bearer_challenge_texts() -> None:
    """Issue #14 §2.4: the challenge's texts, not just its code."""
    head = fieldauth.Head()
    head.feed(
        b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="api", error="invalid_token", '
        b'error_description="The token expired", scope="read write"\r\nContent-Length: 0\r\n\r\n'
    )
    assert head.bearer() == fieldauth.BearerChallenge(
        "invalid_token", "The token expired", "read write", "api", ""
    )
    plain = fieldauth.Head()
    with pytest.raises(fieldauth.WrongState):
        plain.bearer()
    plain.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert plain.bearer() is None


def test_verdict_carries_the_challenge(autotask: Session) -> None:
    issue_token(autotask)
    autotask.authorize(now_ms=T0)
    verdict = autotask.report_api_result(
        403, [("WWW-Authenticate", 'Bearer error="insufficient_scope", scope="admin"')], b"", now_ms=T0
    )
    assert verdict.kind == fieldauth.VerdictKind.FORBIDDEN
    assert verdict.challenge is not None and verdict.challenge.scope == "admin"
    assert verdict.challenge.error == "insufficient_scope"
    ok = autotask.report_api_result(200, [], b"", now_ms=T0)
    assert ok.challenge is None


def test_extra_request_parameters() -> None:
    """Issue #14 §2.3: resource, audience and extra parameters through the session."""
    cfg = Config(
        base_url="https://as.example",
        client_id="app",
        client_secret="s3cret",
        scope="api:read",
        resource="https://api.example/",
        audience="fsm-api",
        token_params={"tenant": "acme", "note": 'a b+c"q'},
    )
    with Session(Preset.CUSTOM, cfg) as s:
        s.poll(T0)
        body = s.write_token_request_parts(T0).body
        assert body == (
            b"grant_type=client_credentials&scope=api%3Aread&resource=https%3A%2F%2Fapi.example%2F"
            b"&audience=fsm-api&tenant=acme&note=a+b%2Bc%22q"
        )
    assert "s3cret" not in repr(cfg) and "acme" not in repr(cfg)
    profile = Profile.preset(Preset.CUSTOM)
    profile.mode = fieldauth.Mode.AUTHORIZATION_CODE
    code_cfg = Config(
        base_url="https://as.example",
        client_id="app",
        client_secret="s3cret",
        redirect_uri="https://app.example/cb",
        authorize_params=[("prompt", "consent"), ("login_hint", "tech@acme.example")],
    )
    with Session(profile, code_cfg) as s:
        url = s.authorization_url()
        assert url.endswith("&prompt=consent&login_hint=tech%40acme.example"), url
    for bad in ({"grant_type": "password"}, "a=b c", "x=%0d%0a"):
        with pytest.raises(fieldauth.InputError):
            Session(Preset.CUSTOM, Config(base_url="https://as.example", client_id="a", client_secret="b", token_params=bad))
    with pytest.raises(TypeError):
        Session(Preset.CUSTOM, Config(base_url="https://as.example", client_id="a", client_secret="b", token_params=5))  # type: ignore[arg-type]


def device_profile() -> Profile:
    profile = Profile.preset(Preset.CUSTOM)
    profile.mode = Mode.DEVICE_CODE
    profile.device_path = "/device"
    profile.client_auth = fieldauth.ClientAuth.NONE
    return profile


def test_device_flow_display() -> None:
    with Session(device_profile(), Config(base_url="http://127.0.0.1:9/idp", client_id="tv")) as s:
        action = s.poll(T0)
        assert action.kind == ActionKind.SEND_TOKEN_REQUEST
        assert action.request_kind == RequestKind.DEVICE_AUTHORIZATION
        s.write_token_request(T0)
        with pytest.raises(fieldauth.WrongState):
            s.device_display()
        response = {
            "device_code": "dev-code",
            "user_code": "WDJB-MJHT",
            "verification_uri": "https://idp.example/device",
            "verification_uri_complete": "https://idp.example/device?code=WDJB-MJHT",
            "expires_in": 600,
            "interval": 5,
        }
        event = s.feed_token_response(200, JSON, json.dumps(response).encode(), now_ms=T0)
        assert event.kind == EventKind.USER_CODE
        display = s.device_display()
        assert display.user_code == "WDJB-MJHT"
        assert display.verification_uri == "https://idp.example/device"
        assert display.verification_uri_complete.endswith("?code=WDJB-MJHT")
        assert display.expires_at_ms == T0 + 600_000


def test_custom_profile_changes_take_effect() -> None:
    profile = Profile.preset(Preset.CUSTOM)
    profile.token_path = "/v9/token"
    profile.placement = fieldauth.Placement.HEADER
    profile.placement_name = "X-Api-Token"
    with Session(profile, Config(base_url="http://127.0.0.1:9/api", client_id="c", client_secret="s")) as s:
        assert s.token_request_url() == "http://127.0.0.1:9/api/v9/token"
        issue_token(s, token="custom-tok")
        assert s.authorize(now_ms=T0).header == ("X-Api-Token", "custom-tok")


def test_api_key_sessions_are_ready_at_once() -> None:
    with Session(Preset.PATCHWORKS_API_KEY, Config(base_url="https://patchworks.example", api_key="pw-key")) as s:
        assert s.poll(T0).kind == ActionKind.READY
        assert s.authorize(now_ms=T0).header == ("Authorization", "pw-key")
        assert s.info().expires_at_ms == fieldauth.NEVER


# ---------------------------------------------------------------- head and body


def test_head_info_reads_every_field() -> None:
    head = Head()
    with pytest.raises(fieldauth.WrongState):
        head.info()
    head.feed(
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        b"Retry-After: 30\r\nX-RateLimit-Limit: 100\r\nX-RateLimit-Remaining: 0\r\n"
        b"X-RateLimit-Reset: 1700000000\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
        b"Content-Length: 2\r\n\r\n"
    )
    info = head.info()
    assert info.status == 429 and info.framing == Framing.LENGTH and info.content_length == 2
    assert info.retry_after == 30 and info.x_rate_limit_limit == 100
    assert info.x_rate_limit_remaining == 0 and info.x_rate_limit_reset == 1_700_000_000
    assert info.date == 1_700_000_000 and info.malformed == 0
    for flag in (HeadFlag.CONTENT_LENGTH, HeadFlag.CONTENT_TYPE_JSON, HeadFlag.RETRY_AFTER_DELAY, HeadFlag.DATE):
        assert flag in info.flags
    with pytest.raises(fieldauth.WrongState):
        head.feed(b"more")
    head.reset()
    assert not head.complete


def test_head_rejects_garbage() -> None:
    head = Head()
    with pytest.raises(fieldauth.HttpError) as caught:
        head.feed(b"SMTP ready\r\n\r\n")
    assert caught.value.status == fieldauth.Status.HTTP_STATUS_LINE


def test_body_strips_chunked_framing() -> None:
    head = Head()
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nEXTRA"
    consumed, complete = head.feed(raw)
    assert complete
    body = Body(head)
    rest = raw[consumed:]
    payload = b""
    while True:
        progress = body.read(rest)
        payload += progress.data
        rest = rest[progress.consumed :]
        if progress.done or progress.consumed == 0:
            break
    assert payload == b"hello world" and progress.done and rest == b"EXTRA"
    body.finish()


def test_body_errors() -> None:
    head = Head()
    head.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    body = Body(head)
    with pytest.raises(fieldauth.HttpError):
        body.read(b"zz\r\n")
    head2 = Head()
    head2.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    short = Body(head2)
    short.read(b"12345")
    with pytest.raises(fieldauth.TransportError):
        short.finish()
    with pytest.raises(fieldauth.WrongState):
        Body(Head())  # head not complete


def test_from_response_replaces_the_framing() -> None:
    head = Head.from_response(200, {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}, 12)
    info = head.info()
    assert info.framing == Framing.LENGTH and info.content_length == 12
    assert HeadFlag.CHUNKED not in info.flags and HeadFlag.CONTENT_TYPE_JSON in info.flags


# ---------------------------------------------------------------- closing and secrets


def test_close_wipes_the_storage_and_later_calls_raise(autotask: Session) -> None:
    issue_token(autotask, token="secret-token")
    autotask.close()
    assert bytes(autotask._storage) == bytes(fieldauth._lib.SESSION_HEADER_SIZE)
    assert bytes(autotask._tokens) == bytes(len(autotask._tokens))  # the token storage too
    autotask.close()  # twice is fine
    with pytest.raises(fieldauth.NotInitialized, match="Session.poll"):
        autotask.poll(T0)
    with pytest.raises(fieldauth.NotInitialized):
        autotask.authorize("/x")
    assert "closed" in repr(autotask)


def test_context_manager_clears_on_exit_even_on_error() -> None:
    with pytest.raises(RuntimeError):
        with Session(Preset.AUTOTASK, autotask_config()) as s:
            issue_token(s)
            raise RuntimeError("boom")
    assert bytes(s._storage) == bytes(fieldauth._lib.SESSION_HEADER_SIZE)
    assert bytes(s._tokens) == bytes(len(s._tokens))
    with pytest.raises(fieldauth.NotInitialized):
        s.info()


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    cfg = Config(base_url="ftp://nowhere", client_id="id", client_secret="TOPSECRET", password="PW-SECRET", api_key="KEY-SECRET")
    assert "TOPSECRET" not in repr(cfg) and "PW-SECRET" not in repr(cfg) and "KEY-SECRET" not in repr(cfg)
    with pytest.raises(fieldauth.InputError) as caught:
        Session(Preset.AUTOTASK, cfg)
    assert "TOPSECRET" not in str(caught.value)
    with Session(Preset.AUTOTASK, autotask_config()) as s:
        issue_token(s, token="TOKEN-SECRET")
        assert "TOKEN-SECRET" not in repr(s) and "usable=True" in repr(s)


def test_concurrent_use_of_one_session_is_serialized(autotask: Session) -> None:
    issue_token(autotask)
    errors: List[BaseException] = []

    def worker() -> None:
        try:
            for i in range(300):
                autotask.poll(T0 + i)
                autotask.info()
                autotask.granted_scope()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert autotask.info().usable


def test_storage_is_aligned() -> None:
    for _ in range(20):
        s = Session(Preset.AUTOTASK, autotask_config())
        assert ctypes.addressof(s._storage) % 8 == 0
        s.close()
