"""UpstoxSource through the real SDK against the fake Upstox server (a named test fake)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import time

import pandas as pd
import pytest

from breadth_assets.sources.base import PriceRequest, SourceError, TickerBars
from breadth_assets.sources.upstox.client import AUTH_MESSAGE
from breadth_assets.sources.upstox.source import UpstoxSource
from breadth_assets_testing.fake_upstox import FakeUpstox, max_in_window, write_instruments_master
from breadth_assets_tests.support import expected_bars

TOKEN = "tok-5f1c0a9e-secret-upstox-token"
START, END = dt.date(2014, 1, 1), dt.date(2024, 12, 31)


def key(index: int) -> str:
    return f"NSE_EQ|INE{index:03d}A01011"


def requests(count: int, start: dt.date = START, end: dt.date = END) -> list[PriceRequest]:
    return [PriceRequest(f"T{i:02d}", start, end, key(i)) for i in range(count)]


def make_source(server: FakeUpstox, tmp_path, token: str = TOKEN, **settings) -> UpstoxSource:
    settings = {
        "read_timeout": 0.5,
        "backoff_seconds": 0.001,
        "rate_limit_file": str(tmp_path / "upstox-requests.bin"),
        **settings,
    }
    return UpstoxSource(access_token=token, host=server.host, **settings)


def answers(source: UpstoxSource, batch: list[PriceRequest]) -> dict[str, TickerBars | SourceError]:
    return {request.ticker: answer for request, answer in source.fetch_many(batch)}


def test_with_a_fifth_of_requests_faulted_every_bar_lands_exactly_once(tmp_path):
    batch = requests(12)
    with FakeUpstox(token=TOKEN, fault_rate=0.2, seed=7, timeout_sleep=1.0) as server:
        got = answers(make_source(server, tmp_path), batch)
        faults = [r.fault for r in server.requests if r.fault]
    assert len(faults) >= 5
    assert {"429", "500", "503", "timeout", "malformed", "error_200"} >= set(faults)
    for request in batch:
        answer = got[request.ticker]
        assert isinstance(answer, TickerBars), answer
        expected = expected_bars(server, request.ticker, request.instrument_key, START, END)
        assert not answer.bars["date"].duplicated().any()
        pd.testing.assert_frame_equal(answer.bars, expected, check_dtype=False)


def test_daily_history_is_asked_for_in_chunks_of_at_most_five_years(tmp_path):
    with FakeUpstox(token=TOKEN) as server:
        answers(make_source(server, tmp_path), requests(1))
        ranges = sorted((r.from_date, r.to_date) for r in server.requests)
    assert ranges == [
        ("2014-01-01", "2018-12-31"),
        ("2019-01-01", "2023-12-31"),
        ("2024-01-01", "2024-12-31"),
    ]


def test_a_range_of_holidays_only_is_an_empty_answer_not_an_error(tmp_path):
    holidays = [dt.date(2024, 10, 31), dt.date(2024, 11, 1)]
    with FakeUpstox(token=TOKEN, holidays=holidays) as server:
        got = answers(make_source(server, tmp_path), requests(1, *holidays))
    assert isinstance(got["T00"], TickerBars)
    assert got["T00"].bars.empty


def test_request_times_never_exceed_the_configured_per_second_limit(tmp_path):
    with FakeUpstox(token=TOKEN) as server:
        answers(make_source(server, tmp_path, per_second=8), requests(10))
        times = [r.time for r in server.requests]
    assert len(times) == 30
    assert max_in_window(times, 1.0) <= 8


_FETCH_SCRIPT = """
import datetime as dt, json, sys
from breadth_assets.sources.base import PriceRequest
from breadth_assets.sources.upstox.source import UpstoxSource
host, token, rate_file, first = sys.argv[1:5]
source = UpstoxSource(access_token=token, host=host, rate_limit_file=rate_file, per_second=8,
                      read_timeout=2.0, backoff_seconds=0.001)
batch = [PriceRequest(f"P{i}", dt.date(2014, 1, 1), dt.date(2024, 12, 31),
                      f"NSE_EQ|INE{i:03d}A01011") for i in range(int(first), int(first) + 8)]
