from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import talib

from breadth_assets import schema
from breadth_assets.sources.csv.source import CsvSource
from breadth_assets.sources.demo.source import demo_bars
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_tests.support import TICKERS, materialize_tickers, metadata_of

END = "2024-06-28"


def _as_csv_universe(universe_path, folder) -> CsvSource:
    """The universe file with its source switched to the CSV files in `folder`."""
    text = universe_path.read_text().replace("  kind: demo", f"  kind: csv\n  path: {folder}")
    universe_path.write_text(text)
    return CsvSource(path=str(folder))


def test_raw_prices_stores_the_sources_bars_from_the_universe_start(
    instance_with_tickers, store, universe_path
):
    assert materialize_tickers(instance_with_tickers, store, universe_path, END).success
    stored = store.read_prices(["ALPHA"])
    expected = demo_bars("ALPHA")
    expected = expected[(expected["date"] >= "2023-01-02") & (expected["date"] <= END)]
    pd.testing.assert_frame_equal(stored, expected.reset_index(drop=True), check_dtype=False)


def test_indicators_equal_direct_talib_calls_on_the_stored_prices(
    instance_with_tickers, store, universe_path
):
    materialize_tickers(instance_with_tickers, store, universe_path, END)
    prices = store.read_prices(["BRAVO"])
    indicators = store.read_indicators(["BRAVO"])
    close = prices["close"].to_numpy()
    assert len(indicators) == len(prices)
    np.testing.assert_allclose(indicators["ema_50"], talib.EMA(close, 50), rtol=1e-12)
    np.testing.assert_allclose(indicators["rsi_14"], talib.RSI(close, 14), rtol=1e-12)
    _, _, hist = talib.MACD(close, 12, 26, 9)
    np.testing.assert_allclose(indicators["macd_hist"], hist, rtol=1e-12)


def test_every_partition_of_the_run_is_recorded_as_materialized(
    instance_with_tickers, store, universe_path
):
    materialize_tickers(instance_with_tickers, store, universe_path, END)
    for asset in ("raw_prices", "indicators"):
        assert instance_with_tickers.get_materialized_partitions(dg.AssetKey(asset)) == set(TICKERS)


def test_materialization_metadata_reports_rows_range_counts_and_speed(
    instance_with_tickers, store, universe_path
):
    result = materialize_tickers(instance_with_tickers, store, universe_path, END)
    metadata = metadata_of(result, "raw_prices")
    assert metadata["rows_written"] == len(store.read_prices(TICKERS))
    assert metadata["date_range"].endswith(END)
    assert metadata["tickers_ok"] == 5
    assert metadata["tickers_failed"] == 0
    assert metadata["seconds"] > 0
    assert metadata["tickers_per_second"] > 0


def test_an_incremental_run_equals_a_full_recompute(
    instance_with_tickers, store, universe_path, tmp_path
):
    materialize_tickers(instance_with_tickers, store, universe_path, "2024-03-28")
    materialize_tickers(instance_with_tickers, store, universe_path, END)
    full = DuckDBStore(path=str(tmp_path / "full.duckdb"))
    materialize_tickers(instance_with_tickers, full, universe_path, END)
    pd.testing.assert_frame_equal(store.read_prices(TICKERS), full.read_prices(TICKERS))
    incremental, recomputed = store.read_indicators(TICKERS), full.read_indicators(TICKERS)
    pd.testing.assert_frame_equal(incremental, recomputed, rtol=1e-9)


def test_an_incremental_run_writes_only_the_new_rows(instance_with_tickers, store, universe_path):
    materialize_tickers(instance_with_tickers, store, universe_path, "2024-06-21")
    result = materialize_tickers(instance_with_tickers, store, universe_path, END)
    new_rows = len(store.read_prices(TICKERS).query("date > '2024-06-21'"))
    assert new_rows > 0
    assert metadata_of(result, "raw_prices")["rows_written"] == new_rows
    assert metadata_of(result, "indicators")["rows_written"] == new_rows


