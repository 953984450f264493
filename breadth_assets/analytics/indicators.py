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
SMA_PERIODS: tuple[int, ...] = (20, 40, 50, 200)
"""StockCharts' and Barchart's % above a moving average use simple averages (Worden's T2108:
40 days)."""
RSI_PERIOD = 14
MACD_PERIODS: tuple[int, int, int] = (12, 26, 9)
BB_PERIOD = 20
BB_DEVIATIONS = 2.0
LOOKBACK_52W = 252
QUARTER_BARS = 65
"""A quarter of trading days: `close_65` is the close this many bars before."""


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


def _macd_state(close: np.ndarray, fast_out: np.ndarray, slow_out: np.ndarray) -> None:
    """The two EMAs inside `talib.MACD`: the slow one is `talib.EMA(c, 26)`; the fast one starts
    on the same bar as the slow one, at the mean of the 12 bars before it (docs/design.md), which
    is `talib.EMA` over the bars from (26 - 12 + 1) on."""
    fast, slow, _ = MACD_PERIODS
    fast_out[:] = np.nan
    slow_out[:] = talib.EMA(close, timeperiod=slow) if close.size else np.nan
    if close.size >= slow:
        fast_out[slow - fast :] = talib.EMA(close[slow - fast :], timeperiod=fast)


def _rsi_state(close: np.ndarray, gain_out: np.ndarray, loss_out: np.ndarray) -> None:
    """Wilder's average gain and loss inside `talib.RSI`, from bar RSI_PERIOD + 1 on.

    They start at the mean of the first RSI_PERIOD gains (losses) and then follow
    a_t = (a_{t-1}·13 + x_t)/14. That recursion is an EMA with k = 2/(27+1) = 1/14, so
    `talib.EMA(., 27)` computes it over the seed repeated 27 times (its own seed is their mean)
    followed by the later gains; the result differs from TA-Lib's internal averages in the last
    bits only.
    """
    gain_out[:] = np.nan
    loss_out[:] = np.nan
    n = close.size
    if n <= RSI_PERIOD:
        return
    change = np.diff(close)
    span = 2 * RSI_PERIOD - 1
    for out, moves in ((gain_out, np.maximum(change, 0.0)), (loss_out, np.maximum(-change, 0.0))):
        seed = moves[:RSI_PERIOD].sum() / RSI_PERIOD
        padded = np.concatenate((np.full(span, seed), moves[RSI_PERIOD:]))
        out[RSI_PERIOD:] = talib.EMA(padded, timeperiod=span)[span - 1 :]


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
    out["high"][:] = high
    out["low"][:] = low

    ends = np.append(starts[1:], n) if n else starts
    fast, slow, signal = MACD_PERIODS
    for start, end in zip(starts, ends, strict=True):
        c = close[start:end]
        for period in EMA_PERIODS:
            out[f"ema_{period}"][start:end] = talib.EMA(c, timeperiod=period)
        for period in SMA_PERIODS:
            out[f"sma_{period}"][start:end] = talib.SMA(c, timeperiod=period)
        out["close_65"][start:end] = np.nan
        out["close_65"][start + QUARTER_BARS : end] = c[: max(c.size - QUARTER_BARS, 0)]
        out["rsi_14"][start:end] = talib.RSI(c, timeperiod=RSI_PERIOD)
        (
            out["macd"][start:end],
            out["macd_signal"][start:end],
            out["macd_hist"][start:end],
        ) = talib.MACD(c, fast, slow, signal)
        _macd_state(c, out["macd_ema_12"][start:end], out["macd_ema_26"][start:end])
        _rsi_state(c, out["rsi_avg_gain"][start:end], out["rsi_avg_loss"][start:end])
        (
            out["bb_upper"][start:end],
            out["bb_middle"][start:end],
            out["bb_lower"][start:end],
        ) = talib.BBANDS(c, BB_PERIOD, BB_DEVIATIONS, BB_DEVIATIONS, matype=0)
        out["high_52w"][start:end] = _previous_window(high[start:end], talib.MAX, LOOKBACK_52W)
        out["low_52w"][start:end] = _previous_window(low[start:end], talib.MIN, LOOKBACK_52W)

    for name in ("macd_ema_12", "macd_ema_26"):
        out[name][np.isnan(out["macd"])] = np.nan
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


def _k(period: int) -> float:
    """TA-Lib's smoothing factor of an N-bar EMA (its PER_TO_K)."""
    return 2.0 / (period + 1)


