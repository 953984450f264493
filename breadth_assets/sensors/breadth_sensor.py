"""Materializes a day's breadth once every ticker run of that day's update has finished."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import dagster as dg

from breadth_assets.batches import BATCHES_TAG, DAY_TAG
from breadth_assets.jobs import breadth_job, ticker_job

FINISHED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}
LOOKBACK = dt.timedelta(days=7)


@dg.sensor(
    name="daily_breadth_sensor",
    job=breadth_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After every ticker run of a daily update has finished (succeeded or failed), "
    "materializes that day's breadth. Tickers that failed have no bar that day and are left out "
    "of it; re-executing their run recomputes the day's breadth once it finishes.",
)
def daily_breadth_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Run keys name the day and how many ticker runs it has had, so a re-execution of a failed
    batch (which keeps the day's tags) asks for that day's breadth again, and nothing else does.
    """
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
    if not requests:
        return dg.SkipReason("no daily update has finished all of its ticker runs")
    return dg.SensorResult(run_requests=requests)
