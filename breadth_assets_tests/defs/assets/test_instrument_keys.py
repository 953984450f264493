"""Where a ticker's fetch starts around a change of its instrument key, on stored rows
(docs/design.md "When an instrument key changes"); the whole path through Dagster and the fake
Upstox is in test_upstox_assets.py."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from breadth_assets import schema
from breadth_assets.defs.assets.instrument_keys import BatchKeys
from breadth_assets.sources.base import PriceSource
from breadth_assets.sources.demo.source import DemoSource
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_tests.support import make_prices

OLD, NEW = "NSE_EQ|INE001A01011", "NSE_EQ|INE001A01029"
START = dt.date(2024, 1, 1)


class KeyedSource(PriceSource):
    """A source whose every ticker is fetched under `key`."""

    key: str

    def instrument_keys(self, given):
        return dict.fromkeys(given, self.key)


def keys_row(key: str, first_used: str) -> pd.DataFrame:
    return pd.DataFrame({"ticker": ["AAA"], "instrument_key": [key], "first_used": [first_used]})


def store_with(tmp_path, *keys: pd.DataFrame) -> DuckDBStore:
    """AAA's bars 2024-01-01 to 2024-01-10 (Mon-Fri) and the keys, written in that order."""
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    store.write({schema.PRICES: make_prices("AAA", "2024-01-01", [10.0] * 8)})
    for rows in keys:
        store.write({schema.INSTRUMENT_KEYS: rows.astype({"first_used": "datetime64[us]"})})
    return store


def starts(store: DuckDBStore, source: PriceSource, usual: dt.date) -> dt.date:
    keys = BatchKeys.read(source, store, {"AAA": None})
    return keys.starts(store.read_prices(["AAA"]), {"AAA": usual})["AAA"]


def test_a_changed_key_starts_the_day_after_the_last_stored_bar_whatever_the_overlap(tmp_path):
    store = store_with(tmp_path, keys_row(OLD, "2024-01-01"))
    assert starts(store, KeyedSource(key=NEW), usual=dt.date(2024, 1, 4)) == dt.date(2024, 1, 11)


def test_an_unchanged_key_keeps_the_usual_start(tmp_path):
    store = store_with(tmp_path, keys_row(OLD, "2024-01-01"))
    assert starts(store, KeyedSource(key=OLD), usual=dt.date(2024, 1, 4)) == dt.date(2024, 1, 4)


def test_a_full_refresh_after_a_key_change_starts_at_the_new_keys_first_bar(tmp_path):
    store = store_with(tmp_path, keys_row(OLD, "2024-01-01"), keys_row(NEW, "2024-01-08"))
    assert starts(store, KeyedSource(key=NEW), usual=START) == dt.date(2024, 1, 8)


def test_a_ticker_without_a_recorded_key_is_recorded_from_its_first_bar_fetched(tmp_path):
    store = store_with(tmp_path)
    keys = BatchKeys.read(KeyedSource(key=OLD), store, {"AAA": None})
    rows = keys.new_rows(make_prices("AAA", "2024-01-08", [10.0, 11.0]))
    assert rows.values.tolist() == [["AAA", OLD, pd.Timestamp("2024-01-08")]]
    assert keys.changes(rows) == []


def test_a_source_without_instrument_keys_leaves_the_starts_and_records_nothing(tmp_path):
    store = store_with(tmp_path, keys_row(OLD, "2024-01-01"))
    keys = BatchKeys.read(DemoSource(), store, {"AAA": None})
    assert starts(store, DemoSource(), usual=dt.date(2024, 1, 4)) == dt.date(2024, 1, 4)
    assert keys.new_rows(make_prices("AAA", "2024-01-11", [10.0])).empty
