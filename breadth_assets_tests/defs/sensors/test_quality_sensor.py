from __future__ import annotations

import time

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

from breadth_assets.defs.sensors.quality_sensor import (
    quality_after_backfill_sensor,
    quality_after_breadth_sensor,
)


def test_the_quality_sensor_requests_the_checks_job():
    assert quality_after_breadth_sensor.job_name == "quality_checks_job"


def test_a_successful_breadth_run_requests_one_checks_run_keyed_by_that_run(instance):
    run = dg.DagsterRun(
        job_name="breadth_job", run_id="0f1e2d3c", status=dg.DagsterRunStatus.SUCCESS
    )
    instance.add_run(run)
    context = dg.build_run_status_sensor_context(
        sensor_name="quality_after_breadth_sensor",
        dagster_event=dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name="breadth_job"),
        dagster_instance=instance,
        dagster_run=run,
    )
    request = quality_after_breadth_sensor(context)
    assert request.run_key == "quality-after:0f1e2d3c"


def _ended_backfill(instance, backfill_id: str, ended: float) -> None:
    instance.add_backfill(
        PartitionBackfill(
            backfill_id=backfill_id,
            status=BulkActionStatus.COMPLETED_SUCCESS,
            from_failure=False,
            tags={},
            backfill_timestamp=ended - 60,
            partition_names=[],
            backfill_end_timestamp=ended,
        )
    )


def _tick(instance, cursor: str | None):
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        return quality_after_backfill_sensor(context)


def test_the_backfill_sensor_starts_its_clock_at_its_first_tick(instance):
    _ended_backfill(instance, "before", time.time() - 10)
    result = _tick(instance, None)
    assert not result.run_requests
    assert float(result.cursor) >= time.time() - 5


def test_backfills_that_ended_since_the_last_tick_get_one_checks_run(instance):
    now = time.time()
    _ended_backfill(instance, "old", now - 100)
    _ended_backfill(instance, "first", now - 20)
    _ended_backfill(instance, "second", now - 10)
    result = _tick(instance, str(now - 50))
    assert [request.run_key for request in result.run_requests] == ["quality-after-backfill:second"]
    assert float(result.cursor) == now - 10
    assert isinstance(_tick(instance, result.cursor), dg.SkipReason)
