"""Who moved (docs/design.md "breadth_members table"): the tickers behind a day's new highs and
lows, 4 % movers and SMA crossings, per group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from breadth_assets.analytics.breadth_counts import (
    TickerDays,
    above,
    below,
)

SMA_CROSS_PERIODS: tuple[int, ...] = (50, 200)
EVENTS: tuple[str, ...] = (
    "new_high_52w",
    "new_low_52w",
    "up_4pct",
    "down_4pct",
    *(f"cross_{side}_sma_{n}" for n in SMA_CROSS_PERIODS for side in ("above", "below")),
)
"""What `breadth_members` lists per day and group: who made each count."""


def breadth_members(
    rows: pd.DataFrame,
    dates: Sequence | pd.DatetimeIndex,
    members: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """`breadth_members` rows: `date, group_name, event, ticker` for each ticker-day in `dates`
    that made one of `EVENTS`, under `ALL_GROUP` and every group of `members` the ticker is in,
    from the same ticker-day rows as `count_breadth` (rows before `dates[0]` serve as the
    previous bar). The names are categorical (a history holds millions of rows), in no order."""
    return members_of(TickerDays(rows, dates), members)


def members_of(
    days: TickerDays, members: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """`breadth_members` over rows already placed on their dates."""
    groups, matrix = days.membership(members)
    close = days.column("close")
    prev_close = days.previous(close)
    flags = days.moves()
    with np.errstate(invalid="ignore"):
        for n in SMA_CROSS_PERIODS:
            sma = days.column(f"sma_{n}")
            prev_sma = days.previous(sma)
            had = ~np.isnan(prev_sma)
            flags[f"cross_above_sma_{n}"] = above(close, sma) & had & ~above(prev_close, prev_sma)
            flags[f"cross_below_sma_{n}"] = below(close, sma) & had & ~below(prev_close, prev_sma)
    # Each ticker's groups as one flat list (by ticker), to repeat an event once per group.
    group_of, ticker_of = np.nonzero(matrix.T)[1], np.nonzero(matrix.T)[0]
    counts = np.bincount(ticker_of, minlength=len(days.tickers))
    offsets = np.concatenate(([0], np.cumsum(counts)))
    counted = days.position < days.n
    parts = []
    for number, event in enumerate(EVENTS):
        hit = np.flatnonzero(flags[event] & counted)
        repeats = counts[days.codes[hit]]
        row = np.repeat(hit, repeats)
        first = np.repeat(offsets[days.codes[hit]] - np.cumsum(repeats) + repeats, repeats)
        groups_at = group_of[first + np.arange(row.size)]
        parts.append((row, groups_at, np.full(row.size, number, dtype=np.int8)))
    row = np.concatenate([p[0] for p in parts])
    return pd.DataFrame(
        {
            "date": days.dates.to_numpy()[days.position[row]],
            "group_name": pd.Categorical.from_codes(
                np.concatenate([p[1] for p in parts]), categories=groups
            ),
            "event": pd.Categorical.from_codes(
                np.concatenate([p[2] for p in parts]), categories=list(EVENTS)
            ),
            "ticker": pd.Categorical.from_codes(days.codes[row], categories=days.tickers),
        }
    )