ok = sum(1 for _, answer in source.fetch_many(batch) if hasattr(answer, "bars"))
print(json.dumps({"ok": ok}))
"""


def test_two_processes_fetching_at_once_share_the_limit(tmp_path):
    rate_file = str(tmp_path / "shared-requests.bin")
    with FakeUpstox(token=TOKEN) as server:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", _FETCH_SCRIPT, server.host, TOKEN, rate_file, str(first)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for first in (0, 8)
        ]
        outputs = [process.communicate(timeout=120)[0] for process in processes]
        times = sorted(r.time for r in server.requests)
    assert [json.loads(out)["ok"] for out in outputs] == [8, 8]
    assert len(times) == 48
    assert max_in_window(times, 1.0) <= 8
    assert times[-1] - times[0] >= (48 - 8) / 8 - 0.5


def test_an_invalid_token_stops_the_fetch_at_once_with_a_clear_message(tmp_path):
    with FakeUpstox(token=TOKEN) as server:
        started = time.monotonic()
        got = answers(make_source(server, tmp_path, token="expired", workers=4), requests(20))
        seconds = time.monotonic() - started
        sent = len(server.requests)
    assert all(isinstance(answer, SourceError) for answer in got.values())
    assert all(AUTH_MESSAGE in str(answer) for answer in got.values())
    assert sent <= 4
    assert seconds < 5


def test_an_unknown_instrument_key_fails_only_its_ticker(tmp_path):
    batch = [*requests(3), PriceRequest("GHOST", START, END, "NSE_EQ|UNKNOWN1")]
    with FakeUpstox(token=TOKEN) as server:
        got = answers(make_source(server, tmp_path), batch)
    assert isinstance(got["GHOST"], SourceError)
    assert "GHOST" in str(got["GHOST"]) and "UDAPI100011" in str(got["GHOST"])
    assert all(isinstance(got[f"T0{i}"], TickerBars) for i in range(3))


def test_symbols_without_a_key_are_found_in_the_instruments_master(tmp_path):
    master = write_instruments_master(tmp_path / "NSE.json.gz", {"SBIN": key(5)})
    with FakeUpstox(token=TOKEN) as server:
        source = make_source(server, tmp_path, instruments=str(master))
        got = answers(source, [PriceRequest("SBIN", START, END)])
        asked = {r.key for r in server.requests}
    assert isinstance(got["SBIN"], TickerBars)
    assert asked == {key(5)}


def test_an_unknown_symbol_is_an_error_naming_it_and_the_others_go_on(tmp_path):
    master = write_instruments_master(tmp_path / "NSE.json.gz", {"SBIN": key(5)})
    batch = [PriceRequest("SBIN", START, END), PriceRequest("NOSUCH", START, END)]
    with FakeUpstox(token=TOKEN) as server:
        got = answers(make_source(server, tmp_path, instruments=str(master)), batch)
    assert isinstance(got["SBIN"], TickerBars)
    assert isinstance(got["NOSUCH"], SourceError)
    assert "NOSUCH" in str(got["NOSUCH"]) and "instruments master" in str(got["NOSUCH"])


def test_the_instrument_key_of_a_ticker_is_the_one_given_else_the_masters(tmp_path):
    master = write_instruments_master(tmp_path / "NSE.json.gz", {"SBIN": key(5), "TCS": key(6)})
    source = UpstoxSource(access_token=TOKEN, instruments=str(master))
    given = {"SBIN": None, "TCS": key(7), "NOSUCH": None}
    assert source.instrument_keys(given) == {"SBIN": key(5), "TCS": key(7)}


def test_an_error_that_outlasts_the_retries_names_the_ticker_and_date_range(tmp_path):
    with FakeUpstox(token=TOKEN) as server:
        server.inject("error_200", times=3, key=key(0))
        got = answers(make_source(server, tmp_path, max_attempts=3), requests(1))
    message = str(got["T00"])
    assert message.startswith("T00: ")
    assert "2014-01-01..2018-12-31" in message
    assert "gave up after 3 attempts" in message


def test_the_token_appears_in_no_log_line_or_error(tmp_path, caplog):
    batch = [*requests(2), PriceRequest("GHOST", START, END, "NSE_EQ|UNKNOWN1")]
    with caplog.at_level(logging.DEBUG), FakeUpstox(token=TOKEN, fault_rate=0.3) as server:
        got = answers(make_source(server, tmp_path), batch)
        bad = answers(make_source(server, tmp_path, token=TOKEN + "x"), requests(1))
    texts = [caplog.text, *map(str, got.values()), *map(str, bad.values())]
    assert "retry" in caplog.text
    assert not any(TOKEN in text for text in texts)
    assert TOKEN not in repr(UpstoxSource(access_token=TOKEN))


def test_after_the_first_401_no_queued_request_is_sent_and_their_slots_are_given_back(tmp_path):
    rate_file = tmp_path / "upstox-requests.bin"
    with FakeUpstox(token=TOKEN) as server:
        source = make_source(server, tmp_path, token="expired", per_second=2, workers=8)
        got = answers(source, requests(8))
        sent = len(server.requests)
    assert sent == 1
    assert {str(answer) for answer in got.values()} == {
        f"{ticker}: {AUTH_MESSAGE}" for ticker in got
    } and len(got) == 8
    assert rate_file.stat().st_size == 8 * sent


@pytest.mark.parametrize("workers", [0, 65, True])
def test_workers_outside_what_the_universe_allows_are_refused_when_the_source_is_built(workers):
    with pytest.raises(ValueError, match="expected a whole number from 1 to 64"):
        UpstoxSource(access_token="t", workers=workers)
