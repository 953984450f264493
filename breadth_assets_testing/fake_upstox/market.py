"""The deterministic candle market FakeUpstox serves: the same request always gets the same bars.

Prices are a smooth per-key level (trend plus two cycles) with hashed noise, in twentieths of a
rupee; daily candles fall on weekdays that are not holidays, intraday ones in the 09:15-15:30 IST
session. `candles` gives tests the exact answer to a request.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta, timezone

import numpy as np
from dateutil.relativedelta import relativedelta

IST = timezone(timedelta(hours=5, minutes=30))
UNITS: tuple[str, ...] = ("days", "weeks", "months", "hours", "minutes")
DEFAULT_LISTING = date(2000, 1, 3)
DAILY_HISTORY_START = date(2000, 1, 1)
INTRADAY_HISTORY_START = date(2022, 1, 1)
SESSION_OPEN_MINUTE = 9 * 60 + 15
SESSION_CLOSE_MINUTE = 15 * 60 + 30


@dataclass(frozen=True)
class KeyChange:
    """A symbol's instrument key changing on a day, as an NSE split's new ISIN changes it: `old`
    serves candles up to the day before `on`, `new` from `on` on (not the old history), and the
    instruments master lists the symbol under `new`."""

    symbol: str
    old: str
    new: str
    on: date


_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array: a fast, unsalted, portable hash."""
    z = x + _M1
    z = (z ^ (z >> np.uint64(30))) * _M2
    z = (z ^ (z >> np.uint64(27))) * _M3
    return z ^ (z >> np.uint64(31))