def test_a_corrected_bar_in_the_overlap_is_written_with_the_indicators_after_it(
    instance_with_tickers, store, universe_path
):
    materialize_tickers(instance_with_tickers, store, universe_path, END)
    prices = store.read_prices(["ALPHA"])
    tampered = prices.iloc[[-2]].assign(close=prices["close"].iloc[-2] * 2)
    store.write({schema.PRICES: tampered})
    materialize_tickers(instance_with_tickers, store, universe_path, END, selection=["indicators"])
    result = materialize_tickers(instance_with_tickers, store, universe_path, END)
    assert metadata_of(result, "raw_prices")["rows_written"] == 1
    assert metadata_of(result, "indicators")["rows_written"] >= 2
    assert store.read_prices(["ALPHA"])["close"].iloc[-2] == prices["close"].iloc[-2]


def test_materializing_the_same_partitions_again_changes_nothing(
    instance_with_tickers, store, universe_path
):
    materialize_tickers(instance_with_tickers, store, universe_path, END)
    before = store.read_prices(TICKERS), store.read_indicators(TICKERS)
    result = materialize_tickers(instance_with_tickers, store, universe_path, END)
    assert metadata_of(result, "raw_prices")["rows_written"] == 0
    assert metadata_of(result, "indicators")["rows_written"] == 0
    pd.testing.assert_frame_equal(store.read_prices(TICKERS), before[0])
    pd.testing.assert_frame_equal(store.read_indicators(TICKERS), before[1])


def test_indicators_alone_can_be_recomputed_from_stored_prices(
    instance_with_tickers, store, universe_path
):
    materialize_tickers(instance_with_tickers, store, universe_path, END, selection=["raw_prices"])
    assert store.read_indicators(TICKERS).empty
    result = materialize_tickers(
        instance_with_tickers, store, universe_path, END, selection=["indicators"]
    )
    assert result.success
    assert len(store.read_indicators(TICKERS)) == len(store.read_prices(TICKERS))


def test_one_bad_ticker_fails_alone_and_the_others_are_written_and_materialized(
    instance_with_tickers, store, universe_path, tmp_path
):
    folder = tmp_path / "csv"
    folder.mkdir()
    for ticker in TICKERS:
        if ticker != "CHARLIE":
            bars = demo_bars(ticker).query("date >= '2024-01-01' and date <= @END")
            bars.drop(columns="ticker").to_csv(folder / f"{ticker}.csv", index=False)
    source = _as_csv_universe(universe_path, folder)
    result = materialize_tickers(instance_with_tickers, store, universe_path, END, source=source)
    assert not result.success
    good = set(TICKERS) - {"CHARLIE"}
    assert set(store.read_prices(TICKERS)["ticker"]) == good
    assert set(store.read_indicators(TICKERS)["ticker"]) == good
    for asset in ("raw_prices", "indicators"):
        assert instance_with_tickers.get_materialized_partitions(dg.AssetKey(asset)) == good
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "CHARLIE" in message
    assert "CHARLIE.csv" in message


def _csv_folder_with(tmp_path, universe_path, tickers) -> CsvSource:
    folder = tmp_path / "csv" / "prices"
    folder.mkdir(parents=True)
    for ticker in tickers:
        bars = demo_bars("ALPHA").query("date >= '2024-01-01' and date <= @END")
        bars.drop(columns="ticker").to_csv(folder / f"{ticker}.csv", index=False)
    return _as_csv_universe(universe_path, folder)


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message


def test_a_partition_key_that_is_no_ticker_fails_alone_and_no_file_is_read_for_it(
    instance_with_tickers, store, universe_path, tmp_path
):
    source = _csv_folder_with(tmp_path, universe_path, ["DELTA", "ECHO", "outside"])
    (tmp_path / "csv" / "outside.csv").write_text((tmp_path / "csv/prices/ECHO.csv").read_text())
    instance_with_tickers.add_dynamic_partitions("tickers", ["../outside"])
    keys = ["DELTA", "ECHO", "../outside"]
    result = materialize_tickers(instance_with_tickers, store, universe_path, END, keys, source)
    assert not result.success
    assert set(store.read_prices(keys)["ticker"]) == {"DELTA", "ECHO"}
    assert instance_with_tickers.get_materialized_partitions(dg.AssetKey("raw_prices")) == {
        "DELTA",
        "ECHO",
    }
    assert "../outside: partition '../outside' is not a valid ticker" in _failure_message(result)


