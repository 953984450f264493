"""Validators of the universe file's plain fields (market, dates, sizes, times).

Each takes the value as `breadth_assets.fields` read it (remembering its text) and returns the
typed value or raises ValueError with what is wrong; `breadth_assets.universe.file` puts the message
on the file's line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationInfo

from breadth_assets.calendars import market_name
from breadth_assets.fields import a_list, is_null, relative_path, shown, text, typed

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


DAILY_MOVES: dict[str, float] = {"NSE": 0.20, "XNSE": 0.20, "BSE": 0.20, "XBOM": 0.20}
"""The largest plausible close-to-close move per market: NSE's and BSE's widest price band is
20 %; HOSE's daily limit is 7 %; the demo market imitates NSE. Others: 50 %."""
DAILY_MOVES |= {"HOSE": 0.07, "DEMO": 0.20}
DEFAULT_DAILY_MOVE = 0.50


def daily_move(value: Any) -> float:
    """A share of the previous close, written 0.2 or 20%."""
    written = text(value)
    try:
        move = float(written[:-1]) / 100 if written.endswith("%") else float(typed(value))
    except (TypeError, ValueError):
        move = float("nan")
    if not 0 < move <= 10:
        raise ValueError(f"{written!r} is not a move such as 0.2 or 20% (above 0, at most 1000%)")
    return move


def share(value: Any, percent: float) -> float:
    """A share from above 0 to 1, written as 0.8, 80% or 80 (a number above 1 is a percent);
    refused with examples made of `percent` (80: "80%, 0.8 or 80")."""
    written = text(value)
    number = typed(value)
    try:
        if written.endswith("%"):
            fraction = float(written[:-1]) / 100
        elif isinstance(number, bool):
            fraction = float("nan")
        else:
            fraction = float(number)
            fraction = fraction / 100 if fraction > 1 else fraction
    except (TypeError, ValueError):
        fraction = float("nan")
    if not 0 < fraction <= 1:
        examples = f"{percent:g}%, {percent / 100:g} or {percent:g}"
        raise ValueError(f"{written!r} is not a share such as {examples} (above 0, at most 100%)")
    return fraction


def coverage(value: Any) -> float:
    """A share from above 0 to 1, written 0.8, 80% or 80 (a number above 1 is a percent)."""
    return share(value, 80)


def boolean(value: Any) -> bool:
    flag = typed(value)
    if not isinstance(flag, bool):
        raise ValueError(f"{shown(value)!r} is not true or false")
    return flag


def actions_path(value: Any, info: ValidationInfo) -> Path:
    """An actions file or a folder of them, which must exist when the universe is read."""
    path = relative_path(value, info)
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    return path
