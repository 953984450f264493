from __future__ import annotations

import multiprocessing
import time

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
