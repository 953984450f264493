"""Runs that carry many partitions: the batches of the universe and their run tags."""

from __future__ import annotations

from collections.abc import Sequence

from breadth_assets.runtime.dagster_compat import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

# Tags of the daily update's ticker runs: the trading day, and how many runs that day has, so
# that breadth starts once every one of them has finished.
DAY_TAG = "breadth_assets/day"
BATCHES_TAG = "breadth_assets/batches"


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run carry a range of partitions (no public helper in 1.13)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def ticker_batches(keys: Sequence[str], wanted: Sequence[str], size: int) -> list[list[str]]:
    """Contiguous stretches of the partition order, at most `size` long: one ranged run each."""
    wanted_set = set(wanted)
    batches: list[list[str]] = []
    current: list[str] = []
    for key in keys:
        if key in wanted_set:
            current.append(key)
        if current and (key not in wanted_set or len(current) == size):
            batches.append(current)
            current = []
    if current:
        batches.append(current)
    return batches


def update_batches(
    keys: Sequence[str],
    wanted: Sequence[str],
    with_history: set[str],
    batch_size: int,
    update_batch_size: int,
) -> list[list[str]]:
    """Batches for an update: tickers that have history in runs of `update_batch_size` (each
    reads a few bars), the others in runs of `batch_size` (each fetches a whole history)."""
    updates = [key for key in wanted if key in with_history]
    new = [key for key in wanted if key not in with_history]
    return ticker_batches(keys, updates, update_batch_size) + ticker_batches(keys, new, batch_size)
