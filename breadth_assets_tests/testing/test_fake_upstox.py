"""The FakeUpstox test fake behaves like Upstox's v3 historical-candle API, seen through the SDK."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import upstox_client
import urllib3
from upstox_client.rest import ApiException

from breadth_assets.sources.upstox.instruments import equity_keys
from breadth_assets_testing.fake_upstox import (
    OVER_LIMIT,
    FakeUpstox,
    KeyChange,
    max_in_window,
    over_limit,
    write_instruments_master,
)

SBIN = "NSE_EQ|INE062A01020"
TOKEN = "test-token"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[FakeUpstox]:
    with FakeUpstox(token=TOKEN) as fake:
        yield fake


def make_api(fake: FakeUpstox, token: str = TOKEN) -> upstox_client.HistoryV3Api:
    cfg = upstox_client.Configuration()
    cfg.host = fake.host
    api = upstox_client.HistoryV3Api(upstox_client.ApiClient(cfg))
    api.api_client.set_default_header("Authorization", f"Bearer {token}")
    return api


def fetch(api: upstox_client.HistoryV3Api, key: str, to: str, from_: str) -> list[list]:
    response = api.get_historical_candle_data1(key, "days", 1, to, from_, _request_timeout=(2, 5))
    return response.data.candles


def error_code(exc: ApiException) -> str:
    return json.loads(exc.body)["errors"][0]["error_code"]


def test_sdk_success_returns_expected_candles_newest_first(server: FakeUpstox) -> None:
    got = fetch(make_api(server), SBIN, "2025-01-31", "2025-01-01")
    expected = server.expected(SBIN, "days", 1, date(2025, 1, 1), date(2025, 1, 31))
    assert len(expected) == 23
    assert got == list(reversed(expected))


def test_oldest_first_order_serves_candles_as_the_docs_show() -> None:
    with FakeUpstox(token=TOKEN, order="oldest_first") as fake:
        got = fetch(make_api(fake), SBIN, "2025-01-31", "2025-01-01")
        assert got == fake.expected(SBIN, "days", 1, date(2025, 1, 1), date(2025, 1, 31))


def test_wrong_token_is_401_udapi100050(server: FakeUpstox) -> None:
    with pytest.raises(ApiException) as info:
        fetch(make_api(server, token="wrong"), SBIN, "2025-01-31", "2025-01-01")
    assert info.value.status == 401
    assert error_code(info.value) == "UDAPI100050"


def test_range_over_a_decade_is_400_udapi1148(server: FakeUpstox) -> None:
    with pytest.raises(ApiException) as info:
        fetch(make_api(server), SBIN, "2025-01-10", "2015-01-09")
    assert info.value.status == 400
    assert error_code(info.value) == "UDAPI1148"
    assert fetch(make_api(server), SBIN, "2025-01-10", "2015-01-10")


def test_unknown_key_is_400_udapi100011(server: FakeUpstox) -> None:
    with pytest.raises(ApiException) as info:
        fetch(make_api(server), "NSE_EQ|UNKNOWN1", "2025-01-31", "2025-01-01")
    assert info.value.status == 400
    assert error_code(info.value) == "UDAPI100011"


def test_injected_429_is_recorded_and_silently_retried_by_default_sdk(server: FakeUpstox) -> None:
    server.inject("429")
    assert fetch(make_api(server), SBIN, "2025-01-31", "2025-01-01")
    assert [(r.status, r.fault) for r in server.requests] == [(429, "429"), (200, None)]


def test_records_hold_no_token_only_whether_authorized(server: FakeUpstox) -> None:
    fetch(make_api(server), SBIN, "2025-01-31", "2025-01-01")
    with pytest.raises(ApiException):
        fetch(make_api(server, token="wrong"), SBIN, "2025-01-31", "2025-01-01")
    records = server.requests
    assert [r.authorized for r in records] == [True, False]
    assert records[0].key == SBIN and records[0].from_date == "2025-01-01"
    assert TOKEN not in repr(records) and "wrong" not in repr(records)


def test_timeout_fault_outlasts_a_short_read_timeout() -> None:
    with FakeUpstox(token=TOKEN, timeout_sleep=0.6) as fake:
        fake.inject("timeout")
        http = urllib3.PoolManager()
        url = f"{fake.host}/v3/historical-candle/NSE_EQ%7CA/days/1/2025-01-31/2025-01-01"
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            http.request(
                "GET",
                url,
                headers={"Authorization": f"Bearer {TOKEN}"},
                retries=False,
                timeout=urllib3.Timeout(connect=1, read=0.2),
            )
        assert fake.requests[0].fault == "timeout"


def test_fault_rate_one_fails_every_request_with_the_chosen_kind() -> None:
    with FakeUpstox(token=TOKEN, fault_rate=1.0, fault_kinds=("500",)) as fake:
        with pytest.raises(ApiException) as info:
            fetch(make_api(fake), SBIN, "2025-01-31", "2025-01-01")
        assert info.value.status == 500
        assert error_code(info.value) == "UDAPI100500"


def test_holidays_and_listing_date_remove_daily_candles() -> None:
    holiday, listed = date(2025, 1, 14), date(2025, 1, 20)
    with FakeUpstox(token=TOKEN, holidays=[holiday], listings={"NSE_EQ|NEW": listed}) as fake:
        old = fake.expected(SBIN, "days", 1, date(2025, 1, 13), date(2025, 1, 17))
        new = fake.expected("NSE_EQ|NEW", "days", 1, date(2025, 1, 1), date(2025, 1, 31))
    assert [c[0][:10] for c in old] == ["2025-01-13", "2025-01-15", "2025-01-16", "2025-01-17"]
    assert new[0][0] == "2025-01-20T00:00:00+05:30"


SBIN_SPLIT = KeyChange("SBIN", SBIN, "NSE_EQ|INE062A01038", date(2025, 1, 15))


def test_a_changed_key_serves_the_old_key_before_the_day_and_the_new_key_from_it() -> None:
    with FakeUpstox(token=TOKEN, key_changes=[SBIN_SPLIT]) as fake:
        api = make_api(fake)
        old = fetch(api, SBIN_SPLIT.old, "2025-01-31", "2025-01-01")
        new = fetch(api, SBIN_SPLIT.new, "2025-01-31", "2025-01-01")
        expected_new = fake.expected(SBIN_SPLIT.new, "days", 1, date(2025, 1, 1), date(2025, 1, 31))
    assert max(c[0][:10] for c in old) == "2025-01-14"
    assert min(c[0][:10] for c in new) == "2025-01-15"
    assert new == list(reversed(expected_new))


def test_the_master_after_a_key_change_lists_the_symbol_under_its_new_key(tmp_path: Path) -> None:
    path = write_instruments_master(tmp_path / "NSE.json.gz", {"SBIN": SBIN}, [SBIN_SPLIT])
    assert equity_keys(path) == {"SBIN": SBIN_SPLIT.new}


def test_prices_are_consistent_and_some_are_json_integers(server: FakeUpstox) -> None:
    rows = server.expected(SBIN, "days", 1, date(2024, 1, 1), date(2024, 12, 31))
    assert all(0 < low <= min(o, c) and max(o, c) <= high for _, o, high, low, c, _, _ in rows)
    assert any(isinstance(price, int) for row in rows for price in row[1:5])
    assert all(row[6] == 0 and isinstance(row[5], int) for row in rows)


def test_intraday_minutes_cover_the_session_before_15_30(server: FakeUpstox) -> None:
    rows = server.expected(SBIN, "minutes", 5, date(2025, 1, 3), date(2025, 1, 3))
    assert rows[0][0] == "2025-01-03T09:15:00+05:30"
    assert rows[-1][0] == "2025-01-03T15:25:00+05:30"
    assert len(rows) == 75


def test_subprocess_prints_ready_and_serves_recorded_requests() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "breadth_assets_testing.fake_upstox", "--token", "T"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:")
        host = line.split()[1]
        request = urllib.request.Request(
            f"{host}/v3/historical-candle/NSE_EQ%7CA/days/1/2025-01-31/2025-01-01",
            headers={"Authorization": "Bearer T"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["status"] == "success"
        with urllib.request.urlopen(f"{host}/_fake/requests", timeout=5) as response:
            records = json.load(response)
        assert [(r["key"], r["status"], r["authorized"]) for r in records] == [
            ("NSE_EQ|A", 200, True)
        ]
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_max_in_window_counts_a_half_open_window() -> None:
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5, 1.6], 1.0) == 4
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1
    assert max_in_window([], 1.0) == 0


def test_over_limit_counts_the_arrivals_a_server_would_refuse() -> None:
    times = [0.0, 0.3, 0.6, 0.9, 1.0, 1.95, 2.0]
    assert over_limit(times, 1.0, 3) == 2  # 0.9 and 1.0 each find 3 others in their second
    assert over_limit(times, 1.0, 4) == 0
    assert over_limit(times, 2.0, 5) == 2
    assert over_limit([], 1.0, 1) == 0


def test_limits_answer_429_udapi10005_to_a_request_over_them() -> None:
    with FakeUpstox(token=TOKEN, limits=((60.0, 2),)) as fake:
        api = make_api(fake)
        for _ in range(2):
            fetch(api, SBIN, "2025-01-31", "2025-01-01")
        with pytest.raises(ApiException) as caught:
            fetch(api, SBIN, "2025-01-31", "2025-01-01")  # no Retry-After: the SDK gives up
        assert caught.value.status == 429
        assert error_code(caught.value) == "UDAPI10005"
        assert "Retry-After" not in caught.value.headers
        assert [(r.status, r.fault) for r in fake.requests] == [
            (200, None),
            (200, None),
            (429, OVER_LIMIT),
        ]
        fake.clear()  # forgets what the limits counted too
        fetch(api, SBIN, "2025-01-31", "2025-01-01")


def test_subprocess_enforces_the_limits_it_is_given() -> None:
    command = [sys.executable, "-m", "breadth_assets_testing.fake_upstox", "--token", "T"]
    proc = subprocess.Popen(
        [*command, "--limits", "50,1,2000"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        host = proc.stdout.readline().split()[1]
        statuses = []
        for _ in range(2):
            request = urllib.request.Request(
                f"{host}/v3/historical-candle/NSE_EQ%7CA/days/1/2025-01-31/2025-01-01",
                headers={"Authorization": "Bearer T"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as error:
                statuses.append(error.code)
        assert statuses == [200, 429]  # one a minute
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_instruments_master_hides_each_equity_among_decoys(tmp_path: Path) -> None:
    path = write_instruments_master(tmp_path / "NSE.json.gz", {"SBIN": SBIN})
    records = json.loads(gzip.decompress(path.read_bytes()))
    same_symbol = [r for r in records if r["trading_symbol"] == "SBIN"]
    assert {r["segment"] for r in same_symbol} == {"BSE_EQ", "NSE_EQ"}
    equity = [r for r in records if r["segment"] == "NSE_EQ" and r["instrument_type"] == "EQ"]
    assert [(r["trading_symbol"], r["instrument_key"], r["isin"]) for r in equity] == [
        ("SBIN", SBIN, "INE062A01020")
    ]
    assert {"NSE_FO", "NSE_INDEX"} <= {r["segment"] for r in records}
