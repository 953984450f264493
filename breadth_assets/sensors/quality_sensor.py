"""Runs the asset checks after every successful breadth_job run: the end of a day's update."""

from __future__ import annotations

import dagster as dg

from breadth_assets.jobs import breadth_job, quality_checks_job


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