def _uniforms(key: str, stamps: np.ndarray, streams: int, offset: int = 0) -> list[np.ndarray]:
    """Independent uniforms in [0, 1) per (key, stamp), one array per stream."""
    seed = np.uint64(zlib.crc32(key.encode()) << 32)
    base = _mix(stamps.astype(np.uint64) ^ seed)
    out = []
    for k in range(offset, offset + streams):
        z = _mix(base + np.uint64((k * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF))
        out.append((z >> np.uint64(11)).astype(np.float64) * 2.0**-53)
    return out


def _level(key: str, days: np.ndarray) -> np.ndarray:
    """Smooth per-key price level by day (days since 1970): trend plus two cycles, always > 0."""
    r = [float(u[0]) for u in _uniforms(key, np.zeros(1, dtype=np.int64), 6, offset=100)]
    base = np.exp(np.log(40.0) + r[0] * np.log(100.0))
    long_period, short_period = 700.0 + 800.0 * r[1], 60.0 + 140.0 * r[2]
    growth = -0.04 + 0.14 * r[5]
    t = days.astype(np.float64)
    years = (t - 10957.0) / 365.25
    return base * np.exp(
        growth * years
        + 0.35 * np.sin(2 * np.pi * t / long_period + 2 * np.pi * r[3])
        + 0.10 * np.sin(2 * np.pi * t / short_period + 2 * np.pi * r[4])
    )


def _ohlcv(
    key: str, stamps: np.ndarray, level: np.ndarray, spread: float, volume_scale: float
) -> tuple[np.ndarray, ...]:
    """Consistent OHLC in twentieths of a rupee (low <= open, close <= high, all >= 0.05)."""
    u = _uniforms(key, stamps, 6)
    open_ = level * (1 + spread * (2 * u[0] - 1))
    close = level * (1 + spread * (2 * u[1] - 1))
    o20 = np.where(u[5] < 0.15, np.rint(open_) * 20, np.rint(open_ * 20))
    o20 = np.maximum(o20, 1).astype(np.int64)
    c20 = np.maximum(np.rint(close * 20), 1).astype(np.int64)
    top, bottom = np.maximum(o20, c20), np.minimum(o20, c20)
    h20 = top + np.rint(top * spread * u[2]).astype(np.int64)
    l20 = np.maximum(bottom - np.rint(bottom * spread * u[3]).astype(np.int64), 1)
    volume = (volume_scale * (0.2 + 1.8 * u[4])).astype(np.int64)
    return o20, h20, l20, c20, volume


def _trading_days(start: date, end: date, holidays: np.ndarray) -> np.ndarray:
    """Weekdays in [start, end] that are not holidays, as datetime64[D]."""
    if end < start:
        return np.array([], dtype="datetime64[D]")
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    return days[np.is_busday(days, holidays=holidays)]


def holiday_array(holidays: Iterable[date]) -> np.ndarray:
    return np.array(sorted({np.datetime64(d, "D") for d in holidays}), dtype="datetime64[D]")


def interval_valid(unit: str, interval: int) -> bool:
    if unit in ("days", "weeks", "months"):
        return interval == 1
    if unit == "hours":
        return 1 <= interval <= 5
    return unit == "minutes" and 1 <= interval <= 300


_SUFFIX = tuple("" if r == 0 else f"{r * 5 / 100:.2f}".rstrip("0")[1:] for r in range(20))


def _rows_json(stamps: list[str], o20, h20, l20, c20, volume, newest_first: bool = False) -> str:
    """JSON text of the candle array, built directly: json.dumps of floats is the bottleneck.

    Whole-rupee prices come out as JSON integers, like Upstox's.
    """
    prices = np.stack([o20, h20, l20, c20], axis=1).ravel()
    texts = [
        f"{q}{_SUFFIX[r]}"
        for q, r in zip((prices // 20).tolist(), (prices % 20).tolist(), strict=True)
    ]
    it = iter(texts)
    rows = [
        f'["{ts}",{o},{h},{lo},{c},{v},0]'
        for ts, o, h, lo, c, v in zip(stamps, it, it, it, it, volume.tolist(), strict=False)
    ]
    if newest_first:
        rows.reverse()
    return "[" + ",".join(rows) + "]"


def _daily_series(
    key: str, start: date, end: date, holidays: np.ndarray, listed: date, ended: date | None
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    first = max(start, DAILY_HISTORY_START, listed)
    days = _trading_days(first, min(end, ended or end), holidays)
    numbers = days.astype(np.int64)
    return days, _ohlcv(key, numbers, _level(key, numbers), 0.02, 2_000_000.0)


def _daily_stamps(days: np.ndarray) -> list[str]:
    return [f"{d}T00:00:00+05:30" for d in np.datetime_as_string(days, unit="D").tolist()]


def _period_candles(
    key: str,
    unit: str,
    from_date: date,
    to_date: date,
    holidays: np.ndarray,
    listed: date,
    ended: date | None,
    newest_first: bool,
) -> str:
    """Weekly/monthly candles aggregated from whole periods, dated at their first trading day."""
    if unit == "weeks":
        start = from_date - timedelta(days=from_date.weekday())
        end = to_date + timedelta(days=6 - to_date.weekday())
    else:
        start = from_date.replace(day=1)
        end = to_date.replace(day=1) + relativedelta(months=1) - timedelta(days=1)
    days, (o20, h20, l20, c20, volume) = _daily_series(key, start, end, holidays, listed, ended)
    if len(days) == 0:
        return "[]"
    if unit == "weeks":
        group = (days.astype(np.int64) + 3) // 7
    else:
        group = days.astype("datetime64[M]").astype(np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(days)] - 1
    first_days = days[starts]
    keep = (first_days >= np.datetime64(from_date, "D")) & (
        first_days <= np.datetime64(to_date, "D")
    )
    agg = (
        o20[starts],
        np.maximum.reduceat(h20, starts),
        np.minimum.reduceat(l20, starts),
        c20[ends],
        np.add.reduceat(volume, starts),
    )
    stamps = _daily_stamps(first_days[keep])
    return _rows_json(stamps, *(a[keep] for a in agg), newest_first=newest_first)


def _intraday_candles(
    key: str,
    unit: str,
    interval: int,
    from_date: date,
    to_date: date,
    holidays: np.ndarray,
    listed: date,
    ended: date | None,
    newest_first: bool,
) -> str:
    """Session candles 09:15–15:30 IST in steps of the interval; the last starts before 15:30."""
    step = interval * 60 if unit == "hours" else interval
    first = max(from_date, INTRADAY_HISTORY_START, listed)
    days = _trading_days(first, min(to_date, ended or to_date), holidays)
    offsets = np.arange(SESSION_OPEN_MINUTE, SESSION_CLOSE_MINUTE, step, dtype=np.int64)
    numbers = days.astype(np.int64)
    minutes = (numbers[:, None] * 1440 + offsets[None, :]).ravel()
    level = np.repeat(_level(key, numbers), len(offsets))
    scale = 2_000_000.0 * step / 375
    series = _ohlcv(key, minutes + (1 << 40), level, 0.006, scale)
    clock = [f"T{m // 60:02d}:{m % 60:02d}:00+05:30" for m in offsets.tolist()]
    stamps = [f"{d}{c}" for d in np.datetime_as_string(days, unit="D").tolist() for c in clock]
    return _rows_json(stamps, *series, newest_first=newest_first)


def candles(
    key: str,
    unit: str,
    interval: int,
    from_date: date,
    to_date: date,
    holidays: Iterable[date] = (),
    listings: Mapping[str, date] | None = None,
    last_days: Mapping[str, date] | None = None,
) -> list[list]:
    """The candles FakeUpstox serves for this request, oldest first, so tests know exact answers.

    Daily candles fall on weekdays that are not holidays, on or after the key's listing date
    (default 2000-01-03) and the history start (2000 for days/weeks/months, 2022 intraday), and
    on or before the key's last day, if it has one (a key replaced by a `KeyChange`).
    """
    if unit not in UNITS or not interval_valid(unit, int(interval)):
        raise ValueError(f"unsupported unit/interval: {unit}/{interval}")
    hol = holiday_array(holidays)
    listed = (listings or {}).get(key, DEFAULT_LISTING)
    ended = (last_days or {}).get(key)
    return json.loads(
        candles_json(key, unit, int(interval), from_date, to_date, hol, listed, ended)
    )


def candles_json(
    key: str,
    unit: str,
    interval: int,
    from_date: date,
    to_date: date,
    holidays: np.ndarray,
    listed: date,
    ended: date | None = None,
    newest_first: bool = False,
) -> str:
    if to_date < from_date:
        return "[]"
    if unit == "days":
        days, series = _daily_series(key, from_date, to_date, holidays, listed, ended)
        return _rows_json(_daily_stamps(days), *series, newest_first=newest_first)
    if unit in ("weeks", "months"):
        return _period_candles(key, unit, from_date, to_date, holidays, listed, ended, newest_first)
    return _intraday_candles(
        key, unit, interval, from_date, to_date, holidays, listed, ended, newest_first
    )
