"""Clears what crashed runs and dead Celery workers leave behind, so that nobody has to before the
next run can fetch."""

from __future__ import annotations

import dagster as dg

from breadth_assets.runtime.recovery import repair


@dg.sensor(
    name="run_recovery_sensor",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks runs whose process on this machine is gone (kill -9, out of memory, a "
    "reboot), and Celery runs whose worker stopped answering (no heartbeat for "
    "BREADTH_WORKER_HEARTBEAT_TIMEOUT seconds), as FAILURE with the reason, and frees the pool "
    "slots of every ended run, so a crashed run never blocks the price_api pool. "
    "`breadth-assets status --repair` does the same on demand.",
)
def run_recovery_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    done = repair(context.instance, context.log.warning)
    if done.lines():
        return dg.SkipReason("; ".join(done.lines()))
    return dg.SkipReason("no run left behind by a crash")
