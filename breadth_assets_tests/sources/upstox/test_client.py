"""UpstoxClient against FakeUpstox on 127.0.0.1, through the real SDK, urllib3 and limiter."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from breadth_assets.sources.upstox.client import (
    AUTH_MESSAGE,
    RetryPolicy,
    UpstoxAuthError,
    UpstoxClient,
    UpstoxError,
    error_detail,
)
from breadth_assets.sources.upstox.history import Timeframe
from breadth_assets.sources.upstox.limiter import DEFAULT_MARGIN, RateLimiter, RateLimits
from breadth_assets_testing.fake_upstox import FakeUpstox, max_in_window

TOKEN = "tok-4f9c2e-SECRET-b71d"
WRONG_TOKEN = "tok-0000-WRONG-SECRET-ffff"
SBIN = "NSE_EQ|INE062A01020"
READ_TIMEOUT = 0.3
ATTEMPTS = 4


class CountingLimiter(RateLimiter):
    """The real file-backed limiter, counting how often a slot was asked for."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.acquired = 0

    def acquire(self, cancel=None) -> float:
        self.acquired += 1
        return super().acquire(cancel)


@pytest.fixture
def server() -> Iterator[FakeUpstox]:
    with FakeUpstox(token=TOKEN, timeout_sleep=READ_TIMEOUT + 0.4) as fake:
        yield fake


@pytest.fixture
def limiter(tmp_path: Path) -> CountingLimiter:
    counting = CountingLimiter(tmp_path / "rl.bin", RateLimits(per_second=50))
    counting.start_empty()  # a new setup known to be idle: no assumed-full second to wait out
    return counting


def values(limiter: RateLimiter) -> tuple[float, ...]:
    """The limiter file's float64s: request times, and a 429's pause as the negated time it
    ends."""
    data = limiter.path.read_bytes()
    return struct.unpack(f"<{len(data) // 8}d", data)


def slots_in(limiter: RateLimiter) -> int:
    return sum(value >= 0 for value in values(limiter))


def paused_until(limiter: RateLimiter) -> float:
    return max((-value for value in values(limiter) if value < 0), default=0.0)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(
    server: FakeUpstox, limiter: RateLimiter, token: str = TOKEN, sleeps: list | None = None
) -> UpstoxClient:
    return UpstoxClient(
        host=server.host,
        token=token,
        limiter=limiter,
        timeouts=(1.0, READ_TIMEOUT),
        retry=RetryPolicy(max_attempts=ATTEMPTS, backoff_seconds=0.001),
        sleep=sleeps.append if sleeps is not None else lambda seconds: None,
    )


@pytest.fixture
def client(server, limiter, sleeps) -> UpstoxClient:
    return make_client(server, limiter, sleeps=sleeps)


def rows(frame: pd.DataFrame) -> list[tuple]:
    return [
        (ts.date(), o, h, lo, c, v)
        for ts, o, h, lo, c, v in frame[
            ["ts", "open", "high", "low", "close", "volume"]
        ].itertuples(index=False, name=None)
    ]


def expected_rows(candles: list[list]) -> list[tuple]:
    """Upstox rows [ts, o, h, l, c, v, oi] as (trading date, floats), read independently."""
    return [
        (date.fromisoformat(ts[:10]), float(o), float(h), float(lo), float(c), float(v))
        for ts, o, h, lo, c, v, _oi in candles
    ]


def assert_token_absent(error: BaseException) -> None:
    text = "".join(traceback.format_exception(error)) + repr(error) + str(error)
    assert TOKEN not in text
    assert WRONG_TOKEN not in text


# --- success -------------------------------------------------------------------------------------


def test_daily_range_returns_exactly_the_served_candles_oldest_first(server, client):
    start, end = date(2024, 11, 1), date(2025, 1, 31)
    frame = client.candles(SBIN, start, end)
    expected = server.expected(SBIN, "days", 1, start, end)
    assert len(expected) == 66  # weekdays Nov 2024 - Jan 2025 (the fake has no holidays)
    assert rows(frame) == expected_rows(expected)
    assert frame["ts"].is_monotonic_increasing
    assert server.requests[0].path == f"/v3/historical-candle/{SBIN}/days/1/2025-01-31/2024-11-01"


