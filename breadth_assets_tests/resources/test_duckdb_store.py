from __future__ import annotations

import datetime as dt
import multiprocessing
import time

import numpy as np
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets.resources.market_store import StoreError
from breadth_assets_tests.conftest import make_prices


def test_a_new_store_reads_empty_tables_with_the_contract_columns(store):
    assert list(store.read_prices(["AAA"]).columns) == list(schema.PRICE_COLUMNS)
    assert list(store.read_indicators(["AAA"]).columns) == list(schema.INDICATOR_COLUMNS)
    assert list(store.read_breadth().columns) == list(schema.BREADTH_COLUMNS)


def test_prices_round_trip_with_dates_and_nulls(store):
    prices = make_prices("AAA", "2024-01-01", [10.0, 11.0, 12.0])
    prices.loc[1, "volume"] = np.nan
    store.write({schema.PRICES: prices})
    read = store.read_prices(["AAA"])
    pd.testing.assert_frame_equal(read, prices, check_dtype=False)
    assert np.isnan(read.loc[1, "volume"])
    assert read["date"].dt.date.tolist() == [dt.date(2024, 1, d) for d in (1, 2, 3)]


def test_reads_return_only_the_asked_tickers_sorted_by_ticker_and_date(store):
    both = pd.concat(
        [make_prices("BBB", "2024-01-01", [5, 6]), make_prices("AAA", "2024-01-01", [1, 2])]
    )
    store.write({schema.PRICES: both.sample(frac=1.0, random_state=1)})
    assert store.read_prices(["AAA"])["ticker"].unique().tolist() == ["AAA"]
    read = store.read_prices(["AAA", "BBB"])
    assert read[["ticker", "date"]].equals(
        read[["ticker", "date"]].sort_values(["ticker", "date"], ignore_index=True)
    )


def test_writing_the_same_rows_twice_changes_nothing(store):
    prices = make_prices("AAA", "2024-01-01", [10.0, 11.0])
    store.write({schema.PRICES: prices})
    store.write({schema.PRICES: prices})
    pd.testing.assert_frame_equal(store.read_prices(["AAA"]), prices, check_dtype=False)


def test_writing_an_existing_key_replaces_its_row(store):
    store.write({schema.PRICES: make_prices("AAA", "2024-01-01", [10.0, 11.0])})
    store.write({schema.PRICES: make_prices("AAA", "2024-01-02", [99.0])})
    assert store.read_prices(["AAA"])["close"].tolist() == [10.0, 99.0]


def test_a_failed_write_leaves_every_table_as_it_was(store):
    store.write({schema.PRICES: make_prices("AAA", "2024-01-01", [10.0])})
    good = make_prices("BBB", "2024-01-01", [5.0])
    repeated_key = pd.concat([make_prices("AAA", "2024-01-01", [1.0])] * 2)
    with pytest.raises(StoreError, match="repeat a key"):
        store.write(
            {
                schema.PRICES: good,
                schema.INDICATORS: repeated_key.assign(
                    **{
                        name: np.nan
                        for name in schema.INDICATOR_COLUMNS
                        if name not in repeated_key
                    }
                ),
            }
        )
    assert store.read_prices(["AAA", "BBB"])["ticker"].tolist() == ["AAA"]


def test_breadth_inputs_join_prices_and_indicators_up_to_the_end_date(store):
    prices = make_prices("AAA", "2024-01-01", [10.0, 11.0, 12.0])
    indicators = prices[["ticker", "date", "close"]].assign(
        **{name: 1.0 for name in schema.INDICATOR_COLUMNS if name not in prices}
    )
    store.write({schema.PRICES: prices, schema.INDICATORS: indicators})
    rows = store.read_breadth_inputs(["AAA"], dt.date(2024, 1, 2))
    assert list(rows.columns) == list(schema.BREADTH_INPUT_COLUMNS)
    assert len(rows) == 2
    assert rows["high"].tolist() == pytest.approx([10.1, 11.11])


def test_breadth_reads_by_date_range(store):
    rows = pd.DataFrame({"date": pd.bdate_range("2024-01-01", periods=5)})
    for name, kind in schema.BREADTH_COLUMNS.items():
        if name != "date":
            rows[name] = 1 if kind == "BIGINT" else 0.5
    store.write({schema.BREADTH: rows})
    read = store.read_breadth(dt.date(2024, 1, 2), dt.date(2024, 1, 4))
    assert read["date"].dt.day.tolist() == [2, 3, 4]


def _write_many(path: str, worker: int, batches: int) -> None:
    store = DuckDBStore(path=path)
    for batch in range(batches):
        ticker = f"W{worker}B{batch}"
        store.write({schema.PRICES: make_prices(ticker, "2020-01-01", list(range(1, 201)))})
        assert len(store.read_prices([ticker])) == 200


def test_four_processes_write_and_read_at_once_without_losing_a_row(tmp_path):
    path = str(tmp_path / "shared.duckdb")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(path, w, 10)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    prices = DuckDBStore(path=path).read_prices([f"W{w}B{b}" for w in range(4) for b in range(10)])
    assert len(prices) == 4 * 10 * 200
    assert not prices.duplicated(["ticker", "date"]).any()


def _rewrite_forever(path: str, rows: int) -> None:
    store = DuckDBStore(path=path)
    closes = list(range(1, rows + 1))
    version = 0
    while True:
        version += 1
        frame = make_prices("BIG", "2000-01-03", closes).assign(volume=float(version))
        store.write({schema.PRICES: frame})


def test_a_process_killed_mid_write_leaves_a_whole_committed_write(tmp_path):
    path = str(tmp_path / "crash.duckdb")
    rows = 5000
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_rewrite_forever, args=(path, rows))
    writer.start()
    store = DuckDBStore(path=path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(store.read_prices(["BIG"])) == 0:
        time.sleep(0.05)
    time.sleep(0.5)
    writer.kill()
    writer.join()
    prices = store.read_prices(["BIG"])
    assert len(prices) == rows
    assert prices["volume"].nunique() == 1
