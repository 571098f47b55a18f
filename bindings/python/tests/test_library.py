"""Loading the library, its version and size checks, enums against the header, error mapping."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import fieldauth
from fieldauth import _lib, enums, errors
from fieldauth.enums import Status

from conftest import HEADER


def header_constants() -> dict:
    text = HEADER.read_text()
    return {m[0]: int(m[1]) for m in re.findall(r"#define (FIELDAUTH_[A-Z0-9_]+) (-?\d+)\b", text)}


def test_version_matches_the_header() -> None:
    c = header_constants()
    number = (c["FIELDAUTH_VERSION_MAJOR"] << 16) | (c["FIELDAUTH_VERSION_MINOR"] << 8) | c[
        "FIELDAUTH_VERSION_PATCH"
    ]
    assert fieldauth.version_number() == number
    assert fieldauth.version() == "{}.{}.{}".format(
        c["FIELDAUTH_VERSION_MAJOR"], c["FIELDAUTH_VERSION_MINOR"], c["FIELDAUTH_VERSION_PATCH"]
    )
    assert _lib.VERSION_MAJOR == c["FIELDAUTH_VERSION_MAJOR"]
    assert _lib.VERSION_MINOR == c["FIELDAUTH_VERSION_MINOR"]


def test_sizes_match_the_header_and_the_library() -> None:
    c = header_constants()
    lib = _lib.lib()
    assert _lib.SESSION_SIZE == c["FIELDAUTH_SESSION_SIZE"] == lib.fieldauth_session_sizeof()
    assert _lib.HEAD_SIZE == c["FIELDAUTH_HEAD_SIZE"] == lib.fieldauth_head_sizeof()
    assert _lib.BODY_SIZE == c["FIELDAUTH_BODY_SIZE"] == lib.fieldauth_body_sizeof()
    assert _lib.WORKER_SIZE == c["FIELDAUTH_WORKER_SIZE"] == lib.fieldauth_worker_sizeof()
    assert ctypes.sizeof(_lib.WorkerStorage) == _lib.WORKER_SIZE
    assert _lib.SESSION_ALIGN == c["FIELDAUTH_SESSION_ALIGN"]
    assert _lib.MAX_HEADERS == c["FIELDAUTH_MAX_HEADERS"]
    assert ctypes.sizeof(_lib.SessionStorage) == _lib.SESSION_SIZE
    assert ctypes.alignment(_lib.SessionStorage) >= _lib.SESSION_ALIGN
    assert _lib.TRANSPORT_CLOSED == c["FIELDAUTH_TRANSPORT_CLOSED"]
    assert _lib.TRANSPORT_ERROR == c["FIELDAUTH_TRANSPORT_ERROR"]


def test_every_function_of_the_header_is_declared() -> None:
    """The ctypes prototypes are exactly the header's functions (none missing, none invented)."""
    text = HEADER.read_text()
    functions = set(
        re.findall(r"^(?:FIELDAUTH_MUST_USE )?(?:const char \*|[a-z_0-9]+ )\*?(fieldauth_[a-z_]+)\(", text, re.M)
    )
    assert len(functions) > 40
    assert functions == set(_lib.PROTOTYPES)


ENUM_PREFIXES = {
    enums.Preset: "FIELDAUTH_PRESET_",
    enums.Mode: "FIELDAUTH_MODE_",
    enums.Format: "FIELDAUTH_FORMAT_",
    enums.ClientAuth: "FIELDAUTH_CLIENT_AUTH_",
    enums.RevokeStyle: "FIELDAUTH_REVOKE_",
    enums.Revocation: "FIELDAUTH_REVOCATION_",
    enums.Adopted: "FIELDAUTH_ADOPTED_",
    enums.Keys: "FIELDAUTH_KEYS_",
    enums.Placement: "FIELDAUTH_PLACEMENT_",
    enums.ResetMode: "FIELDAUTH_RESET_",
    enums.ActionKind: "FIELDAUTH_ACTION_",
    enums.RequestKind: "FIELDAUTH_REQUEST_",
    enums.Failure: "FIELDAUTH_FAILURE_",
    enums.EventKind: "FIELDAUTH_EVENT_",
    enums.AuthorizationKind: "FIELDAUTH_AUTHORIZATION_",
    enums.CredentialForm: "FIELDAUTH_CREDENTIAL_",
    enums.VerdictKind: "FIELDAUTH_VERDICT_",
    enums.HeadFlag: "FIELDAUTH_HEAD_",
    enums.Framing: "FIELDAUTH_FRAMING_",
}


