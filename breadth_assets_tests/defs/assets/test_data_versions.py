"""Data versions of the ticker partitions: what decides whether the UI shows breadth Unsynced."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from breadth_assets import schema
from breadth_assets.defs.assets import BREADTH, INDICATORS, RAW_PRICES
from breadth_assets.runtime.dagster_compat import latest_data_versions
from breadth_assets_tests.support import (
    TICKERS,
    breadth,
    materialize_breadth,
    materialize_tickers,
    ticker_assets,
)

END = "2024-06-28"


def _versions(instance: dg.DagsterInstance) -> dict:
    return {key: latest_data_versions(instance, key, TICKERS) for key in (RAW_PRICES, INDICATORS)}


def _breadth_status(instance: dg.DagsterInstance, day: str) -> StaleStatus:
    resolver = get_stale_status_resolver(instance, [ticker_assets, breadth])
    return resolver.get_status(BREADTH, day)


def _up_to_date(instance, store, universe_path) -> dg.DagsterInstance:
    assert materialize_tickers(instance, store, universe_path, END).success
    materialize_breadth(instance, store, END, END)
    assert _breadth_status(instance, END) == StaleStatus.FRESH
    return instance


def test_an_update_that_changes_nothing_keeps_every_version_and_breadth_in_sync(
    instance_with_tickers, store, universe_path
):
    instance = _up_to_date(instance_with_tickers, store, universe_path)
    before = _versions(instance)

    assert materialize_tickers(instance, store, universe_path, END).success

    assert _versions(instance) == before
    assert _breadth_status(instance, END) == StaleStatus.FRESH


def test_a_changed_bar_gives_its_ticker_new_versions_and_makes_breadth_unsynced(
    instance_with_tickers, store, universe_path
):
    instance = _up_to_date(instance_with_tickers, store, universe_path)
    before = _versions(instance)
    # As if the source had corrected its last bar since: the update's overlap fetches it again.
    bars = store.read_prices(["ALPHA"]).tail(1).assign(close=lambda d: d["close"] * 1.01)
    rows = store.read_indicators(["ALPHA"]).tail(1).assign(close=bars["close"].to_numpy())
    store.write(
        {
            schema.PRICES: bars.assign(high=bars[["high", "close"]].max(axis=1)),
            schema.INDICATORS: rows,
        }
    )

    assert materialize_tickers(instance, store, universe_path, END).success

    after = _versions(instance)
    for key in (RAW_PRICES, INDICATORS):
        changed = {ticker for ticker in TICKERS if after[key][ticker] != before[key][ticker]}
        assert changed == {"ALPHA"}, key
    assert _breadth_status(instance, END) == StaleStatus.STALE


def test_every_ticker_partition_of_a_run_is_materialized_once_per_asset(
    instance_with_tickers, store, universe_path
):
    result = materialize_tickers(instance_with_tickers, store, universe_path, END)

    events = result.get_asset_materialization_events()
    for key in (RAW_PRICES, INDICATORS):
        partitions = [event.partition for event in events if event.asset_key == key]
        assert sorted(partitions) == sorted(TICKERS), key
