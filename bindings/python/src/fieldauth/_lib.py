"""Loading ``libfieldauth`` and declaring its C ABI for ctypes.

Everything here mirrors ``include/fieldauth.h`` (version 0.1): the storage
sizes, the structs and the prototypes of every function the binding calls.
:func:`lib` loads the shared library once, checks that its version and object
sizes are the ones this module was written for, and returns it.

Lookup order (the first file that exists is loaded):

1. the file named by the environment variable ``FIELDAUTH_LIB``;
2. ``libfieldauth.so`` next to this package (``fieldauth/libfieldauth.so``);
3. the cargo target directories: ``$CARGO_TARGET_DIR`` and every
   ``target/`` directory found walking up from this package's source and from
   the current directory, in each ``release/`` then ``debug/``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int32,
    c_size_t,
    c_ssize_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, List, Optional

# ---------------------------------------------------------------- what this module was written for

#: Major version of the C ABI this binding was written for (must match exactly).
VERSION_MAJOR = 0
#: Minor version of the C ABI this binding was written for (the library's must be at least this).
VERSION_MINOR = 1
#: ``FIELDAUTH_SESSION_SIZE``: bytes of a session object.
SESSION_SIZE = 4096
#: ``FIELDAUTH_SESSION_ALIGN``: alignment of a session object.
SESSION_ALIGN = 8
#: ``FIELDAUTH_HEAD_SIZE``: bytes of a response-head parser.
HEAD_SIZE = 512
#: ``FIELDAUTH_BODY_SIZE``: bytes of a body framing reader.
BODY_SIZE = 32
#: ``FIELDAUTH_WORKER_SIZE``: bytes of a fleet worker (``fieldauth_worker``).
WORKER_SIZE = 64
#: ``FIELDAUTH_MAX_HEADERS``: headers in a ``fieldauth_request_parts``.
MAX_HEADERS = 12
#: ``FIELDAUTH_NEVER``: "never" as a time.
NEVER = 0xFFFF_FFFF_FFFF_FFFF
#: ``FIELDAUTH_TRANSPORT_CLOSED``: a recv callback's "end of stream".
TRANSPORT_CLOSED = -2
#: ``FIELDAUTH_TRANSPORT_ERROR``: a transport callback's "I/O error".
TRANSPORT_ERROR = -1

U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
U32_MAX = 0xFFFF_FFFF

# ---------------------------------------------------------------- object storage


class SessionStorage(Structure):
    """``fieldauth_session``: opaque, 8-byte aligned by its ``uint64_t`` words."""

    _fields_ = [("opaque", c_uint64 * (SESSION_SIZE // 8))]


#: ``FIELDAUTH_SESSION_HEADER_SIZE``: bytes of a session whose token storage is separate.
SESSION_HEADER_SIZE = 1024


class SessionHeaderStorage(Structure):
    """``fieldauth_session_header``: a session's state, its token storage lent separately."""

    _fields_ = [("opaque", c_uint64 * (SESSION_HEADER_SIZE // 8))]


class HeadStorage(Structure):
    """``fieldauth_head``: opaque response-head parser storage."""

    _fields_ = [("opaque", c_uint64 * (HEAD_SIZE // 8))]


class BodyStorage(Structure):
    """``fieldauth_body``: opaque body framing reader storage."""

    _fields_ = [("opaque", c_uint64 * (BODY_SIZE // 8))]


class WorkerStorage(Structure):
    """``fieldauth_worker``: opaque storage of one worker of a fleet (the C
    ABI's worker; the Python adapters run the same rules in Python over
    :mod:`fieldauth.stores`, so the binding declares but does not call it)."""

    _fields_ = [("opaque", c_uint64 * (WORKER_SIZE // 8))]


# ---------------------------------------------------------------- plain structs


class Str(Structure):
    """``fieldauth_str``: ``len`` bytes at ``ptr`` (no NUL needed)."""

    _fields_ = [("ptr", POINTER(c_uint8)), ("len", c_size_t)]


class Budget(Structure):
    """``fieldauth_budget``."""

    _fields_ = [("requests", c_uint32), ("window_s", c_uint32), ("burst", c_uint32)]


class Backoff(Structure):
    """``fieldauth_backoff``."""

    _fields_ = [("base_ms", c_uint32), ("cap_ms", c_uint32), ("max_attempts", c_uint32)]


class Profile(Structure):
    """``fieldauth_profile``."""

    _fields_ = [
        ("name", Str),
        ("mode", c_uint32),
        ("format", c_uint32),
        ("client_auth", c_uint32),
        ("revoke_style", c_uint32),
        ("token_path", Str),
        ("authorize_path", Str),
        ("device_path", Str),
        ("revoke_path", Str),
        ("scope", Str),
        ("keys", c_uint32),
        ("placement", c_uint32),
        ("placement_name", Str),
        ("default_lifetime_s", c_uint32),
        ("refresh_lifetime_s", c_uint32),
        ("refresh_margin_s", c_uint32),
        ("refresh_fraction_pct", c_uint32),
        ("token_budget", Budget),
        ("api_budget", Budget),
        ("api_budget_per_token", c_uint32),
        ("reset_mode", c_uint32),
        ("backoff", Backoff),
        ("expired_token_phrase", Str),
    ]


class Config(Structure):
    """``fieldauth_config``."""

    _fields_ = [
        ("base_url", Str),
        ("client_id", Str),
        ("client_secret", Str),
        ("username", Str),
        ("password", Str),
        ("api_key", Str),
        ("scope", Str),
        ("redirect_uri", Str),
        ("allow_insecure", c_uint32),
        ("max_wait_s", c_uint32),
        ("resource", Str),
        ("audience", Str),
        ("token_params", Str),
        ("authorize_params", Str),
    ]


class Action(Structure):
    """``fieldauth_action``."""

    _fields_ = [
        ("at_ms", c_uint64),
        ("kind", c_uint32),
        ("request_kind", c_uint32),
        ("failure", c_uint32),
        ("reserved", c_uint32),
    ]


class Event(Structure):
    """``fieldauth_event``."""

    _fields_ = [
        ("at_ms", c_uint64),
        ("kind", c_uint32),
        ("request_kind", c_uint32),
        ("lifetime_s", c_uint32),
        ("refreshable", c_uint32),
        ("http_status", c_uint32),
        ("failure", c_uint32),
    ]


class Header(Structure):
    """``fieldauth_header``."""

    _fields_ = [("name", Str), ("value", Str)]


class RequestParts(Structure):
    """``fieldauth_request_parts``."""

    _fields_ = [
        ("method", Str),
        ("target", Str),
        ("headers", Header * MAX_HEADERS),
        ("header_count", c_size_t),
        ("body", Str),
        ("raw", Str),
    ]


class Authorization(Structure):
    """``fieldauth_authorization``."""

    _fields_ = [
        ("until_ms", c_uint64),
        ("kind", c_uint32),
        ("credential", c_uint32),
        ("header_name_len", c_size_t),
        ("token_id", c_uint32),
        ("reserved", c_uint32),
    ]


class Verdict(Structure):
    """``fieldauth_verdict``."""

    _fields_ = [("until_ms", c_uint64), ("kind", c_uint32), ("reserved", c_uint32)]


class DeviceDisplay(Structure):
    """``fieldauth_device_display``."""

    _fields_ = [
        ("expires_at_ms", c_uint64),
        ("user_code", Str),
        ("verification_uri", Str),
        ("verification_uri_complete", Str),
    ]


class SessionInfo(Structure):
    """``fieldauth_session_info``."""

    _fields_ = [
        ("expires_at_ms", c_uint64),
        ("refresh_at_ms", c_uint64),
        ("api_blocked_until_ms", c_uint64),
        ("token_blocked_until_ms", c_uint64),
        ("usable", c_uint32),
        ("refreshable", c_uint32),
        ("failed_attempts", c_uint32),
        ("failure", c_uint32),
        ("last_http_status", c_uint32),
        ("last_content_json", c_uint32),
        ("slot_needed", c_uint32),
        ("slot_capacity", c_uint32),
    ]


class BearerChallenge(Structure):
    """``fieldauth_bearer_challenge``."""

    _fields_ = [
        ("error", Str),
        ("error_description", Str),
        ("scope", Str),
        ("realm", Str),
        ("error_uri", Str),
    ]


class ResponseInfo(Structure):
    """``fieldauth_response_info``."""

    _fields_ = [
        ("content_length", c_uint64),
        ("date", c_uint64),
        ("retry_after", c_uint64),
        ("x_rate_limit_reset", c_uint64),
        ("status", c_uint32),
        ("flags", c_uint32),
        ("framing", c_uint32),
        ("x_rate_limit_limit", c_uint32),
        ("x_rate_limit_remaining", c_uint32),
        ("malformed", c_uint32),
    ]


class BodyProgress(Structure):
    """``fieldauth_body_progress``."""

    _fields_ = [
        ("consumed", c_size_t),
        ("data_offset", c_size_t),
        ("data_len", c_size_t),
        ("done", c_uint32),
    ]


#: ``ptrdiff_t (*)(void *ctx, const uint8_t *buf, size_t len)`` (ptrdiff_t is ssize_t here).
TransportFn = CFUNCTYPE(c_ssize_t, c_void_p, POINTER(c_uint8), c_size_t)


class Transport(Structure):
    """``fieldauth_transport``."""

    _fields_ = [("ctx", c_void_p), ("send", TransportFn), ("recv", TransportFn)]


#: The callbacks of ``fieldauth_store`` (see the header for their contract).
StoreLoadFn = CFUNCTYPE(c_int32, c_void_p, POINTER(c_uint8), c_size_t, POINTER(c_size_t), POINTER(c_uint64))
StoreLeaseFn = CFUNCTYPE(c_int32, c_void_p, c_uint64, c_uint32, POINTER(c_uint32), POINTER(c_uint64))
StoreSaveFn = CFUNCTYPE(
    c_int32, c_void_p, c_uint64, c_uint64, POINTER(c_uint8), c_size_t, POINTER(c_uint32), POINTER(c_uint64)
)
StoreReleaseFn = CFUNCTYPE(c_int32, c_void_p, c_uint64)
StoreChargeFn = CFUNCTYPE(c_int32, c_void_p, c_char_p, c_uint32, c_uint32, c_uint32, POINTER(c_uint64))


class StoreCallbacks(Structure):
    """``fieldauth_store``."""

    _fields_ = [
        ("ctx", c_void_p),
        ("load", StoreLoadFn),
        ("lease", StoreLeaseFn),
        ("save", StoreSaveFn),
        ("release", StoreReleaseFn),
        ("charge", StoreChargeFn),
    ]


# ---------------------------------------------------------------- prototypes

_u8p = POINTER(c_uint8)
_sizep = POINTER(c_size_t)
_sess = POINTER(SessionStorage)
_head = POINTER(HeadStorage)
_body = POINTER(BodyStorage)
_worker = POINTER(WorkerStorage)
_store = POINTER(StoreCallbacks)
_st = c_uint32

#: name -> (restype, argtypes) for every function the binding calls.
PROTOTYPES: dict[str, tuple[Any, List[Any]]] = {
    "fieldauth_version": (c_char_p, []),
    "fieldauth_version_number": (c_uint32, []),
    "fieldauth_session_sizeof": (c_size_t, []),
    "fieldauth_head_sizeof": (c_size_t, []),
    "fieldauth_body_sizeof": (c_size_t, []),
    "fieldauth_status_message": (c_char_p, [_st]),
    "fieldauth_preset_name": (c_char_p, [c_uint32]),
    "fieldauth_profile_preset": (_st, [c_uint32, POINTER(Profile)]),
    "fieldauth_head_init": (_st, [_head]),
    "fieldauth_head_feed": (_st, [_head, _u8p, c_size_t, _sizep, POINTER(c_uint32)]),
    "fieldauth_head_get_info": (_st, [_head, POINTER(ResponseInfo)]),
    "fieldauth_head_get_bearer": (_st, [_head, _u8p, c_size_t, _sizep, POINTER(BearerChallenge)]),
    "fieldauth_body_init": (_st, [_body, _head]),
    "fieldauth_body_read": (_st, [_body, _u8p, c_size_t, POINTER(BodyProgress)]),
    "fieldauth_body_finish": (_st, [_body]),
    "fieldauth_session_init": (_st, [_sess, POINTER(Profile), POINTER(Config), c_uint64]),
    "fieldauth_session_init_preset": (_st, [_sess, c_uint32, POINTER(Config), c_uint64]),
    "fieldauth_session_init_with_storage": (
        _st,
        [_sess, _u8p, c_size_t, POINTER(Profile), POINTER(Config), c_uint64],
    ),
    "fieldauth_session_init_preset_with_storage": (
        _st,
        [_sess, _u8p, c_size_t, c_uint32, POINTER(Config), c_uint64],
    ),
    "fieldauth_session_revoke_tokens": (_st, [_sess, c_uint32]),
    "fieldauth_session_storage_size": (
        _st,
        [POINTER(Profile), POINTER(Config), c_size_t, _sizep],
    ),
    "fieldauth_session_clear": (_st, [_sess]),
    "fieldauth_session_poll": (_st, [_sess, c_uint64, POINTER(Action)]),
    "fieldauth_session_write_token_request": (_st, [_sess, c_uint64, _u8p, c_size_t, _sizep]),
    "fieldauth_session_write_token_request_window": (
        _st,
        [_sess, c_uint64, c_size_t, _u8p, c_size_t, _sizep, _sizep],
    ),
    "fieldauth_session_write_token_request_parts": (
        _st,
        [_sess, c_uint64, _u8p, c_size_t, _sizep, POINTER(RequestParts)],
    ),
    "fieldauth_session_token_request_url": (_st, [_sess, _u8p, c_size_t, _sizep]),
    "fieldauth_session_feed_token_head": (_st, [_sess, c_uint64, _head]),
    "fieldauth_session_feed_token_body": (
        _st,
        [_sess, c_uint64, _u8p, c_size_t, _sizep, POINTER(Event)],
    ),
    "fieldauth_session_feed_token_eof": (_st, [_sess, c_uint64, POINTER(Event)]),
    "fieldauth_session_report_transport_error": (_st, [_sess, c_uint64, POINTER(Event)]),
    "fieldauth_session_exchange": (
        _st,
        [_sess, _head, c_uint64, POINTER(Transport), _u8p, c_size_t, POINTER(Event)],
    ),
    "fieldauth_session_authorize": (
        _st,
        [_sess, c_uint64, _u8p, c_size_t, _u8p, c_size_t, _sizep, POINTER(Authorization)],
    ),
    "fieldauth_session_report_api_response": (
        _st,
        [_sess, c_uint64, _head, _u8p, c_size_t, POINTER(Verdict)],
    ),
    "fieldauth_session_report_api_response_for": (
        _st,
        [_sess, c_uint64, _head, _u8p, c_size_t, c_uint32, POINTER(Verdict)],
    ),
    "fieldauth_session_snapshot_len": (_st, [_sess, _sizep]),
    "fieldauth_session_snapshot": (_st, [_sess, c_uint64, c_uint64, _u8p, c_size_t, _sizep]),
    "fieldauth_session_restore": (_st, [_sess, c_uint64, c_uint64, _u8p, c_size_t]),
    "fieldauth_session_shared_generation": (_st, [_sess, POINTER(c_uint64)]),
    "fieldauth_session_set_shared_generation": (_st, [_sess, c_uint64]),
    "fieldauth_session_adopt": (
        _st,
        [_sess, c_uint64, c_uint64, _u8p, c_size_t, c_uint64, POINTER(c_uint32)],
    ),
    "fieldauth_worker_sizeof": (c_size_t, []),
    "fieldauth_worker_init": (_st, [_worker, c_uint64, c_uint32, c_uint32, c_uint32]),
    "fieldauth_worker_sync": (
        _st,
        [_worker, _sess, _store, c_uint64, c_uint64, _u8p, c_size_t, POINTER(c_uint32)],
    ),
    "fieldauth_worker_token_turn": (
        _st,
        [_worker, _sess, _store, c_uint64, c_uint64, _u8p, c_size_t, POINTER(c_uint32), POINTER(c_uint64)],
    ),
    "fieldauth_worker_exchanged": (
        _st,
        [_worker, _sess, _store, c_uint64, c_uint64, c_uint32, _u8p, c_size_t, POINTER(c_uint32)],
    ),
    "fieldauth_worker_charge": (
        _st,
        [_worker, _sess, _store, c_uint32, c_uint64, c_uint64, _u8p, c_size_t, POINTER(c_uint64)],
    ),
    "fieldauth_worker_take_notice": (_st, [_worker, POINTER(c_uint32)]),
    "fieldauth_store_charge_cell": (
        _st,
        [c_uint64, c_uint64, c_uint32, c_uint32, c_uint32, POINTER(c_uint64), POINTER(c_uint64)],
    ),
    "fieldauth_session_device_display": (
        _st,
        [_sess, _u8p, c_size_t, _sizep, POINTER(DeviceDisplay)],
    ),
    "fieldauth_session_authorization_url": (
        _st,
        [_sess, _u8p, c_size_t, _u8p, c_size_t, _u8p, c_size_t, _sizep],
    ),
    "fieldauth_session_set_authorization_code": (
        _st,
        [_sess, _u8p, c_size_t, _u8p, c_size_t],
    ),
    "fieldauth_session_on_authorization_callback": (
        _st,
        [_sess, _u8p, c_size_t, _u8p, c_size_t, POINTER(c_uint32)],
    ),
    "fieldauth_session_set_wall_clock": (_st, [_sess, c_uint64, c_uint64]),
    "fieldauth_session_reseed": (_st, [_sess, c_uint64]),
    "fieldauth_session_revoke": (_st, [_sess]),
    "fieldauth_session_restart": (_st, [_sess]),
    "fieldauth_session_get_info": (_st, [_sess, POINTER(SessionInfo)]),
    "fieldauth_session_failure_description": (_st, [_sess, _u8p, c_size_t, _sizep]),
    "fieldauth_session_granted_scope": (_st, [_sess, _u8p, c_size_t, _sizep]),
}


# ---------------------------------------------------------------- loading


class LibraryNotFoundError(ImportError):
    """``libfieldauth`` could not be found or loaded; the message lists every path tried."""


class LibraryMismatchError(ImportError):
    """The loaded ``libfieldauth`` is not the version (or object size) this binding expects."""


def library_file_name() -> str:
    """The platform's file name of the shared library (``libfieldauth.so`` on Linux)."""
    if sys.platform == "darwin":
        return "libfieldauth.dylib"
    if sys.platform == "win32":
        return "fieldauth.dll"
    return "libfieldauth.so"


def candidate_paths() -> List[Path]:
    """Every path :func:`lib` tries, in order (see the module docstring)."""
    name = library_file_name()
    paths: List[Path] = []
    env = os.environ.get("FIELDAUTH_LIB")
    if env:
        paths.append(Path(env))
    package_dir = Path(__file__).resolve().parent
    paths.append(package_dir / name)
    target_dirs: List[Path] = []
    cargo_target = os.environ.get("CARGO_TARGET_DIR")
    if cargo_target:
        target_dirs.append(Path(cargo_target))
    for start in (package_dir, Path.cwd().resolve()):
        for ancestor in (start, *start.parents):
            target_dirs.append(ancestor / "target")
    for target in target_dirs:
        for profile in ("release", "debug"):
            candidate = target / profile / name
            if candidate not in paths:
                paths.append(candidate)
    return paths


_lock = threading.Lock()
_loaded: Optional[ctypes.CDLL] = None


def _declare(dll: ctypes.CDLL) -> None:
    for fname, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(dll, fname)
        except AttributeError as exc:
            raise LibraryMismatchError(
                f"{dll._name} has no function {fname}: it is not a fieldauth "
                f"{VERSION_MAJOR}.{VERSION_MINOR} library; rebuild it with "
                "`cargo build -p fieldauth-ffi --release`"
            ) from exc
        fn.restype = restype
        fn.argtypes = argtypes


def _check(dll: ctypes.CDLL) -> None:
    number = int(dll.fieldauth_version_number())
    major, minor, patch = number >> 16, (number >> 8) & 0xFF, number & 0xFF
    if major != VERSION_MAJOR or minor < VERSION_MINOR:
        raise LibraryMismatchError(
            f"{dll._name} is fieldauth {major}.{minor}.{patch}, but this binding was written "
            f"for {VERSION_MAJOR}.{VERSION_MINOR}.x: install the binding that matches the "
            "library, or point FIELDAUTH_LIB at a matching build"
        )
    for what, got, want in (
        ("session", int(dll.fieldauth_session_sizeof()), SESSION_SIZE),
        ("head", int(dll.fieldauth_head_sizeof()), HEAD_SIZE),
        ("body", int(dll.fieldauth_body_sizeof()), BODY_SIZE),
    ):
        if got != want:
            raise LibraryMismatchError(
                f"{dll._name}: a fieldauth_{what} is {got} bytes, but this binding allocates "
                f"{want}: the library and the binding do not match (rebuild both from one "
                "checkout)"
            )
    if ctypes.alignment(SessionStorage) < SESSION_ALIGN:
        raise LibraryMismatchError(
            f"ctypes aligns session storage to {ctypes.alignment(SessionStorage)} bytes; "
            f"the library needs {SESSION_ALIGN}"
        )


def load(path: "str | os.PathLike[str]") -> ctypes.CDLL:
    """Loads, declares and checks the library at ``path`` (without caching it)."""
    dll = ctypes.CDLL(os.fspath(path))
    _declare(dll)
    _check(dll)
    return dll


def lib() -> ctypes.CDLL:
    """The loaded, checked library (loaded on first use, then cached)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        tried: List[str] = []
        for path in candidate_paths():
            if not path.is_file():
                tried.append(f"  {path} (not found)")
                continue
            try:
                _loaded = load(path)
            except OSError as exc:
                tried.append(f"  {path} (cannot load: {exc})")
                continue
            return _loaded
        raise LibraryNotFoundError(
            "fieldauth: cannot find the shared library "
            f"{library_file_name()}. Tried:\n"
            + "\n".join(tried)
            + "\nBuild it with `cargo build -p fieldauth-ffi --release` in the fieldauth "
            "repository, or set FIELDAUTH_LIB to the path of the file."
        )
