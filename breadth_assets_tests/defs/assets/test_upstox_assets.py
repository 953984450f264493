"""The ticker and intraday assets on the Upstox source, through Dagster, against FakeUpstox.

FakeUpstox is a test fake of Upstox's API; everything else is real: the SDK, the machine-wide
limiter (on a file of the test's own), DuckDB and Dagster's event log.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import pytest

from breadth_assets.definitions import build_definitions
from breadth_assets.defs.assets import build_intraday_prices, build_ticker_assets
from breadth_assets.defs.batches import range_tags
from breadth_assets.defs.checks import build_checks
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.sources.upstox.client import AUTH_MESSAGE
from breadth_assets.sources.upstox.source import UpstoxSource
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.universe.file import load_universe
from breadth_assets_testing.fake_upstox import FakeUpstox, KeyChange, write_instruments_master
from breadth_assets_tests.support import add_tickers, breadth, expected_bars, metadata_of

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
    keys = {**KEYS, "GAMA": "NSE_EQ|UNKNOWN7"}
    universe = write_universe(tmp_path, keys=keys, timeframes=("hours/1",))
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


# --- an instrument key that changes (docs/design.md "When an instrument key changes") ----------
# ZETA is looked up in the instruments master; a split gives it a new ISIN on Monday 2024-07-01.

SPLIT = KeyChange("ZETA", KEYS["ZETA"], "NSE_EQ|INE005B01029", dt.date(2024, 7, 1))
BEFORE_SPLIT = "2024-06-28"
"""The first run's end: the Friday before the new key's first day."""
AFTER_SPLIT = "2024-08-30"
KEY_CHECK = dg.AssetCheckKey(dg.AssetKey("raw_prices"), "instrument_key_changes")


@dataclass
class AcrossTheChange:
    """A history fetched under ZETA's old key, then an update after the master maps it to the
    new one: the store, the fake (stopped), each run and the update's requests."""

    store: DuckDBStore
    server: FakeUpstox
    universe: object
    first: dg.ExecuteInProcessResult
    update: dg.ExecuteInProcessResult
    keys_before_update: pd.DataFrame
    requests: list


def across_the_change(instance, tmp_path, update_end=AFTER_SPLIT) -> AcrossTheChange:
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    universe = write_universe(tmp_path, start="2024-01-01")
    with FakeUpstox(token=TOKEN, key_changes=[SPLIT]) as server:
        first = materialize(
            instance, [ticker_assets], server, tmp_path, universe, store, end=BEFORE_SPLIT
        )
        keys_before_update = store.read_instrument_keys(TICKERS)
        write_instruments_master(tmp_path / "NSE.json.gz", {"ZETA": SPLIT.old}, [SPLIT])
        server.clear()
        update = materialize(
            instance, [ticker_assets], server, tmp_path, universe, store, end=update_end
        )
        requests = server.requests
    assert first.success and update.success
    return AcrossTheChange(store, server, universe, first, update, keys_before_update, requests)


def run_the_key_check(instance, runs: AcrossTheChange) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [ticker_assets, breadth, *build_checks()],
        selection=dg.AssetSelection.checks(KEY_CHECK),
        instance=instance,
        resources={
            "store": runs.store,
            # the check step reads the store only: no request
            "price_source": UpstoxSource(access_token=dg.EnvVar("UPSTOX_ACCESS_TOKEN")),
            "universe": UniverseFile(path=str(runs.universe)),
        },
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_after_a_key_change_the_update_asks_only_the_new_key_from_the_day_after_the_last_bar(
    instance_with_tickers, token, tmp_path
):
    runs = across_the_change(instance_with_tickers, tmp_path)
    zeta = [(r.key, r.from_date) for r in runs.requests if r.key in (SPLIT.old, SPLIT.new)]
    assert zeta == [(SPLIT.new, "2024-06-29")]


