"""The `tickers` partitions follow the universe, also when several processes sync at once."""

from __future__ import annotations

from dagster._core.storage.event_log.schema import DynamicPartitionsTable

from breadth_assets.partitions import sync_ticker_partitions, tickers_partitions


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
