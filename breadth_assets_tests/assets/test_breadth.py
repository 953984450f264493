from __future__ import annotations

import shutil

import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.partitions import tickers_partitions
from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets_tests.assets.conftest import (
    TICKERS,
    materialize_breadth,
    materialize_tickers,
    metadata_of,
)

END = "2024-06-28"


@pytest.fixture
def filled_store(instance, store, universe_path) -> DuckDBStore:
    assert materialize_tickers(instance, store, universe_path, END).success
    return store


def test_breadth_writes_one_row_per_trading_day_of_the_run(instance, filled_store):
    assert materialize_breadth(instance, filled_store, "2024-06-03", END).success
    rows = filled_store.read_breadth()
    assert rows["date"].dt.strftime("%Y-%m-%d").tolist() == [
        d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-06-03", END)
    ]
    assert list(rows.columns) == list(schema.BREADTH_COLUMNS)


def test_breadth_counts_every_ticker_with_a_bar_that_day(instance, filled_store):
    materialize_breadth(instance, filled_store, END, END)
    row = filled_store.read_breadth().iloc[-1]
    bars = filled_store.read_prices(TICKERS)
    on_day = bars[bars["date"] == END]
    assert row["universe"] == len(on_day)
    assert row["advancers"] + row["decliners"] + row["unchanged"] == len(on_day)


def test_one_date_gives_the_same_row_as_a_run_over_the_whole_range(
    instance, filled_store, tmp_path
):
    single = DuckDBStore(path=str(tmp_path / "single.duckdb"))
    shutil.copy(filled_store.path, single.path)
    materialize_breadth(instance, filled_store, "2023-01-02", END)
    materialize_breadth(instance, single, END, END)
    from_range = filled_store.read_breadth().iloc[[-1]].reset_index(drop=True)
    pd.testing.assert_frame_equal(single.read_breadth(), from_range)


def test_materializing_breadth_again_changes_nothing(instance, filled_store):
    materialize_breadth(instance, filled_store, "2024-05-01", END)
    before = filled_store.read_breadth()
    materialize_breadth(instance, filled_store, "2024-05-01", END)
    pd.testing.assert_frame_equal(filled_store.read_breadth(), before)


def test_a_ticker_removed_from_the_partitions_leaves_the_breadth_universe(instance, filled_store):
    materialize_breadth(instance, filled_store, END, END)
    with_all = filled_store.read_breadth().iloc[-1]["universe"]
    instance.delete_dynamic_partition(tickers_partitions.name, "ECHO")
    materialize_breadth(instance, filled_store, END, END)
    assert filled_store.read_breadth().iloc[-1]["universe"] == with_all - 1


def test_breadth_metadata_reports_rows_days_and_tickers(instance, filled_store):
    result = materialize_breadth(instance, filled_store, "2024-06-24", END)
    metadata = metadata_of(result, "breadth")
    assert metadata["rows_written"] == 5
    assert metadata["date_range"] == f"2024-06-24 to {END}"
    assert metadata["tickers"] == len(TICKERS)
