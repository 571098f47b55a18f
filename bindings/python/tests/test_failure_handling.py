"""Issue #19 through Python: failure texts never carry token bytes, server
waits are capped (``Config.max_wait_s``), a 4xx without an error code during a
refresh is retried while the valid token is served, and exhausted retries
never latch."""

from __future__ import annotations

import pytest

import fieldauth
from fieldauth import ActionKind, AuthorizationKind, Config, EventKind, Preset, Profile, Session, VerdictKind

from conftest import JSON, T0, autotask_config, issue_token, token_json

HTML = [("Content-Type", "text/html")]


def next_send(s: Session, now: int) -> int:
    for _ in range(10_000):
        a = s.poll(now)
        if a.kind == ActionKind.SEND_TOKEN_REQUEST:
            return now
        assert a.kind in (ActionKind.READY, ActionKind.WAIT), a
        now = max(a.at_ms, now + 1)
    raise AssertionError("no token request due")


def test_an_old_error_description_never_shows_a_new_token(autotask: Session) -> None:
    autotask.poll(T0)
    autotask.write_token_request(T0)
    body = b'{"error":"temporarily_unavailable","error_description":"down for maintenance"}'
    event = autotask.feed_token_response(503, JSON, body, now_ms=T0)
    assert event.kind == EventKind.RETRYING
    assert autotask.failure_description() == "down for maintenance"
    info = autotask.info()
    assert info.last_http_status == 503 and info.last_content_json
    now = next_send(autotask, T0)
    token = "tok-abcdefghijklmnopqrstuvwxyz0123456789"
    autotask.write_token_request(now)
    event = autotask.feed_token_response(200, JSON, token_json(token), now_ms=now)
    assert event.kind == EventKind.TOKEN_ISSUED
    # Before the fix: 20 bytes from the middle of the new token.
    assert autotask.failure_description() == ""
    for text in (repr(autotask), repr(autotask.info()), repr(event)):
        assert "abcdefghij" not in text


def test_server_waits_are_capped_by_max_wait_s() -> None:
    config = Config(base_url="http://127.0.0.1:9/autotask", client_id="demo-client",
                    client_secret="demo-secret", max_wait_s=120)
    with Session(Preset.AUTOTASK, config, seed=1) as s:
        issue_token(s)
        verdict = s.report_api_result(429, [("Retry-After", "86400")], b"", now_ms=T0)
        assert verdict.kind == VerdictKind.RATE_LIMITED and verdict.until_ms == T0 + 120_000
    with Session(Preset.AUTOTASK, autotask_config(), seed=1) as s:
        issue_token(s)
        verdict = s.report_api_result(429, [("Retry-After", "4000000000")], b"", now_ms=T0)
        assert verdict.until_ms == T0 + 3_600_000, "the default cap is an hour"
    with pytest.raises(ValueError, match="max_wait_s"):
        Session(Preset.AUTOTASK, Config(base_url="https://x.example", client_id="a",
                                        client_secret="b", max_wait_s=-1))


def test_html_during_a_refresh_is_retried_and_the_token_served() -> None:
    with Session(Preset.CUSTOM, Config(base_url="https://auth.example", client_id="c",
                                       client_secret="s"), seed=3) as s:
        issue_token(s, token="valid-at", refresh_token="rt")
        now = next_send(s, T0)
        s.write_token_request(now)
        event = s.feed_token_response(403, HTML, b"<html>Sign in to the Wi-Fi</html>", now_ms=now)
        assert event.kind == EventKind.RETRYING  # before the fix: FAILED (REJECTED)
        auth = s.authorize("/api", now_ms=now)
        assert auth.kind == AuthorizationKind.SEND and auth.header == ("Authorization", "Bearer valid-at")
        assert s.info().failure == fieldauth.Failure.NONE


def test_exhausted_retries_do_not_latch() -> None:
    config = Config(base_url="http://127.0.0.1:9/fieldnation", client_id="fn-id", client_secret="fn-secret")
    with Session(Preset.FIELD_NATION, config, seed=2) as s:
        now = T0
        for _ in range(10):
            now = next_send(s, now)
            s.write_token_request(now)
            assert s.feed_token_response(502, HTML, b"", now_ms=now).kind == EventKind.RETRYING
        action = s.poll(now)
        assert action.kind == ActionKind.WAIT and action.at_ms - now <= 300_000
        now = next_send(s, now)
        s.write_token_request(now)
        s.feed_token_response(200, JSON, token_json("back"), now_ms=now)
        assert s.authorize("/x", now_ms=now).ok