def test_intraday_candles_keep_their_ist_clock_times(server, client):
    day = date(2025, 1, 3)
    frame = client.candles(SBIN, day, day, Timeframe("minutes", 30))
    expected = server.expected(SBIN, "minutes", 30, day, day)
    assert len(frame) == len(expected) == 13  # 09:15, 09:45, ..., 15:15
    assert frame["ts"].iloc[0] == pd.Timestamp(2025, 1, 3, 9, 15)
    assert frame["ts"].iloc[-1] == pd.Timestamp(2025, 1, 3, 15, 15)
    assert frame["close"].tolist() == [float(c[4]) for c in expected]


def test_requests_carry_the_bearer_token(server, client):
    client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert [r.authorized for r in server.requests] == [True]


def test_each_request_takes_one_limiter_slot(server, client, limiter):
    client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    client.candles(SBIN, date(2025, 2, 1), date(2025, 2, 28))
    assert limiter.acquired == 2
    assert slots_in(limiter) == 2


def test_empty_candles_answer_is_an_empty_frame_not_an_error(server, client):
    server.inject("empty")
    frame = client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert len(frame) == 0
    assert list(frame.columns) == ["ts", "open", "high", "low", "close", "volume"]
    assert len(server.requests) == 1


# --- authentication ------------------------------------------------------------------------------


def test_wrong_token_raises_auth_error_after_one_request(server, limiter):
    client = make_client(server, limiter, token=WRONG_TOKEN)
    with pytest.raises(UpstoxAuthError) as caught:
        client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert str(caught.value) == AUTH_MESSAGE
    assert [(r.status, r.authorized) for r in server.requests] == [(401, False)]


def test_401_for_a_once_valid_token_is_not_retried(server, client):
    server.inject("401")
    with pytest.raises(UpstoxAuthError, match=f"^{AUTH_MESSAGE}$"):
        client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert len(server.requests) == 1


@pytest.mark.parametrize("token", ["", "   "])
def test_missing_token_is_refused_before_any_request(server, limiter, token):
    with pytest.raises(UpstoxAuthError, match=f"^{AUTH_MESSAGE}$"):
        make_client(server, limiter, token=token)
    assert server.requests == []


# --- retries -------------------------------------------------------------------------------------


def test_429_is_retried_by_the_client_with_a_new_limiter_slot(server, client, limiter, sleeps):
    # The fake's 429 carries Retry-After: 0; urllib3 must not resend it behind the limiter's back.
    server.inject("429")
    frame = client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert len(frame) == 23
    assert [r.status for r in server.requests] == [429, 200]
    assert limiter.acquired == 2
    assert slots_in(limiter) == 2
    # The pause is in the shared file, for every process; the retry waited for it there, not
    # in a sleep of its own.
    refused, retried = (r.time for r in server.requests)
    assert refused + 1 + DEFAULT_MARGIN <= paused_until(limiter) <= retried
    assert sleeps == []


@pytest.mark.parametrize("kind", ["500", "503", "timeout", "malformed", "error_200"])
def test_transient_fault_is_retried_then_succeeds(server, client, limiter, kind):
    server.inject(kind)
    start, end = date(2025, 1, 1), date(2025, 1, 31)
    frame = client.candles(SBIN, start, end)
    assert rows(frame) == expected_rows(server.expected(SBIN, "days", 1, start, end))
    assert [r.fault for r in server.requests] == [kind, None]
    assert limiter.acquired == 2


def test_retries_wait_an_exponentially_growing_jittered_delay(server, client, sleeps):
    server.inject("500", times=3)
    client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    # backoff_seconds=0.001: ceilings 0.001, 0.002, 0.004, each jittered into [half, whole].
    assert len(sleeps) == 3
    for slept, ceiling in zip(sleeps, [0.001, 0.002, 0.004], strict=True):
        assert ceiling / 2 <= slept <= ceiling


