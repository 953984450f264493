"""FakeUpstox: a named test fake of Upstox's v3 historical-candle API, for tests and benchmarks.

It is not Upstox. It serves deterministic synthetic candles over plain HTTP on 127.0.0.1 with the
documented paths, auth, error codes and body shapes (upstox.com/developer/api-documentation), so a
client can be exercised end to end (SDK, urllib3, threads, retries) without the network. It can
inject faults (429, 500, 503, read timeouts, truncated JSON, error bodies with HTTP 200), enforce
rate limits as Upstox does (429 over them, `limits`), and records every request with its arrival
time so tests can check retries and rate limits.

Run it in another process with ``python -m breadth_assets_testing.fake_upstox --token T``: it
prints ``READY http://127.0.0.1:PORT`` and serves until SIGTERM/SIGINT.

- `server`: the HTTP server (`FakeUpstox`), its fault injection and request records;
- `protocol`: the API's paths, validation, error codes and bodies (`RecordedRequest`);
- `market`: the deterministic candles it serves (`candles`, the exact answer to a request), and
  a symbol's instrument key changing on a day (`KeyChange`, as a split's new ISIN changes it);
- `instruments`: a file shaped like Upstox's instruments master (`write_instruments_master`),
  also as published after key changes;
- `request_windows`: counting requests in sliding windows (`max_in_window`, `over_limit`);
- `cli`: the subprocess mode (`main`).
"""

from breadth_assets_testing.fake_upstox.cli import main
from breadth_assets_testing.fake_upstox.instruments import write_instruments_master
from breadth_assets_testing.fake_upstox.market import (
    DAILY_HISTORY_START,
    DEFAULT_LISTING,
    INTRADAY_HISTORY_START,
    IST,
    SESSION_CLOSE_MINUTE,
    SESSION_OPEN_MINUTE,
    UNITS,
    KeyChange,
    candles,
)
from breadth_assets_testing.fake_upstox.protocol import (
    FAULT_KINDS,
    INJECT_ONLY_KINDS,
    MALFORMED_BODY,
    OVER_LIMIT,
    RecordedRequest,
)
from breadth_assets_testing.fake_upstox.request_windows import max_in_window, over_limit
from breadth_assets_testing.fake_upstox.server import FakeUpstox

__all__ = [
    "DAILY_HISTORY_START",
    "DEFAULT_LISTING",
    "FAULT_KINDS",
    "INJECT_ONLY_KINDS",
    "INTRADAY_HISTORY_START",
    "IST",
    "MALFORMED_BODY",
    "OVER_LIMIT",
    "SESSION_CLOSE_MINUTE",
    "SESSION_OPEN_MINUTE",
    "UNITS",
    "FakeUpstox",
    "KeyChange",
    "RecordedRequest",
    "candles",
    "main",
    "max_in_window",
    "over_limit",
    "write_instruments_master",
]
