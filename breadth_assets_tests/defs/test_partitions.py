"""The `tickers` partitions follow the universe, also when several processes sync at once; the
`trading_days` partitions are the market's trading days."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster._core.storage.event_log.schema import DynamicPartitionsTable

from breadth_assets.defs.partitions import (
    build_trading_days,
    sync_ticker_partitions,
    tickers_partitions,
)
from breadth_assets.universe.file import load_universe
from breadth_assets_tests.support import write_universe_text


def test_sync_adds_new_symbols_and_removes_dropped_ones(instance):
    instance.add_dynamic_partitions(tickers_partitions.name, ["AAA", "OLD"])
    added, removed = sync_ticker_partitions(instance, ["AAA", "BBB", "CCC"])
    assert (added, removed) == (["BBB", "CCC"], ["OLD"])
    assert instance.get_dynamic_partitions(tickers_partitions.name) == ["AAA", "BBB", "CCC"]


def test_sync_tolerates_another_process_adding_the_same_symbols_at_once(instance, monkeypatch):
    """Two main jobs started together both find the symbols missing; the later insert breaks
    the storage's unique index, and the sync must read again instead of failing."""
    add = instance.add_dynamic_partitions
    calls = []

    def add_racing_another_process(name: str, keys: list[str]) -> None:
        calls.append(list(keys))
        if len(calls) == 1:
            add(name, ["BBB"])  # the other process's insert lands first
            with instance.event_log_storage.index_connection() as conn:
                conn.execute(
                    DynamicPartitionsTable.insert(),
                    [{"partitions_def_name": name, "partition": key} for key in keys],
                )
        add(name, keys)

    monkeypatch.setattr(instance, "add_dynamic_partitions", add_racing_another_process)
    sync_ticker_partitions(instance, ["AAA", "BBB", "CCC"])
    assert calls[0] == ["AAA", "BBB", "CCC"]
    assert sorted(instance.get_dynamic_partitions(tickers_partitions.name)) == ["AAA", "BBB", "CCC"]


def _trading_days(tmp_path, market: str, extra: str = "", today=dt.date(2026, 12, 3)):
    universe = load_universe(
        write_universe_text(
            tmp_path,
            f"market: {market}\nstart_date: 2024-01-01\n{extra}source: demo\ntickers: [A]\n",
        )
    )
    return build_trading_days(universe, today=today)


def test_trading_days_are_the_markets_own_in_its_time_zone(tmp_path):
    days = _trading_days(tmp_path, "XNYS")
    keys = days.get_partition_keys_in_range(dg.PartitionKeyRange("2024-07-01", "2024-07-08"))
    assert keys == ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08"]
    assert days.timezone == "America/New_York"


def test_a_sunday_to_thursday_market_has_partitions_on_sundays(tmp_path):
    days = _trading_days(tmp_path, "XSAU")
    keys = days.get_partition_keys_in_range(dg.PartitionKeyRange("2024-03-03", "2024-03-10"))
    assert [dt.date.fromisoformat(k).strftime("%a") for k in keys] == [
        "Sun",
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Sun",
    ]


def test_an_end_date_is_the_last_partition(tmp_path):
    days = _trading_days(tmp_path, "XNYS", "end_date: 2024-06-28\n")
    assert days.get_last_partition_key() == "2024-06-28"


def test_an_end_date_on_a_closed_day_ends_at_the_trading_day_before(tmp_path):
    days = _trading_days(tmp_path, "XNYS", "end_date: 2024-07-04\n")
    assert days.get_last_partition_key() == "2024-07-03"
