"""Upstox's rate limits and the slot schedule every limiter shares, whatever keeps its state.

Upstox counts historical-data requests per user in sliding windows (50 a second, 500 a minute,
2000 per 30 minutes) and may suspend a user who goes over. A limiter hands out request start
times ("slots"): the earliest time at which one more request leaves every window within its
limit. Where the recent slots live differs (a file for one machine, `limiter`; Redis for several,
`redis_limiter`); the windows, the pacing, the margin, the waiting, what a missing state is
assumed to have held and the pause after a 429 are here, once (docs/design.md, "Pacing").
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

# Seconds by which every window is widened and the slots spaced further apart: the most by which
# one request may reach Upstox later, relative to another, than the slots they were given. It
# covers a thread that wakes up to `LATE` after its slot (a later one gives its slot back and
# asks again) and the rest, from the SDK to Upstox's own clock, with room for one TCP
# retransmission (200 ms). On a 2-core machine with both cores saturated, against the fake
# server: up to 0.2 s from slot to wake-up without the `LATE` rule, up to 0.04 s from there to
# the socket and 0.09 s from the socket to the server's clock, with rarer spikes past 0.2 s
# (docs/design.md, "Pacing"; benchmarks/limiter_margin.py).
DEFAULT_MARGIN = 0.3

# A thread that wakes more than this after its slot does not send: its slot is given back and it
# asks for another, so that no request leaves later than this after the time the state records.
LATE = 0.05

# No request is sent for this long after a 429 by any limiter sharing the state (or longer, when
# the client's own backoff is longer): the rest of Upstox's shortest window.
BLOCK_AFTER_429 = 1.0

# The longest pause a 429 may impose; a recorded pause further ahead comes from a clock that
# jumped back or stale state and is ignored.
MAX_BLOCK = 300.0

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


def assumed_full_second(now: float, limits: RateLimits) -> list[float]:
    """What a missing state is assumed to have held (a new rate file, a flushed or new Redis):
    the second before `now` as full as `limits` allow, one request every 1/per_second s up to
    `now` (at most the per-minute and per-30-minute counts), sorted. Whatever another limiter
    with these limits sent in that second then counts; the next slot comes at most the widened
    second later. Longer windows are not assumed full (docs/design.md, "Pacing")."""
    count = min(limits.per_second, limits.per_minute, limits.per_30_minutes)
    return [now - k / limits.per_second for k in range(count - 1, -1, -1)]


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

    def earliest_free(self, times: list[float], now: float, blocked_until: float = 0.0) -> float:
        """The earliest time, not before now, the last reservation or `blocked_until` (a 429),
        at which a new entry leaves every window with at most its limit (`times` sorted).

        An entry `t` counts in a window while `t + span > slot`; using the same expression for
        the slot `t + span` means the slot is free then, whatever the rounding. The Redis
        limiter's Lua script is this same loop.
        """
        slot = max(now, times[-1]) if times else now
        if blocked_until <= now + MAX_BLOCK:
            slot = max(slot, blocked_until)
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
    jitter that breaks the server's count. A thread that wakes more than `late` seconds after its
    slot gives it back and asks for another, so the margin only has to cover `late` and the
    way from here to Upstox.

    A state that is missing (never written, deleted, flushed) is assumed to have held a full
    second of requests up to now (`assumed_full_second`), never nothing. After a 429, `block`
    stops every limiter sharing the state until the rest of the window has passed.

    Subclasses keep the state: `_reserve`, `_release`, `_blocked`, `_block_until` and
    `_start_empty`, atomically against every other user.
    """

    def __init__(
        self,
        limits: RateLimits,
        margin: float,
        clock: Callable[[], float],
        sleep: Callable[[float], object],
        late: float | None = None,
    ) -> None:
        self.schedule = Schedule.of(limits, margin)
        late = LATE if late is None else late
        if not (math.isfinite(late) and late > 0):
            raise ValueError(f"late={late!r} must be a number of seconds above 0")
        self.limits = limits
        self.margin = float(margin)
        self.late = float(late)
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

    @abstractmethod
    def _blocked(self) -> bool:
        """Whether the state records a 429's pause that has not ended yet."""

    @abstractmethod
    def _block_until(self, seconds: float) -> None:
        """Records in the state that no slot may start within `seconds` from now (a later time
        already recorded stays)."""

    @abstractmethod
    def _start_empty(self) -> bool:
        """When the state is missing, creates it empty (not assumed full); whether it did."""

    def start_empty(self) -> bool:
        """For a setup known to have sent no request for this Upstox user in the last 30 minutes
        (tests, benchmarks): when the state is missing, it starts empty instead of assumed full.
        An existing state is left as it is. Returns whether the state was created."""
        return self._start_empty()

    def block(self, seconds: float = 0.0) -> float:
        """After a 429: no limiter sharing this state starts a request for max(`seconds`,
        `BLOCK_AFTER_429` + margin) from now (at most `MAX_BLOCK`); requests already waiting
        for a slot wait until then too. Returns the pause."""
        pause = min(MAX_BLOCK, max(float(seconds), BLOCK_AFTER_429 + self.margin))
        self._block_until(pause)
        return pause

    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Wait until one more request may start under every window, record it, and return the
        seconds waited. When `cancel` is set while waiting, the reserved slot is given back and
        `Cancelled` is raised.

        The slot is reserved ahead (up to `RESERVE_AHEAD` seconds) at the earliest time every
        window allows, and then slept to without any lock: the schedule is set by the reserved
        times, so threads that wake a few milliseconds late (the GIL, a busy core) neither
        delay the slots after theirs nor bunch them up. A thread that wakes more than `late`
        after its slot would send too close to the slots after it, and a slot reserved before a
        429 paused the state must not be used: either gives the slot back and asks again.
        """
        start = self.clock()
        while True:
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
            if not self._blocked() and self.clock() - slot <= self.late:
                return max(self.clock(), slot) - start
            self._release(handle)

    def _wait(self, seconds: float, cancel: threading.Event | None) -> None:
        if cancel is None:
            if seconds:
                self.sleep(seconds)
        elif cancel.wait(seconds):
            raise Cancelled()
