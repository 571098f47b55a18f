"""Shared state for a fleet of workers using one credential (issue #21).

A :class:`Store` keeps, for every worker of a fleet (threads, processes,
hosts), the newest session state (a :meth:`fieldauth.Session.snapshot` image
with a generation number), a *lease* naming the one worker that may fetch or
refresh the token, and the fleet-wide request budgets. Two implementations:

- :class:`FileStore` for workers on one host: one state file, a lock file next
  to it (``fcntl.flock``) that also holds the lease and the budgets;
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
    (nothing is charged then).

Every backend failure raises a :class:`StoreError` (subclasses:
:class:`StoreUnavailable`, :class:`StorePermissionError`,
:class:`StoreCorrupt`). State images hold tokens: no store puts them in an
exception, a log line or a ``repr()``.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import struct
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Protocol, Tuple, Union

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
]

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
    interval = -(-window_s * 1000 // (requests - b + 1))
    return interval, (b - 1) * interval


def gcra(tat: int, now: int, requests: int, window_s: int, burst: int) -> Tuple[int, int]:
    """One GCRA step: ``(new_tat, 0)`` if granted, else ``(tat, wait_until)``."""
    interval, tolerance = gcra_params(requests, window_s, burst)
    tat = max(tat, now)
    if tat - now > tolerance:
        return tat, tat - tolerance
    return tat + interval, 0


def _check_args(holder: int, ttl_ms: Optional[int] = None) -> None:
    if isinstance(holder, bool) or not isinstance(holder, int) or not 0 < holder < 2**63:
        raise ValueError(f"holder must be an int from 1 to 2**63 - 1, not {holder!r}")
    if ttl_ms is not None and (isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int) or ttl_ms < 1):
        raise ValueError(f"ttl_ms must be an int >= 1, not {ttl_ms!r}")


# ---------------------------------------------------------------- FileStore

_MAGIC = b"FAST\x01\x00\x00\x00"
_HEADER = struct.Struct("<8sQ")


class FileStore:
    """A store in one file, for workers on one host.

    ``path`` holds the newest state (magic, generation, image), replaced
    atomically on every save (a temporary file next to it, ``fsync``,
    ``os.replace``). ``path + ".lock"`` is locked with ``fcntl.flock`` around
    every operation and holds the lease and the budgets' state (JSON, no
    secrets; losing it only ends the lease early). Both files are created with
    mode 0600; an existing one that group or others may read or write, or that
    another user owns, is refused with :class:`StorePermissionError`. The
    store's clock is the host's wall clock. Safe to share between threads and
    across ``fork()``.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.path = os.fspath(path)
        """The state file."""
        self.lock_path = self.path + ".lock"
        """The lock file (lease and budgets)."""
        self._mutex = threading.Lock()
        self._fd = -1
        self._pid = -1
        with self._locked():
            fd = self._open_state()
            if fd >= 0:
                os.close(fd)

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

    def _lock_fd(self) -> int:
        if self._fd < 0 or self._pid != os.getpid():
            # After fork() the inherited descriptor shares its lock with the parent: open our own.
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                raise StoreUnavailable(f"fieldauth store: cannot open {self.lock_path}: {exc.strerror}") from None
            try:
                self._check(fd, self.lock_path)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._pid = fd, os.getpid()
        return self._fd

    class _Locked:
        def __init__(self, store: "FileStore") -> None:
            self.store = store

        def __enter__(self) -> int:
            self.store._mutex.acquire()
            try:
                fd = self.store._lock_fd()
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                self.store._mutex.release()
                raise StoreUnavailable(f"fieldauth store: cannot lock {self.store.lock_path}: {exc.strerror}") from None
            except BaseException:
                self.store._mutex.release()
                raise
            return fd

        def __exit__(self, *exc: object) -> None:
            try:
                fcntl.flock(self.store._fd, fcntl.LOCK_UN)
            finally:
                self.store._mutex.release()

    def _locked(self) -> "FileStore._Locked":
        return FileStore._Locked(self)

    def _open_state(self) -> int:
        """The state file's descriptor (checked), or -1 if it does not exist."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return -1
        except OSError as exc:
            raise StoreUnavailable(f"fieldauth store: cannot open {self.path}: {exc.strerror}") from None
        try:
            self._check(fd, self.path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _read_state(self) -> Optional[Tuple[int, bytes]]:
        fd = self._open_state()
        if fd < 0:
            return None
        try:
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError as exc:
            raise StoreUnavailable(f"fieldauth store: cannot read {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if len(data) < _HEADER.size:
            return None if not data else self._corrupt()
        magic, generation = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            self._corrupt()
        return generation, data[_HEADER.size :]

    def _corrupt(self) -> Any:
        raise StoreCorrupt(f"fieldauth store: {self.path} is not a fieldauth state file")

    def _write_state(self, generation: int, image: bytes) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        tmp = f"{self.path}.tmp{os.getpid()}.{threading.get_ident()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(fd, 0o600)
                data = _HEADER.pack(_MAGIC, generation) + image
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dfd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise StoreUnavailable(f"fieldauth store: cannot write {self.path}: {exc.strerror}") from None

    def _read_meta(self, fd: int) -> Dict[str, Any]:
        try:
            raw = os.pread(fd, 1 << 20, 0)
        except OSError as exc:
            raise StoreUnavailable(f"fieldauth store: cannot read {self.lock_path}: {exc.strerror}") from None
        try:
            meta = json.loads(raw.decode()) if raw else {}
        except (UnicodeDecodeError, ValueError):
            meta = {}  # volatile data: a torn write only ends the lease and resets the budgets
        return meta if isinstance(meta, dict) else {}

    def _write_meta(self, fd: int, meta: Dict[str, Any]) -> None:
        data = json.dumps(meta, separators=(",", ":")).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError as exc:
            raise StoreUnavailable(f"fieldauth store: cannot write {self.lock_path}: {exc.strerror}") from None

    @staticmethod
    def _lease_of(meta: Dict[str, Any], now: int) -> Tuple[int, int]:
        lease = meta.get("lease")
        if isinstance(lease, list) and len(lease) == 2 and all(isinstance(x, int) for x in lease):
            if lease[1] > now:
                return lease[0], lease[1]
        return 0, 0

    # -- the contract

    def load(self) -> Optional[Tuple[int, bytes]]:
        with self._locked():
            return self._read_state()

    def lease(self, holder: int, ttl_ms: int) -> Tuple[bool, int]:
        _check_args(holder, ttl_ms)
        with self._locked() as fd:
            meta = self._read_meta(fd)
            now = unix_ms()
            current, until = self._lease_of(meta, now)
            if current not in (0, holder):
                return False, until
            until = now + ttl_ms
            meta["lease"] = [holder, until]
            self._write_meta(fd, meta)
            return True, until

    def save(self, holder: int, expected_generation: int, state: bytes) -> Tuple[str, int]:
        _check_args(holder)
        if not isinstance(state, (bytes, bytearray)):
            raise TypeError(f"state must be bytes, not {type(state).__name__}")
        with self._locked() as fd:
            current = self._read_state()
            generation = current[0] if current is not None else 0
            if self._lease_of(self._read_meta(fd), unix_ms())[0] != holder:
                return NOT_HOLDER, generation
            if generation != expected_generation:
                return STALE, generation
            self._write_state(generation + 1, bytes(state))
            return STORED, generation + 1

    def release(self, holder: int) -> None:
        _check_args(holder)
        with self._locked() as fd:
            meta = self._read_meta(fd)
            if self._lease_of(meta, unix_ms())[0] == holder:
                meta.pop("lease", None)
                self._write_meta(fd, meta)

    def charge(self, budget_id: str, requests: int, window_s: int, burst: int) -> int:
        gcra_params(requests, window_s, burst)
        with self._locked() as fd:
            meta = self._read_meta(fd)
            budgets = meta.get("budgets")
            if not isinstance(budgets, dict):
                budgets = meta["budgets"] = {}
            now = unix_ms()
            tat = budgets.get(budget_id)
            new_tat, wait = gcra(tat if isinstance(tat, int) else 0, now, requests, window_s, burst)
            if wait:
                return wait
            budgets[budget_id] = new_tat
            self._write_meta(fd, meta)
            return 0

    def close(self) -> None:
        """Closes the lock file's descriptor (the store reopens it when used again)."""
        with self._mutex:
            if self._fd >= 0 and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = -1


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
        interval, tolerance = gcra_params(requests, window_s, burst)
        try:
            wait = self._charge(keys=[f"{self.key}:budget:{budget_id}"], args=[interval, tolerance])
        except Exception as exc:
            raise self._fail(exc) from None
        return int(wait)
