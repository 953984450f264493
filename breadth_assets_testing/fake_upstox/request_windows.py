"""Counting requests in sliding windows, to check rate limits against a server's records."""

from __future__ import annotations

import bisect
from collections.abc import Iterable


def max_in_window(times: Iterable[float], seconds: float) -> int:
    """Largest number of times in any half-open window [t, t + seconds): checks rate limits."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - seconds:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def over_limit(times: Iterable[float], seconds: float, limit: int) -> int:
    """How many times arrive when the `seconds` before them, themselves included, already hold
    `limit`: the requests a server counting in that sliding window would refuse."""
    ordered = sorted(times)
    return sum(
        1
        for i, t in enumerate(ordered)
        if i + 1 - bisect.bisect_right(ordered, t - seconds) > limit
    )


class WindowCounter:
    """Arrivals in sliding windows as a server enforcing rate limits counts them: `admit` says
    whether one more arrival at `now` keeps every window within its limit (it counts either way,
    as a server counts every request it sees)."""

    def __init__(self, limits: Iterable[tuple[float, int]]) -> None:
        self.limits = tuple(limits)
        self._times: list[float] = []
        self._longest = max((seconds for seconds, _ in self.limits), default=0.0)

    def admit(self, now: float) -> bool:
        times = self._times
        bisect.insort(times, now)  # handler threads may record a hair out of order
        if len(times) > 4096 and times[0] <= now - self._longest:
            del times[: bisect.bisect_right(times, now - self._longest)]
        return all(
            len(times) - bisect.bisect_right(times, now - seconds) <= limit
            for seconds, limit in self.limits
        )
