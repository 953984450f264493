"""Exchange calendars: which days a market trades, its time zone and when a day's bars are final.

A market is `DEMO` (every weekday), `HOSE` (weekdays minus Vietnamese public holidays) or any
calendar `pandas_market_calendars` knows (it includes every `exchange_calendars` code: `XNYS`,
`XLON`, `XBOM`, `XPHS`, ..., and `NSE`), named in any case.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

OWN_MARKETS = ("DEMO", "HOSE")
"""Markets whose calendar is ours rather than `pandas_market_calendars`'."""

OWN_TIMEZONES: dict[str, str] = {
    "DEMO": "UTC",
    "NSE": "Asia/Kolkata",
    "HOSE": "Asia/Ho_Chi_Minh",
}

# When a day's bars are final and the daily update runs, in the market's own time zone: a while
# after the close (NSE 15:30, HOSE 15:00), so that vendors have published the day's candles.
OWN_UPDATE_TIMES: dict[str, dt.time] = {
    "DEMO": dt.time(18, 0),
    "NSE": dt.time(18, 0),
    "HOSE": dt.time(17, 0),
}
UPDATE_DELAY = dt.timedelta(hours=2)
"""Another market's update time: this long after its regular close, on the quarter hour."""

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONDAY_TO_FRIDAY = "Mon Tue Wed Thu Fri"


@functools.cache
def _library_names() -> dict[str, str]:
    """Upper-cased name -> the name `pandas_market_calendars` knows it by."""
    import pandas_market_calendars as mcal  # a quarter second; only for such markets

    return {name.upper(): name for name in mcal.get_calendar_names()}


@functools.cache
def _library_calendar(name: str):
    import pandas_market_calendars as mcal

    return mcal.get_calendar(name)


def market_name(value: str) -> str:
    """The market's canonical name (`xnys` -> `XNYS`); ValueError for an unknown one."""
    wanted = value.strip().upper()
    if wanted in OWN_MARKETS:
        return wanted
    known = _library_names()
    if wanted in known:
        return known[wanted]
    close = sorted(name for key, name in known.items() if key[:2] == wanted[:2])[:8]
    hint = f"; similar: {', '.join(close)}" if close else ""
    raise ValueError(
        f"unknown market {value.strip()!r}: DEMO, HOSE or a calendar of pandas_market_calendars "
        f"(such as NSE, XNYS, XLON, XBOM, XPHS; its get_calendar_names() lists all){hint}"
    )


@dataclass(frozen=True)
class Calendar:
    """One market's trading days, in its time zone, with the update time of its daily run."""

    market: str
    timezone: str
    update_time: dt.time
    weekmask: str = MONDAY_TO_FRIDAY
    extra_closures: tuple[dt.date, ...] = ()

    @property
    def weekdays(self) -> tuple[int, ...]:
        """The days of the week it trades on, Monday = 0."""
        return tuple(WEEKDAY_NAMES.index(name) for name in self.weekmask.split())

    def week_days(self, start: dt.date, end: dt.date) -> pd.DatetimeIndex:
        """Days in [start, end] on the weekdays it trades on, holidays included."""
        return pd.bdate_range(start, end, freq="C", weekmask=self.weekmask)

    def closures(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Days in [start, end] on its trading weekdays on which it is closed."""
        week_days = self.week_days(start, end)
        if self.market == "DEMO":
            closed: set[dt.date] = set()
        elif self.market == "HOSE":
            import holidays

            vn = holidays.country_holidays("VN", years=range(start.year, end.year + 1))
            closed = {d.date() for d in week_days if d.date() in vn}
        else:
            open_days = _library_calendar(self.market).valid_days(start, end).tz_localize(None)
            closed = {d.date() for d in week_days.difference(open_days)}
        closed |= {
            d for d in self.extra_closures if start <= d <= end and d.weekday() in self.weekdays
        }
        return sorted(closed)

    def trading_days(self, start: dt.date, end: dt.date) -> pd.DatetimeIndex:
        """Its trading days in [start, end], both inclusive."""
        closed = pd.DatetimeIndex(pd.to_datetime(self.closures(start, end)))
        return self.week_days(start, end).difference(closed)

    def is_trading_day(self, day: dt.date) -> bool:
        return len(self.trading_days(day, day)) == 1

    def last_closed_day(self, now: dt.datetime | None = None) -> dt.date:
        """The latest trading day whose update time has passed in its time zone."""
        local = (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(self.timezone))
        day = local.date() if local.time() >= self.update_time else local.date() - dt.timedelta(1)
        recent = self.trading_days(day - dt.timedelta(days=30), day)
        return recent[-1].date()


def calendar(
    market: str,
    extra_closures: Iterable[dt.date] = (),
    timezone: str | None = None,
    update_time: dt.time | None = None,
) -> Calendar:
    """The market's calendar; the time zone and update time default to the market's own."""
    name = market_name(market)
    weekmask, default_zone, default_time = MONDAY_TO_FRIDAY, "UTC", dt.time(18, 0)
    if name in OWN_TIMEZONES:
        default_zone, default_time = OWN_TIMEZONES[name], OWN_UPDATE_TIMES[name]
    if name not in OWN_MARKETS:
        library = _library_calendar(name)
        weekmask = " ".join(d for d in WEEKDAY_NAMES if d in library.weekmask.split())
        if name not in OWN_TIMEZONES:
            default_zone = library.tz.key
            default_time = _after_close(library.close_time)
    return Calendar(
        market=name,
        timezone=timezone or default_zone,
        update_time=update_time or default_time,
        weekmask=weekmask,
        extra_closures=tuple(sorted(set(extra_closures))),
    )


def _after_close(close: dt.time) -> dt.time:
    """`UPDATE_DELAY` after the close, up to the next quarter hour, at the latest 23:45."""
    minutes = close.hour * 60 + close.minute + UPDATE_DELAY.seconds // 60
    minutes = min(-(-minutes // 15) * 15, 23 * 60 + 45)
    return dt.time(minutes // 60, minutes % 60)


def closures(
    market: str, start: dt.date, end: dt.date, extra_closures: Iterable[dt.date] = ()
) -> list[dt.date]:
    """Days in [start, end] on the market's trading weekdays on which it is closed."""
    return calendar(market, extra_closures).closures(start, end)


def trading_days(
    market: str, start: dt.date, end: dt.date, extra_closures: Iterable[dt.date] = ()
) -> pd.DatetimeIndex:
    """The market's trading days in [start, end], both inclusive."""
    return calendar(market, extra_closures).trading_days(start, end)


def is_trading_day(market: str, day: dt.date, extra_closures: Iterable[dt.date] = ()) -> bool:
    return calendar(market, extra_closures).is_trading_day(day)


def last_closed_day(
    market: str, now: dt.datetime | None = None, extra_closures: Iterable[dt.date] = ()
) -> dt.date:
    """The latest trading day whose (default) update time has passed in the market's zone."""
    return calendar(market, extra_closures).last_closed_day(now)