@pytest.mark.parametrize("enum, prefix", ENUM_PREFIXES.items(), ids=lambda x: getattr(x, "__name__", x))
def test_enum_matches_the_header(enum: type, prefix: str) -> None:
    c = header_constants()
    skip = {"FIELDAUTH_PRESET_COUNT", "FIELDAUTH_HEAD_SIZE", "FIELDAUTH_HEAD_ALIGN"}
    expected = {k[len(prefix):]: v for k, v in c.items() if k.startswith(prefix) and k not in skip}
    # CLIENT_AUTH_* also starts with neither of the others; REVOKE_ vs RESET_ are distinct.
    got = {m.name: int(m) for m in enum}  # type: ignore[attr-defined]
    assert got == expected


def test_status_matches_the_header_and_has_messages() -> None:
    c = header_constants()
    expected = {"OK": 0}
    expected.update({k[len("FIELDAUTH_ERR_"):]: v for k, v in c.items() if k.startswith("FIELDAUTH_ERR_")})
    assert {s.name: int(s) for s in Status} == expected
    unknown = fieldauth.status_message(12345)
    for status in Status:
        message = fieldauth.status_message(status)
        assert message and message != unknown, status
    assert Status.HTTP_CHUNK.family == 300 and Status.WRONG_STATE.family == 600


def test_never_matches_the_header() -> None:
    assert fieldauth.NEVER == 2**64 - 1
    assert "FIELDAUTH_NEVER 18446744073709551615ull" in HEADER.read_text()


@pytest.mark.parametrize(
    "status, cls",
    [
        (Status.NULL_POINTER, errors.InvalidArgument),
        (Status.MISALIGNED, errors.InvalidArgument),
        (Status.NOT_INITIALIZED, errors.NotInitialized),
        (Status.INVALID_UTF8, errors.InvalidArgument),
        (Status.UNKNOWN_ENUM, errors.InvalidArgument),
        (Status.INVALID_ARGUMENT, errors.InvalidArgument),
        (Status.WOULD_BLOCK, errors.WouldBlock),
        (Status.BUFFER_TOO_SMALL, errors.BufferTooSmall),
        (Status.CAPACITY_EXCEEDED, errors.CapacityExceeded),
        (Status.INPUT_INVALID_URL, errors.InputError),
        (Status.HTTP_CHUNK, errors.HttpError),
        (Status.JSON_SYNTAX, errors.JsonError),
        (Status.RESPONSE_MISSING_MEMBER, errors.ResponseError),
        (Status.WRONG_STATE, errors.WrongState),
        (Status.SNAPSHOT_CORRUPT, errors.SnapshotError),
        (Status.TRANSPORT, errors.TransportError),
        (Status.UNKNOWN, errors.UnknownError),
        (4242, errors.UnknownError),
    ],
)
def test_each_status_family_has_its_exception(status: int, cls: type) -> None:
    message = fieldauth.status_message(status)
    exc = errors.error_for(status, message, "here", needed=7)
    assert type(exc) is cls
    assert isinstance(exc, fieldauth.FieldauthError)
    assert exc.status == status and exc.message == message
    assert str(exc).startswith("here: " + message)
    if cls is errors.BufferTooSmall:
        assert exc.needed == 7  # type: ignore[attr-defined]
    if cls in (errors.HttpError, errors.JsonError, errors.ResponseError):
        assert isinstance(exc, errors.ProtocolError)


def test_candidate_paths_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIELDAUTH_LIB", str(tmp_path / "custom.so"))
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path / "tgt"))
    paths = _lib.candidate_paths()
    assert paths[0] == tmp_path / "custom.so"
    assert paths[1] == Path(_lib.__file__).resolve().parent / "libfieldauth.so"
    assert paths[2] == tmp_path / "tgt" / "release" / "libfieldauth.so"
    assert paths[3] == tmp_path / "tgt" / "debug" / "libfieldauth.so"
    assert len(paths) == len(set(paths))


