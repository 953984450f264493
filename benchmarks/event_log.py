"""Milliseconds per event in Dagster's event log: stock storages against ours.

Each partition a run materializes is two asset events (planned, then materialized). This writes
the same materialization events through each storage, one at a time (`store_event`, as Dagster
does without batching) and in batches (`store_event_batch`, as Dagster does for a run's planned
events and a ranged step's materializations when DAGSTER_EVENT_BATCH_SIZE is set).

    .venv/bin/python benchmarks/event_log.py [--events 1000] [--batch 500] [--repeat 3]

PostgreSQL rows are measured when BREADTH_TEST_POSTGRES names a server
(`bash scripts/postgres.sh start`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
from _instances import drop_home, postgres_server
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry

STORAGES = {
    ("sqlite", "stock"): ("dagster._core.storage.event_log", "ConsolidatedSqliteEventLogStorage"),
    ("sqlite", "ours"): (
        "breadth_assets.runtime.instance.sqlite_event_log",
        "BatchingSqliteEventLogStorage",
    ),
    ("postgres", "stock"): ("dagster_postgres.event_log", "PostgresEventLogStorage"),
    ("postgres", "ours"): (
        "breadth_assets.runtime.instance.postgres_event_log",
        "BatchingPostgresEventLogStorage",
    ),
}


def _events(count: int, run_id: str) -> list[EventLogEntry]:
    key = dg.AssetKey("raw_prices")
    return [
        EventLogEntry(
            error_info=None,
            level="debug",
            user_message="",
            run_id=run_id,
            timestamp=time.time(),
            dagster_event=DagsterEvent(
                DagsterEventType.ASSET_MATERIALIZATION.value,
                "bench_job",
                event_specific_data=StepMaterializationData(
                    dg.AssetMaterialization(key, partition=f"T{i:05d}", metadata={"rows": i})
                ),
            ),
        )
        for i in range(count)
    ]


def _measure(kind: str, which: str, events: int, batch: int) -> tuple[float, float]:
    """(ms per event one at a time, ms per event in batches) on a new event log."""
    module, name = STORAGES[(kind, which)]
    with tempfile.TemporaryDirectory() as folder:
        env: dict[str, str] = {}
        if kind == "sqlite":
            config = {"base_dir": str(Path(folder) / "events")}
        else:
            from _instances import new_home

            env = new_home("postgres", Path(folder) / "home")
            config = {"postgres_url": env["DAGSTER_POSTGRES_URL"]}
        overrides = {"event_log_storage": {"module": module, "class": name, "config": config}}
        try:
            with dg.instance_for_test(temp_dir=folder, overrides=overrides) as instance:
                storage = instance.event_log_storage
                single = _events(events, str(uuid.uuid4()))
                started = time.perf_counter()
                for event in single:
                    storage.store_event(event)
                one = (time.perf_counter() - started) * 1000 / events
                batched = _events(events, str(uuid.uuid4()))
                started = time.perf_counter()
                for first in range(0, events, batch):
                    storage.store_event_batch(batched[first : first + batch])
                many = (time.perf_counter() - started) * 1000 / events
        finally:
            drop_home(env)
    return one, many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if postgres_server() else ["sqlite"]
    print(f"{args.events} materialization events, batches of {args.batch}, {args.repeat} tries")
    print(f"{'event log':<28}{'ms/event one by one':>24}{'ms/event in batches':>24}")
    for kind in kinds:
        for which in ("stock", "ours"):
            tries = [_measure(kind, which, args.events, args.batch) for _ in range(args.repeat)]
            one = sorted(t[0] for t in tries)
            many = sorted(t[1] for t in tries)
            print(
                f"{kind + ' ' + which:<28}"
                f"{f'{one[0]:.2f}-{one[-1]:.2f} (med {statistics.median(one):.2f})':>24}"
                f"{f'{many[0]:.2f}-{many[-1]:.2f} (med {statistics.median(many):.2f})':>24}"
            )
    if len(kinds) == 1:
        print("(PostgreSQL: set BREADTH_TEST_POSTGRES, e.g. after bash scripts/postgres.sh start)")


if __name__ == "__main__":
    main()
