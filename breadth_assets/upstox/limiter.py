"""A request rate limiter shared by every thread and process on the machine.

Upstox counts historical-data requests per user in sliding windows (50 a second, 500 a minute,
2000 per 30 minutes) and may suspend a user who goes over. Our runs fetch from several processes,
each with a thread pool, so a per-process limiter is not enough: the start times of recent
requests live in one small file, and each `acquire` reads and updates it under an exclusive
`fcntl.flock`.
"""

from __future__ import annotations

import fcntl
import math
import numbers
import os
import sys
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

STATE_FILE_ENV = "BREADTH_UPSTOX_RATE_FILE"

# Entries this far ahead of the clock come from a clock that jumped back or a stale file; keeping
# them could block requests for as long as the jump, so they are dropped.
FUTURE_TOLERANCE = 5.0

_UPSTOX_UNITS = {
    "per_second": "a second",
    "per_minute": "a minute",
    "per_30_minutes": "per 30 minutes",
}


@dataclass(frozen=True)
class RateLimits:
    """Most requests allowed in each sliding window; never above Upstox's own limits (the
    defaults), since going over them may get the user suspended."""

    per_second: int = 50
    per_minute: int = 500
    per_30_minutes: int = 2000

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise ValueError(f"{field.name}={value!r} is not a whole number")
            if value < 1:
                raise ValueError(f"{field.name}={value} must be at least 1")
            if value > field.default:
                raise ValueError(
                    f"{field.name}={value} is above Upstox's limit of {field.default} "
                    f"{_UPSTOX_UNITS[field.name]}"
                )

    def windows(self) -> tuple[tuple[float, int], ...]:
        """(window length in seconds, most requests in it), shortest window first."""
        return ((1.0, self.per_second), (60.0, self.per_minute), (1800.0, self.per_30_minutes))


PRODUCTION_LIMITS = RateLimits()

# No valid `RateLimits` allows more requests in the longest window, so the file never needs more.
MAX_ENTRIES = PRODUCTION_LIMITS.per_30_minutes


def default_state_path() -> Path:
    """$BREADTH_UPSTOX_RATE_FILE, else a per-user cache file: one file per user on the machine,
    because Upstox's limits are per user."""
    override = os.environ.get(STATE_FILE_ENV)
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "breadth_assets" / "upstox-requests.bin"


# flock already excludes threads (each acquire opens its own file description); the thread lock
# keeps the other threads of a process asleep on it instead of all polling the file.
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(path: str) -> threading.Lock:
    with _thread_locks_guard:
        lock = _thread_locks.get(path)
        if lock is None:
            lock = _thread_locks[path] = threading.Lock()
        return lock


def _reset_thread_locks_after_fork() -> None:
    """A lock held by a parent thread at fork would never be released in the child."""
    global _thread_locks_guard
    _thread_locks_guard = threading.Lock()
    _thread_locks.clear()


os.register_at_fork(after_in_child=_reset_thread_locks_after_fork)


def _decode(data: bytes) -> list[float]:
    """Little-endian float64s; a partial trailing entry (a torn or foreign file) is ignored."""
    times = array("d")
    times.frombytes(data[: len(data) - len(data) % 8])
    if sys.byteorder == "big":
        times.byteswap()
    return times.tolist()


def _encode(times: list[float]) -> bytes:
    packed = array("d", times)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


RESERVE_AHEAD = 1.0


class Cancelled(Exception):
    """`acquire` gave up because its cancel event was set; no slot is left reserved."""


