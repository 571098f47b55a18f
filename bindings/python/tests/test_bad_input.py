"""Bad input raises Python exceptions; nothing crashes the interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any, List

import pytest

import fieldauth
from fieldauth import ActionKind, Config, Head, Preset, Profile, Session, Status

from conftest import T0, autotask_config, issue_token, token_json


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize("provider", [None, "autotask", 4.0, True, object()])
def test_provider_of_the_wrong_type(provider: Any) -> None:
    with pytest.raises(TypeError, match="provider must be a Preset or a Profile"):
        Session(provider, autotask_config())


def test_config_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="config must be a Config"):
        Session(Preset.AUTOTASK, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config must be a Config"):
        Session(Preset.AUTOTASK, {"base_url": "x"})  # type: ignore[arg-type]


def test_unknown_preset_is_the_librarys_unknown_enum() -> None:
    with pytest.raises(fieldauth.InvalidArgument) as caught:
        Session(99, autotask_config())
    assert caught.value.status == Status.UNKNOWN_ENUM
    assert caught.value.message == fieldauth.status_message(Status.UNKNOWN_ENUM)
    with pytest.raises(ValueError):
        Session(-1, autotask_config())
    with pytest.raises(ValueError):
        Session(2**32, autotask_config())


@pytest.mark.parametrize("field", ["base_url", "client_id", "client_secret", "scope"])
@pytest.mark.parametrize("value", [123, 1.5, ["x"], object()])
def test_config_text_of_the_wrong_type(field: str, value: Any) -> None:
    cfg = autotask_config()
    setattr(cfg, field, value)
    with pytest.raises(TypeError, match=f"{field} must be str or bytes"):
        Session(Preset.AUTOTASK, cfg)


def test_surrogates_are_refused_before_the_library() -> None:
    cfg = autotask_config()
    cfg.client_secret = "abc\udcff"
    with pytest.raises(ValueError, match="client_secret cannot be encoded as UTF-8"):
        Session(Preset.AUTOTASK, cfg)


def test_non_utf8_bytes_are_refused_by_the_library() -> None:
    cfg = autotask_config()
    cfg.client_id = b"caf\xe9"
    with pytest.raises(fieldauth.InvalidArgument) as caught:
        Session(Preset.AUTOTASK, cfg)
    assert caught.value.status == Status.INVALID_UTF8


@pytest.mark.parametrize(
    "changes, status",
    [
        ({"base_url": "ftp://127.0.0.1/x"}, Status.INPUT_INVALID_URL),
        ({"base_url": "http://api.example.com/x"}, Status.INPUT_INSECURE_SCHEME),
        ({"base_url": None}, None),
        ({"client_secret": None}, Status.INPUT_MISSING),
        ({"client_id": "a\r\nX-Evil: 1"}, Status.INPUT_CONTROL_CHARACTER),
    ],
)
def test_bad_config_values_raise_input_errors(changes: dict, status: Any) -> None:
    cfg = autotask_config()
    for k, v in changes.items():
        setattr(cfg, k, v)
    with pytest.raises(fieldauth.InputError) as caught:
        Session(Preset.AUTOTASK, cfg)
    if status is not None:
        assert caught.value.status == status
    assert isinstance(caught.value, ValueError)


def test_insecure_is_allowed_only_when_asked() -> None:
    cfg = autotask_config("http://api.example.com/autotask")
    cfg.allow_insecure = True
    with Session(Preset.AUTOTASK, cfg) as s:
        assert s.poll(T0).kind == ActionKind.SEND_TOKEN_REQUEST
    cfg.allow_insecure = "yes"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="allow_insecure must be a bool"):
        Session(Preset.AUTOTASK, cfg)


@pytest.mark.parametrize("size", [60_000, 10_000_000])
def test_huge_strings_raise(size: int) -> None:
    # The storage grows with the configuration, up to the 64 KB a session can
    # address: beyond, CapacityExceeded.
    cfg = autotask_config()
    cfg.client_secret = "s" * size
    with pytest.raises((fieldauth.CapacityExceeded, fieldauth.InputError)):
        Session(Preset.AUTOTASK, cfg)


def test_bad_profiles() -> None:
    cfg = autotask_config()
    profile = Profile.preset(Preset.AUTOTASK)
    profile.mode = 99
    with pytest.raises(fieldauth.InvalidArgument) as caught:
        Session(profile, cfg)
    assert caught.value.status == Status.UNKNOWN_ENUM
    profile = Profile.preset(Preset.AUTOTASK)
    profile.mode = 0
    with pytest.raises(fieldauth.InvalidArgument):
        Session(profile, cfg)
    profile = Profile.preset(Preset.AUTOTASK)
    profile.token_budget = fieldauth.Budget(requests=5, window_s=0, burst=1)
    with pytest.raises(fieldauth.InvalidArgument):
        Session(profile, cfg)
    profile = Profile.preset(Preset.AUTOTASK)
    profile.token_budget = (1, 2, 3)  # type: ignore[assignment]
    with pytest.raises(TypeError, match="token_budget must be a Budget"):
        Session(profile, cfg)
    profile = Profile.preset(Preset.AUTOTASK)
    profile.refresh_margin_s = -5
    with pytest.raises(ValueError, match="refresh_margin_s"):
        Session(profile, cfg)
    profile = Profile.preset(Preset.AUTOTASK)
    profile.api_budget_per_token = 1  # type: ignore[assignment]
    with pytest.raises(TypeError, match="api_budget_per_token"):
        Session(profile, cfg)
    profile = Profile.preset(Preset.AUTOTASK)
    profile.backoff = None  # type: ignore[assignment]
    with pytest.raises(TypeError, match="backoff"):
        Session(profile, cfg)


@pytest.mark.parametrize("seed", [-1, 2**64, "7", 1.0, True])
def test_bad_seeds(seed: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="seed"):
        Session(Preset.AUTOTASK, autotask_config(), seed=seed)


# ---------------------------------------------------------------- calls


@pytest.mark.parametrize("now", [-1, 2**64, "1000", 1.5, True, [1]])
def test_bad_times(autotask: Session, now: Any) -> None:
    for call in (autotask.poll, autotask.write_token_request, autotask.report_transport_error):
        with pytest.raises((TypeError, ValueError), match="now_ms"):
            call(now)
    with pytest.raises((TypeError, ValueError), match="unix_ms"):
        autotask.set_wall_clock(now, T0)


def test_bad_targets(autotask: Session) -> None:
    issue_token(autotask)
    with pytest.raises(TypeError, match="target must be str or bytes"):
        autotask.authorize(123, now_ms=T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target cannot be encoded"):
        autotask.authorize("/\ud800", now_ms=T0)
    fn = Session(
        Preset.FIELD_NATION,
        Config(base_url="http://127.0.0.1:9/fieldnation", client_id="a", client_secret="b"),
    )
    with fn:
        issue_token(fn)
        with pytest.raises(fieldauth.InvalidArgument) as caught:
            fn.authorize(b"/w?x=\xff", now_ms=T0)
        assert caught.value.status == Status.INVALID_UTF8
        with pytest.raises(fieldauth.InputError):
            fn.authorize("/w\r\nHost: evil", now_ms=T0)
        # Larger than the first buffer guess: retried with the size the library asks for.
        long_target = "/w?q=" + "a" * 5000
        auth = fn.authorize(long_target, now_ms=T0)
        assert auth.target == long_target + "&access_token=tok-1"


def test_calls_in_the_wrong_state(autotask: Session) -> None:
    with pytest.raises(fieldauth.WrongState, match="feed_token_body"):
        autotask.feed_token_body(b"{}", T0)
    with pytest.raises(fieldauth.WrongState):
        autotask.feed_token_eof(T0)
    with pytest.raises(fieldauth.WrongState):
        autotask.write_token_request_window(5, 16, now_ms=T0)
    with pytest.raises(fieldauth.WrongState):
        autotask.authorization_url()  # not authorization-code mode
    with pytest.raises(fieldauth.WrongState):
        autotask.set_authorization_code("code", "state")
    with pytest.raises(fieldauth.WrongState):
        autotask.device_display()
    autotask.poll(T0)
    autotask.write_token_request(T0)
    with pytest.raises(fieldauth.WrongState):
        autotask.feed_token_head(Head(), T0)  # the head is not complete
    with pytest.raises(fieldauth.WrongState):
        autotask.snapshot()  # a request is in flight
    with pytest.raises(fieldauth.WrongState):
        autotask.report_api_response(Head(), b"", T0)


def test_wrong_argument_types_on_every_method(autotask: Session) -> None:
    with pytest.raises(TypeError):
        autotask.feed_token_head("head")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        autotask.report_api_response(b"HTTP/1.1 200 OK\r\n\r\n")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="chunk must be bytes"):
        autotask.feed_token_body("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="image must be bytes"):
        autotask.restore("image")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="verifier_random must be bytes"):
        autotask.authorization_url("v" * 32)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="code must be str or bytes"):
        autotask.set_authorization_code(5, "s")  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError)):
        autotask.write_token_request_window(-1)
    with pytest.raises(TypeError):
        autotask.reseed("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Head().feed("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fieldauth.Body("head")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fieldauth.status_message(-1)
    with pytest.raises(TypeError):
        fieldauth.preset_name("autotask")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        autotask.exchange(object())  # type: ignore[arg-type]


def test_bad_response_headers_do_not_strand_the_session(autotask: Session) -> None:
    autotask.poll(T0)
    autotask.write_token_request(T0)
    with pytest.raises(ValueError, match="CR or LF"):
        autotask.feed_token_response(200, [("X-A", "1\r\nContent-Length: 0")], b"{}", now_ms=T0)
    # The exchange was reported as failed: the session waits to retry instead of awaiting forever.
    assert autotask.poll(T0).kind == ActionKind.WAIT
    with pytest.raises(TypeError):
        Head.from_response(200, "Content-Type: x", 0)
    with pytest.raises(TypeError):
        Head.from_response(200, [("only-a-name",)], 0)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="status"):
        Head.from_response(42, [], 0)
    with pytest.raises(ValueError):
        Head.from_response(200, [("X", "\u20ac")], 0)


def test_snapshot_garbage(autotask: Session) -> None:
    for image in (b"", b"\x00" * 10, os.urandom(autotask.snapshot_len())):
        with pytest.raises(fieldauth.SnapshotError):
            autotask.restore(image)


def test_bad_random_lengths() -> None:
    cfg = Config(base_url="http://127.0.0.1:9/fentu", client_id="a", client_secret="b", redirect_uri="http://127.0.0.1:9/cb")
    with Session(Preset.FENTU_OAUTH, cfg) as s:
        with pytest.raises(fieldauth.InputError) as caught:
            s.authorization_url(b"v", b"s" * 16)
        assert caught.value.status == Status.INPUT_TOO_SHORT
        with pytest.raises(fieldauth.InputError) as caught:
            s.authorization_url(b"v" * 32, b"s" * 1000)
        assert caught.value.status == Status.INPUT_TOO_LONG


# ---------------------------------------------------------------- transports


class CannedTransport:
    """A socket-like object that replays a response (optionally in small pieces)."""

    def __init__(self, response: bytes, piece: int = 7, block_first: bool = False) -> None:
        self.response = response
        self.piece = piece
        self.sent = b""
        self.block = block_first

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def recv(self, n: int) -> bytes:
        if self.block:
            self.block = False
            raise BlockingIOError("not yet")
        out, self.response = self.response[: min(n, self.piece)], self.response[min(n, self.piece) :]
        return out


def canned_200() -> bytes:
    body = token_json("over-transport")
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def test_exchange_over_a_canned_transport(autotask: Session) -> None:
    autotask.poll(T0)
    transport = CannedTransport(canned_200())
    event = autotask.exchange(transport, T0, buffer_size=16)
    assert event.kind == fieldauth.EventKind.TOKEN_ISSUED
    assert transport.sent.startswith(b"POST /autotask/ATServicesRest/oauth/token HTTP/1.1\r\n")
    assert autotask.authorize(now_ms=T0).header == ("Authorization", "Bearer over-transport")


class ClosableTransport(CannedTransport):
    closed = False

    def close(self) -> None:
        self.closed = True


def test_exchange_says_whether_the_connection_goes_on(autotask: Session) -> None:
    """Issue #14 §2.2: Connection: close on a token response was invisible."""
    autotask.poll(T0)
    keep = ClosableTransport(canned_200())
    event = autotask.exchange(keep, T0)
    assert event.reusable is True and event.date is None and not keep.closed
    session = Session(fieldauth.Preset.AUTOTASK, autotask_config())
    session.poll(T0)
    body = token_json("closing")
    raw = (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    closing = ClosableTransport(raw)
    event = session.exchange(closing, T0)
    assert event.kind == fieldauth.EventKind.TOKEN_ISSUED
    assert event.reusable is False and event.date == 784111777
    assert closing.closed  # honoured: the next request needs a new connection
    session.close()


def test_exchange_would_block_then_resumes(autotask: Session) -> None:
    autotask.poll(T0)
    transport = CannedTransport(canned_200(), block_first=True)
    with pytest.raises(fieldauth.WouldBlock):
        autotask.exchange(transport, T0)
    assert autotask.exchange(transport, T0).kind == fieldauth.EventKind.TOKEN_ISSUED


def test_exchange_needs_a_due_request(autotask: Session) -> None:
    issue_token(autotask)
    with pytest.raises(fieldauth.WrongState):
        autotask.exchange(CannedTransport(canned_200()), T0)


class Broken:
    def __init__(self, send: Any = None, recv: Any = None) -> None:
        self._send, self._recv = send, recv

    def send(self, data: bytes) -> Any:
        return self._send(data) if self._send else len(data)

    def recv(self, n: int) -> Any:
        return self._recv(n)


def _raise(exc: BaseException) -> Any:
    def f(*_: Any) -> Any:
        raise exc

    return f


@pytest.mark.parametrize(
    "transport, cause",
    [
        (Broken(recv=_raise(ConnectionResetError("reset"))), ConnectionResetError),
        (Broken(send=_raise(BrokenPipeError("pipe"))), BrokenPipeError),
        (Broken(send=lambda d: len(d) + 1), TypeError),
        (Broken(send=lambda d: "all"), TypeError),
        (Broken(recv=lambda n: b"x" * (n + 1)), ValueError),
        (Broken(recv=lambda n: "text"), TypeError),
        (Broken(recv=lambda n: b""), None),
    ],
)
def test_exchange_transport_failures_raise_transport_error(autotask: Session, transport: Any, cause: Any) -> None:
    autotask.poll(T0)
    with pytest.raises(fieldauth.TransportError) as caught:
        autotask.exchange(transport, T0)
    if cause is None:
        assert caught.value.__cause__ is None
    else:
        assert isinstance(caught.value.__cause__, cause)
    # The session scheduled a retry.
    assert autotask.poll(T0).kind == ActionKind.WAIT
    assert autotask.info().failed_attempts == 1


def test_keyboard_interrupt_in_a_callback_propagates(autotask: Session) -> None:
    autotask.poll(T0)
    with pytest.raises(KeyboardInterrupt):
        autotask.exchange(Broken(recv=_raise(KeyboardInterrupt())), T0)


def test_callbacks_cannot_reenter_the_session(autotask: Session) -> None:
    autotask.poll(T0)
    seen: List[BaseException] = []

    def send(data: bytes) -> int:
        try:
            autotask.poll(T0)
        except fieldauth.WrongState as exc:
            seen.append(exc)
            raise
        return len(data)

    with pytest.raises(fieldauth.TransportError) as caught:
        autotask.exchange(Broken(send=send), T0)
    assert isinstance(caught.value.__cause__, fieldauth.WrongState)
    assert seen and "transport callback" in str(seen[0])


def test_no_crash_under_repeated_abuse_in_a_fresh_interpreter() -> None:
    """Large outputs (the retry path), closed sessions and garbage, in a child process.

    Heap corruption would abort the child (glibc checks at free and exit), so
    the exit status and stderr are checked, not only exceptions.
    """
    code = textwrap.dedent(
        """
        import fieldauth as f
        cfg = f.Config(base_url="http://127.0.0.1:9/fieldnation", client_id="a", client_secret="b")
        for i in range(200):
            s = f.Session(f.Preset.FIELD_NATION, cfg, seed=i)
            s.poll(0)
            s.write_token_request_parts(0)
            s.feed_token_response(200, [("Content-Type", "application/json")],
                b'{"access_token":"%s","token_type":"Bearer","expires_in":60}' % (b"t" * 200), now_ms=0)
            assert len(s.authorize("/x?" + "q" * (3000 + i), now_ms=0).target) > 3000
            assert len(s.snapshot(1, 0)) == s.snapshot_len()
            s.close()
            for bad in (lambda: s.poll(0), lambda: s.authorize("/x"), lambda: s.restore(b"x" * 50)):
                try:
                    bad()
                except f.FieldauthError:
                    pass
            del s
        print("survived")
        """
    )
    out = subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "survived"
    assert "corrupted" not in out.stderr and "Fatal" not in out.stderr, out.stderr
