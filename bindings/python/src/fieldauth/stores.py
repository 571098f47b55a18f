"""Shared state for a fleet of workers using one credential (issue #21).

A :class:`Store` keeps, for every worker of a fleet (threads, processes,
hosts), the newest session state (a :meth:`fieldauth.Session.snapshot` image
with a generation number), a *lease* naming the one worker that may fetch or
refresh the token, and the fleet-wide request budgets. Two implementations:

- :class:`FileStore` for workers on one host: one file holding state, lease and
  budgets, in the format of the Rust ``FileStore`` (``FAst`` version 1) and with
  its locking (``fcntl.flock`` on a lock file next to it), so Rust, C and Python
  workers can share it;
- :class:`RedisStore` for workers on several hosts: redis-py, each operation
  one command or one Lua script (one round trip), the store's clock is Redis'
  ``TIME``.

The contract (times are the store's clock, Unix milliseconds; holders are ints
a worker picks for itself):

``load()``
    ``(generation, image)`` of the newest saved state, or ``None`` if empty.
``lease(holder, ttl_ms)``
    ``(held, until_ms)``: ``held`` if ``holder`` holds the lease now (taken, or
    renewed when it already held it); ``until_ms`` when the current holder's
    lease ends. A lease ends by itself after ``ttl_ms``.
``save(holder, expected_generation, image)``
    compare-and-set: ``("stored", expected + 1)`` only if ``holder`` holds a
    live lease and the stored generation is ``expected`` (0: empty); else
    ``("not_holder", current)`` or ``("stale", current)``.
``release(holder)``
    ends ``holder``'s lease (nothing if it does not hold it).
``charge(budget_id, requests, window_s, burst)``
    charges one request to the fleet-wide budget ``budget_id`` (GCRA: never
    more than ``requests`` in any sliding window of ``window_s`` seconds,
    ``burst`` back to back); 0 if granted, else the Unix ms to wait until
    (nothing is charged then). A budget name is 1 to 32 UTF-8 bytes.

Every backend failure raises a :class:`StoreError` (subclasses:
:class:`StoreUnavailable`, :class:`StorePermissionError`,
:class:`StoreCorrupt`). State images hold tokens: no store puts them in an
exception, a log line or a ``repr()``.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import stat
import struct
import time
import zlib
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Protocol, Tuple, TypeVar, Union

from . import _lib  # loads the library on first use (_lib.lib()), not at import

if TYPE_CHECKING:  # redis-py is an optional extra
    import redis

__all__ = [
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StorePermissionError",
    "StoreCorrupt",
    "FileStore",
    "RedisStore",
    "gcra",
    "MAX_BUDGETS",
    "MAX_BUDGET_ID_LEN",
]

T = TypeVar("T")

STORED = "stored"
NOT_HOLDER = "not_holder"
STALE = "stale"


class StoreError(Exception):
    """A store's backend failed (never carries a state image)."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached or answered with an error (Redis down, I/O error)."""


class StorePermissionError(StoreError):
    """A store file (or its lock file) is readable or writable by group or others, or not ours."""


class StoreCorrupt(StoreError):
    """The stored state is not in the store's format."""


class Store(Protocol):
    """The store contract (see the module documentation)."""

    def load(self) -> Optional[Tuple[int, bytes]]:
        """``(generation, image)`` of the newest state, or ``None`` when empty."""
        ...

    def lease(self, holder: int, ttl_ms: int) -> Tuple[bool, int]:
        """Takes or renews the lease: ``(held, until_ms)``."""
        ...

    def save(self, holder: int, expected_generation: int, state: bytes) -> Tuple[str, int]:
        """Compare-and-set: ``("stored", new)``, ``("not_holder", current)`` or ``("stale", current)``."""
        ...

    def release(self, holder: int) -> None:
        """Ends ``holder``'s lease."""
        ...

    def charge(self, budget_id: str, requests: int, window_s: int, burst: int) -> int:
        """One request against a fleet-wide budget: 0 if granted, else the Unix ms to wait until."""
        ...


def unix_ms() -> int:
    """The wall clock in Unix milliseconds."""
    return time.time_ns() // 1_000_000


