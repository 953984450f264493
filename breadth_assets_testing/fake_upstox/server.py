"""FakeUpstox itself: the HTTP server on 127.0.0.1, its fault injection and request records."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from dateutil.relativedelta import relativedelta

from breadth_assets_testing.fake_upstox.market import (
    DEFAULT_LISTING,
    IST,
    UNITS,
    KeyChange,
    candles,
    candles_json,
    holiday_array,
    interval_valid,
)
from breadth_assets_testing.fake_upstox.protocol import (
    FAULT_KINDS,
    INJECT_ONLY_KINDS,
    MALFORMED_BODY,
    OVER_LIMIT,
    RecordedRequest,
    Reply,
    Route,
    error,
    error_body,
    parse_date,
    parse_route,
    range_too_long,
    success_body,
)
from breadth_assets_testing.fake_upstox.request_windows import WindowCounter


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
        limits: Sequence[tuple[float, int]] = (),
        key_changes: Sequence[KeyChange] = (),
    ) -> None:
        """`limits`: (window seconds, most requests) pairs enforced as Upstox does, e.g.
        ((1, 50), (60, 500), (1800, 2000)): a valid, authorized request that makes a sliding
        window hold more than its limit is answered 429 UDAPI10005 (no Retry-After, as Upstox
        documents none) and recorded with fault `OVER_LIMIT`. Every such request counts, refused
        or not. Empty (the default): nothing is enforced.

        `key_changes`: symbols whose instrument key changes on a day; the old key serves candles
        up to the day before, the new one from that day on (a listing, unless `listings` gives
        one) and not the old history."""
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
        self.listings = {**{c.new: c.on for c in key_changes}, **dict(listings or {})}
        self.last_days = {c.old: c.on - timedelta(days=1) for c in key_changes}
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.timeout_sleep = timeout_sleep
        self.limits = tuple((float(seconds), int(most)) for seconds, most in limits)
        self._windows = WindowCounter(self.limits)
        self._holiday_array = holiday_array(self.holidays)
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
        """Forget the recorded requests, and what the enforced limits had counted."""
        with self._lock:
            self._records.clear()
            self._windows = WindowCounter(self.limits)

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
        return candles(
            key,
            unit,
            interval,
            from_date,
            to_date,
            self.holidays,
            self.listings,
            self.last_days,
        )

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
            self._send(handler, Reply(200, body))
            return
        if method == "POST" and raw_path == "/_fake/clear":
            self.clear()
            self._send(handler, Reply(200, b'{"status":"success"}'))
            return
        route = parse_route(raw_path) if method == "GET" else None
        authorized = handler.headers.get("Authorization") == f"Bearer {self.token}"
        reply = self._reply(route, authorized, arrival)
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

    def _reply(self, route: Route | None, authorized: bool, arrival: float) -> Reply:
        if route is None:
            return error(404, "UDAPI100060")
        if not authorized:
            return error(401, "UDAPI100050")
        segment, _, ident = route.key.partition("|")
        if not segment or not ident or "|" in ident:
            return error(400, "UDAPI1021")
        if route.unit not in UNITS:
            return error(400, "UDAPI1146")
        if not route.interval.isdigit() or not interval_valid(route.unit, int(route.interval)):
            return error(400, "UDAPI1147")
        unit, interval = route.unit, int(route.interval)
        if route.intraday:
            from_date = to_date = datetime.now(IST).date()
        else:
            parsed_to = parse_date(route.to_date or "")
            if parsed_to is None:
                return error(400, "UDAPI1015")
            to_date = parsed_to
            if route.from_date is None:
                back = relativedelta(years=1) if unit in ("days", "weeks", "months") else None
                from_date = to_date - (back or relativedelta(months=1))
            else:
                parsed_from = parse_date(route.from_date)
                if parsed_from is None or parsed_from > to_date:
                    return error(400, "UDAPI1015")
                from_date = parsed_from
                if range_too_long(unit, interval, from_date, to_date):
                    return error(400, "UDAPI1148")
        if ident.startswith("UNKNOWN"):
            return error(400, "UDAPI100011")
        if self.limits:
            with self._lock:
                admitted = self._windows.admit(arrival)
            if not admitted:
                return Reply(429, error_body("UDAPI10005"), OVER_LIMIT)
        fault = self._next_fault(route.key)
        return self._faulted(fault, route.key, unit, interval, from_date, to_date)

    def _faulted(
        self, fault: str | None, key: str, unit: str, interval: int, from_date: date, to_date: date
    ) -> Reply:
        retry_now = {"Retry-After": "0"}
        if fault == "429":
            return Reply(429, error_body("UDAPI10005"), fault, retry_now)
        if fault == "500":
            return Reply(500, error_body("UDAPI100500"), fault)
        if fault == "503":
            return Reply(503, error_body("UDAPI100503"), fault, retry_now)
        if fault == "401":
            return Reply(401, error_body("UDAPI100050"), fault)
        if fault == "malformed":
            return Reply(200, MALFORMED_BODY, fault)
        if fault == "error_200":
            return Reply(200, error_body("UDAPI100500"), fault)
        if fault == "empty":
            return Reply(200, success_body("[]"), fault)
        listed = self.listings.get(key, DEFAULT_LISTING)
        rows = candles_json(
            key,
            unit,
            interval,
            from_date,
            to_date,
            self._holiday_array,
            listed,
            self.last_days.get(key),
            newest_first=self.order == "newest_first",
        )
        delay = self.timeout_sleep if fault == "timeout" else 0.0
        return Reply(200, success_body(rows), fault, delay=delay)

    @staticmethod
    def _send(handler: _Handler, reply: Reply) -> None:
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
