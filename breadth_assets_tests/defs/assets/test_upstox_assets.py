"""The ticker and intraday assets on the Upstox source, through Dagster, against FakeUpstox.

FakeUpstox is a test fake of Upstox's API; everything else is real: the SDK, the machine-wide
limiter (on a file of the test's own), DuckDB and Dagster's event log.
"""

from __future__ import annotations

import datetime as dt
import logging

import dagster as dg
import pandas as pd
import pytest

from breadth_assets.definitions import build_definitions
from breadth_assets.defs.assets import build_intraday_prices, build_ticker_assets
from breadth_assets.defs.batches import range_tags
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.sources.upstox.client import AUTH_MESSAGE
from breadth_assets.sources.upstox.source import UpstoxSource
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.universe.file import load_universe
from breadth_assets_testing.fake_upstox import FakeUpstox, write_instruments_master
from breadth_assets_tests.support import add_tickers, expected_bars

TOKEN = "tok-93be7d-upstox-secret"
TICKERS = ["ALFA", "BETA", "GAMA", "DLTA", "EPSI", "ZETA"]
KEYS = {ticker: f"NSE_EQ|INE{i:03d}B01011" for i, ticker in enumerate(TICKERS)}
VALUES = ("open", "high", "low", "close", "volume")
START, END = "2014-01-01", "2024-12-31"
ticker_assets = build_ticker_assets(batch_size=50, store_kind="duckdb")
intraday_prices = build_intraday_prices(batch_size=50, store_kind="duckdb")


def write_universe(folder, keys=KEYS, timeframes=("minutes/15", "hours/1"), start=START):
    """An NSE universe on Upstox; ZETA has no key and is looked up in the instruments master."""
    master = write_instruments_master(folder / "NSE.json.gz", {"ZETA": keys["ZETA"]})
    lines = [
        "market: NSE",
        f"start_date: {start}",
        "source:",
        "  kind: upstox",
        f"  instruments: {master.name}",
        f"  timeframes: [{', '.join(timeframes)}]",
        "tickers:",
    ]
    for ticker in TICKERS:
        if ticker == "ZETA":
            lines.append(f"  - {ticker}")
        else:
            lines += [f"  - symbol: {ticker}", f'    instrument_key: "{keys[ticker]}"']
    path = folder / "universe.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def instance_with_tickers(instance):
    """The instance with this module's TICKERS as partitions."""
    return add_tickers(instance, TICKERS)


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN", TOKEN)
    return TOKEN


def source(server: FakeUpstox, tmp_path) -> UpstoxSource:
    return UpstoxSource(
        access_token=dg.EnvVar("UPSTOX_ACCESS_TOKEN"),
        host=server.host,
        instruments=str(tmp_path / "NSE.json.gz"),
        rate_limit_file=str(tmp_path / "upstox-requests.bin"),
        read_timeout=0.5,
        backoff_seconds=0.001,
    )


def materialize(instance, assets, server, tmp_path, universe, store, end=END, tickers=TICKERS):
    ops = {asset.op.name: {"config": {"end_date": end}} for asset in assets}
    return dg.materialize(
        assets,
        instance=instance,
        resources={
            "store": store,
            "price_source": source(server, tmp_path),
            "universe": UniverseFile(path=str(universe)),
        },
        tags=range_tags(tickers[0], tickers[-1]),
        run_config={"ops": ops},
        raise_on_error=False,
    )


def expected_intraday(server, ticker, unit, interval, start, end) -> pd.DataFrame:
    candles = server.expected(KEYS[ticker], unit, interval, start, end)
    return pd.DataFrame(
        {
            "ticker": ticker,
            "ts": pd.to_datetime([c[0][:19] for c in candles]).astype("datetime64[us]"),
            "unit": unit,
            "interval": interval,
            **{
                name: [float(c[i + 1]) for c in candles]
                for i, name in enumerate(("open", "high", "low", "close", "volume"))
            },
        }
    )


def event_text(instance, result) -> str:
    return "\n".join(str(record) for record in instance.all_logs(result.run_id))


def test_with_a_fifth_of_requests_faulted_every_bar_lands_exactly_once(
    instance_with_tickers, token, tmp_path
):
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    universe = write_universe(tmp_path)
    with FakeUpstox(token=TOKEN, fault_rate=0.2, seed=3, timeout_sleep=1.0) as server:
        result = materialize(
            instance_with_tickers, [ticker_assets], server, tmp_path, universe, store
        )
        faults = [r.fault for r in server.requests if r.fault]
    assert result.success
    assert len(faults) >= 2
    stored = store.read_prices(TICKERS)
    assert not stored.duplicated(["ticker", "date"]).any()
    for ticker in TICKERS:
        got = stored[stored["ticker"] == ticker].reset_index(drop=True)
        want = expected_bars(
            server, ticker, KEYS[ticker], *map(dt.date.fromisoformat, (START, END))
        )
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert len(store.read_indicators(TICKERS)) == len(stored)
    assert instance_with_tickers.get_materialized_partitions(dg.AssetKey("raw_prices")) == set(
        TICKERS
    )


def test_an_invalid_token_fails_the_run_at_once_with_the_message(
    instance_with_tickers, tmp_path, monkeypatch
):
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN", "expired-token")
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    universe = write_universe(tmp_path)
    with FakeUpstox(token=TOKEN) as server:
        result = materialize(
            instance_with_tickers, [ticker_assets], server, tmp_path, universe, store
        )
        sent = len(server.requests)
    assert not result.success
    assert AUTH_MESSAGE in event_text(instance_with_tickers, result)
    assert sent <= len(TICKERS)
    assert store.read_prices(TICKERS).empty


