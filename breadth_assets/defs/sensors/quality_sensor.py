"""Runs the asset checks once at the end of a day's update and at the end of every backfill."""

from __future__ import annotations

import time

import dagster as dg

from breadth_assets.defs.jobs import breadth_job, quality_checks_job
from breadth_assets.runtime.dagster_compat import BulkActionsFilter, BulkActionStatus

ENDED = [
    BulkActionStatus.COMPLETED,
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.FAILED,
    BulkActionStatus.CANCELED,
]


@dg.run_status_sensor(
    name="quality_after_breadth_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[breadth_job],
    request_job=quality_checks_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each successful breadth_job run (the daily update's last step, or "
    "`breadth-assets run`), runs every asset check once over the stored tables.",
)
def quality_after_breadth_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"quality-after:{context.dagster_run.run_id}")


@dg.sensor(
    name="quality_after_backfill_sensor",
    job=quality_checks_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a backfill ends (its batch runs leave the asset checks out, since the "
    "checks read whole tables), runs every asset check once over the stored tables.",
)
def quality_after_backfill_sensor(
    context: dg.SensorEvaluationContext,
) -> dg.SensorResult | dg.SkipReason:
    """The cursor is the end time of the last backfill already checked; the first tick starts
    the clock, since earlier backfills were checked, or not, by whatever ran then."""
    if not context.cursor:
        return dg.SensorResult(cursor=str(time.time()))
    since = float(context.cursor)
    ended = sorted(
        (
            backfill
            for backfill in context.instance.get_backfills(
                filters=BulkActionsFilter(statuses=ENDED), limit=50
            )
            if (backfill.backfill_end_timestamp or 0) > since
        ),
        key=lambda backfill: backfill.backfill_end_timestamp or 0,
    )
    if not ended:
        return dg.SkipReason("no backfill has ended since the last check run")
    names = ", ".join(backfill.backfill_id for backfill in ended)
    context.log.info(f"backfills ended: {names}; running the asset checks once")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"quality-after-backfill:{ended[-1].backfill_id}")],
        cursor=str(ended[-1].backfill_end_timestamp),
    )
