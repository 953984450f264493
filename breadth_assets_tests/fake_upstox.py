"""FakeUpstox: a named test fake of Upstox's v3 historical-candle API, for tests and benchmarks.

It is not Upstox. It serves deterministic synthetic candles over plain HTTP on 127.0.0.1 with the
documented paths, auth, error codes and body shapes (upstox.com/developer/api-documentation), so a
client can be exercised end to end (SDK, urllib3, threads, retries) without the network. It can
inject faults (429, 500, 503, read timeouts, truncated JSON, error bodies with HTTP 200) and
records every request with its arrival time so tests can check retries and rate limits.

Run it in another process with ``python -m breadth_assets_tests.fake_upstox --token T``: it prints
``READY http://127.0.0.1:PORT`` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import random
import re
import signal
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
from dateutil.relativedelta import relativedelta

IST = timezone(timedelta(hours=5, minutes=30))
FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "timeout", "malformed", "error_200")
INJECT_ONLY_KINDS: tuple[str, ...] = ("empty", "401")
UNITS: tuple[str, ...] = ("days", "weeks", "months", "hours", "minutes")
DEFAULT_LISTING = date(2000, 1, 3)
DAILY_HISTORY_START = date(2000, 1, 1)
INTRADAY_HISTORY_START = date(2022, 1, 1)
SESSION_OPEN_MINUTE = 9 * 60 + 15
SESSION_CLOSE_MINUTE = 15 * 60 + 30
MALFORMED_BODY = b'{"status":"success","data":{"candl'

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)

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


# --- deterministic data -------------------------------------------------------------------------


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


def _holiday_array(holidays: Iterable[date]) -> np.ndarray:
    return np.array(sorted({np.datetime64(d, "D") for d in holidays}), dtype="datetime64[D]")


def _interval_valid(unit: str, interval: int) -> bool:
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
    key: str, start: date, end: date, holidays: np.ndarray, listed: date
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    first = max(start, DAILY_HISTORY_START, listed)
    days = _trading_days(first, end, holidays)
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
    newest_first: bool,
) -> str:
    """Weekly/monthly candles aggregated from whole periods, dated at their first trading day."""
    if unit == "weeks":
        start = from_date - timedelta(days=from_date.weekday())
        end = to_date + timedelta(days=6 - to_date.weekday())
    else:
        start = from_date.replace(day=1)
        end = to_date.replace(day=1) + relativedelta(months=1) - timedelta(days=1)
    days, (o20, h20, l20, c20, volume) = _daily_series(key, start, end, holidays, listed)
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
    newest_first: bool,
) -> str:
    """Session candles 09:15–15:30 IST in steps of the interval; the last starts before 15:30."""
    step = interval * 60 if unit == "hours" else interval
    days = _trading_days(max(from_date, INTRADAY_HISTORY_START, listed), to_date, holidays)
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
) -> list[list]:
    """The candles FakeUpstox serves for this request, oldest first, so tests know exact answers.

    Daily candles fall on weekdays that are not holidays, on or after the key's listing date
    (default 2000-01-03) and the history start (2000 for days/weeks/months, 2022 intraday).
    """
    if unit not in UNITS or not _interval_valid(unit, int(interval)):
        raise ValueError(f"unsupported unit/interval: {unit}/{interval}")
    hol = _holiday_array(holidays)
    listed = (listings or {}).get(key, DEFAULT_LISTING)
    return json.loads(_candles_json(key, unit, int(interval), from_date, to_date, hol, listed))


def _candles_json(
    key: str,
    unit: str,
    interval: int,
    from_date: date,
    to_date: date,
    holidays: np.ndarray,
    listed: date,
    newest_first: bool = False,
) -> str:
    if to_date < from_date:
        return "[]"
    if unit == "days":
        days, series = _daily_series(key, from_date, to_date, holidays, listed)
        return _rows_json(_daily_stamps(days), *series, newest_first=newest_first)
    if unit in ("weeks", "months"):
        return _period_candles(key, unit, from_date, to_date, holidays, listed, newest_first)
    return _intraday_candles(
        key, unit, interval, from_date, to_date, holidays, listed, newest_first
    )


# --- helpers for tests ---------------------------------------------------------------------------


def max_in_window(times: Iterable[float], seconds: float) -> int:
    """Largest number of times in any half-open window [t, t + seconds): checks rate limits."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - seconds:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def write_instruments_master(path: str | Path, entries: Mapping[str, str]) -> Path:
    """Write a gzipped JSON array shaped like Upstox's NSE.json.gz (trading symbol -> key).

    Decoys (an index, a BSE equity and an NSE future sharing each symbol) come before each
    equity record, so a resolver must filter on segment NSE_EQ and instrument_type EQ.
    """
    records: list[dict[str, Any]] = [
        {
            "segment": "NSE_INDEX",
            "name": "Nifty 50",
            "exchange": "NSE",
            "instrument_type": "INDEX",
            "instrument_key": "NSE_INDEX|Nifty 50",
            "exchange_token": "26000",
            "trading_symbol": "NIFTY",
        }
    ]
    for n, (symbol, key) in enumerate(entries.items(), start=1):
        isin = key.split("|", 1)[-1]
        name = f"{symbol} LIMITED"
        records += [
            {
                "segment": "BSE_EQ",
                "name": name,
                "exchange": "BSE",
                "isin": isin,
                "instrument_type": "A",
                "instrument_key": f"BSE_EQ|{isin}",
                "exchange_token": str(500000 + n),
                "trading_symbol": symbol,
                "short_name": symbol.title(),
                "tick_size": 5.0,
                "lot_size": 1,
                "security_type": "NORMAL",
            },
            {
                "segment": "NSE_FO",
                "name": name,
                "exchange": "NSE",
                "instrument_type": "FUT",
                "instrument_key": f"NSE_FO|{40000 + n}",
                "exchange_token": str(40000 + n),
                "trading_symbol": f"{symbol} FUT 27 MAR 25",
                "underlying_key": key,
                "underlying_symbol": symbol,
                "tick_size": 5.0,
                "lot_size": 750,
                "expiry": 1743085799000,
            },
            {
                "segment": "NSE_EQ",
                "name": name,
                "exchange": "NSE",
                "isin": isin,
                "instrument_type": "EQ",
                "instrument_key": key,
                "exchange_token": str(1000 + n),
                "trading_symbol": symbol,
                "short_name": symbol.title(),
                "tick_size": 5.0,
                "lot_size": 1,
                "security_type": "NORMAL",
            },
        ]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        json.dump(records, fh)
    return out


