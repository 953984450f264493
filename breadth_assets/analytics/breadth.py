"""Market breadth per trading day (docs/design.md "Breadth"), as a plain function over DataFrames.

Daily counts are vectorised with `np.bincount` over date positions; only the recursive McClellan
and Zweig EMAs walk the dates one by one, because each day depends on the one before.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from breadth_assets.analytics.indicators import day_numbers, ticker_date_order
from breadth_assets.schema import BREADTH_COLUMNS, BREADTH_INPUT_COLUMNS

EMA_PERIODS_ABOVE: tuple[int, ...] = (20, 50, 200)
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


def _smoothed(
    advancers: np.ndarray, decliners: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """McClellan oscillator, summation and Zweig EMA; NULL until the first day with A+D > 0."""
    n = advancers.size
    osc = np.full(n, np.nan)
    summation = np.full(n, np.nan)
    zweig = np.full(n, np.nan)
    seeded = False
    e19 = e39 = z = total = 0.0
    for i, (a, d) in enumerate(zip(advancers.tolist(), decliners.tolist(), strict=True)):
        if a + d > 0:
            x = 1000.0 * (a - d) / (a + d)
            share = a / (a + d)
            if seeded:
                e19 += MCCLELLAN_FAST_ALPHA * (x - e19)
                e39 += MCCLELLAN_SLOW_ALPHA * (x - e39)
                z += ZWEIG_ALPHA * (share - z)
            else:
                e19 = e39 = x
                z = share
                seeded = True
        if seeded:
            total += e19 - e39
            osc[i] = e19 - e39
            summation[i] = total
            zweig[i] = z
    return osc, summation, zweig


def compute_breadth(rows: pd.DataFrame, dates: Sequence | pd.DatetimeIndex) -> pd.DataFrame:
    """One breadth row per date in `dates`, from the ticker-day `rows` of one universe.

    `rows` hold each ticker's history up to the last date; rows before `dates[0]` (or on days not
    in `dates`) only serve as a ticker's previous bar. `dates[0]` starts the cumulative columns.
    """
    missing = [c for c in BREADTH_INPUT_COLUMNS if c not in rows.columns]
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
        flat = has_prev & (close == prev_close)
        volume = np.nan_to_num(column("volume"), nan=0.0)
        result: dict[str, np.ndarray] = {"universe": per_day(np.ones(close.size, dtype=bool))}
        advancers, decliners = per_day(rising), per_day(falling)
        result.update(advancers=advancers, decliners=decliners, unchanged=per_day(flat))
        result["net_advances"] = advancers - decliners
        result["ad_line"] = np.cumsum(result["net_advances"])
        result["ad_ratio"] = _ratio(advancers.astype(np.float64), decliners)
        osc, summation, zweig = _smoothed(advancers, decliners)
        result.update(mcclellan_osc=osc, mcclellan_sum=summation, zweig_ema=zweig)

        for period in EMA_PERIODS_ABOVE:
            ema = column(f"ema_{period}")
            result[f"pct_above_ema_{period}"] = _ratio(
                per_day(close > ema), per_day(~np.isnan(ema)), 100.0
            )
        result["new_highs_52w"] = per_day(column("high") > column("high_52w"))
        result["new_lows_52w"] = per_day(column("low") < column("low_52w"))

        up_volume, down_volume = per_day(rising, volume), per_day(falling, volume)
        result.update(up_volume=up_volume, down_volume=down_volume)
        defined = (advancers > 0) & (decliners > 0) & (up_volume > 0) & (down_volume > 0)
        trin = np.full(n, np.nan)
        trin[defined] = (advancers[defined] / decliners[defined]) / (
            up_volume[defined] / down_volume[defined]
        )
        result["trin"] = trin

        rsi = column("rsi_14")
        result["rsi_overbought"] = per_day(rsi > RSI_OVERBOUGHT)
        result["rsi_oversold"] = per_day(rsi < RSI_OVERSOLD)

        stage = column("macd_stage")
        staged = per_day(~np.isnan(stage))
        for k in MACD_STAGES:
            result[f"macd_stage_{k}"] = _ratio(per_day(stage == k), staged, 100.0)

    columns: dict[str, object] = {"date": out_dates}
    for name, sql_type in BREADTH_COLUMNS.items():
        if name != "date":
            dtype = np.int64 if sql_type == _COUNT_TYPE else np.float64
            columns[name] = np.asarray(result[name], dtype=dtype)
    return pd.DataFrame(columns, index=pd.RangeIndex(n))