def test_after_a_key_change_the_ticker_keeps_its_history_and_gains_the_new_keys_bars_once(
    instance_with_tickers, token, tmp_path
):
    runs = across_the_change(instance_with_tickers, tmp_path)
    stored = runs.store.read_prices(["ZETA"])
    old = expected_bars(runs.server, "ZETA", SPLIT.old, dt.date(2024, 1, 1), SPLIT.on)
    new = expected_bars(runs.server, "ZETA", SPLIT.new, dt.date(2024, 1, 1), dt.date(2024, 8, 30))
    assert old["date"].max() == pd.Timestamp(BEFORE_SPLIT)
    assert new["date"].min() == pd.Timestamp(SPLIT.on)
    joined = pd.concat([old, new], ignore_index=True)
    pd.testing.assert_frame_equal(stored, joined, check_dtype=False)
    assert len(runs.store.read_indicators(["ZETA"])) == len(joined)


def test_a_key_change_is_recorded_with_the_first_day_fetched_under_the_new_key(
    instance_with_tickers, token, tmp_path
):
    runs = across_the_change(instance_with_tickers, tmp_path)
    recorded = runs.store.read_instrument_keys(["ZETA"])
    assert list(recorded.itertuples(index=False, name=None)) == [
        ("ZETA", SPLIT.old, pd.Timestamp("2024-01-01")),
        ("ZETA", SPLIT.new, pd.Timestamp(SPLIT.on)),
    ]


def test_a_key_change_is_reported_in_the_raw_prices_metadata_and_as_a_warning(
    instance_with_tickers, token, tmp_path
):
    runs = across_the_change(instance_with_tickers, tmp_path)
    change = f"ZETA {SPLIT.old} -> {SPLIT.new} from 2024-07-01"
    assert metadata_of(runs.update, "raw_prices")["instrument_key_changes"] == change
    warnings = [
        record.user_message
        for record in instance_with_tickers.all_logs(runs.update.run_id)
        if record.level == logging.WARNING
    ]
    assert any(change in message for message in warnings)
    assert "instrument_key_changes" not in metadata_of(runs.first, "raw_prices")


def test_the_instrument_key_changes_check_warns_naming_the_old_and_the_new_key(
    instance_with_tickers, token, tmp_path
):
    runs = across_the_change(instance_with_tickers, tmp_path)
    evaluation = run_the_key_check(instance_with_tickers, runs)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    offenders = evaluation.metadata["offenders"].value.replace("\\|", "|")
    assert f"| ZETA | {SPLIT.old} | {SPLIT.new} | 2024-07-01 |" in offenders
    assert evaluation.metadata["tickers_affected"].value == 1


def test_a_ticker_whose_key_did_not_change_records_no_new_key_and_fetches_with_the_overlap(
    instance_with_tickers, token, tmp_path
):
    runs = across_the_change(instance_with_tickers, tmp_path)
    kept = runs.keys_before_update[runs.keys_before_update["ticker"] != "ZETA"]
    after = runs.store.read_instrument_keys([t for t in TICKERS if t != "ZETA"])
    pd.testing.assert_frame_equal(after, kept.reset_index(drop=True))
    alfa = [r.from_date for r in runs.requests if r.key == KEYS["ALFA"]]
    assert alfa == ["2024-06-21"]  # 5 stored bars before the last one, 2024-06-28


def test_the_overlap_after_a_key_change_reaches_back_no_further_than_the_new_keys_first_day(
    instance_with_tickers, token, tmp_path
):
    runs = across_the_change(instance_with_tickers, tmp_path, update_end="2024-07-02")
    with FakeUpstox(token=TOKEN, key_changes=[SPLIT]) as server:
        materialize(
            instance_with_tickers, [ticker_assets], server, tmp_path, runs.universe, runs.store
        )
        zeta = [(r.key, r.from_date) for r in server.requests if r.key == SPLIT.new]
    assert zeta == [(SPLIT.new, "2024-07-01")]


def test_the_token_is_absent_from_the_logs_and_metadata_of_a_key_change(
    instance_with_tickers, token, tmp_path, caplog
):
    with caplog.at_level(logging.DEBUG):
        runs = across_the_change(instance_with_tickers, tmp_path)
        evaluation = run_the_key_check(instance_with_tickers, runs)
    for result in (runs.first, runs.update):
        assert TOKEN not in event_text(instance_with_tickers, result)
    assert TOKEN not in caplog.text
    assert TOKEN not in str(metadata_of(runs.update, "raw_prices"))
    assert TOKEN not in str(evaluation.metadata)
