"""Differential: the same workloads through Dagster's stock event logs (consolidated SQLite,
dagster-postgres) and through ours (`BatchingSqliteEventLogStorage`,
`BatchingPostgresEventLogStorage`) give the same answers from the instance's public APIs."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from breadth_assets.defs.batches import range_tags
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.runtime.instance.sqlite_event_log import BATCH_SIZE_ENV
from breadth_assets.sources.demo.source import DemoSource
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_tests.support import (
    PROJECT_UNIVERSE,
    TICKERS,
    breadth,
    ticker_assets,
    write_universe,
)

END = "2024-06-28"
STORAGES = {
    "sqlite": {
        "stock": ("dagster._core.storage.event_log", "ConsolidatedSqliteEventLogStorage"),
        "batching": (
            "breadth_assets.runtime.instance.sqlite_event_log",
            "BatchingSqliteEventLogStorage",
        ),
    },
    "postgres": {
        "stock": ("dagster_postgres.event_log", "PostgresEventLogStorage"),
        "batching": (
            "breadth_assets.runtime.instance.postgres_event_log",
            "BatchingPostgresEventLogStorage",
        ),
    },
}
ASSETS = [dg.AssetKey("raw_prices"), dg.AssetKey("indicators"), dg.AssetKey("breadth")]


@contextmanager
def _instance(folder: Path, kind: str, storage: str, config: dict) -> Iterator[dg.DagsterInstance]:
    module, name = STORAGES[kind][storage]
    overrides = {"event_log_storage": {"module": module, "class": name, "config": config}}
    with dg.instance_for_test(temp_dir=str(folder), overrides=overrides) as instance:
        yield instance


def _tickers(instance, store, universe, keys, end=END) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [ticker_assets],
        instance=instance,
        resources={
            "store": store,
            "price_source": DemoSource(),
            "universe": UniverseFile(path=str(universe)),
        },
        tags=range_tags(keys[0], keys[-1]),
        run_config={"ops": {"ticker_assets": {"config": {"end_date": end}}}},
        raise_on_error=False,
    )


def _workload(instance: dg.DagsterInstance, folder: Path) -> list[dict]:
    """A batch, a batch with a failing ticker, its re-execution, and a ranged breadth run;
    the instance's answers after each."""
    store = DuckDBStore(path=str(folder / "breadth.duckdb"))
    universe = write_universe(folder, TICKERS)
    instance.add_dynamic_partitions("tickers", [*TICKERS, "ZULU"])
    assert _tickers(instance, store, universe, TICKERS, end="2024-06-21").success
    answers = [_answers(instance)]
    assert not _tickers(instance, store, universe, [*TICKERS, "ZULU"]).success
    answers.append(_answers(instance))
    universe = write_universe(folder, [*TICKERS, "ZULU"])
    assert _tickers(instance, store, universe, ["ZULU"]).success
    answers.append(_answers(instance))
    result = dg.materialize(
        [breadth],
        instance=instance,
        resources={"store": store, "universe": UniverseFile(path=str(PROJECT_UNIVERSE))},
        tags=range_tags("2024-06-03", END),
    )
    assert result.success
    return [*answers, _answers(instance)]


def _answers(instance: dg.DagsterInstance) -> dict:
    """What the UI and the sensors ask the instance, with run ids replaced by run order."""
    runs = list(reversed(instance.get_runs()))
    order = {run.run_id: index for index, run in enumerate(runs)}
    storage = instance.event_log_storage
    answers: dict = {"runs": [(run.job_name, run.status) for run in runs]}
    for run in runs:
        kinds = Counter(
            record.dagster_event.event_type_value
            for record in instance.all_logs(run.run_id)
            if record.dagster_event
        )
        answers[f"events of run {order[run.run_id]}"] = kinds
    for key in ASSETS:
        latest = instance.get_latest_materialization_event(key)
        records = instance.get_asset_records([key])
        attempts = (
            storage.get_latest_asset_partition_materialization_attempts_without_materializations(
                key
            )
        )
        planned = storage.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, key)
        )
        answers[key.to_user_string()] = {
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "latest partition": latest.dagster_event.partition if latest else None,
            "latest run": order.get(latest.run_id) if latest else None,
            "record's last run": order.get(records[0].asset_entry.last_run_id) if records else None,
            "attempts without materialization": sorted(
                (partition, order[run_id]) for partition, (run_id, _) in attempts.items()
            ),
            "planned": sorted((r.partition_key or "", order[r.run_id]) for r in planned),
            "materializations": instance.fetch_materializations(
                key, limit=10_000
            ).records.__len__(),
        }
    return answers


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_stock_and_batching_storages_answer_the_same_after_the_same_workload(
    kind, tmp_path, monkeypatch, request, capfd
):
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    answers = {}
    for storage in ("stock", "batching"):
        folder = tmp_path / storage
        folder.mkdir()
        if kind == "sqlite":
            config = {"base_dir": str(folder / "events")}
        else:
            config = {"postgres_url": request.getfixturevalue("postgres_database")()}
        with _instance(folder, kind, storage, config) as instance:
            answers[storage] = _workload(instance, folder)
    assert answers["batching"] == answers["stock"]
    # Dagster falls back to one event at a time when a batch write raises, and says so here.
    assert "Exception while storing event batch" not in capfd.readouterr().err
    after_failure = answers["batching"][1]["raw_prices"]
    assert after_failure["attempts without materialization"] == [("ZULU", 1)]
    assert "ZULU" not in after_failure["materialized"]


def test_the_batching_storage_turns_on_dagsters_event_batches(tmp_path, monkeypatch):
    monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    with _instance(tmp_path, "sqlite", "batching", {"base_dir": str(tmp_path / "events")}):
        assert int(os.environ[BATCH_SIZE_ENV]) > 1
