"""A request rate limiter shared by every thread and process on the machine.

Our runs fetch from several processes, each with a thread pool, so a per-process limiter is not
enough: the start times of recent requests live in one small file, and each `acquire` reads and
updates it under an exclusive `fcntl.flock`. The windows, pacing and waiting are
`rate_limits.SlotLimiter`'s; machines that fetch for the same user share `redis_limiter` instead.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path

from breadth_assets.sources.upstox.rate_limits import (
    FUTURE_TOLERANCE,
    MAX_ENTRIES,
    PRODUCTION_LIMITS,
    RESERVE_AHEAD,
    Cancelled,
    RateLimits,
    SlotLimiter,
)

__all__ = [
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


class RateLimiter(SlotLimiter):
    """Counts the requests of all limiters on the machine that share `path` (default:
    `default_state_path()`); the file holds their start times on the wall clock, which every
    process of the machine shares. See `SlotLimiter` for the margin and the pacing."""

    def __init__(
        self,
        path: str | Path | None = None,
        limits: RateLimits = PRODUCTION_LIMITS,
        margin: float = 0.05,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        super().__init__(limits, margin, clock, sleep)
        self.path = Path(path if path is not None else default_state_path()).expanduser().resolve()

    @property
    def _lock_name(self) -> str:
        return str(self.path)

    def _release(self, handle: object) -> None:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            times = _decode(os.pread(fd, size, 0))
            if handle not in times:
                return
            times.remove(handle)
            payload = _encode(times)
            os.pwrite(fd, payload, 0)
            os.ftruncate(fd, len(payload))
        finally:
            os.close(fd)

    def _reserve(self) -> tuple[float, object, bool]:
        """The earliest free slot (its own handle), reserved in the file when near enough."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            now = self.clock()
            times = self.schedule.recent(_decode(os.pread(fd, size, 0)), now)
            slot = self.schedule.earliest_free(times, now)
            if slot > now + RESERVE_AHEAD:
                return slot, slot, False
            times.append(slot)
            payload = _encode(times[-MAX_ENTRIES:])
            # Write before truncating: a crash in between leaves extra old entries (too strict),
            # never missing ones.
            os.pwrite(fd, payload, 0)
            if len(payload) < size:
                os.ftruncate(fd, len(payload))
            return slot, slot, True
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