def continue_indicators(prices: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Indicator rows of the bars after each ticker's `previous` row, without its history.

    `previous` holds each ticker's stored indicators row (with the state columns) of the bar
    before its first new bar; `prices` holds, per ticker, at least `LOOKBACK_52W` bars up to
    that bar and then the new bars. The EMAs, MACD and RSI go on with TA-Lib's recursions from
    the stored state, Bollinger and the 52-week extremes are TA-Lib over their window, so the
    rows equal `compute_indicators` over the whole history (docs/design.md "Indicators from
    state").
    """
    order, starts = ticker_date_order(prices["ticker"], day_numbers(prices["date"]))
    tickers = _reorder(prices["ticker"].to_numpy(), order)
    days = _reorder(day_numbers(prices["date"]), order)
    close, high, low = (
        _reorder(prices[name].to_numpy(dtype=np.float64), order)
        for name in ("close", "high", "low")
    )
    before = dict(zip(previous["ticker"], previous.to_dict("records"), strict=True))
    before_day = dict(zip(previous["ticker"], day_numbers(previous["date"]).tolist(), strict=True))
    ends = np.append(starts[1:], close.size) if close.size else starts
    names = [c for c in INDICATOR_COLUMNS if c not in ("ticker", "date")]
    rows: list[np.ndarray] = []
    picked: list[np.ndarray] = []
    for start, end in zip(starts, ends, strict=True):
        state = before.get(tickers[start])
        if state is None:
            raise ValueError(f"{tickers[start]}: no stored indicators row to go on from")
        base = start + int(np.searchsorted(days[start:end], before_day[tickers[start]], "right"))
        if base - start < LOOKBACK_52W or base == end:
            if base == end:
                continue
            raise ValueError(
                f"{tickers[start]}: fewer than {LOOKBACK_52W} bars before the new ones"
            )
        block = _go_on(state, close[base - LOOKBACK_52W : end], high, low, base, end)
        rows.append(block)
        picked.append(np.arange(base, end))
    if not rows:
        empty = pd.DataFrame(np.empty((0, len(names))), columns=names)
        empty.insert(0, "ticker", prices["ticker"].iloc[0:0].to_numpy())
        empty.insert(1, "date", prices["date"].iloc[0:0].to_numpy())
        return empty
    where = np.concatenate(picked)
    result = pd.DataFrame(np.concatenate(rows, axis=1).T, columns=names)
    source = order[where] if order is not None else where
    result.insert(0, "ticker", prices["ticker"].to_numpy()[source])
    result.insert(1, "date", prices["date"].to_numpy()[source])
    return result


def _go_on(
    state: dict, window: np.ndarray, high: np.ndarray, low: np.ndarray, base: int, end: int
) -> np.ndarray:
    """One ticker's new bars: `window` is its closes from LOOKBACK_52W bars before the first
    new one (at `base`) to the last; `high`/`low` are the whole arrays."""
    new = window[LOOKBACK_52W:]
    m = new.size
    out = {name: np.empty(m) for name in INDICATOR_COLUMNS if name not in ("ticker", "date")}
    out["close"][:] = new
    out["high"][:] = high[base:end]
    out["low"][:] = low[base:end]
    emas = {period: float(state[f"ema_{period}"]) for period in EMA_PERIODS}
    fast_period, slow_period, signal_period = MACD_PERIODS
    fast, slow = float(state["macd_ema_12"]), float(state["macd_ema_26"])
    signal, hist = float(state["macd_signal"]), float(state["macd_hist"])
    previous_hist = hist
    gain, loss = float(state["rsi_avg_gain"]), float(state["rsi_avg_loss"])
    previous_close = float(window[LOOKBACK_52W - 1])
    for j, x in enumerate(new.tolist()):
        for period in EMA_PERIODS:
            emas[period] = ((x - emas[period]) * _k(period)) + emas[period]
            out[f"ema_{period}"][j] = emas[period]
        fast = ((x - fast) * _k(fast_period)) + fast
        slow = ((x - slow) * _k(slow_period)) + slow
        macd = fast - slow
        signal = ((macd - signal) * _k(signal_period)) + signal
        hist = macd - signal
        out["macd"][j], out["macd_signal"][j], out["macd_hist"][j] = macd, signal, hist
        out["macd_ema_12"][j], out["macd_ema_26"][j] = fast, slow
        move = x - previous_close
        previous_close = x
        loss *= RSI_PERIOD - 1
        gain *= RSI_PERIOD - 1
        if move < 0:
            loss -= move
        else:
            gain += move
        loss /= RSI_PERIOD
        gain /= RSI_PERIOD
        total = gain + loss
        out["rsi_14"][j] = 100.0 * (gain / total) if not -1e-8 < total < 1e-8 else 0.0
        out["rsi_avg_gain"][j], out["rsi_avg_loss"][j] = gain, loss
    out["macd_stage"][:] = _stage(out["macd_hist"], np.r_[previous_hist, out["macd_hist"][:-1]])
    bands = talib.BBANDS(
        window[LOOKBACK_52W - BB_PERIOD + 1 :], BB_PERIOD, BB_DEVIATIONS, BB_DEVIATIONS, matype=0
    )
    for name, values in zip(("bb_upper", "bb_middle", "bb_lower"), bands, strict=True):
        out[name][:] = values[BB_PERIOD - 1 :]
    for period in SMA_PERIODS:
        out[f"sma_{period}"][:] = talib.SMA(window[LOOKBACK_52W - period + 1 :], period)[
            period - 1 :
        ]
    out["close_65"][:] = window[LOOKBACK_52W - QUARTER_BARS : window.size - QUARTER_BARS]
    first = base - LOOKBACK_52W
    out["high_52w"][:] = talib.MAX(high[first : end - 1], LOOKBACK_52W)[LOOKBACK_52W - 1 :]
    out["low_52w"][:] = talib.MIN(low[first : end - 1], LOOKBACK_52W)[LOOKBACK_52W - 1 :]
    return np.array([out[name] for name in out])