def _copy_package(tmp_path: Path) -> Path:
    dest = tmp_path / "site" / "fieldauth"
    shutil.copytree(Path(fieldauth.__file__).parent, dest, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return dest.parent


def test_not_found_error_lists_every_path_tried(tmp_path: Path) -> None:
    site = _copy_package(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("FIELDAUTH_LIB", "CARGO_TARGET_DIR")}
    env["FIELDAUTH_LIB"] = str(tmp_path / "nowhere" / "libfieldauth.so")
    env["PYTHONPATH"] = str(site)
    code = (
        "import fieldauth\n"
        "try:\n    fieldauth.version()\n"
        "except fieldauth.LibraryNotFoundError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "cannot find the shared library libfieldauth.so" in out
    assert str(tmp_path / "nowhere" / "libfieldauth.so") + " (not found)" in out
    assert str(site / "fieldauth" / "libfieldauth.so") in out
    assert str(tmp_path / "target" / "release" / "libfieldauth.so") in out
    assert "cargo build -p fieldauth-ffi --release" in out


def test_fieldauth_lib_and_package_dir_are_used(tmp_path: Path) -> None:
    real = _lib.lib()._name
    site = _copy_package(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(site), FIELDAUTH_LIB=real)
    code = "import fieldauth, fieldauth._lib as l; fieldauth.version(); print(l.lib()._name)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == real
    # Next to the package, without FIELDAUTH_LIB.
    shutil.copy(real, site / "fieldauth" / "libfieldauth.so")
    env.pop("FIELDAUTH_LIB")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(site / "fieldauth" / "libfieldauth.so")


def test_a_library_that_is_not_fieldauth_is_refused() -> None:
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no libc to load")
    with pytest.raises(_lib.LibraryMismatchError, match="has no function fieldauth_"):
        _lib.load(libc)


def _fake(version: int, session: int = _lib.SESSION_SIZE) -> SimpleNamespace:
    return SimpleNamespace(
        _name="fake.so",
        fieldauth_version_number=lambda: version,
        fieldauth_session_sizeof=lambda: session,
        fieldauth_head_sizeof=lambda: _lib.HEAD_SIZE,
        fieldauth_body_sizeof=lambda: _lib.BODY_SIZE,
    )


def test_version_and_size_checks_refuse_mismatches() -> None:
    _lib._check(_fake(_lib.VERSION_MAJOR << 16 | _lib.VERSION_MINOR << 8 | 3))  # type: ignore[arg-type]
    with pytest.raises(_lib.LibraryMismatchError, match=r"is fieldauth 1\.0\.0"):
        _lib._check(_fake(1 << 16))  # type: ignore[arg-type]
    if _lib.VERSION_MINOR > 0:
        with pytest.raises(_lib.LibraryMismatchError):
            _lib._check(_fake(_lib.VERSION_MAJOR << 16))  # type: ignore[arg-type]
    with pytest.raises(_lib.LibraryMismatchError, match="fieldauth_session is 2048 bytes"):
        _lib._check(_fake(_lib.VERSION_MAJOR << 16 | _lib.VERSION_MINOR << 8, session=2048))  # type: ignore[arg-type]


def test_presets_and_names() -> None:
    listed = fieldauth.presets()
    assert [p for p, _ in listed] == list(fieldauth.Preset)
    assert dict(listed)[fieldauth.Preset.AUTOTASK] == "Autotask"
    assert fieldauth.preset_name(fieldauth.Preset.FIELD_NATION) == "Field Nation"
    assert fieldauth.preset_name(99) is None
    profile = fieldauth.Profile.preset(fieldauth.Preset.FIELD_NATION)
    assert profile.mode == fieldauth.Mode.CLIENT_CREDENTIALS
    assert profile.format == fieldauth.Format.JSON
    assert profile.placement == fieldauth.Placement.QUERY
    assert profile.placement_name == "access_token"
    assert fieldauth.Profile.preset(fieldauth.Preset.PATCHWORKS_API_KEY).mode == fieldauth.Mode.API_KEY
    with pytest.raises(fieldauth.InvalidArgument, match="Profile.preset"):
        fieldauth.Profile.preset(99)