def test_persistent_fault_gives_up_after_max_attempts_with_the_last_reason(server, client, sleeps):
    server.inject("500", times=10)
    with pytest.raises(UpstoxError) as caught:
        client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert not isinstance(caught.value, UpstoxAuthError)
    assert str(caught.value) == (
        "gave up after 4 attempts: HTTP 500 UDAPI100500: "
        "Something went wrong. Please try after some time"
    )
    assert len(server.requests) == ATTEMPTS
    assert len(sleeps) == ATTEMPTS - 1  # no wait after the last attempt


def test_persistent_timeouts_give_up_naming_the_read_timeout(server, client):
    server.inject("timeout", times=10)
    with pytest.raises(UpstoxError, match=r"^gave up after 4 attempts: no answer within 0\.3 s$"):
        client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert len(server.requests) == ATTEMPTS


def closed_port_client(limiter: RateLimiter, attempts: int = 2) -> UpstoxClient:
    """A client of a host where nothing listens any more: every connection is refused."""
    with FakeUpstox(token=TOKEN) as gone:
        host = gone.host
    return UpstoxClient(
        host=host,
        token=TOKEN,
        limiter=limiter,
        timeouts=(0.5, 0.5),
        retry=RetryPolicy(max_attempts=attempts, backoff_seconds=0.001),
        sleep=lambda seconds: None,
    )


def test_refused_connection_is_retried_then_gives_up(limiter):
    client = closed_port_client(limiter, attempts=2)
    with pytest.raises(UpstoxError, match=r"^gave up after 2 attempts: "):
        client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert limiter.acquired == 2


def test_refused_connection_is_reported_as_a_connection_failure_not_a_timeout(limiter):
    client = closed_port_client(limiter, attempts=1)
    with pytest.raises(UpstoxError, match=r"^gave up after 1 attempts: connection failed"):
        client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))


_THROTTLED = textwrap.dedent(
    """
    import datetime as dt, os, sys, time
    from breadth_assets.sources.upstox.client import RetryPolicy, UpstoxClient
    from breadth_assets.sources.upstox.limiter import RateLimiter
    from breadth_assets.sources.upstox.rate_limits import RateLimits
    host, token, rate_file, go, first, count = sys.argv[1:7]
    client = UpstoxClient(host, token, RateLimiter(rate_file, RateLimits(4, 500, 2000)),
                          retry=RetryPolicy(3, 0.001))
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    for i in range(int(first), int(first) + int(count)):
        client.candles(f"NSE_EQ|INE{i:03d}A01011", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    """
)


def test_a_429_in_one_process_pauses_another_sharing_the_rate_file(tmp_path):
    rate_file, go = tmp_path / "rate.bin", tmp_path / "go"
    RateLimiter(rate_file).start_empty()
    with FakeUpstox(token=TOKEN) as upstox:
        upstox.inject("429", key="NSE_EQ|INE100A01011")  # the other process's first request
        argv = [sys.executable, "-c", _THROTTLED, upstox.host, TOKEN, str(rate_file), str(go)]
        children = [
            subprocess.Popen(
                [*argv, str(first), str(count)],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
            )
            for first, count in ((0, 12), (100, 1))
        ]
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        for child in children:
            child.communicate(timeout=120)
            assert child.returncode == 0
        records = upstox.requests
    (refused,) = [r.time for r in records if r.status == 429]
    # The pause lasts 1.3 s from when the process that got the 429 heard of it; requests
    # already on their way when it was recorded arrive within 0.25 s. At 4 a second (one every
    # 0.3 s) the other process would have sent 2 or 3 in between without it.
    assert [r.time for r in records if refused + 0.25 < r.time < refused + 1.0] == []
    assert sorted(r.status for r in records) == [200] * 13 + [429]
    assert max_in_window([r.time for r in records], 1.0) <= 4


# --- errors that are not retried -----------------------------------------------------------------


def test_unknown_instrument_is_not_retried_and_says_upstox_code(server, client):
    with pytest.raises(UpstoxError) as caught:
        client.candles("NSE_EQ|UNKNOWN1", date(2025, 1, 1), date(2025, 1, 31))
    assert str(caught.value) == "HTTP 400 UDAPI100011: Invalid Instrument key"
    assert len(server.requests) == 1


