"""Upstox's rate limits and the slot schedule every limiter shares, whatever keeps its state.

Upstox counts historical-data requests per user in sliding windows (50 a second, 500 a minute,
2000 per 30 minutes) and may suspend a user who goes over. A limiter hands out request start
times ("slots"): the earliest time at which one more request leaves every window within its
limit. Where the recent slots live differs (a file for one machine, `limiter`; Redis for several,
`redis_limiter`); the windows, the pacing, the margin and the waiting are here, once.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields

# Entries this far ahead of the clock come from a clock that jumped back or stale state; keeping
# them could block requests for as long as the jump, so they are dropped.
FUTURE_TOLERANCE = 5.0

# How far ahead a slot may be reserved; a later one is asked for again when it is this near.
RESERVE_AHEAD = 1.0

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

# No valid `RateLimits` allows more requests in the longest window, so no state needs more.
MAX_ENTRIES = PRODUCTION_LIMITS.per_30_minutes


class Cancelled(Exception):
    """`acquire` gave up because its cancel event was set; no slot is left reserved."""


class LimiterUnavailable(Exception):
    """The limiter's shared state could not be reached: the request must not be sent, since
    sending it unlimited could get the user suspended."""


@dataclass(frozen=True)
class Schedule:
    """The windows as the slot search uses them: each widened by `margin`, plus the pacing of
    one slot every (1 s + margin) / per_second, written as a window that holds one request."""

    spans: tuple[tuple[float, int], ...]
    horizon: float

    @classmethod
    def of(cls, limits: RateLimits, margin: float) -> Schedule:
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin={margin!r} must be a finite number of seconds >= 0")
        spans = tuple((window + margin, limit) for window, limit in limits.windows())
        shortest, limit = min(spans)
        return cls((*spans, (shortest / limit, 1)), max(span for span, _ in spans))

    def recent(self, times: list[float], now: float) -> list[float]:
        """Sorted entries that can still count in some window; NaNs fail both tests and go too."""
        latest = now + FUTURE_TOLERANCE
        kept = [t for t in times if t + self.horizon > now and t <= latest]
        kept.sort()
        return kept

    def earliest_free(self, times: list[float], now: float) -> float:
        """The earliest time, not before now nor before the last reservation, at which a new
        entry leaves every window with at most its limit (`times` sorted).

        An entry `t` counts in a window while `t + span > slot`; using the same expression for
        the slot `t + span` means the slot is free then, whatever the rounding. The Redis
        limiter's Lua script is this same loop.
        """
        slot = max(now, times[-1]) if times else now
        for span, limit in self.spans:
            if len(times) >= limit:
                slot = max(slot, times[-limit] + span)
        return slot


# The state's own lock (flock, Redis) already excludes other threads; this lock keeps the other
# threads of a process asleep on it instead of all polling the state.
_thread_locks: dict[Hashable, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def thread_lock(name: Hashable) -> threading.Lock:
    """The process's lock for one shared state (a file, a Redis key)."""
    with _thread_locks_guard:
        lock = _thread_locks.get(name)
        if lock is None:
            lock = _thread_locks[name] = threading.Lock()
        return lock


def _reset_thread_locks_after_fork() -> None:
    """A lock held by a parent thread at fork would never be released in the child."""
    global _thread_locks_guard
    _thread_locks_guard = threading.Lock()
    _thread_locks.clear()


os.register_at_fork(after_in_child=_reset_thread_locks_after_fork)


class SlotLimiter(ABC):
    """Blocks each request until it fits under every window of `limits`, counting the requests of
    every limiter that shares the same state.

    `margin` widens every window by that many seconds so that jitter between taking a slot here
    and the request reaching Upstox cannot put more than the limit in one of the server's windows.
    Slots are also paced, one every (1 s + margin) / per_second, rather than handed out a
    second's worth at once: threads released together would send late and unevenly, which is the
    jitter that breaks the server's count.

    Subclasses keep the state: `_reserve` and `_release`, atomically against every other user.
    """

    def __init__(
        self,
        limits: RateLimits,
        margin: float,
        clock: Callable[[], float],
        sleep: Callable[[float], object],
    ) -> None:
        self.limits = limits
        self.schedule = Schedule.of(limits, margin)
        self.margin = float(margin)
        self.clock = clock
        self.sleep = sleep

    @property
    @abstractmethod
    def _lock_name(self) -> Hashable:
        """Names the shared state, so that the threads of a process queue on one lock for it."""

    @abstractmethod
    def _reserve(self) -> tuple[float, object, bool]:
        """(when the earliest free slot starts, on `self.clock`; what identifies it to
        `_release`; whether it was near enough, within `RESERVE_AHEAD`, to be reserved)."""

    @abstractmethod
    def _release(self, handle: object) -> None:
        """Takes a reserved, unused slot out of the state, so that it counts for nobody."""

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
        with thread_lock(self._lock_name):
            while True:
                self._wait(0.0, cancel)
                slot, handle, reserved = self._reserve()
                if reserved:
                    break
                self._wait(max(0.0, slot - RESERVE_AHEAD - self.clock()), cancel)
        try:
            self._wait(max(0.0, slot - self.clock()), cancel)
        except Cancelled:
            self._release(handle)
            raise
        return max(self.clock(), slot) - start

    def _wait(self, seconds: float, cancel: threading.Event | None) -> None:
        if cancel is None:
            if seconds:
                self.sleep(seconds)
        elif cancel.wait(seconds):
            raise Cancelled()
