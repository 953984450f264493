"""Materializes breadth once the ticker runs that changed its inputs have finished: a daily
update's day, and the stored rows that any other write (new or removed tickers through
`universe_sensor`, a ticker backfill, a re-execution) left stale."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict

import dagster as dg

from breadth_assets.defs.batches import BATCHES_TAG, DAY_TAG, range_tags
from breadth_assets.defs.jobs import breadth_job, ticker_job
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.defs.stale_breadth import breadth_days, stale_breadth
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.runtime.dagster_compat import BulkActionsFilter, BulkActionStatus
from breadth_assets.stores.base import MarketStore

FINISHED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}
NOT_FINISHED = [status for status in dg.DagsterRunStatus if status not in FINISHED]
LOOKBACK = dt.timedelta(days=7)


@dg.sensor(
    name="daily_breadth_sensor",
    job=breadth_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Once no ticker run is queued or running: after every ticker run of a daily "
    "update has finished (succeeded or failed), materializes that day's breadth; otherwise, "
    "when the store says breadth is stale (tickers added or removed, bars written by a "
    "backfill or re-execution), recomputes it from the first stale day to the last stored "
    "one. Tickers that failed have no bar that day and are left out of it.",
)
def daily_breadth_sensor(
    context: dg.SensorEvaluationContext, store: MarketStore, universe: UniverseFile
) -> dg.SensorResult | dg.SkipReason:
    """Run keys name what a request answers (a day and how many ticker runs it has had, or the
    stale mark's version and range), so the same state asks for breadth once, and a failed
    breadth run is not retried until something changes."""
    busy = runs_in_progress(context.instance)
    if busy:
        return dg.SkipReason(busy)
    requests = _daily_requests(context)
    if requests:
        return dg.SensorResult(run_requests=requests)
    current = universe.load()
    tickers = context.instance.get_dynamic_partitions(tickers_partitions.name)
    found = stale_breadth(store, tickers, breadth_days(current), groups=current.groups)
    if found is None:
        return dg.SkipReason("breadth is up to date with its inputs")
    context.log.info(f"{found.text()}; recomputing {found.first_day}..{found.last_day}")
    members = [
        ",".join(sorted(tickers)),
        *(f"{g.name}:{','.join(g.tickers)}" for g in current.groups),
    ]
    universe_hash = hashlib.sha1(";".join(members).encode()).hexdigest()[:12]
    run_key = f"stale-breadth:{found.version}:{found.first_day}:{found.last_day}:{universe_hash}"
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run_key,
                tags=range_tags(found.first_day.isoformat(), found.last_day.isoformat()),
            )
        ]
    )


def runs_in_progress(instance: dg.DagsterInstance) -> str | None:
    """Why breadth (and its alerts) must wait: a ticker or breadth run, or a backfill, not
    finished yet."""
    for job in (ticker_job, breadth_job):
        running = instance.get_run_records(
            filters=dg.RunsFilter(job_name=job.name, statuses=NOT_FINISHED), limit=1
        )
        if running:
            return f"a {job.name} run is queued or running ({running[0].dagster_run.run_id[:8]})"
    backfills = instance.get_backfills(
        filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED]), limit=1
    )
    if backfills:
        return f"backfill {backfills[0].backfill_id} is in progress"
    return None


def _daily_requests(context: dg.SensorEvaluationContext) -> list[dg.RunRequest]:
    """One request per daily update whose ticker runs have all finished."""
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=ticker_job.name, created_after=dt.datetime.now(dt.UTC) - LOOKBACK
        )
    )
    runs_by_day: dict[str, list[dg.DagsterRun]] = defaultdict(list)
    for record in records:
        day = record.dagster_run.tags.get(DAY_TAG)
        if day:
            runs_by_day[day].append(record.dagster_run)
    requests = []
    for day, runs in sorted(runs_by_day.items()):
        expected = int(runs[0].tags.get(BATCHES_TAG, len(runs)))
        if len(runs) < expected or any(run.status not in FINISHED for run in runs):
            continue
        failed = sum(run.status != dg.DagsterRunStatus.SUCCESS for run in runs)
        context.log.info(f"{day}: {len(runs)} ticker runs finished, {failed} of them failed")
        requests.append(
            dg.RunRequest(run_key=f"daily-breadth:{day}:{len(runs)}", partition_key=day)
        )
    return requests
