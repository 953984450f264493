"""Who moved (docs/design.md "breadth_members table"): the tickers behind a day's new highs and
lows, 4 % movers and SMA crossings, per group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from breadth_assets.analytics.breadth_counts import MOVER_DOWN, MOVER_UP, above, below
from breadth_assets.analytics.indicators import day_numbers, ticker_date_order
from breadth_assets.schema import ALL_GROUP

SMA_CROSS_PERIODS: tuple[int, ...] = (50, 200)
EVENTS: tuple[str, ...] = (
    "new_high_52w",
    "new_low_52w",
    "up_4pct",
    "down_4pct",
    *(f"cross_{side}_sma_{n}" for n in SMA_CROSS_PERIODS for side in ("above", "below")),
)
"""What `breadth_members` lists per day and group: who made each count."""


def breadth_events(rows: pd.DataFrame, dates: Sequence | pd.DatetimeIndex) -> pd.DataFrame:
    """Who made the counts `EVENTS` name: `date, event, ticker` for each ticker-day in `dates`,
    from the same ticker-day rows as `count_breadth` (rows before `dates[0]` serve as the
    previous bar), sorted by date, event and ticker."""
    out_days = day_numbers(pd.DatetimeIndex(pd.to_datetime(dates)))
    row_days = day_numbers(rows["date"])
    order, starts = ticker_date_order(rows["ticker"], row_days)
    if order is not None:
        rows = rows.iloc[order]
        row_days = row_days[order]

    def column(name: str) -> np.ndarray:
        if name not in rows.columns:
            return np.full(row_days.size, np.nan)
        return rows[name].to_numpy(dtype=np.float64)

    def previous(values: np.ndarray) -> np.ndarray:
        out = np.full_like(values, np.nan)
        out[1:] = values[:-1]
        out[starts] = np.nan
        return out

    close = column("close")
    prev_close = previous(close)
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = close / prev_close
        flags = {
            "new_high_52w": column("high") > column("high_52w"),
            "new_low_52w": column("low") < column("low_52w"),
            "up_4pct": daily >= MOVER_UP,
            "down_4pct": daily <= MOVER_DOWN,
        }
        for n in SMA_CROSS_PERIODS:
            sma = column(f"sma_{n}")
            prev_sma = previous(sma)
            had = ~np.isnan(prev_sma)
            flags[f"cross_above_sma_{n}"] = above(close, sma) & had & ~above(prev_close, prev_sma)
            flags[f"cross_below_sma_{n}"] = below(close, sma) & had & ~below(prev_close, prev_sma)
    counted = np.isin(row_days, out_days)
    tickers = rows["ticker"].to_numpy()
    dates_ = pd.DatetimeIndex(rows["date"]).to_numpy()
    parts = []
    for event in EVENTS:
        hit = flags[event] & counted
        parts.append(pd.DataFrame({"date": dates_[hit], "event": event, "ticker": tickers[hit]}))
    events = pd.concat(parts, ignore_index=True)
    return events.sort_values(["date", "event", "ticker"], ignore_index=True)


def group_events(
    events: pd.DataFrame, members: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """`breadth_members` rows: each event of `breadth_events` under `ALL_GROUP` and under every
    group of `members` its ticker is in, sorted by date, group, event and ticker."""
    pairs = [(ALL_GROUP, ticker) for ticker in events["ticker"].unique()]
    for name, tickers in (members or {}).items():
        if name != ALL_GROUP:
            pairs.extend((name, ticker) for ticker in tickers)
    membership = pd.DataFrame(pairs, columns=["group_name", "ticker"])
    out = events.merge(membership, on="ticker")[["date", "group_name", "event", "ticker"]]
    return out.sort_values(["date", "group_name", "event", "ticker"], ignore_index=True)
