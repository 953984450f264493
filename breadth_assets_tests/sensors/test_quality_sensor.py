from __future__ import annotations

import dagster as dg

from breadth_assets.sensors.quality_sensor import quality_after_breadth_sensor


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
