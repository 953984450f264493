"""Counting requests in sliding windows, to check rate limits against a server's records."""

from __future__ import annotations

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