def test_range_longer_than_upstox_allows_is_not_retried_and_says_upstox_code(server, client):
    with pytest.raises(UpstoxError, match=r"^HTTP 400 UDAPI1148: Invalid date range"):
        client.candles(SBIN, date(2014, 1, 1), date(2024, 12, 31))  # 11 years of days
    assert len(server.requests) == 1


def test_malformed_instrument_key_is_not_retried(server, client):
    with pytest.raises(UpstoxError, match=r"^HTTP 400 UDAPI1021: "):
        client.candles("SBIN", date(2025, 1, 1), date(2025, 1, 31))
    assert len(server.requests) == 1


# --- the token never leaks -----------------------------------------------------------------------


def test_token_is_absent_from_the_auth_error(server, limiter):
    client = make_client(server, limiter, token=WRONG_TOKEN)
    with pytest.raises(UpstoxAuthError) as caught:
        client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert_token_absent(caught.value)


def test_token_is_absent_from_a_400_error(server, client):
    with pytest.raises(UpstoxError) as caught:
        client.candles("NSE_EQ|UNKNOWN1", date(2025, 1, 1), date(2025, 1, 31))
    assert_token_absent(caught.value)


@pytest.mark.parametrize("kind", ["500", "429", "timeout", "error_200"])
def test_token_is_absent_from_a_gave_up_error(server, client, kind):
    server.inject(kind, times=10)
    with pytest.raises(UpstoxError) as caught:
        client.candles(SBIN, date(2025, 1, 1), date(2025, 1, 31))
    assert_token_absent(caught.value)


def test_token_is_absent_from_the_client_repr(client):
    assert TOKEN not in repr(client)


# --- RetryPolicy.delay ---------------------------------------------------------------------------


def test_backoff_ceiling_doubles_per_attempt_up_to_the_cap():
    policy = RetryPolicy(backoff_seconds=0.5, backoff_cap_seconds=30.0)
    rng = random.Random(7)
    # min(30, 0.5 * 2 ** (attempt - 1)) for attempts 1..9, worked out by hand.
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    for attempt, ceiling in enumerate(ceilings, start=1):
        for _ in range(200):
            assert 0.5 * ceiling <= policy.delay(attempt, rng) <= ceiling, attempt


def test_backoff_is_jittered_across_the_upper_half():
    policy = RetryPolicy(backoff_seconds=1.0, backoff_cap_seconds=30.0)
    rng = random.Random(11)
    delays = [policy.delay(3, rng) for _ in range(500)]  # ceiling 4 s
    assert len(set(delays)) > 400
    assert min(delays) < 2.1
    assert max(delays) > 3.9


def test_backoff_is_reproducible_with_a_seeded_random():
    policy = RetryPolicy()
    first = [policy.delay(a, random.Random(3)) for a in range(1, 6)]
    again = [policy.delay(a, random.Random(3)) for a in range(1, 6)]
    assert first == again


# --- error_detail --------------------------------------------------------------------------------


def test_error_detail_prefers_error_code_to_error_code_camel_case():
    body = (
        b'{"status":"error","errors":[{"errorCode":"OLD","error_code":"UDAPI1148","message":"m"}]}'
    )
    assert error_detail(body) == "UDAPI1148: m"


def test_error_detail_falls_back_to_camel_case_error_code():
    body = '{"status":"error","errors":[{"errorCode":"UDAPI1015","message":"Invalid date"}]}'
    assert error_detail(body) == "UDAPI1015: Invalid date"


def test_error_detail_notes_a_missing_code_or_message():
    assert error_detail(b'{"errors":[{}]}') == "no error code: no message"


@pytest.mark.parametrize(
    "body",
    [b"<html>502 Bad Gateway</html>", b'{"errors": []}', b'{"message": "x"}', b"[1]", b"\xff\xfe"],
)
def test_error_detail_tolerates_a_body_that_is_not_an_upstox_error(body):
    assert error_detail(body).startswith("unreadable error body ")


def test_error_detail_quotes_a_short_prefix_of_an_unreadable_body():
    detail = error_detail(b"<html>" + b"x" * 500)
    assert detail.startswith("unreadable error body '<html>xxx")
    assert len(detail) < 160


@pytest.mark.parametrize("body", [None, b"", ""])
def test_error_detail_says_when_there_is_no_body(body):
    assert error_detail(body) == "no response body"