# --- the server ----------------------------------------------------------------------------------


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
class _Route:
    key: str
    unit: str
    interval: str
    to_date: str | None
    from_date: str | None
    intraday: bool


@dataclass
class _Reply:
    status: int
    body: bytes
    fault: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0


def _error_body(code: str) -> bytes:
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


def _error(status: int, code: str) -> _Reply:
    return _Reply(status, _error_body(code))


def _success_body(candles_json: str) -> bytes:
    return f'{{"status":"success","data":{{"candles":{candles_json}}}}}'.encode()


def _parse_route(raw_path: str) -> _Route | None:
    parts = raw_path.split("/")
    if parts[:3] != ["", "v3", "historical-candle"]:
        return None
    rest = [unquote(p) for p in parts[3:]]
    if len(rest) == 4 and rest[0] == "intraday":
        return _Route(rest[1], rest[2], rest[3], None, None, intraday=True)
    if len(rest) in (4, 5):
        from_date = rest[4] if len(rest) == 5 else None
        return _Route(rest[0], rest[1], rest[2], rest[3], from_date, intraday=False)
    return None


def _parse_date(text: str) -> date | None:
    if not _DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _range_too_long(unit: str, interval: int, from_date: date, to_date: date) -> bool:
    if unit == "days":
        limit = relativedelta(years=10)
    elif unit == "hours" or (unit == "minutes" and interval > 15):
        limit = relativedelta(months=3)
    elif unit == "minutes":
        limit = relativedelta(months=1)
    else:
        return False
    return from_date < to_date - limit


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeUpstox/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and benchmarks make thousands of requests."""

    def do_GET(self) -> None:
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.fake._handle(self, "POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections in a burst, and a dropped SYN is
    # resent a second later, which would look like a request arriving a second late.
    request_queue_size = 256
    fake: FakeUpstox


class FakeUpstox:
    """Test fake of Upstox's v3 historical-candle API on 127.0.0.1 (a free port)."""

    def __init__(
        self,
        token: str = "test-token",
        latency: float = 0.0,
        order: str = "newest_first",
        holidays: Iterable[date] = (),
        listings: Mapping[str, date] | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = FAULT_KINDS,
        seed: int = 0,
        timeout_sleep: float = 3.0,
    ) -> None:
        if order not in ("newest_first", "oldest_first"):
            raise ValueError(f"order must be newest_first or oldest_first, not {order!r}")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be within 0..1")
        unknown = set(fault_kinds) - set(FAULT_KINDS)
        if unknown or not fault_kinds:
            raise ValueError(f"fault_kinds must be a non-empty subset of {FAULT_KINDS}")
        self.token = token
        self.latency = latency
        self.order = order
        self.holidays = frozenset(holidays)
        self.listings = dict(listings or {})
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.timeout_sleep = timeout_sleep
        self._holiday_array = _holiday_array(self.holidays)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._records: list[RecordedRequest] = []
        self._script: list[list[Any]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeUpstox:
        """Bind a free port and serve on a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="fake-upstox",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeUpstox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeUpstox is not started")
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """Base URL for ``upstox_client.Configuration().host`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # test controls

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, in arrival order of recording."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def inject(self, kind: str, times: int = 1, key: str | None = None) -> None:
        """Fail the next ``times`` valid, authorized requests (for ``key``, or any) with ``kind``.

        Scripted faults are served before random ones; besides FAULT_KINDS, ``"empty"`` (200 with
        no candles) and ``"401"`` are accepted.
        """
        if kind not in FAULT_KINDS + INJECT_ONLY_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._script.append([kind, times, key])

    def expected(
        self, key: str, unit: str, interval: int, from_date: date, to_date: date
    ) -> list[list]:
        """What this server serves for the request, oldest first (its holidays and listings)."""
        return candles(key, unit, interval, from_date, to_date, self.holidays, self.listings)

    # request handling

    def _next_fault(self, key: str) -> str | None:
        with self._lock:
            for entry in self._script:
                kind, _, only_key = entry
                if only_key is None or only_key == key:
                    entry[1] -= 1
                    if entry[1] == 0:
                        self._script.remove(entry)
                    return kind
            if self.fault_rate > 0 and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.fault_kinds)
        return None

    def _handle(self, handler: _Handler, method: str) -> None:
        arrival = time.time()
        raw_path = urlsplit(handler.path).path
        if method == "GET" and raw_path == "/_fake/requests":
            body = json.dumps([dataclasses.asdict(r) for r in self.requests]).encode()
            self._send(handler, _Reply(200, body))
            return
        if method == "POST" and raw_path == "/_fake/clear":
            self.clear()
            self._send(handler, _Reply(200, b'{"status":"success"}'))
            return
        route = _parse_route(raw_path) if method == "GET" else None
        authorized = handler.headers.get("Authorization") == f"Bearer {self.token}"
        reply = self._reply(route, authorized)
        record = RecordedRequest(
            time=arrival,
            path=unquote(raw_path),
            key=route.key if route else None,
            unit=route.unit if route else None,
            interval=route.interval if route else None,
            to_date=route.to_date if route else None,
            from_date=route.from_date if route else None,
            status=reply.status,
            fault=reply.fault,
            authorized=authorized,
        )
        with self._lock:
            self._records.append(record)
        pause = self.latency + reply.delay
        if pause > 0:
            time.sleep(pause)
        self._send(handler, reply)

    def _reply(self, route: _Route | None, authorized: bool) -> _Reply:
        if route is None:
            return _error(404, "UDAPI100060")
        if not authorized:
            return _error(401, "UDAPI100050")
        segment, _, ident = route.key.partition("|")
        if not segment or not ident or "|" in ident:
            return _error(400, "UDAPI1021")
        if route.unit not in UNITS:
            return _error(400, "UDAPI1146")
        if not route.interval.isdigit() or not _interval_valid(route.unit, int(route.interval)):
            return _error(400, "UDAPI1147")
        unit, interval = route.unit, int(route.interval)
        if route.intraday:
            from_date = to_date = datetime.now(IST).date()
        else:
            parsed_to = _parse_date(route.to_date or "")
            if parsed_to is None:
                return _error(400, "UDAPI1015")
            to_date = parsed_to
            if route.from_date is None:
                back = relativedelta(years=1) if unit in ("days", "weeks", "months") else None
                from_date = to_date - (back or relativedelta(months=1))
            else:
                parsed_from = _parse_date(route.from_date)
                if parsed_from is None or parsed_from > to_date:
                    return _error(400, "UDAPI1015")
                from_date = parsed_from
                if _range_too_long(unit, interval, from_date, to_date):
                    return _error(400, "UDAPI1148")
        if ident.startswith("UNKNOWN"):
            return _error(400, "UDAPI100011")
        fault = self._next_fault(route.key)
        return self._faulted(fault, route.key, unit, interval, from_date, to_date)

    def _faulted(
        self, fault: str | None, key: str, unit: str, interval: int, from_date: date, to_date: date
    ) -> _Reply:
        retry_now = {"Retry-After": "0"}
        if fault == "429":
            return _Reply(429, _error_body("UDAPI10005"), fault, retry_now)
        if fault == "500":
            return _Reply(500, _error_body("UDAPI100500"), fault)
        if fault == "503":
            return _Reply(503, _error_body("UDAPI100503"), fault, retry_now)
        if fault == "401":
            return _Reply(401, _error_body("UDAPI100050"), fault)
        if fault == "malformed":
            return _Reply(200, MALFORMED_BODY, fault)
        if fault == "error_200":
            return _Reply(200, _error_body("UDAPI100500"), fault)
        if fault == "empty":
            return _Reply(200, _success_body("[]"), fault)
        listed = self.listings.get(key, DEFAULT_LISTING)
        rows = _candles_json(
            key,
            unit,
            interval,
            from_date,
            to_date,
            self._holiday_array,
            listed,
            newest_first=self.order == "newest_first",
        )
        delay = self.timeout_sleep if fault == "timeout" else 0.0
        return _Reply(200, _success_body(rows), fault, delay=delay)

    @staticmethod
    def _send(handler: _Handler, reply: _Reply) -> None:
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass


# --- subprocess mode -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Serve in this process, print ``READY <host>`` and stop on SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-kinds", default=",".join(FAULT_KINDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order", choices=("newest_first", "oldest_first"), default="newest_first")
    parser.add_argument("--timeout-sleep", type=float, default=3.0)
    args = parser.parse_args(argv)
    done = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    fake = FakeUpstox(
        token=args.token,
        latency=args.latency,
        order=args.order,
        fault_rate=args.fault_rate,
        fault_kinds=tuple(k for k in args.fault_kinds.split(",") if k),
        seed=args.seed,
        timeout_sleep=args.timeout_sleep,
    )
    with fake:
        print(f"READY {fake.host}", flush=True)
        while not done.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
