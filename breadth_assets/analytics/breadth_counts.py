"""What breadth counts per group and day (docs/design.md "Breadth columns"), vectorised with
`np.bincount` over date positions, per group over its members' rows: the part a store may do
in its own query instead (stores/breadth_sql.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from breadth_assets.analytics.indicators import day_numbers, ticker_date_order
from breadth_assets.schema import ALL_GROUP

EMA_PERIODS_ABOVE: tuple[int, ...] = (20, 50, 200)
SMA_PERIODS_ABOVE: tuple[int, ...] = (20, 40, 50, 200)
ABOVE_MARGIN = 1e-9
"""A close is above (below) its average when it passes it by more than this share of it: a tie
within TA-Lib's last bits (a run of equal closes) is neither, on raw and rescaled bars alike."""
MOVER_UP, MOVER_DOWN = 1.04, 0.96
"""Stockbee's daily movers: close / previous close at least 1.04, at most 0.96."""
QUARTER_UP, QUARTER_DOWN = 1.25, 0.75
"""Stockbee's quarterly movers: close / the close 65 bars before at least 1.25, at most 0.75."""
MACD_STAGES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
RSI_OVERBOUGHT = 70.0
RSI_OVERSOLD = 30.0
LISTED_DAYS = 14
"""A ticker is listed on a day when it has a bar on one of the 14 calendar days ending that day:
without a bar that day it is missing; after 14 days without any it no longer counts."""


def above(close: np.ndarray, average: np.ndarray) -> np.ndarray:
    """Where close is above its average (`ABOVE_MARGIN`); False where either is NaN."""
    with np.errstate(invalid="ignore"):
        return close - average > np.abs(average) * ABOVE_MARGIN


def below(close: np.ndarray, average: np.ndarray) -> np.ndarray:
    """Where close is below its average (`ABOVE_MARGIN`); False where either is NaN."""
    with np.errstate(invalid="ignore"):
        return average - close > np.abs(average) * ABOVE_MARGIN


COUNT_COLUMNS: tuple[str, ...] = (
    "universe",
    "listed",
    "advancers",
    "decliners",
    "unchanged",
    *(f"above_ema_{period}" for period in EMA_PERIODS_ABOVE),
    *(f"with_ema_{period}" for period in EMA_PERIODS_ABOVE),
    *(f"above_sma_{period}" for period in SMA_PERIODS_ABOVE),
    *(f"with_sma_{period}" for period in SMA_PERIODS_ABOVE),
    "up_4pct",
    "down_4pct",
    "up_25pct_quarter",
    "down_25pct_quarter",
    "new_highs_52w",
    "new_lows_52w",
    "rsi_overbought",
    "rsi_oversold",
    "staged",
    *(f"stage_{k}" for k in MACD_STAGES),
)
"""What breadth counts per group and day, before the ratios and the cumulative columns; a store
may count these in its own query (docs/design.md "Breadth columns")."""
VOLUME_COLUMNS: tuple[str, ...] = ("up_volume", "down_volume")


def _members(
    members: Mapping[str, Sequence[str]] | None, tickers: Sequence[str]
) -> dict[str, list[str]]:
    """The groups to count, `ALL_GROUP` (every ticker of the rows, unless given) first."""
    groups = {ALL_GROUP: list(tickers)}
    groups.update({name: list(m) for name, m in (members or {}).items()})
    return groups