def test_a_late_401_for_an_older_token_leaves_the_new_one_alone(autotask: Session) -> None:
    """Issue #14 §2.9: several requests in flight while the token is renewed."""
    issue_token(autotask, token="tok-old")
    auth = autotask.authorize("/x", now_ms=T0 + 1000)
    assert auth.ok and auth.token_id is not None
    old = auth.token_id
    now = next_send(autotask, T0 + 1000)
    autotask.write_token_request(now)
    autotask.feed_token_response(200, JSON, token_json("tok-new"), now_ms=now)
    late = autotask.report_api_result(401, [], b"", now_ms=now + 1, token_id=old)
    assert late.kind == VerdictKind.RETRY_WITH_NEW_TOKEN
    fresh = autotask.authorize("/x", now_ms=now + 1)
    assert fresh.ok and fresh.header == ("Authorization", "Bearer tok-new") and fresh.token_id != old


def jwt(length: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join("." if i == length // 2 else alphabet[(i * 7 + 3) % 64] for i in range(length))


def test_a_4kb_jwt_pair_fits_the_default_token_capacity() -> None:
    """Issue #20: token storage sized by the caller; the default fits a 4 KB JWT pair."""
    access, refresh = jwt(4096), jwt(1024)
    body = token_json(access, refresh_token=refresh, scope="openid groups")
    with Session(Preset.AUTOTASK, autotask_config(), seed=1) as s:
        assert s.info().slot_capacity >= fieldauth.DEFAULT_TOKEN_CAPACITY
        s.poll(T0)
        s.write_token_request(T0)
        event = s.feed_token_response(200, JSON, body, now_ms=T0)
        assert event.kind == EventKind.TOKEN_ISSUED and event.refreshable
        auth = s.authorize("/x", now_ms=T0)
        assert auth.header == ("Authorization", "Bearer " + access)
    # Too small a capacity: the error says how large it must be, in Python terms.
    with Session(Preset.AUTOTASK, autotask_config(), seed=1, token_capacity=1024) as s:
        s.poll(T0)
        s.write_token_request(T0)
        with pytest.raises(fieldauth.CapacityExceeded) as caught:
            s.feed_token_response(200, JSON, body, now_ms=T0)
        assert caught.value.needed >= 4096 + 1024
        assert f"token_capacity={caught.value.needed}" in str(caught.value)
        assert s.info().slot_needed == caught.value.needed
    with pytest.raises(ValueError, match="token_capacity"):
        Session(Preset.AUTOTASK, autotask_config(), token_capacity=10)


def test_revoking_the_access_token_alone_keeps_the_session_going() -> None:
    """Issue #14 §2.6: the access token alone, or both tokens, can be revoked."""
    config = Config(base_url="http://127.0.0.1:9", client_id="c", client_secret="s")
    with Session(Preset.CUSTOM, config, seed=3) as s:
        issue_token(s, token="at-1", refresh_token="rt-1")
        s.revoke(fieldauth.Revocation.ACCESS)
        assert s.poll(T0).request_kind == fieldauth.RequestKind.REVOKE
        req = s.write_token_request(T0)
        assert b"token=at-1&token_type_hint=access_token" in req
        assert s.feed_token_response(200, [], b"", now_ms=T0).kind == EventKind.REVOKED
        info = s.info()
        assert info.failure == fieldauth.Failure.NONE and info.refreshable and not info.usable
        assert s.poll(T0).request_kind == fieldauth.RequestKind.REFRESH
    with Session(Preset.CUSTOM, config, seed=3) as s:
        issue_token(s, token="at-1", refresh_token="rt-1")
        s.revoke(fieldauth.Revocation.BOTH)
        for expected in (b"token=rt-1", b"token=at-1"):
            assert s.poll(T0).request_kind == fieldauth.RequestKind.REVOKE
            assert expected in s.write_token_request(T0)
            s.feed_token_response(200, [], b"", now_ms=T0)
        assert s.poll(T0).kind == ActionKind.FAILED
    with pytest.raises(TypeError, match="Revocation"):
        Session(Preset.CUSTOM, config).revoke(1)  # type: ignore[arg-type]