def test_a_partition_key_missing_from_the_universe_fails_alone(
    instance_with_tickers, store, universe_path, tmp_path
):
    source = _csv_folder_with(tmp_path, universe_path, ["DELTA", "ECHO", "ZULU"])
    instance_with_tickers.add_dynamic_partitions("tickers", ["ZULU"])
    keys = ["DELTA", "ECHO", "ZULU"]
    result = materialize_tickers(instance_with_tickers, store, universe_path, END, keys, source)
    assert set(store.read_prices(keys)["ticker"]) == {"DELTA", "ECHO"}
    assert f"ZULU: partition 'ZULU' is not in the universe file {universe_path}" in (
        _failure_message(result)
    )


def test_an_incremental_run_over_short_histories_recomputes_them_and_equals_a_full_one(
    instance_with_tickers, store, universe_path, tmp_path
):
    materialize_tickers(instance_with_tickers, store, universe_path, "2023-06-01")
    materialize_tickers(instance_with_tickers, store, universe_path, "2023-06-09")
    full = DuckDBStore(path=str(tmp_path / "full.duckdb"))
    materialize_tickers(instance_with_tickers, full, universe_path, "2023-06-09")
    pd.testing.assert_frame_equal(store.read_indicators(TICKERS), full.read_indicators(TICKERS))


def _spoil(folder, ticker: str, rows: int) -> None:
    """Appends `rows` bars whose date cannot be read."""
    with open(folder / f"{ticker}.csv", "a") as file:
        for n in range(rows):
            file.write(f"not-a-date-{n},10,11,9,10.5,100\n")


def _rejected_run(instance, store, universe_path, tmp_path):
    source = _csv_folder_with(tmp_path, universe_path, ["ALPHA", "BRAVO", "CHARLIE"])
    folder = tmp_path / "csv" / "prices"
    _spoil(folder, "ALPHA", 3)
    _spoil(folder, "CHARLIE", 1)
    keys = ["ALPHA", "BRAVO", "CHARLIE"]
    return materialize_tickers(instance, store, universe_path, END, keys, source)


def _partition_metadata(result, asset: str, ticker: str) -> dict:
    [event] = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(asset)
        and e.materialization.partition == ticker
    ]
    return {k: v.value for k, v in event.metadata.items()}


def test_refused_rows_are_counted_per_ticker_on_its_partition(
    instance_with_tickers, store, universe_path, tmp_path
):
    result = _rejected_run(instance_with_tickers, store, universe_path, tmp_path)
    assert _partition_metadata(result, "raw_prices", "ALPHA")["rows_rejected"] == 3
    assert _partition_metadata(result, "raw_prices", "CHARLIE")["rows_rejected"] == 1
    assert "rows_rejected" not in _partition_metadata(result, "raw_prices", "BRAVO")


def test_refused_rows_are_totalled_per_run_with_a_table_by_ticker(
    instance_with_tickers, store, universe_path, tmp_path
):
    result = _rejected_run(instance_with_tickers, store, universe_path, tmp_path)
    metadata = metadata_of(result, "raw_prices")
    assert metadata["rows_rejected_in_run"] == 4
    assert "| ALPHA | 3 |" in metadata["rejected_by_ticker"]
    assert "| CHARLIE | 1 |" in metadata["rejected_by_ticker"]


def test_refused_rows_are_one_warning_per_ticker(
    instance_with_tickers, store, universe_path, tmp_path
):
    _rejected_run(instance_with_tickers, store, universe_path, tmp_path)
    warnings = [
        entry.user_message
        for entry in instance_with_tickers.all_logs(instance_with_tickers.get_runs()[0].run_id)
        if entry.level == 30 and "rows left out" in entry.user_message
    ]
    assert len(warnings) == 2
    assert any(w.startswith("ALPHA: 3 rows left out: ") for w in warnings)
