"""A request rate limiter shared by every thread and process on the machine.

Our runs fetch from several processes, each with a thread pool, so a per-process limiter is not
enough: the start times of recent requests live in one small file, and each `acquire` reads and
updates it under an exclusive `fcntl.flock`. The windows, pacing and waiting are
`rate_limits.SlotLimiter`'s; machines that fetch for the same user share `redis_limiter` instead,
and each keeps its own slots of that shared state in a local file as well (`Journal`).

The file is a plain array of little-endian float64s on the wall clock: the recent slots' start
times and, after a 429, one negative value, minus the time until which the pause stops every
request (older versions drop it as a time long past). A missing or empty file is a missing
state: its last second is assumed to have been full (`rate_limits.assumed_full_second`) when
the first slot is chosen, and that slot is written at once, however far ahead, so every later
one is paced after it.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import struct
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path

from breadth_assets.sources.upstox.rate_limits import (
    DEFAULT_MARGIN,
    FUTURE_TOLERANCE,
    MAX_BLOCK,
    MAX_ENTRIES,
    PRODUCTION_LIMITS,
    RESERVE_AHEAD,
    Cancelled,
    RateLimits,
    SlotLimiter,
    assumed_full_second,
)

__all__ = [
    "DEFAULT_MARGIN",
    "FUTURE_TOLERANCE",
    "MAX_ENTRIES",
    "PRODUCTION_LIMITS",
    "RESERVE_AHEAD",
    "STATE_FILE_ENV",
    "Cancelled",
    "RateLimiter",
    "RateLimits",
    "default_state_path",
]

STATE_FILE_ENV = "BREADTH_UPSTOX_RATE_FILE"

# What `start_empty` writes: a value every reader drops, so that the file is not empty (missing).
_NOTHING = float("nan")


def default_state_path() -> Path:
    """$BREADTH_UPSTOX_RATE_FILE, else a per-user cache file: one file per user on the machine,
    because Upstox's limits are per user."""
    override = os.environ.get(STATE_FILE_ENV)
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "breadth_assets" / "upstox-requests.bin"


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


def _read(fd: int) -> tuple[list[float], float, bool]:
    """(slot times, when a 429's pause ends or 0, whether the file holds a state at all)."""
    values = _decode(os.pread(fd, os.fstat(fd).st_size, 0))
    pauses = [-value for value in values if value < 0 and math.isfinite(value)]
    times = [value for value in values if not value < 0]  # NaNs too: `recent` drops them
    return times, max(pauses, default=0.0), bool(values)


def _write(fd: int, times: list[float], blocked: float, now: float) -> None:
    """Write before truncating: a crash in between leaves extra old entries (too strict), never
    missing ones. A pause that has ended, or that ends implausibly far ahead, is left out."""
    values = times[-MAX_ENTRIES:]
    if now < blocked <= now + MAX_BLOCK:
        values = [*values, -blocked]
    payload = _encode(values)
    os.pwrite(fd, payload, 0)
    if len(payload) < os.fstat(fd).st_size:
        os.ftruncate(fd, len(payload))


class RateLimiter(SlotLimiter):
    """Counts the requests of all limiters on the machine that share `path` (default:
    `default_state_path()`); the file holds their start times on the wall clock, which every
    process of the machine shares. See `SlotLimiter` for the margin, the pacing, a missing
    state and the pause after a 429."""

    def __init__(
        self,
        path: str | Path | None = None,
        limits: RateLimits = PRODUCTION_LIMITS,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
        late: float | None = None,
    ) -> None:
        super().__init__(limits, margin, clock, sleep, late)
        self.path = Path(path if path is not None else default_state_path()).expanduser().resolve()

    @property
    def _lock_name(self) -> str:
        return str(self.path)

    def _release(self, handle: object) -> None:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            times, blocked, _ = _read(fd)
            if handle not in times:
                return
            times.remove(handle)
            _write(fd, times, blocked, self.clock())
        finally:
            os.close(fd)

    def _reserve(self) -> tuple[float, object, bool]:
        """The earliest free slot (its own handle), reserved in the file when near enough, or
        when the state was missing."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now = self.clock()
            times, blocked, present = _read(fd)
            times = self.schedule.recent(times, now)
            known = times if present else assumed_full_second(now, self.limits)
            slot = self.schedule.earliest_free(known, now, blocked)
            if present and slot > now + RESERVE_AHEAD:
                return slot, slot, False
            times.append(slot)
            _write(fd, times, blocked, now)
            return slot, slot, True
        finally:
            os.close(fd)  # also releases the flock

    def _blocked(self) -> bool:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            _, blocked, _ = _read(fd)
        finally:
            os.close(fd)
        now = self.clock()
        return now < blocked <= now + MAX_BLOCK

    def _block_until(self, seconds: float) -> None:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now = self.clock()
            times, blocked, _ = _read(fd)
            _write(fd, self.schedule.recent(times, now), max(blocked, now + seconds), now)
        finally:
            os.close(fd)

    def _start_empty(self) -> bool:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _read(fd)[2]:
                return False
            os.pwrite(fd, _encode([_NOTHING]), 0)
            return True
        finally:
            os.close(fd)

    def _open(self) -> int:
        """A fresh descriptor per attempt: flock then excludes other threads too, and a deleted or
        replaced file is picked up at once instead of silently splitting the count."""
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(self.path, flags, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, flags, 0o600)


class Journal:
    """This machine's own slots in the Redis limiter's shared state, kept in a local file so that
    a flushed or new Redis can be given them back (`redis_limiter`): 24-byte records, a slot's
    score (float64, little-endian, on the Redis server's clock) and its member (16 bytes), under
    `fcntl.flock`. Only entries still within the longest window are kept. A journal that cannot
    be written costs only that recovery: errors are ignored."""

    _RECORD = struct.Struct("<d16s")

    def __init__(self, path: Path, horizon: float) -> None:
        self.path = path
        self.horizon = horizon

    def entries(self, now: float) -> list[tuple[float, str]]:
        """(score, member) of the slots still in the longest window at `now` (server clock)."""
        with contextlib.suppress(OSError), self._locked() as fd:
            return self._recent(self._read(fd), now)
        return []

    def add(self, score: float, member: str, now: float) -> None:
        with contextlib.suppress(OSError), self._locked() as fd:
            records = self._recent(self._read(fd), now)
            records.append((score, member))
            self._write(fd, records[-MAX_ENTRIES:])

    def remove(self, member: str) -> None:
        with contextlib.suppress(OSError), self._locked() as fd:
            records = self._read(fd)
            kept = [record for record in records if record[1] != member]
            if len(kept) != len(records):
                self._write(fd, kept)

    def _recent(self, records: list[tuple[float, str]], now: float) -> list[tuple[float, str]]:
        return [(t, m) for t, m in records if now - self.horizon - 1 < t <= now + FUTURE_TOLERANCE]

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def _read(self, fd: int) -> list[tuple[float, str]]:
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        size = self._RECORD.size
        return [
            (score, member.hex())
            for score, member in (
                self._RECORD.unpack_from(data, i) for i in range(0, len(data) - size + 1, size)
            )
        ]

    def _write(self, fd: int, records: list[tuple[float, str]]) -> None:
        payload = b"".join(self._RECORD.pack(t, bytes.fromhex(m)) for t, m in records)
        os.pwrite(fd, payload, 0)
        if len(payload) < os.fstat(fd).st_size:
            os.ftruncate(fd, len(payload))
