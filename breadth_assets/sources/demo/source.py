"""Deterministic synthetic daily bars, so the project runs end to end without an API or data.

Each ticker's whole series over a fixed horizon is generated from its own seed and then sliced,
so the bars of a date never depend on the range asked for, nor on the machine or the numpy
version: only the PCG64 bit stream is used (no Generator distributions, which numpy may change),
and the seed is `zlib.crc32(ticker) ^ seed`, never Python's salted `hash()`.

What real markets have and the pipeline must survive: a common market factor with regimes (so
breadth moves), per-ticker drift and volatility with fat tails, overnight gaps, about a fifth of
tickers listing between 2016 and 2024, about 0.5% of days missing at random plus a 5-15 day halt
for some tickers, and a 1:2 split in about one ticker in ten, declared as a corporate action.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import ClassVar

import numpy as np
import pandas as pd

from breadth_assets.analytics.actions import ACTION_COLUMNS, empty_actions
from breadth_assets.schema import PRICE_COLUMNS
from breadth_assets.sources.base import PriceRequest, PriceSource, TickerBars
from breadth_assets.sources.demo.settings import DEFAULT_SEED, DemoSettings, Seed

HORIZON_START = np.datetime64("2000-01-03", "D")
HORIZON_END = np.datetime64("2040-12-31", "D")

_ALL_DAYS = np.arange(HORIZON_START, HORIZON_END + 1, dtype="datetime64[D]")
DAYS = _ALL_DAYS[(_ALL_DAYS.astype(np.int64) + 3) % 7 < 5]
"""The DEMO calendar over the horizon: weekdays (1970-01-01 was a Thursday)."""

_N = len(DAYS)
_LISTING_WINDOW = (np.datetime64("2016-01-01"), np.datetime64("2024-12-31"))
_EVENT_WINDOW = (np.datetime64("2015-06-01"), np.datetime64("2025-06-30"))
_ANCHOR = int(np.searchsorted(DAYS, np.datetime64("2015-01-01")))
"""Prices are set at 10-2000 on the first bar from 2015 on (or the listing day, if later)."""
_MARKET_SALT = 0x4D4B54  # "MKT"
_MARKET_VOL = 0.009
_REGIME_DAYS = 126
_DATE_DTYPE = "datetime64[us]"
_DAYS_AS_DATES = DAYS.astype(_DATE_DTYPE)
_COLUMNS = list(PRICE_COLUMNS)
_VALUE_COLUMNS = tuple(name for name in _COLUMNS if name not in ("ticker", "date"))
_LOGISTIC_TO_UNIT = np.sqrt(3.0) / np.pi


def _uniform53(raw: np.ndarray) -> np.ndarray:
    """Uniform doubles in [0, 1) from raw 64-bit words."""
    return (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _logistic(counts: np.ndarray, levels: float) -> np.ndarray:
    """Fat-tailed noise with unit variance (logistic distribution) from integers in [0, levels)."""
    u = counts.astype(np.float64)
    u += 0.5
    np.divide(u, levels - u, out=u)
    np.log(u, out=u)
    u *= _LOGISTIC_TO_UNIT
    return u


def _day_index(day: np.datetime64) -> int:
    return int(np.searchsorted(DAYS, day))


def _bit_generator(seed: int) -> np.random.PCG64:
    """The bit generator of `np.random.default_rng(seed)`, without building the Generator."""
    if seed < 0:
        raise ValueError(f"the demo seed must be >= 0, got {seed}")
    return np.random.PCG64(seed)


@lru_cache(maxsize=8)
def _market_returns(seed: int) -> np.ndarray:
    """Daily log returns of the whole market, shared by every ticker of a seed."""
    words = _bit_generator(_MARKET_SALT ^ seed).random_raw(_N + _N // _REGIME_DAYS + 1)
    regimes = _uniform53(words[_N:]) * 0.0036 - 0.0016
    drift = np.repeat(regimes, _REGIME_DAYS)[:_N]
    returns = drift + _MARKET_VOL * _logistic(words[:_N] >> np.uint64(32), 2.0**32)
    returns.flags.writeable = False
    return returns


def _event_window(first: int) -> tuple[int, int]:
    return max(first + 20, _day_index(_EVENT_WINDOW[0])), _day_index(_EVENT_WINDOW[1])


def _parameters(ticker: str, seed: int) -> tuple[np.random.PCG64, np.ndarray, int]:
    """The ticker's bit generator after its 12 parameters, the parameters, its first day."""
    bit_generator = _bit_generator(zlib.crc32(ticker.encode("utf-8")) ^ seed)
    p = _uniform53(bit_generator.random_raw(12))
    first = 0
    if p[5] < 0.2:
        lo, hi = (_day_index(d) for d in _LISTING_WINDOW)
        first = lo + int(p[6] * (hi - lo))
    return bit_generator, p, first


def _split_day(p: np.ndarray, first: int) -> int | None:
    """Where the ticker's 1:2 split takes effect (one ticker in ten), as a position in DAYS."""
    event_lo, event_hi = _event_window(first)
    return event_lo + int(p[8] * (event_hi - event_lo)) if p[7] < 0.1 else None


