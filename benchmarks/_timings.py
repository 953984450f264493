"""Each run's life from the instance's run records and events (queued, process start-up, step,
teardown, the asset's own data seconds) and the phase lines printed from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class RunTiming:
    """One run's life: queued, process start-up, step, with the asset's own data seconds."""

    run_id: str
    job: str
    status: str
    created: float
    dequeued: float | None
    started: float | None  # RUN_START: the run worker has loaded the code
    step_started: float | None
    step_ended: float | None
    ended: float | None
    data_seconds: float  # the asset's own `seconds` metadata: reads, fetch, compute, write
    materializations: int
    pids: set[int]  # of the run worker and the step process, from the run's events
    breadth: bool  # materializes breadth (the other runs are ticker batches)

    @property
    def queued(self) -> float:
        return (self.dequeued or self.created) - self.created

    @property
    def startup(self) -> float:
        return _span(self.dequeued, self.started)

    @property
    def step_launch(self) -> float:
        return _span(self.started, self.step_started)

    @property
    def step(self) -> float:
        return _span(self.step_started, self.step_ended)

    @property
    def teardown(self) -> float:
        return _span(self.step_ended, self.ended)


def _span(start: float | None, end: float | None) -> float:
    return end - start if start is not None and end is not None else float("nan")


def run_timing(instance: Any, record: Any) -> RunTiming:
    from dagster import DagsterEventType as E

    first: dict[Any, float] = {}
    last: dict[Any, float] = {}
    data_seconds, materializations = 0.0, 0
    pids: set[int] = set()
    kinds = {
        E.RUN_DEQUEUED,
        E.RUN_STARTING,
        E.RUN_START,
        E.STEP_START,
        E.STEP_SUCCESS,
        E.STEP_FAILURE,
        E.RUN_SUCCESS,
        E.RUN_FAILURE,
        E.ASSET_MATERIALIZATION,
    }
    for entry in instance.all_logs(record.dagster_run.run_id, of_type=kinds):
        kind = entry.dagster_event.event_type
        first.setdefault(kind, entry.timestamp)
        if kind in (E.RUN_START, E.STEP_START) and entry.dagster_event.pid:
            pids.add(entry.dagster_event.pid)
        last[kind] = entry.timestamp
        if kind == E.ASSET_MATERIALIZATION:
            materializations += 1
            metadata = entry.asset_materialization.metadata
            if "seconds" in metadata:
                data_seconds = max(data_seconds, float(metadata["seconds"].value))
    run = record.dagster_run
    return RunTiming(
        run_id=run.run_id,
        job=run.job_name,
        status=run.status.value,
        created=record.create_timestamp.timestamp(),
        dequeued=first.get(E.RUN_DEQUEUED) or first.get(E.RUN_STARTING),
        started=first.get(E.RUN_START),
        step_started=first.get(E.STEP_START),
        step_ended=last.get(E.STEP_SUCCESS) or last.get(E.STEP_FAILURE),
        ended=record.end_time,
        pids=pids,
        data_seconds=data_seconds,
        materializations=materializations,
        breadth=run.job_name == "breadth_job"
        or any(key.path == ["breadth"] for key in run.asset_selection or ()),
    )


def timings(instance: Any, run_ids: Sequence[str] | None = None, **filters: Any) -> list[RunTiming]:
    from dagster import RunsFilter

    run_filter = RunsFilter(run_ids=list(run_ids)) if run_ids is not None else RunsFilter(**filters)
    records = instance.get_run_records(filters=run_filter)
    return sorted((run_timing(instance, r) for r in records), key=lambda t: t.created)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def phase(label: str, seconds: float) -> None:
    print(f"  {label:<56}{seconds:6.1f} s")


def describe_runs(label: str, runs: Sequence[RunTiming]) -> None:
    """Mean per-run phases: where one run of the phase spends its time."""
    print(
        f"  {label}: {len(runs)} run(s), per run on average: "
        f"queued {mean([r.queued for r in runs]):.1f} s, "
        f"process start-up {mean([r.startup for r in runs]):.1f} s, "
        f"step launch {mean([r.step_launch for r in runs]):.1f} s, "
        f"step {mean([r.step for r in runs]):.1f} s "
        f"(data work {mean([r.data_seconds for r in runs]):.1f} s, "
        f"{mean([r.materializations for r in runs]):.0f} materializations), "
        f"teardown {mean([r.teardown for r in runs]):.1f} s"
    )
    events = sum(r.materializations for r in runs)
    if events:
        rest = sum(r.step - r.data_seconds for r in runs) / events
        print(f"    step time beyond the data work: {rest * 1000:.0f} ms per materialization")