class RateLimiter:
    """Blocks each request until it fits under every window of `limits`, counting the requests of
    all limiters on the machine that share `path` (default: `default_state_path()`).

    `margin` widens every window by that many seconds so that jitter between taking a slot here
    and the request reaching Upstox cannot put more than the limit in one of the server's windows.
    Slots are also paced, one every (1 s + margin) / per_second, rather than handed out a
    second's worth at once: threads released together would send late and unevenly, which is the
    jitter that breaks the server's count.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        limits: RateLimits = PRODUCTION_LIMITS,
        margin: float = 0.05,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin={margin!r} must be a finite number of seconds >= 0")
        self.path = Path(path if path is not None else default_state_path()).expanduser().resolve()
        self.limits = limits
        self.margin = float(margin)
        self.clock = clock
        self.sleep = sleep
        self._spans = tuple((window + self.margin, limit) for window, limit in limits.windows())
        self._horizon = max(span for span, _ in self._spans)
        shortest, limit = min(self._spans)
        self._spans += ((shortest / limit, 1),)

    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Wait until one more request may start under every window, record it, and return the
        seconds waited. When `cancel` is set while waiting, the reserved slot is given back and
        `Cancelled` is raised.

        The slot is reserved ahead (up to `RESERVE_AHEAD` seconds) at the earliest time every
        window allows, and then slept to without any lock: the schedule is set by the reserved
        times, so threads that wake a few milliseconds late (the GIL, a busy core) neither
        delay the slots after theirs nor bunch them up.
        """
        start = self.clock()
        with _thread_lock(str(self.path)):
            while True:
                self._wait(0.0, cancel)
                slot, reserved = self._reserve()
                if reserved:
                    break
                self._wait(max(0.0, slot - RESERVE_AHEAD - self.clock()), cancel)
        try:
            self._wait(max(0.0, slot - self.clock()), cancel)
        except Cancelled:
            self._release(slot)
            raise
        return max(self.clock(), slot) - start

    def _wait(self, seconds: float, cancel: threading.Event | None) -> None:
        if cancel is None:
            if seconds:
                self.sleep(seconds)
        elif cancel.wait(seconds):
            raise Cancelled()

    def _release(self, slot: float) -> None:
        """Takes a reserved, unused slot out of the file, so that it counts for nobody."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            times = _decode(os.pread(fd, size, 0))
            if slot not in times:
                return
            times.remove(slot)
            payload = _encode(times)
            os.pwrite(fd, payload, 0)
            os.ftruncate(fd, len(payload))
        finally:
            os.close(fd)

    def _reserve(self) -> tuple[float, bool]:
        """The earliest free slot, and whether it was near enough to be reserved in the file."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            now = self.clock()
            times = self._recent(_decode(os.pread(fd, size, 0)), now)
            slot = self._earliest_free(times, now)
            if slot > now + RESERVE_AHEAD:
                return slot, False
            times.append(slot)
            payload = _encode(times[-MAX_ENTRIES:])
            # Write before truncating: a crash in between leaves extra old entries (too strict),
            # never missing ones.
            os.pwrite(fd, payload, 0)
            if len(payload) < size:
                os.ftruncate(fd, len(payload))
            return slot, True
        finally:
            os.close(fd)  # also releases the flock

    def _open(self) -> int:
        """A fresh descriptor per attempt: flock then excludes other threads too, and a deleted or
        replaced file is picked up at once instead of silently splitting the count."""
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(self.path, flags, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, flags, 0o600)

    def _recent(self, times: list[float], now: float) -> list[float]:
        """Sorted entries that can still count in some window; NaNs fail both tests and go too."""
        latest = now + FUTURE_TOLERANCE
        kept = [t for t in times if t + self._horizon > now and t <= latest]
        kept.sort()
        return kept

    def _earliest_free(self, times: list[float], now: float) -> float:
        """The earliest time, not before now nor before the last reservation, at which a new
        entry leaves every window with at most its limit.

        An entry `t` counts in a window while `t + span > slot`; using the same expression for
        the slot `t + span` means the slot is free then, whatever the rounding.
        """
        slot = max(now, times[-1]) if times else now
        for span, limit in self._spans:
            if len(times) >= limit:
                slot = max(slot, times[-limit] + span)
        return slot