def demo_actions(tickers: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """The demo market's corporate actions: each split-like halving declared as a 1:2 split."""
    rows = []
    for ticker in tickers:
        _, p, first = _parameters(ticker, seed)
        split = _split_day(p, first)
        if split is not None:
            day = pd.Timestamp(DAYS[split])
            rows.append((ticker, day, "split", "1:2", np.nan, "demo market"))
    if not rows:
        return empty_actions()
    return pd.DataFrame(rows, columns=list(ACTION_COLUMNS)).astype({"ex_date": "datetime64[us]"})


def _demo_arrays(
    ticker: str, seed: int, stop: int = _N, start: int = 0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Positions into DAYS of the ticker's bars in [start, stop), and its OHLCV there.

    Day t uses only word t of the stream and a running sum, so a shorter `stop` gives the same
    bars for the days it covers (the series is generated at least up to the price anchor).
    Each day's 64-bit word, as little-endian 16-bit parts: the return, the random halt, then
    bytes for the gap, the high and low wicks and the volume.
    """
    bit_generator, p, first = _parameters(ticker, seed)
    start_price = float(np.exp(np.log(10.0) + p[0] * np.log(2000.0 / 10.0)))
    vol = 0.008 + p[1] * 0.022
    beta = min(0.5 + p[2] * 0.8, 0.85 * vol / _MARKET_VOL)
    idio = np.sqrt(vol**2 - (beta * _MARKET_VOL) ** 2)
    alpha = -0.0003 + p[3] * 0.0006
    base_volume = float(np.exp(np.log(5e4) + p[4] * np.log(100.0)))

    if first >= stop:
        return np.empty(0, dtype=np.intp), {name: np.empty(0) for name in _VALUE_COLUMNS}
    anchor = max(first, _ANCHOR)
    days = max(stop, anchor + 1)
    words = bit_generator.random_raw(days).astype("<u8", copy=False)
    halves = words.view("<u2").reshape(days, 4)
    octets = words.view(np.uint8).reshape(days, 8)
    event_lo, event_hi = _event_window(first)
    split = _split_day(p, first)

    returns = _logistic(halves[:, 0], 65536.0)
    returns *= idio
    returns += alpha
    returns += beta * _market_returns(seed)[:days]
    log_close = returns.cumsum()
    log_close += np.log(start_price) - log_close[anchor]
    close = np.exp(log_close)
    previous = np.empty_like(close)
    previous[0] = close[0] * np.exp(-returns[0])
    previous[1:] = close[:-1]

    open_ = octets[:, 4] * (0.5 * vol / 256.0)
    open_ += 1.0 - 0.25 * vol
    open_ *= previous
    high = octets[:, 5] * (vol / 256.0)
    high += 1.0
    high *= np.maximum(open_, close)
    low = octets[:, 6] * (-0.6 * vol / 256.0)
    low += 1.0
    low *= np.minimum(open_, close)
    volume = octets[:, 7] * (1.2 * base_volume / 256.0)
    volume += 0.4 * base_volume
    np.abs(returns, out=returns)
    returns *= 2.0 / vol
    returns += 1.0
    volume *= returns
    missing = halves[:, 1] < 328
    if split is not None and split < stop:
        for column in (open_, high, low, close):
            column[split:] *= 0.5
        volume[split:] *= 2.0
        missing[split] = False
    np.round(volume, out=volume)
    np.maximum(volume, 1.0, out=volume)

    keep = ~missing
    keep[:first] = False
    keep[stop:] = False
    if p[9] < 0.3:
        halt_start = event_lo + int(p[10] * (event_hi - event_lo))
        keep[halt_start : halt_start + 5 + int(p[11] * 11)] = False
    positions = np.flatnonzero(keep[start:]) + start
    columns = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return positions, {name: values[positions] for name, values in columns.items()}


def _frame(ticker: str, positions: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    data = {"ticker": ticker, "date": _DAYS_AS_DATES[positions], **columns}
    return pd.DataFrame(data, columns=_COLUMNS, copy=False)


def demo_bars(ticker: str, seed: int = 0) -> pd.DataFrame:
    """The ticker's whole synthetic history over the horizon (2000-01-03 to 2040-12-31)."""
    positions, columns = _demo_arrays(ticker, seed)
    return _frame(ticker, positions, columns)


class DemoSource(PriceSource):
    """Synthetic bars for the DEMO market (weekdays only); another `seed`, another fixed world."""

    kind: ClassVar[str] = "demo"
    file_settings: ClassVar[frozenset[str]] = frozenset(DemoSettings.model_fields) - {"kind"}

    seed: Seed = DEFAULT_SEED

    def fetch(self, request: PriceRequest) -> TickerBars:
        start = int(np.searchsorted(DAYS, np.datetime64(request.start, "D"), side="left"))
        stop = int(np.searchsorted(DAYS, np.datetime64(request.end, "D"), side="right"))
        positions, columns = _demo_arrays(request.ticker, self.seed, stop, start)
        return TickerBars(request.ticker, _frame(request.ticker, positions, columns))

    def declared_actions(self, tickers: Sequence[str]) -> pd.DataFrame:
        return demo_actions(tickers, self.seed)
