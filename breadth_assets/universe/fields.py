"""Validators of the universe file's plain fields (market, dates, sizes, times).

Each takes the value as `breadth_assets.fields` read it (remembering its text) and returns the
typed value or raises ValueError with what is wrong; `breadth_assets.universe.file` puts the message
on the file's line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from breadth_assets.calendars import market_name
from breadth_assets.fields import a_list, is_null, shown, text, typed

DEFAULT_BATCH_SIZE = 50
MAX_BATCH_SIZE = 1000
DEFAULT_UPDATE_BATCH_SIZE = 2000
MAX_UPDATE_BATCH_SIZE = 5000


def market(value: Any) -> str:
    return market_name(text(value))


def timezone(value: Any) -> str:
    name = text(value)
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(f"{name!r} is not a time zone such as Asia/Kolkata or UTC") from None
    return name


def update_time(value: Any) -> dt.time:
    """A local time of day written HH:MM (as written: YAML 1.1 would read 18:30 as a number)."""
    written = text(value)
    try:
        return dt.time.fromisoformat(written)
    except ValueError:
        raise ValueError(f"{written!r} is not a time of day such as 18:30 (HH:MM)") from None


def date(value: Any) -> dt.date:
    day = typed(value)
    if isinstance(day, str):
        with contextlib.suppress(ValueError):
            day = dt.date.fromisoformat(day.strip())
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise ValueError(f"{shown(value)!r} is not a date (write it as YYYY-MM-DD)")
    return day


def start_date(value: Any) -> dt.date:
    day = date(value)
    if day > dt.date.today():
        raise ValueError(f"{day} is in the future")
    return day


def whole_number_up_to(most: int):
    def check(value: Any) -> int:
        size = typed(value)
        if type(size) is not int or not 1 <= size <= most:
            raise ValueError(f"{shown(value)!r} is not a whole number from 1 to {most}")
        return size

    return check


batch_size = whole_number_up_to(MAX_BATCH_SIZE)
update_batch_size = whole_number_up_to(MAX_UPDATE_BATCH_SIZE)


def closures(value: Any) -> list:
    return [] if is_null(value) else a_list("expected a list of dates")(value)