def test_an_unknown_instrument_key_fails_only_its_ticker(instance_with_tickers, token, tmp_path):
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    universe = write_universe(tmp_path, keys={**KEYS, "GAMA": "NSE_EQ|UNKNOWN7"})
    with FakeUpstox(token=TOKEN) as server:
        result = materialize(
            instance_with_tickers, [ticker_assets], server, tmp_path, universe, store
        )
    assert not result.success
    failure = result.failure_data_for_node("ticker_assets").error.message
    assert "GAMA" in failure and "UDAPI100011" in failure
    others = set(TICKERS) - {"GAMA"}
    assert instance_with_tickers.get_materialized_partitions(dg.AssetKey("raw_prices")) == others
    assert set(store.read_prices(TICKERS)["ticker"]) == others


def test_the_token_is_absent_from_the_event_log_and_captured_logs(
    instance_with_tickers, token, tmp_path, caplog
):
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    universe = write_universe(tmp_path, keys={**KEYS, "GAMA": "NSE_EQ|UNKNOWN7"})
    with caplog.at_level(logging.DEBUG), FakeUpstox(token=TOKEN, fault_rate=0.3) as server:
        result = materialize(
            instance_with_tickers,
            [ticker_assets, intraday_prices],
            server,
            tmp_path,
            universe,
            store,
        )
    text = event_text(instance_with_tickers, result)
    assert "retry" in text and "UDAPI100011" in text
    assert TOKEN not in text
    assert TOKEN not in caplog.text
    assert TOKEN not in str(instance_with_tickers.get_run_by_id(result.run_id))


def test_intraday_prices_stores_every_timeframes_candles(instance_with_tickers, token, tmp_path):
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    universe = write_universe(tmp_path, start="2024-10-01")
    with FakeUpstox(token=TOKEN, fault_rate=0.2, timeout_sleep=1.0) as server:
        result = materialize(
            instance_with_tickers, [intraday_prices], server, tmp_path, universe, store
        )
    assert result.success
    stored = store.read_intraday(TICKERS)
    assert not stored.duplicated(["ticker", "unit", "interval", "ts"]).any()
    first, last = dt.date(2024, 10, 1), dt.date(2024, 12, 31)
    for ticker in ("ALFA", "ZETA"):
        for unit, interval in (("hours", 1), ("minutes", 15)):
            got = stored[
                (stored["ticker"] == ticker)
                & (stored["unit"] == unit)
                & (stored["interval"] == interval)
            ].reset_index(drop=True)
            want = expected_intraday(server, ticker, unit, interval, first, last)
            pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_intraday_history_starts_in_2022_even_when_the_universe_starts_earlier(
    instance_with_tickers, token, tmp_path
):
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    universe = write_universe(tmp_path, timeframes=("hours/5",), start="2021-06-01")
    with FakeUpstox(token=TOKEN) as server:
        materialize(
            instance_with_tickers,
            [intraday_prices],
            server,
            tmp_path,
            universe,
            store,
            end="2022-01-31",
        )
        asked = {(r.from_date, r.to_date) for r in server.requests}
    assert asked == {("2022-01-01", "2022-01-31")}
    assert store.read_intraday(["ALFA"])["ts"].min() >= pd.Timestamp("2022-01-03")


def test_intraday_runs_are_incremental_from_the_last_stored_day(
    instance_with_tickers, token, tmp_path
):
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    universe = write_universe(tmp_path, timeframes=("minutes/15",), start="2024-10-01")
    with FakeUpstox(token=TOKEN) as server:
        materialize(
            instance_with_tickers,
            [intraday_prices],
            server,
            tmp_path,
            universe,
            store,
            end="2024-11-29",
        )
        server.clear()
        materialize(instance_with_tickers, [intraday_prices], server, tmp_path, universe, store)
        asked = {(r.from_date, r.to_date) for r in server.requests}
        full = DuckDBStore(path=str(tmp_path / "full.duckdb"))
        materialize(instance_with_tickers, [intraday_prices], server, tmp_path, universe, full)
    assert asked == {("2024-11-29", "2024-12-28"), ("2024-12-29", "2024-12-31")}
    pd.testing.assert_frame_equal(store.read_intraday(TICKERS), full.read_intraday(TICKERS))


def test_materializing_intraday_twice_changes_nothing(instance_with_tickers, token, tmp_path):
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    universe = write_universe(tmp_path, timeframes=("hours/1",), start="2024-12-01")
    with FakeUpstox(token=TOKEN) as server:
        materialize(instance_with_tickers, [intraday_prices], server, tmp_path, universe, store)
        once = store.read_intraday(TICKERS)
        materialize(instance_with_tickers, [intraday_prices], server, tmp_path, universe, store)
    pd.testing.assert_frame_equal(store.read_intraday(TICKERS), once)


def test_ticker_job_carries_intraday_prices_when_the_universe_lists_timeframes(tmp_path):
    defs = build_definitions(load_universe(write_universe(tmp_path)), store=DuckDBStore(path=""))
    job = defs.resolve_job_def("ticker_job")
    keys = sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys)
    assert keys == ["indicators", "intraday_prices", "raw_prices"]
