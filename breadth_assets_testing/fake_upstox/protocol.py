"""Upstox's v3 historical-candle API as FakeUpstox speaks it: paths, validation, error codes and
bodies, and the record of each request."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import unquote

from dateutil.relativedelta import relativedelta

FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "timeout", "malformed", "error_200")
INJECT_ONLY_KINDS: tuple[str, ...] = ("empty", "401")
# The fault recorded for a request refused because it went over the server's own rate limits.
OVER_LIMIT = "over_limit"
MALFORMED_BODY = b'{"status":"success","data":{"candl'

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

_MESSAGES = {
    "UDAPI1015": "Invalid date: use YYYY-MM-DD with to_date on or after from_date",
    "UDAPI1021": "Instrument key is of invalid format",
    "UDAPI1146": "Invalid unit",
    "UDAPI1147": "Invalid interval",
    "UDAPI1148": "Invalid date range: the range is longer than allowed for this unit and interval",
    "UDAPI100011": "Invalid Instrument key",
    "UDAPI100050": "Invalid token used to access API",
    "UDAPI10005": "Too Many Request Sent",
    "UDAPI100500": "Something went wrong. Please try after some time",
    "UDAPI100503": "Upstox is under scheduled maintenance. Please try after some time",
    "UDAPI100060": "Resource not Found",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it; ``authorized`` instead of the header so tokens never leak."""

    time: float
    path: str
    key: str | None
    unit: str | None
    interval: str | None
    to_date: str | None
    from_date: str | None
    status: int
    fault: str | None
    authorized: bool


@dataclass
class Route:
    key: str
    unit: str
    interval: str
    to_date: str | None
    from_date: str | None
    intraday: bool


@dataclass
class Reply:
    status: int
    body: bytes
    fault: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0


def error_body(code: str) -> bytes:
    error = {
        "errorCode": code,
        "message": _MESSAGES[code],
        "error_code": code,
        "property_path": None,
        "invalid_value": None,
        "instrument_key": None,
        "order_id": None,
    }
    return json.dumps({"status": "error", "errors": [error]}).encode()


def error(status: int, code: str) -> Reply:
    return Reply(status, error_body(code))


def success_body(candles_json: str) -> bytes:
    return f'{{"status":"success","data":{{"candles":{candles_json}}}}}'.encode()


def parse_route(raw_path: str) -> Route | None:
    parts = raw_path.split("/")
    if parts[:3] != ["", "v3", "historical-candle"]:
        return None
    rest = [unquote(p) for p in parts[3:]]
    if len(rest) == 4 and rest[0] == "intraday":
        return Route(rest[1], rest[2], rest[3], None, None, intraday=True)
    if len(rest) in (4, 5):
        from_date = rest[4] if len(rest) == 5 else None
        return Route(rest[0], rest[1], rest[2], rest[3], from_date, intraday=False)
    return None


def parse_date(text: str) -> date | None:
    if not _DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def range_too_long(unit: str, interval: int, from_date: date, to_date: date) -> bool:
    if unit == "days":
        limit = relativedelta(years=10)
    elif unit == "hours" or (unit == "minutes" and interval > 15):
        limit = relativedelta(months=3)
    elif unit == "minutes":
        limit = relativedelta(months=1)
    else:
        return False
    return from_date < to_date - limit
