"""Exchange calendars: which days a market trades, and its time zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import holidays
import pandas as pd
import pandas_market_calendars as mcal

TIMEZONES: dict[str, str] = {
    "DEMO": "UTC",
    "NSE": "Asia/Kolkata",
    "HOSE": "Asia/Ho_Chi_Minh",
}


def closures(
    market: str, start: dt.date, end: dt.date, extra_closures: Iterable[dt.date] = ()
) -> list[dt.date]:
    """Weekdays in [start, end] on which the market is closed."""
    weekdays = pd.bdate_range(start, end)
    if market == "DEMO":
        closed: set[dt.date] = set()
    elif market == "NSE":
        open_days = mcal.get_calendar("NSE").valid_days(start, end).tz_localize(None)
        closed = {d.date() for d in weekdays.difference(open_days)}
    elif market == "HOSE":
        vn = holidays.country_holidays("VN", years=range(start.year, end.year + 1))
        closed = {d.date() for d in weekdays if d.date() in vn}
    else:
        raise ValueError(f"unknown market {market!r}")
    closed |= {d for d in extra_closures if start <= d <= end and d.weekday() < 5}
    return sorted(closed)


def trading_days(
    market: str, start: dt.date, end: dt.date, extra_closures: Iterable[dt.date] = ()
) -> pd.DatetimeIndex:
    """The market's trading days in [start, end], both inclusive."""
    weekdays = pd.bdate_range(start, end)
    closed = pd.DatetimeIndex(pd.to_datetime(closures(market, start, end, extra_closures)))
    return weekdays.difference(closed)
