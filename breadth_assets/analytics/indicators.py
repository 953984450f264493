"""Per-ticker technical indicators (docs/design.md "Indicators"), as plain functions over arrays.

Every indicator runs over one ticker's own bars in date order, so a halted day or a late listing
never inserts NaN into an EMA, and an incremental update gives the same numbers as a full
recompute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib

from breadth_assets.schema import INDICATOR_COLUMNS, PRICE_COLUMNS

EMA_PERIODS: tuple[int, ...] = (10, 20, 50, 100, 200)
RSI_PERIOD = 14
MACD_PERIODS: tuple[int, int, int] = (12, 26, 9)
BB_PERIOD = 20
BB_DEVIATIONS = 2.0
LOOKBACK_52W = 252


def _stage(h: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Stage from the histogram and its previous bar; the order of the conditions is the rule."""
    with np.errstate(invalid="ignore"):
        conditions = [
            np.isnan(h) | np.isnan(prev),
            (prev < 0) & (h >= 0),
            (prev > 0) & (h <= 0),
            (h < 0) & (h > prev),
            (h > 0) & (h >= prev),
            (h > 0) & (h < prev),
        ]
    return np.select(conditions, [np.nan, 2.0, 5.0, 1.0, 3.0, 4.0], default=6.0)


def macd_stage(hist: np.ndarray) -> np.ndarray:
    """MACD stage 1..6 of one ticker's histogram in date order; NaN where h or h' is NaN."""
    h = np.asarray(hist, dtype=np.float64)
    prev = np.empty_like(h)
    if h.size:
        prev[0] = np.nan
        prev[1:] = h[:-1]
    return _stage(h, prev)


def _previous_window(values: np.ndarray, func, period: int) -> np.ndarray:
    """`func` over the `period` bars before each bar (this bar excluded)."""
    out = np.full_like(values, np.nan)
    if values.size > period:
        out[1:] = func(values[:-1], timeperiod=period)
    return out


def day_numbers(dates) -> np.ndarray:
    """Calendar day numbers, so dates compare and sort whatever their datetime resolution."""
    return pd.to_datetime(dates).to_numpy().astype("datetime64[D]").astype(np.int64)


def ticker_date_order(tickers: pd.Series, days: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Row order that sorts by (ticker, date), or None when the rows already are, and group starts.

    Hashing a million ticker strings costs more than every TA-Lib call together, so rows that
    arrive grouped by ticker (as the store returns them) are recognised from their runs instead.
    """
    values = tickers.to_numpy()
    n = values.size
    if n == 0:
        return None, np.zeros(0, dtype=np.int64)
    codes = None
    prefix = values[: min(n, 1024)]
    if np.count_nonzero(prefix[1:] != prefix[:-1]) * 8 < prefix.size:
        heads = np.concatenate(([0], np.flatnonzero(values[1:] != values[:-1]) + 1))
        run_codes, run_tickers = pd.factorize(values[heads], sort=True)
        if run_tickers.size == heads.size:
            codes = np.repeat(run_codes, np.diff(np.append(heads, n)))
    if codes is None:
        codes = pd.factorize(values, sort=True)[0]
        if codes.size and codes.min() < 0:
            raise ValueError("rows without a ticker")
    step = np.diff(codes)
    if np.all((step > 0) | ((step == 0) & (np.diff(days) > 0))):
        order = None
    else:
        first, span = int(days.min()), int(days.max()) - int(days.min()) + 1
        if (int(codes.max()) + 1) * span < 2**62:
            order = np.argsort(codes.astype(np.int64) * span + (days - first))
        else:
            order = np.lexsort((days, codes))
        codes = codes[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(codes)) + 1))
    return order, starts


def _reorder(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    return np.ascontiguousarray(values if order is None else values[order])


def compute_indicators(prices: pd.DataFrame) -> pd.DataFrame:
    """Indicators for every row of `prices` (one or many tickers, any order).

    Returns the columns of `schema.INDICATOR_COLUMNS`, sorted by ticker then date.
    """
    missing = [c for c in PRICE_COLUMNS if c not in prices.columns]
    if missing:
        raise ValueError(f"prices lack columns {missing}")
    dates = prices["date"]
    order, starts = ticker_date_order(prices["ticker"], day_numbers(dates))

    def column(name: str) -> np.ndarray:
        return _reorder(prices[name].to_numpy(dtype=np.float64), order)

    close, high, low = column("close"), column("high"), column("low")
    n = close.size
    names = [c for c in INDICATOR_COLUMNS if c not in ("ticker", "date")]
    block = np.empty((len(names), n))
    out = dict(zip(names, block, strict=True))
    out["close"][:] = close

    ends = np.append(starts[1:], n) if n else starts
    fast, slow, signal = MACD_PERIODS
    for start, end in zip(starts, ends, strict=True):
        c = close[start:end]
        for period in EMA_PERIODS:
            out[f"ema_{period}"][start:end] = talib.EMA(c, timeperiod=period)
        out["rsi_14"][start:end] = talib.RSI(c, timeperiod=RSI_PERIOD)
        (
            out["macd"][start:end],
            out["macd_signal"][start:end],
            out["macd_hist"][start:end],
        ) = talib.MACD(c, fast, slow, signal)
        (
            out["bb_upper"][start:end],
            out["bb_middle"][start:end],
            out["bb_lower"][start:end],
        ) = talib.BBANDS(c, BB_PERIOD, BB_DEVIATIONS, BB_DEVIATIONS, matype=0)
        out["high_52w"][start:end] = _previous_window(high[start:end], talib.MAX, LOOKBACK_52W)
        out["low_52w"][start:end] = _previous_window(low[start:end], talib.MIN, LOOKBACK_52W)

    hist = out["macd_hist"]
    prev_hist = np.empty_like(hist)
    if n:
        prev_hist[1:] = hist[:-1]
        prev_hist[starts] = np.nan
    out["macd_stage"][:] = _stage(hist, prev_hist)

    result = pd.DataFrame(block.T, columns=names, copy=False)
    result.insert(0, "ticker", _series(prices["ticker"], order))
    result.insert(1, "date", _series(dates, order))
    return result


def _series(source: pd.Series, order: np.ndarray | None) -> pd.Series:
    values = source.array if order is None else source.array.take(order)
    return pd.Series(values, dtype=source.dtype)


def compute_indicators_by_ticker(prices: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Indicators for all tickers at once; if that fails, ticker by ticker to find the culprits.

    Returns the indicators of every ticker that could be computed and, for the others, why not.
    """
    try:
        return compute_indicators(prices), {}
    except Exception:
        frames, failures = [], {}
        for ticker, bars in prices.groupby("ticker"):
            try:
                frames.append(compute_indicators(bars))
            except Exception as error:
                failures[str(ticker)] = f"indicators failed: {error}"
        if not frames:
            return pd.DataFrame(columns=list(INDICATOR_COLUMNS)), failures
        return pd.concat(frames, ignore_index=True), failures
