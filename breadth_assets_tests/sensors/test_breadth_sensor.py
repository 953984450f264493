from __future__ import annotations

import uuid

import dagster as dg

from breadth_assets.batches import BATCHES_TAG, DAY_TAG
from breadth_assets.sensors.breadth_sensor import daily_breadth_sensor

DAY = "2024-06-28"


def _add_ticker_run(instance, status: dg.DagsterRunStatus, day: str = DAY, batches: int = 2):
    instance.add_run(
        dg.DagsterRun(
            job_name="ticker_job",
            run_id=str(uuid.uuid4()),
            status=status,
            tags={DAY_TAG: day, BATCHES_TAG: str(batches)},
        )
    )


def _tick(instance):
    return daily_breadth_sensor(dg.build_sensor_context(instance=instance))


def _requested(result) -> list[tuple[str, str]]:
    return [(r.partition_key, r.run_key) for r in result.run_requests]


def test_breadth_waits_while_a_ticker_run_of_the_day_is_still_running(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    _add_ticker_run(instance, dg.DagsterRunStatus.STARTED)
    assert isinstance(_tick(instance), dg.SkipReason)


def test_breadth_waits_until_every_batch_of_the_day_has_been_launched(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS, batches=3)
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS, batches=3)
    assert isinstance(_tick(instance), dg.SkipReason)


def test_breadth_of_the_day_is_requested_once_every_run_finished_even_a_failed_one(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    _add_ticker_run(instance, dg.DagsterRunStatus.FAILURE)
    assert _requested(_tick(instance)) == [(DAY, f"daily-breadth:{DAY}:2")]


def test_the_same_finished_day_keeps_its_run_key_so_the_daemon_runs_it_once(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    assert _requested(_tick(instance)) == _requested(_tick(instance))


def test_a_re_executed_failed_batch_asks_for_the_days_breadth_again(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    _add_ticker_run(instance, dg.DagsterRunStatus.FAILURE)
    assert _requested(_tick(instance)) == [(DAY, f"daily-breadth:{DAY}:2")]
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)  # the re-execution keeps the tags
    assert _requested(_tick(instance)) == [(DAY, f"daily-breadth:{DAY}:3")]


def test_runs_without_a_day_tag_such_as_backfills_are_ignored(instance):
    instance.add_run(
        dg.DagsterRun(
            job_name="ticker_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.SUCCESS
        )
    )
    assert isinstance(_tick(instance), dg.SkipReason)
