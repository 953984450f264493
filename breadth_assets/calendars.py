"""Exchange calendars: which days a market trades, and its time zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import pandas as pd

TIMEZONES: dict[str, str] = {
    "DEMO": "UTC",
    "NSE": "Asia/Kolkata",
    "HOSE": "Asia/Ho_Chi_Minh",
}

# When a day's bars are final and the daily update runs, in the market's own time zone: a while
# after the close (NSE 15:30, HOSE 15:00), so that vendors have published the day's candles.
UPDATE_TIMES: dict[str, dt.time] = {
    "DEMO": dt.time(18, 0),
    "NSE": dt.time(18, 0),
    "HOSE": dt.time(17, 0),
}


def closures(
    market: str, start: dt.date, end: dt.date, extra_closures: Iterable[dt.date] = ()
) -> list[dt.date]:
    """Weekdays in [start, end] on which the market is closed."""
    weekdays = pd.bdate_range(start, end)
    if market == "DEMO":
        closed: set[dt.date] = set()
    elif market == "NSE":
        import pandas_market_calendars as mcal  # imported for NSE only: a quarter second

        open_days = mcal.get_calendar("NSE").valid_days(start, end).tz_localize(None)
        closed = {d.date() for d in weekdays.difference(open_days)}
    elif market == "HOSE":
        import holidays

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


def is_trading_day(market: str, day: dt.date, extra_closures: Iterable[dt.date] = ()) -> bool:
    return len(trading_days(market, day, day, extra_closures)) == 1


def last_closed_day(
    market: str, now: dt.datetime | None = None, extra_closures: Iterable[dt.date] = ()
) -> dt.date:
    """The latest trading day whose update time has passed in the market's time zone."""
    local = (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(TIMEZONES[market]))
    day = local.date() if local.time() >= UPDATE_TIMES[market] else local.date() - dt.timedelta(1)
    recent = trading_days(market, day - dt.timedelta(days=30), day, extra_closures)
    return recent[-1].date()
