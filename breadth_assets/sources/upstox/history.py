"""Upstox v3 historical candles: which timeframes Upstox serves, which requests a date range
needs, and candles as bars.

Pure functions, no network: the client sends what `chunk_ranges` plans and hands the answers to
`candles_frame`. Limits and history starts: docs/design.md "Upstox historical candles".
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

from breadth_assets.sources.timeframes import Timeframe

EXCHANGE_TZ = "Asia/Kolkata"
DAILY_HISTORY_START = dt.date(2000, 1, 1)
INTRADAY_HISTORY_START = dt.date(2022, 1, 1)
INTERVALS = {
    "minutes": (1, 300),
    "hours": (1, 5),
    "days": (1, 1),
    "weeks": (1, 1),
    "months": (1, 1),
}
"""The intervals Upstox serves per unit, inclusive."""
_DATE_DTYPE = "datetime64[us]"


class UpstoxTimeframe(Timeframe):
    """A timeframe Upstox serves, with how far back its history goes and how much one request
    may cover."""

    def __post_init__(self) -> None:
        if self.unit not in INTERVALS:
            raise ValueError(f"unknown unit {self.unit!r}; Upstox units are {', '.join(INTERVALS)}")
        low, high = INTERVALS[self.unit]
        if not low <= self.interval <= high:
            raise ValueError(
                f"{self.unit} interval {self.interval} is outside Upstox's {low}..{high}"
            )

    @classmethod
    def of(cls, timeframe: Timeframe) -> UpstoxTimeframe:
        """`timeframe` as Upstox serves it; ValueError when Upstox does not."""
        if isinstance(timeframe, cls):
            return timeframe
        return cls(timeframe.unit, timeframe.interval)

    @property
    def history_start(self) -> dt.date:
        return INTRADAY_HISTORY_START if self.intraday else DAILY_HISTORY_START

    @property
    def max_span(self) -> relativedelta | None:
        """The longest range one request may cover (daily: 5 years, safely under the decade)."""
        if self.unit == "days":
            return relativedelta(years=5)
        if self.unit == "hours" or (self.unit == "minutes" and self.interval > 15):
            return relativedelta(months=3)
        if self.unit == "minutes":
            return relativedelta(months=1)
        return None


DAILY = UpstoxTimeframe("days", 1)


def chunk_ranges(
    start: dt.date, end: dt.date, timeframe: Timeframe = DAILY
) -> list[tuple[dt.date, dt.date]]:
    """Inclusive (from, to) ranges covering [start, end], each within the unit's longest range.

    The start is moved up to the unit's history start; an empty list when nothing is left.
    """
    timeframe = UpstoxTimeframe.of(timeframe)
    start = max(start, timeframe.history_start)
    if start > end:
        return []
    span = timeframe.max_span
    if span is None:
        return [(start, end)]
    ranges = []
    while start <= end:
        stop = min(start + span - dt.timedelta(days=1), end)
        ranges.append((start, stop))
        start = stop + dt.timedelta(days=1)
    return ranges


class CandleError(ValueError):
    """An answer whose candles cannot be read."""


def candles_frame(candles: object, timeframe: Timeframe = DAILY) -> pd.DataFrame:
    """Candles `[ts, open, high, low, close, volume, oi]` as a frame sorted by time.

    Columns: `ts` (exchange time, IST, timezone-naive), open, high, low, close, volume as
    floats. Daily and longer candles carry midnight IST, so `ts` is their trading date.
    """
    if not isinstance(candles, list):
        raise CandleError(f"candles is {type(candles).__name__}, not a list")
    for index, candle in enumerate(candles):
        if not isinstance(candle, list | tuple) or len(candle) < 6:
            raise CandleError(f"candle {index} is not [ts, open, high, low, close, volume, oi]")
    columns = list(zip(*(candle[:6] for candle in candles), strict=True)) or [()] * 6
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(list(columns[0]), format="ISO8601", utc=True))
    except (ValueError, TypeError) as error:
        raise CandleError(f"a candle time is not ISO-8601: {error}") from None
    if stamps.isna().any():
        raise CandleError(f"candle {int(stamps.isna().argmax())} has no time")
    ts = stamps.tz_convert(EXCHANGE_TZ).tz_localize(None).astype(_DATE_DTYPE)
    if not timeframe.intraday:
        ts = ts.normalize()
    frame = {"ts": ts.to_numpy()}
    for name, values in zip(_VALUE_NAMES, columns[1:6], strict=True):
        frame[name] = _numbers(values, name, ts)
    order = np.argsort(frame["ts"], kind="stable")
    return pd.DataFrame({name: column[order] for name, column in frame.items()})


_VALUE_NAMES = ("open", "high", "low", "close", "volume")


def _numbers(values: tuple, name: str, ts: pd.DatetimeIndex) -> np.ndarray:
    """JSON numbers as floats; anything else (text, null, true) is an error naming the candle."""
    if not set(map(type, values)) <= {int, float}:
        values = tuple(v if type(v) in (int, float) else np.nan for v in values)
    numbers = np.array(values, dtype=np.float64)
    good = np.isfinite(numbers)
    if not good.all():
        bad = ts[int(np.argmin(good))]
        raise CandleError(f"the candle of {bad} has a {name} that is not a number")
    return numbers


def merge_chunks(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Chunks joined, one candle per time (a later chunk's answer wins), sorted by time."""
    if not frames:
        return candles_frame([])
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.drop_duplicates("ts", keep="last")
    return merged.sort_values("ts", kind="stable", ignore_index=True)
