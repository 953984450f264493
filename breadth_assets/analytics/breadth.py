"""Market breadth per trading day (docs/design.md "Breadth"), as a plain function over DataFrames.

Daily counts are vectorised with `np.bincount` over date positions; only the recursive McClellan
and Zweig EMAs walk the dates one by one, because each day depends on the one before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from breadth_assets.analytics.indicators import day_numbers, ticker_date_order
from breadth_assets.schema import BREADTH_COLUMNS, BREADTH_INPUT_COLUMNS

EMA_PERIODS_ABOVE: tuple[int, ...] = (20, 50, 200)
SMA_PERIODS_ABOVE: tuple[int, ...] = (20, 40, 50, 200)
MOVER_UP, MOVER_DOWN = 1.04, 0.96
"""Stockbee's daily movers: close / previous close at least 1.04, at most 0.96."""
QUARTER_UP, QUARTER_DOWN = 1.25, 0.75
"""Stockbee's quarterly movers: close / the close 65 bars before at least 1.25, at most 0.75."""
MACD_STAGES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
RSI_OVERBOUGHT = 70.0
RSI_OVERSOLD = 30.0
MCCLELLAN_FAST_ALPHA = 0.10
MCCLELLAN_SLOW_ALPHA = 0.05
ZWEIG_ALPHA = 2.0 / 11.0

_COUNT_TYPE = "BIGINT"


