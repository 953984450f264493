from __future__ import annotations

import datetime as dt
import multiprocessing
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.stores.base import StoreError
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_tests.support import make_prices


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


def test_a_file_from_before_groups_opens_with_its_rows_and_record_as_the_whole_universe(tmp_path):
    path = str(tmp_path / "old.duckdb")
    with duckdb.connect(path) as con:
        con.execute(
            "CREATE TABLE breadth (date DATE, universe BIGINT, advancers BIGINT, ad_line BIGINT, "
            "mcclellan_osc DOUBLE)"
        )
        con.execute("INSERT INTO breadth VALUES ('2024-01-02', 5, 3, 3, 1.5)")
        con.execute("CREATE TABLE breadth_universe (ticker VARCHAR)")
        con.execute("INSERT INTO breadth_universe VALUES ('BBB'), ('AAA')")
    store = DuckDBStore(path=path)

    read = store.read_breadth()

    assert read["group_name"].tolist() == ["ALL"]
    assert read[["universe", "advancers", "mcclellan_osc"]].values.tolist() == [[5, 3, 1.5]]
    assert read["listed"].isna().all() and read["partial"].isna().all()
    assert store.read_breadth_groups() == {"ALL": ["AAA", "BBB"]}
    assert store.read_breadth_members().empty
    rows = read.assign(group_name="G1", universe=2, listed=2, partial=False, zweig_thrust=False)
    day = dt.date(2024, 1, 2)
    members = store.read_breadth_members()
    store.write_breadth(rows, members, {"G1": ["AAA"]}, day, day, store.breadth_stale(), None)
    assert store.read_breadth(group=None)[["group_name", "universe"]].values.tolist() == [
        ["ALL", 5],
        ["G1", 2],
    ]
    assert store.read_breadth_groups() == {"ALL": ["AAA", "BBB"], "G1": ["AAA"]}