def count_breadth(
    rows: pd.DataFrame,
    dates: Sequence | pd.DatetimeIndex,
    members: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """The daily counts (`COUNT_COLUMNS`, `VOLUME_COLUMNS`) per group and date in `dates` from
    the ticker-day `rows`; rows before `dates[0]` (or on days not in `dates`) only serve as a
    ticker's previous bar (and make it listed, `LISTED_DAYS`).

    `members` maps group names to their tickers; `ALL_GROUP` (every ticker of `rows`, unless
    given) always comes first. One row per group and date, groups in that order.
    """
    missing = [c for c in ("ticker", "date", "close") if c not in rows.columns]
    if missing:
        raise ValueError(f"breadth rows lack columns {missing}")
    out_dates = pd.DatetimeIndex(pd.to_datetime(dates))
    out_days = day_numbers(out_dates)
    if np.any(np.diff(out_days) <= 0):
        raise ValueError("dates must be strictly ascending")
    n = out_days.size

    row_days = day_numbers(rows["date"])
    order, starts = ticker_date_order(rows["ticker"], row_days)
    if order is not None:
        row_days = row_days[order]
    ticker_values = rows["ticker"].to_numpy()
    if order is not None:
        ticker_values = ticker_values[order]
    codes, uniques = pd.factorize(ticker_values)
    names = pd.Index(uniques)

    def column(name: str) -> np.ndarray:
        if name not in rows.columns:
            return np.full(row_days.size, np.nan)
        values = rows[name].to_numpy(dtype=np.float64)
        return values if order is None else values[order]

    close = column("close")
    prev_close = np.full_like(close, np.nan)
    has_prev = np.ones(close.size, dtype=bool)
    has_prev[starts] = False
    prev_close[1:] = close[:-1]
    next_day = np.full(row_days.size, np.iinfo(np.int64).max // 2)
    next_day[:-1] = row_days[1:]
    next_day[np.asarray(starts[1:], dtype=np.int64) - 1] = np.iinfo(np.int64).max // 2
    listed_until = np.minimum(next_day, row_days + LISTED_DAYS)

    position = np.searchsorted(out_days, row_days)
    clipped = np.minimum(position, max(n - 1, 0))
    off_dates = (position >= n) | (out_days[clipped] != row_days) if n else position >= 0
    position[off_dates] = n
    listed_from = np.searchsorted(out_days, row_days)
    listed_to = np.searchsorted(out_days, listed_until)

    with np.errstate(invalid="ignore", divide="ignore"):
        rising = has_prev & (close > prev_close)
        falling = has_prev & (close < prev_close)
        daily = close / prev_close
        quarter = close / column("close_65")
        rsi = column("rsi_14")
        stage = column("macd_stage")
        flags: dict[str, np.ndarray] = {
            "universe": np.ones(close.size, dtype=bool),
            "advancers": rising,
            "decliners": falling,
            "unchanged": has_prev & (close == prev_close),
            "new_highs_52w": column("high") > column("high_52w"),
            "new_lows_52w": column("low") < column("low_52w"),
            "up_4pct": has_prev & (daily >= MOVER_UP),
            "down_4pct": has_prev & (daily <= MOVER_DOWN),
            "up_25pct_quarter": quarter >= QUARTER_UP,
            "down_25pct_quarter": quarter <= QUARTER_DOWN,
            "rsi_overbought": rsi > RSI_OVERBOUGHT,
            "rsi_oversold": rsi < RSI_OVERSOLD,
            "staged": ~np.isnan(stage),
            **{f"stage_{k}": stage == k for k in MACD_STAGES},
        }
        for period in EMA_PERIODS_ABOVE:
            ema = column(f"ema_{period}")
            flags[f"above_ema_{period}"] = above(close, ema)
            flags[f"with_ema_{period}"] = ~np.isnan(ema)
        for period in SMA_PERIODS_ABOVE:
            sma = column(f"sma_{period}")
            flags[f"above_sma_{period}"] = above(close, sma)
            flags[f"with_sma_{period}"] = ~np.isnan(sma)
        volume = np.nan_to_num(column("volume"), nan=0.0)

    frames = []
    for name, tickers in _members(members, names.tolist()).items():
        in_group = np.isin(codes, names.get_indexer(pd.Index(tickers)))
        at = np.where(in_group, position, n)

        counts = {key: _per_day(at, n, mask) for key, mask in flags.items()}
        counts["up_volume"] = _per_day(at, n, rising, volume)
        counts["down_volume"] = _per_day(at, n, falling, volume)
        steps = np.bincount(listed_from[in_group], minlength=n + 1)[: n + 1]
        steps = steps - np.bincount(listed_to[in_group], minlength=n + 1)[: n + 1]
        counts["listed"] = np.cumsum(steps)[:n].astype(np.int64)
        ordered = {key: counts[key] for key in (*COUNT_COLUMNS, *VOLUME_COLUMNS)}
        frames.append(
            pd.DataFrame({"date": out_dates, "group_name": name, **ordered}, index=pd.RangeIndex(n))
        )
    return pd.concat(frames, ignore_index=True)


def _per_day(
    at: np.ndarray, n: int, mask: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Sum of `weights` (or count) of the rows where `mask` holds, per output position `at`
    (`n`: not counted)."""
    w = mask if weights is None else np.where(mask, weights, 0.0)
    totals = np.bincount(at, weights=w, minlength=n + 1)[:n]
    return totals if weights is not None else totals.astype(np.int64)