def _ratio(numerator: np.ndarray, denominator: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """scale·numerator/denominator, NaN (NULL) where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    np.divide(scale * numerator, denominator, out=out, where=denominator != 0)
    return out


@dataclass
class SmoothingState:
    """Where the McClellan and Zweig recursions stand after a day: enough to go on from it."""

    seeded: bool = False
    """Whether a day with A+D > 0 has come; until then the smoothed columns are NULL."""
    ema_19: float = 0.0
    ema_39: float = 0.0
    summation: float = 0.0
    zweig: float = 0.0


@dataclass
class BreadthState:
    """The cumulative columns at the end of a day: what the next day's row goes on from."""

    ad_line: int = 0
    net_new_highs_line: int = 0
    smoothing: SmoothingState = field(default_factory=SmoothingState)


def _smoothed(
    advancers: np.ndarray, decliners: np.ndarray, state: SmoothingState | None = None
) -> dict[str, np.ndarray]:
    """McClellan oscillator, summation and EMAs, and the Zweig EMA; NULL until the first day
    with A+D > 0.

    Goes on from `state` (the day before the first one here) and leaves it at the last day.
    """
    state = state if state is not None else SmoothingState()
    n = advancers.size
    out = {
        name: np.full(n, np.nan)
        for name in (
            "mcclellan_osc",
            "mcclellan_sum",
            "zweig_ema",
            "mcclellan_ema_19",
            "mcclellan_ema_39",
        )
    }
    for i, (a, d) in enumerate(zip(advancers.tolist(), decliners.tolist(), strict=True)):
        if a + d > 0:
            x = 1000.0 * (a - d) / (a + d)
            share = a / (a + d)
            if state.seeded:
                state.ema_19 += MCCLELLAN_FAST_ALPHA * (x - state.ema_19)
                state.ema_39 += MCCLELLAN_SLOW_ALPHA * (x - state.ema_39)
                state.zweig += ZWEIG_ALPHA * (share - state.zweig)
            else:
                state.ema_19 = state.ema_39 = x
                state.zweig = share
                state.seeded = True
        if state.seeded:
            state.summation += state.ema_19 - state.ema_39
            out["mcclellan_osc"][i] = state.ema_19 - state.ema_39
            out["mcclellan_sum"][i] = state.summation
            out["zweig_ema"][i] = state.zweig
            out["mcclellan_ema_19"][i] = state.ema_19
            out["mcclellan_ema_39"][i] = state.ema_39
    return out


def state_after(row: pd.Series) -> BreadthState | None:
    """The state a stored breadth row leaves, or None when the row cannot say (it predates the
    state columns): the next day's row is computed from it exactly as in one computation.
    """
    seeded = not pd.isna(row["mcclellan_ema_19"])
    if pd.isna(row["mcclellan_osc"]) == seeded or pd.isna(row["mcclellan_ema_39"]) == seeded:
        return None
    if pd.isna(row.get("net_new_highs_line")):
        return None
    smoothing = SmoothingState()
    if seeded:
        smoothing = SmoothingState(
            seeded=True,
            ema_19=float(row["mcclellan_ema_19"]),
            ema_39=float(row["mcclellan_ema_39"]),
            summation=float(row["mcclellan_sum"]),
            zweig=float(row["zweig_ema"]),
        )
    return BreadthState(
        ad_line=int(row["ad_line"]),
        net_new_highs_line=int(row["net_new_highs_line"]),
        smoothing=smoothing,
    )


COUNT_COLUMNS: tuple[str, ...] = (
    "universe",
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
"""What breadth counts per day, before the ratios and the cumulative columns; a store may count
these in its own query (docs/design.md "Breadth columns")."""
VOLUME_COLUMNS: tuple[str, ...] = ("up_volume", "down_volume")


def count_breadth(rows: pd.DataFrame, dates: Sequence | pd.DatetimeIndex) -> pd.DataFrame:
    """The daily counts (`COUNT_COLUMNS`, `VOLUME_COLUMNS`) per date in `dates` from the
    ticker-day `rows` of one universe; rows before `dates[0]` (or on days not in `dates`) only
    serve as a ticker's previous bar."""
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

    position = np.searchsorted(out_days, row_days)
    clipped = np.minimum(position, max(n - 1, 0))
    off_dates = (position >= n) | (out_days[clipped] != row_days) if n else position >= 0
    position[off_dates] = n

    def per_day(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of `weights` (or count) of the rows where `mask` holds, per output date."""
        w = mask if weights is None else np.where(mask, weights, 0.0)
        totals = np.bincount(position, weights=w, minlength=n + 1)[:n]
        return totals if weights is not None else totals.astype(np.int64)

    with np.errstate(invalid="ignore"):
        rising = has_prev & (close > prev_close)
        falling = has_prev & (close < prev_close)
        volume = np.nan_to_num(column("volume"), nan=0.0)
        counts: dict[str, np.ndarray] = {
            "universe": per_day(np.ones(close.size, dtype=bool)),
            "advancers": per_day(rising),
            "decliners": per_day(falling),
            "unchanged": per_day(has_prev & (close == prev_close)),
            "new_highs_52w": per_day(column("high") > column("high_52w")),
            "new_lows_52w": per_day(column("low") < column("low_52w")),
            "up_volume": per_day(rising, volume),
            "down_volume": per_day(falling, volume),
        }
        for period in EMA_PERIODS_ABOVE:
            ema = column(f"ema_{period}")
            counts[f"above_ema_{period}"] = per_day(close > ema)
            counts[f"with_ema_{period}"] = per_day(~np.isnan(ema))
        for period in SMA_PERIODS_ABOVE:
            sma = column(f"sma_{period}")
            counts[f"above_sma_{period}"] = per_day(close > sma)
            counts[f"with_sma_{period}"] = per_day(~np.isnan(sma))
        daily = close / prev_close
        counts["up_4pct"] = per_day(has_prev & (daily >= MOVER_UP))
        counts["down_4pct"] = per_day(has_prev & (daily <= MOVER_DOWN))
        quarter = close / column("close_65")
        counts["up_25pct_quarter"] = per_day(quarter >= QUARTER_UP)
        counts["down_25pct_quarter"] = per_day(quarter <= QUARTER_DOWN)
        rsi = column("rsi_14")
        counts["rsi_overbought"] = per_day(rsi > RSI_OVERBOUGHT)
        counts["rsi_oversold"] = per_day(rsi < RSI_OVERSOLD)
        stage = column("macd_stage")
        counts["staged"] = per_day(~np.isnan(stage))
        for k in MACD_STAGES:
            counts[f"stage_{k}"] = per_day(stage == k)
    ordered = {name: counts[name] for name in (*COUNT_COLUMNS, *VOLUME_COLUMNS)}
    return pd.DataFrame({"date": out_dates, **ordered}, index=pd.RangeIndex(n))


def finish_breadth(counts: pd.DataFrame, state: BreadthState | None = None) -> pd.DataFrame:
    """Breadth rows from the daily counts: ratios, percentages and the cumulative columns, which
    go on from `state` (the day before the first count; none: they start there) and leave it at
    the last day.

    A day on which no ticker has a bar (`universe` 0: a closure the calendar does not know, or
    a day after the data ends) is not a breadth day: it gets no row and the cumulative columns
    do not move on it.
    """
    state = state if state is not None else BreadthState()
    counts = counts[counts["universe"].to_numpy() > 0].reset_index(drop=True)
    n = len(counts)

    def count(name: str) -> np.ndarray:
        return counts[name].to_numpy(dtype=np.int64)

    advancers, decliners = count("advancers"), count("decliners")
    up_volume = counts["up_volume"].to_numpy(dtype=np.float64)
    down_volume = counts["down_volume"].to_numpy(dtype=np.float64)
    result: dict[str, np.ndarray] = {
        name: count(name)
        for name in (
            *("universe", "advancers", "decliners", "unchanged"),
            *("new_highs_52w", "new_lows_52w", "rsi_overbought", "rsi_oversold"),
            *("up_4pct", "down_4pct", "up_25pct_quarter", "down_25pct_quarter"),
        )
    }
    result.update(up_volume=up_volume, down_volume=down_volume)
    result["net_advances"] = advancers - decliners
    result["ad_line"] = state.ad_line + np.cumsum(result["net_advances"])
    if n:
        state.ad_line = int(result["ad_line"][-1])
    result["ad_ratio"] = _ratio(advancers.astype(np.float64), decliners)
    highs, lows = count("new_highs_52w"), count("new_lows_52w")
    result["net_new_highs"] = highs - lows
    result["net_new_highs_line"] = state.net_new_highs_line + np.cumsum(result["net_new_highs"])
    if n:
        state.net_new_highs_line = int(result["net_new_highs_line"][-1])
    result["record_high_pct"] = _ratio(highs, highs + lows, 100.0)
    result["up_volume_pct"] = _ratio(up_volume, up_volume + down_volume, 100.0)
    for period in SMA_PERIODS_ABOVE:
        result[f"pct_above_sma_{period}"] = _ratio(
            count(f"above_sma_{period}"), count(f"with_sma_{period}"), 100.0
        )
    result.update(_smoothed(advancers, decliners, state.smoothing))
    for period in EMA_PERIODS_ABOVE:
        result[f"pct_above_ema_{period}"] = _ratio(
            count(f"above_ema_{period}"), count(f"with_ema_{period}"), 100.0
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        defined = (advancers > 0) & (decliners > 0) & (up_volume > 0) & (down_volume > 0)
        trin = np.full(n, np.nan)
        trin[defined] = (advancers[defined] / decliners[defined]) / (
            up_volume[defined] / down_volume[defined]
        )
    result["trin"] = trin
    for k in MACD_STAGES:
        result[f"macd_stage_{k}"] = _ratio(count(f"stage_{k}"), count("staged"), 100.0)

    columns: dict[str, object] = {"date": pd.DatetimeIndex(counts["date"])}
    for name, sql_type in BREADTH_COLUMNS.items():
        if name != "date":
            dtype = np.int64 if sql_type == _COUNT_TYPE else np.float64
            columns[name] = np.asarray(result[name], dtype=dtype)
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def compute_breadth(
    rows: pd.DataFrame, dates: Sequence | pd.DatetimeIndex, state: BreadthState | None = None
) -> pd.DataFrame:
    """One breadth row per date in `dates` on which a ticker has a bar, from the ticker-day
    `rows` of one universe.

    `rows` hold each ticker's history up to the last date; rows before `dates[0]` (or on days not
    in `dates`) only serve as a ticker's previous bar. The cumulative columns go on from `state`
    (the day before `dates[0]`; none: they start at `dates[0]`), which is left at the last date.
    """
    missing = [c for c in BREADTH_INPUT_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"breadth rows lack columns {missing}")
    return finish_breadth(count_breadth(rows, dates), state)


def compute_breadth_in_chunks(
    count_days: Callable[[pd.DatetimeIndex], pd.DataFrame],
    dates: Sequence | pd.DatetimeIndex,
    chunk_days: int,
    state: BreadthState | None = None,
) -> Iterator[pd.DataFrame]:
    """Breadth rows over `dates`, counted `chunk_days` dates at a time.

    `count_days(chunk)` gives the daily counts of the chunk (`count_breadth` over its ticker-days
    with each ticker's last bar before it, or a store's own query); `state` is where the
    cumulative columns stand on the day before `dates[0]` (none: they start at `dates[0]`). The
    rows equal one `compute_breadth` over all the rows while memory holds one chunk at a time.
    Yields the rows chunk by chunk.
    """
    out_dates = pd.DatetimeIndex(pd.to_datetime(dates))
    if chunk_days < 1:
        raise ValueError("chunk_days must be at least 1")
    state = state if state is not None else BreadthState()
    for first in range(0, out_dates.size, chunk_days):
        yield finish_breadth(count_days(out_dates[first : first + chunk_days]), state)
