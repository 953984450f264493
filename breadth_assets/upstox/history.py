"""Upstox v3 historical candles: which requests a date range needs, and candles as bars.

Pure functions, no network: the client sends what `chunk_ranges` plans and hands the answers to
`candles_frame`. Limits and history starts are Upstox's (shared/upstox-notes.md).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

EXCHANGE_TZ = "Asia/Kolkata"
UNITS = ("minutes", "hours", "days", "weeks", "months")
INTRADAY_UNITS = ("minutes", "hours")
DAILY_HISTORY_START = dt.date(2000, 1, 1)
INTRADAY_HISTORY_START = dt.date(2022, 1, 1)
_DATE_DTYPE = "datetime64[us]"
_TIMEFRAME_RE = re.compile(r"^\s*(minutes|hours|days|weeks|months)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True, order=True)
class Timeframe:
    """A candle size as Upstox names it: `unit` and `interval`, e.g. minutes/5."""

    unit: str
    interval: int

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; Upstox units are {', '.join(UNITS)}")
        low, high = {"minutes": (1, 300), "hours": (1, 5)}.get(self.unit, (1, 1))
        if not low <= self.interval <= high:
            raise ValueError(
                f"{self.unit} interval {self.interval} is outside Upstox's {low}..{high}"
            )

    def __str__(self) -> str:
        return f"{self.unit}/{self.interval}"

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """`minutes/5`, `hours/1`, `days/1` (the unit and interval of Upstox's URL)."""
        match = _TIMEFRAME_RE.match(str(text).lower())
        if not match:
            raise ValueError(f"{text!r} is not a timeframe such as minutes/5 or hours/1")
        return cls(match.group(1), int(match.group(2)))

    @property
    def intraday(self) -> bool:
        return self.unit in INTRADAY_UNITS

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


DAILY = Timeframe("days", 1)


def chunk_ranges(
    start: dt.date, end: dt.date, timeframe: Timeframe = DAILY
) -> list[tuple[dt.date, dt.date]]:
    """Inclusive (from, to) ranges covering [start, end], each within the unit's longest range.

    The start is moved up to the unit's history start; an empty list when nothing is left.
    """
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
    rows = []
    for index, candle in enumerate(candles):
        if not isinstance(candle, list | tuple) or len(candle) < 6:
            raise CandleError(f"candle {index} is not [ts, open, high, low, close, volume, oi]")
        rows.append(candle[:6])
    frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    try:
        stamps = pd.to_datetime(frame["ts"], format="ISO8601", utc=True)
    except (ValueError, TypeError) as error:
        raise CandleError(f"a candle time is not ISO-8601: {error}") from None
    if stamps.isna().any():
        raise CandleError(f"candle {int(stamps.isna().to_numpy().argmax())} has no time")
    frame["ts"] = stamps.dt.tz_convert(EXCHANGE_TZ).dt.tz_localize(None).astype(_DATE_DTYPE)
    for name in ("open", "high", "low", "close", "volume"):
        values = pd.to_numeric(
            frame[name].map(lambda v: None if isinstance(v, bool) else v), errors="coerce"
        )
        if values.isna().any():
            bad = frame.loc[values.isna(), "ts"].iloc[0]
            raise CandleError(f"the candle of {bad} has a {name} that is not a number")
        frame[name] = values.astype(np.float64)
    if not timeframe.intraday:
        frame["ts"] = frame["ts"].dt.normalize()
    return frame.sort_values("ts", kind="stable", ignore_index=True)


def merge_chunks(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Chunks joined, one candle per time (a later chunk's answer wins), sorted by time."""
    if not frames:
        return pd.DataFrame(
            {
                "ts": pd.Series(dtype=_DATE_DTYPE),
                **{n: pd.Series(dtype=np.float64) for n in ("open", "high", "low", "close")},
                "volume": pd.Series(dtype=np.float64),
            }
        )
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.drop_duplicates("ts", keep="last")
    return merged.sort_values("ts", kind="stable", ignore_index=True)