def gcra_params(requests: int, window_s: int, burst: int) -> Tuple[int, int]:
    """``(interval_ms, tolerance_ms)`` of a GCRA that never lets more than
    ``requests`` through in any window of ``window_s`` seconds, ``burst`` of them
    back to back.

    With interval T and tolerance (b - 1) T, k grants since the first of a window
    are at least (k - b) T apart, so at most b + (W - 1) // T fall in a window W;
    T = ceil(W / (requests - burst + 1)) keeps that at ``requests``.
    """
    if requests < 1 or window_s < 1:
        raise ValueError(f"a budget needs requests >= 1 and window_s >= 1, not {requests}/{window_s} s")
    b = min(max(burst, 1), requests)
    # The window in ms saturates at 2**32 - 1 (49 days), as in the Rust governor.
    window_ms = min(window_s * 1000, 0xFFFF_FFFF)
    interval = -(-window_ms // (requests - b + 1))
    return interval, (b - 1) * interval


def gcra(tat: int, now: int, requests: int, window_s: int, burst: int) -> Tuple[int, int]:
    """One GCRA step: ``(new_tat, 0)`` if granted, else ``(tat, wait_until)``.

    Computed by the library (``fieldauth_store_charge_cell``, the core's
    ``fieldauth::shared::charge_cell``), so the Python stores, the Rust
    ``FileStore`` and a C store's callback charge by one rule. The Redis script
    gets :func:`gcra_params` and does the same step in Lua on the server.
    """
    gcra_params(requests, window_s, burst)
    for name, value, top in (
        ("tat", tat, 2**64),
        ("now", now, 2**64),
        ("requests", requests, 2**32),
        ("window_s", window_s, 2**32),
        ("burst", burst, 2**32),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < top:
            raise ValueError(f"gcra: {name} must be an int from 0 to {top - 1}, not {value!r}")
    new_tat, until = ctypes.c_uint64(), ctypes.c_uint64()
    status = _lib.lib().fieldauth_store_charge_cell(
        tat, now, requests, window_s, burst, ctypes.byref(new_tat), ctypes.byref(until)
    )
    if status != 0:
        raise ValueError(f"gcra: the library refused the budget {requests}/{window_s} s (status {status})")
    return new_tat.value, until.value


def _check_args(holder: int, ttl_ms: Optional[int] = None) -> None:
    if isinstance(holder, bool) or not isinstance(holder, int) or not 0 < holder < 2**63:
        raise ValueError(f"holder must be an int from 1 to 2**63 - 1, not {holder!r}")
    if ttl_ms is not None and (isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int) or ttl_ms < 1):
        raise ValueError(f"ttl_ms must be an int >= 1, not {ttl_ms!r}")


# ---------------------------------------------------------------- FileStore

#: The store file's first bytes and the format version (the Rust ``fieldauth::shared::FileStore``'s).
_MAGIC = b"FAst"
_VERSION = 1
#: Magic, version, budget count, generation, lease holder, lease end, state length.
_HEADER = struct.Struct("<4sHHQQQI")
_TAT = struct.Struct("<Q")
_CRC = struct.Struct("<I")
#: Most budget names one store file holds (``FileStore::MAX_BUDGETS``).
MAX_BUDGETS = 32
#: Longest budget name, in UTF-8 bytes (``fieldauth::shared::MAX_BUDGET_ID_LEN``).
MAX_BUDGET_ID_LEN = 32


class _Image:
    """A store file's content, parsed (``state`` holds tokens: no repr)."""

    __slots__ = ("generation", "holder", "until", "budgets", "state")

    def __init__(self) -> None:
        self.generation = 0
        self.holder = 0
        self.until = 0
        self.budgets: List[List[Any]] = []  # [name (bytes), tat (int)], in file order
        self.state: Union[bytes, memoryview] = b""

    def held_by(self, holder: int, now: int) -> bool:
        """Whether ``holder`` holds a live lease at ``now``."""
        return self.until > now and self.holder == holder


def _parse(data: Union[bytes, bytearray, memoryview]) -> _Image:
    """Parses a version-1 store file; raises ``ValueError(reason)`` (the Rust reasons) if it does not match."""
    view = memoryview(data)
    if len(view) < _HEADER.size + _CRC.size:
        raise ValueError("too short")
    body = view[: len(view) - _CRC.size]
    magic, version, count, generation, holder, until, state_len = _HEADER.unpack_from(body)
    if magic != _MAGIC:
        raise ValueError("not a fieldauth store file")
    if version != _VERSION:
        raise ValueError("unknown format version")
    if _CRC.unpack_from(view, len(body))[0] != zlib.crc32(body):
        raise ValueError("checksum mismatch")
    if count > MAX_BUDGETS:
        raise ValueError("too many budgets")
    image = _Image()
    image.generation, image.holder, image.until = generation, holder, until
    at = _HEADER.size
    for _ in range(count):
        if at >= len(body):
            raise ValueError("shorter than its lengths say")
        n = body[at]
        if at + 1 + n + _TAT.size > len(body):
            raise ValueError("shorter than its lengths say")
        if not 1 <= n <= MAX_BUDGET_ID_LEN:
            raise ValueError("bad budget name")
        name = bytes(body[at + 1 : at + 1 + n])
        image.budgets.append([name, _TAT.unpack_from(body, at + 1 + n)[0]])
        at += 1 + n + _TAT.size
    if at + state_len > len(body):
        raise ValueError("shorter than its lengths say")
    if at + state_len < len(body):
        raise ValueError("longer than its lengths say")
    if generation == 0 and state_len:
        raise ValueError("a state without a generation")
    image.state = body[at:]
    return image


def _encode(image: _Image) -> bytearray:
    """The file bytes of ``image`` (the caller wipes them after writing)."""
    out = bytearray(
        _HEADER.pack(
            _MAGIC, _VERSION, len(image.budgets), image.generation, image.holder, image.until, len(image.state)
        )
    )
    for name, tat in image.budgets:
        out.append(len(name))
        out += name
        out += _TAT.pack(tat)
    out += image.state
    out += _CRC.pack(zlib.crc32(out))
    return out


def _wipe(buf: bytearray) -> None:
    """Overwrites ``buf`` with zeros (it held tokens)."""
    buf[:] = bytes(len(buf))


def _budget_name(budget_id: str) -> bytes:
    """``budget_id`` as the stores keep it: 1 to :data:`MAX_BUDGET_ID_LEN` UTF-8 bytes."""
    if not isinstance(budget_id, str):
        raise TypeError(f"budget_id must be a str, not {type(budget_id).__name__}")
    name = budget_id.encode()
    if not 1 <= len(name) <= MAX_BUDGET_ID_LEN:
        raise ValueError(f"a budget name is 1 to {MAX_BUDGET_ID_LEN} UTF-8 bytes, not {len(name)}")
    return name


class FileStore:
    """A store in one file, for the workers (threads, processes) of one host.

    The very file and protocol of the Rust ``fieldauth::shared::FileStore``
    (format ``FAst`` version 1), so Rust, C and Python workers of one host can
    share one store file:

    - ``path`` holds everything: the generation, the lease (holder, end), the
      budgets' GCRA cells and the state image, with a CRC-32; the layout is in
      the Rust type's documentation (and ``core/tests/fixtures/file-store-v1.bin``
      is a sample both implementations are tested against).
    - Every operation opens ``path + ".lock"`` and takes ``fcntl.flock`` on it
      (exclusive; shared for :meth:`load`), reads ``path``, and, if anything
      changed, writes the new content to ``path + ".tmp"`` (created anew,
      mode 0600), syncs it (``fsync``), renames it over ``path`` (atomic: a
      reader sees the old file or the new one) and, for a new state, syncs the
      directory (a lease or a charge alone skips that sync); then it
      closes the lock file, which releases the lock. A process killed at any
      point leaves the old or the new content, and its lock ends with it.
    - Opening the store creates ``path`` (an empty store) and the lock file,
      both with mode 0600, if they are missing. A file or lock file that group
      or others may read or write, that another user owns, or that is not a
      regular file is refused with :class:`StorePermissionError` at every
      operation, before anything is read; a file that is not a version-1
      store, or is damaged, is :class:`StoreCorrupt` (an operator deletes it:
      the next operation starts an empty store).
    - Budget names are 1 to :data:`MAX_BUDGET_ID_LEN` UTF-8 bytes, at most
      :data:`MAX_BUDGETS` of them per file.

    The store's clock is the host's wall clock in Unix ms, read once per
    operation while the lock is held; ``clock`` (keyword only: a callable
    returning Unix ms as an int) injects another, for tests or a host whose
    workers agree on a different clock. One object may be shared by threads
    and survives ``fork()`` (no descriptor is kept between operations).
    """

    def __init__(
        self, path: Union[str, "os.PathLike[str]"], *, clock: Optional[Callable[[], int]] = None
    ) -> None:
        self.path = os.fspath(path)
        """The store file."""
        self.lock_path = self.path + ".lock"
        """The lock file (always empty: only its ``flock`` matters)."""
        self.tmp_path = self.path + ".tmp"
        """The temporary file a new content is written to before the rename."""
        self._clock: Callable[[], int] = clock if clock is not None else unix_ms
        # Checks both files and creates the store file if it is missing.
        self._update(lambda image, now: (None, False), create=True)

    def __repr__(self) -> str:
        return f"FileStore({self.path!r})"

    # -- files

    @staticmethod
    def _check(fd: int, path: str) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StorePermissionError(f"fieldauth store: {path} is not a regular file")
        if st.st_mode & 0o077:
            raise StorePermissionError(
                f"fieldauth store: {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others may "
                "read or write it; it holds tokens: chmod 600 it (or remove it)"
            )
        if st.st_uid != os.geteuid():
            raise StorePermissionError(f"fieldauth store: {path} belongs to another user (uid {st.st_uid})")

    def _open_checked(self, path: str, flags: int, missing_ok: bool = False) -> int:
        """Opens ``path`` (never through a symlink; created 0600 with ``O_CREAT``) and checks
        its owner and mode, closing it if refused; -1 if it does not exist and ``missing_ok``."""
        try:
            fd = os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except FileNotFoundError:
            if missing_ok:
                return -1
            raise StoreUnavailable(f"fieldauth store: cannot open {path}: no such file or directory") from None
        except OSError as exc:
            raise StoreUnavailable(f"fieldauth store: cannot open {path}: {exc.strerror}") from None
        try:
            self._check(fd, path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _lock(self, exclusive: bool) -> int:
        """The lock file's descriptor, locked; closing it releases the lock."""
        fd = self._open_checked(self.lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError as exc:
            os.close(fd)
            raise StoreUnavailable(f"fieldauth store: cannot lock {self.lock_path}: {exc.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _read(self) -> Optional[bytearray]:
        """The store file's bytes (wipe them after use), or None if it does not exist."""
        fd = self._open_checked(self.path, os.O_RDONLY, missing_ok=True)
        if fd < 0:
            return None
        buf = bytearray()
        try:
            buf = bytearray(os.fstat(fd).st_size + 1)  # read into it: no copy of the tokens is left behind
            got = 0
            while True:
                if got == len(buf):
                    buf.extend(bytes(len(buf)))
                n = os.readv(fd, [memoryview(buf)[got:]])
                if not n:
                    break
                got += n
            del buf[got:]
        except OSError as exc:
            _wipe(buf)
            raise StoreUnavailable(f"fieldauth store: cannot read {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return buf

    def _write(self, data: bytearray, durable: bool = True) -> None:
        """Replaces the store file with ``data``: temporary file, fsync, rename, and when
        ``durable`` (a new state), fsync of the directory, as the Rust ``FileStore`` does: the
        data is always synced before the rename, so a power loss leaves the old file or the new
        one; only a new state (it may hold a rotated refresh token) needs the rename itself to
        survive one. A lease or a charge alone may be forgotten by a power loss of the host."""
        try:
            # Left by a process killed mid-write: only the lock holder writes it, so it is stale.
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreUnavailable(f"fieldauth store: cannot remove {self.tmp_path}: {exc.strerror}") from None
        try:
            fd = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(self.tmp_path, self.path)
        except OSError as exc:
            try:
                os.unlink(self.tmp_path)
            except OSError:
                pass
            raise StoreUnavailable(f"fieldauth store: cannot write {self.path}: {exc.strerror}") from None
        if not durable:
            return
        # The rename is durable once the directory is synced; where that fails it is still atomic.
        try:
            dfd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass

    def _parsed(self, data: bytearray) -> _Image:
        try:
            return _parse(data)
        except ValueError as exc:
            raise StoreCorrupt(f"fieldauth store: {self.path} is corrupt ({exc})") from None

    def _update(self, step: Callable[[_Image, int], Tuple[T, bool]], create: bool = False) -> T:
        """One atomic step: lock, read the clock, read, ``step`` (which returns its answer and
        whether it changed the image), write if it did, unlock."""
        fd = self._lock(exclusive=True)
        data: Optional[bytearray] = None
        try:
            now = int(self._clock())
            data = self._read()
            image = self._parsed(data) if data is not None else _Image()
            generation = image.generation
            out, changed = step(image, now)
            if changed or (create and data is None):
                new = _encode(image)
                try:
                    # A new state (every save bumps the generation) is written durably; a
                    # lease, release or charge is not.
                    self._write(new, durable=image.generation != generation)
                finally:
                    _wipe(new)
            return out
        finally:
            os.close(fd)
            if data is not None:
                _wipe(data)

    # -- the contract

    def load(self) -> Optional[Tuple[int, bytes]]:
        """``(generation, image)`` of the newest state, or ``None`` when empty (under a shared lock)."""
        fd = self._lock(exclusive=False)
        data: Optional[bytearray] = None
        try:
            data = self._read()
            if data is None:
                return None
            image = self._parsed(data)
            return (image.generation, bytes(image.state)) if image.generation else None
        finally:
            os.close(fd)
            if data is not None:
                _wipe(data)

    def lease(self, holder: int, ttl_ms: int) -> Tuple[bool, int]:
        """Takes or renews the lease: ``(held, until_ms)`` (a live lease of another holder: not held)."""
        _check_args(holder, ttl_ms)

        def step(image: _Image, now: int) -> Tuple[Tuple[bool, int], bool]:
            if image.until > now and image.holder != holder:
                return (False, image.until), False
            image.holder, image.until = holder, now + ttl_ms
            return (True, image.until), True

        return self._update(step)

    def save(self, holder: int, expected_generation: int, state: bytes) -> Tuple[str, int]:
        """Compare-and-set: ``("stored", new)``, ``("not_holder", current)`` or ``("stale", current)``."""
        _check_args(holder)
        if not isinstance(state, (bytes, bytearray)):
            raise TypeError(f"state must be bytes, not {type(state).__name__}")
        if len(state) > 0xFFFF_FFFF:
            raise StoreError(f"fieldauth store: a state of {len(state)} bytes is too large")

        def step(image: _Image, now: int) -> Tuple[Tuple[str, int], bool]:
            if not image.held_by(holder, now):
                return (NOT_HOLDER, image.generation), False
            if image.generation != expected_generation:
                return (STALE, image.generation), False
            if image.generation >= 2**64 - 1:
                raise StoreError("fieldauth store: the generation number is exhausted")
            image.generation += 1
            image.state = state
            return (STORED, image.generation), True

        return self._update(step)

    def release(self, holder: int) -> None:
        """Ends ``holder``'s lease (nothing if it does not hold it)."""
        _check_args(holder)

        def step(image: _Image, now: int) -> Tuple[None, bool]:
            if not image.held_by(holder, now):
                return None, False
            image.holder = image.until = 0
            return None, True

        self._update(step)

    def charge(self, budget_id: str, requests: int, window_s: int, burst: int) -> int:
        """One request against a fleet-wide budget: 0 if granted, else the Unix ms to wait until."""
        name = _budget_name(budget_id)
        gcra_params(requests, window_s, burst)

        def step(image: _Image, now: int) -> Tuple[int, bool]:
            cell = next((c for c in image.budgets if c[0] == name), None)
            if cell is None:
                if len(image.budgets) >= MAX_BUDGETS:
                    raise StoreError(f"fieldauth store: {self.path} holds {MAX_BUDGETS} budget names already")
                cell = [name, 0]
                image.budgets.append(cell)
            tat, wait = gcra(cell[1], now, requests, window_s, burst)
            if wait:
                return wait, False  # nothing charged, nothing written
            cell[1] = tat
            return 0, True

        return self._update(step)

    def close(self) -> None:
        """Nothing to release: every operation opens and closes the lock file itself (kept for
        callers written against the earlier store, which kept it open)."""


# ---------------------------------------------------------------- RedisStore

_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl) then
  return {1, now + ttl}
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, now + ttl}
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then left = 0 end
return {0, now + left}
"""

_SAVE = """
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return {'not_holder', gen}
end
if gen ~= tonumber(ARGV[2]) then
  return {'stale', gen}
end
redis.call('HSET', KEYS[1], 'gen', gen + 1, 'state', ARGV[3])
return {'stored', gen + 1}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_CHARGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then
  return tat - tolerance
end
redis.call('SET', KEYS[1], tat + interval, 'PX', tat + interval - now + 1000)
return 0
"""


class RedisStore:
    """A store in Redis, for workers on several hosts (redis-py; ``pip install fieldauth[redis]``).

    ``client`` is a ``redis.Redis`` (decode_responses off); ``key`` names the
    credential: the state is the hash ``key`` (``gen``, ``state``), the lease
    ``key:lease`` (``SET NX PX``, renewed by its holder in a Lua script), a
    budget ``key:budget:<id>`` (its GCRA time, updated by one Lua script on
    Redis' own clock). Every operation is one round trip; connection and
    server errors raise :class:`StoreUnavailable` (with the error's type and
    text, never an argument).
    """

    def __init__(self, client: "redis.Redis", key: str) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty str")
        self.client = client
        """The redis-py client."""
        self.key = key
        """The state's key; the lease and budgets are ``key:lease`` and ``key:budget:<id>``."""
        self._lease = client.register_script(_LEASE)
        self._save = client.register_script(_SAVE)
        self._release = client.register_script(_RELEASE)
        self._charge = client.register_script(_CHARGE)

    def __repr__(self) -> str:
        return f"RedisStore(key={self.key!r})"

    def _fail(self, exc: Exception) -> StoreUnavailable:
        text = str(exc)
        if len(text) > 200:
            text = text[:200] + "..."
        return StoreUnavailable(f"fieldauth store: redis {self.key!r}: {type(exc).__name__}: {text}")

    def load(self) -> Optional[Tuple[int, bytes]]:
        try:
            gen, state = self.client.hmget(self.key, ["gen", "state"])
        except Exception as exc:
            raise self._fail(exc) from None
        if gen is None or state is None:
            return None
        try:
            if not isinstance(state, bytes):
                raise TypeError("not bytes: a client with decode_responses=True")
            return int(gen), state
        except (TypeError, ValueError):
            raise StoreCorrupt(f"fieldauth store: redis {self.key!r} is not a fieldauth state") from None

    def lease(self, holder: int, ttl_ms: int) -> Tuple[bool, int]:
        _check_args(holder, ttl_ms)
        try:
            held, until = self._lease(keys=[self.key + ":lease"], args=[str(holder), ttl_ms])
        except Exception as exc:
            raise self._fail(exc) from None
        return bool(held), int(until)

    def save(self, holder: int, expected_generation: int, state: bytes) -> Tuple[str, int]:
        _check_args(holder)
        if not isinstance(state, (bytes, bytearray)):
            raise TypeError(f"state must be bytes, not {type(state).__name__}")
        try:
            result, gen = self._save(
                keys=[self.key, self.key + ":lease"], args=[str(holder), int(expected_generation), bytes(state)]
            )
        except Exception as exc:
            raise self._fail(exc) from None
        return (result.decode() if isinstance(result, bytes) else str(result)), int(gen)

    def release(self, holder: int) -> None:
        _check_args(holder)
        try:
            self._release(keys=[self.key + ":lease"], args=[str(holder)])
        except Exception as exc:
            raise self._fail(exc) from None

    def charge(self, budget_id: str, requests: int, window_s: int, burst: int) -> int:
        _budget_name(budget_id)
        interval, tolerance = gcra_params(requests, window_s, burst)
        try:
            wait = self._charge(keys=[f"{self.key}:budget:{budget_id}"], args=[interval, tolerance])
        except Exception as exc:
            raise self._fail(exc) from None
        return int(wait)
