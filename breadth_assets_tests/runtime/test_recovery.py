"""Finding and clearing what crashed runs leave behind, on a real (temporary) Dagster instance."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import psutil
import pytest
from dagster._core.test_utils import create_run_for_test

from breadth_assets.runtime.recovery import (
    HOST_TAG,
    PID_TAG,
    PROCESS_START_TAG,
    location_tags,
    repair,
    status,
    status_text,
)

POOL = "price_api"


@pytest.fixture
def instance_with_pool(instance):
    """The instance with a limit of 2 slots on the price API's pool."""
    instance.event_log_storage.set_concurrency_slots(POOL, 2)
    return instance


def _dead_process_tags() -> dict[str, str]:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    tags = location_tags(process.pid)
    process.wait(timeout=30)
    return tags


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    run = create_run_for_test(
        instance, job_name="ticker_job", status=dg.DagsterRunStatus.STARTED, tags=tags
    )
    instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "ticker_assets")
    return run


def _claimed_by(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return {slot.run_id for slot in info.claimed_slots}


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return records[-1].dagster_event.message if records else ""


def test_a_run_whose_process_is_gone_is_marked_failed_with_the_reason(instance_with_pool):
    run = _started_run(instance_with_pool, _dead_process_tags())
    repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    message = _failure_message(instance_with_pool, run.run_id)
    assert f"pid {run.tags[PID_TAG]} on {run.tags[HOST_TAG]}" in message
    assert "is gone" in message


def test_the_slots_of_a_run_whose_process_is_gone_are_freed(instance_with_pool):
    run = _started_run(instance_with_pool, _dead_process_tags())
    assert _claimed_by(instance_with_pool) == {run.run_id}
    repair(instance_with_pool)
    assert _claimed_by(instance_with_pool) == set()


def test_a_run_whose_process_runs_is_left_alone(instance_with_pool):
    run = _started_run(instance_with_pool, location_tags())
    result = repair(instance_with_pool)
    assert result.lines() == []
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    assert _claimed_by(instance_with_pool) == {run.run_id}


def test_a_reused_pid_with_another_start_time_counts_as_gone(instance_with_pool):
    tags = location_tags()
    tags[PROCESS_START_TAG] = f"{float(tags[PROCESS_START_TAG]) - 100:.3f}"
    run = _started_run(instance_with_pool, tags)
    repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_run_on_another_host_is_left_alone(instance_with_pool):
    tags = {**_dead_process_tags(), HOST_TAG: "some-other-machine"}
    run = _started_run(instance_with_pool, tags)
    repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED


def test_a_run_without_a_recorded_location_is_left_alone(instance_with_pool):
    run = _started_run(instance_with_pool, {})
    repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED


def test_the_slots_of_a_run_that_has_ended_are_freed(instance_with_pool):
    run = create_run_for_test(
        instance_with_pool, job_name="ticker_job", status=dg.DagsterRunStatus.FAILURE
    )
    instance_with_pool.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "ticker_assets")
    result = repair(instance_with_pool)
    assert _claimed_by(instance_with_pool) == set()
    assert result.freed_runs == [run.run_id]


def test_status_names_each_slot_holder_with_its_process(instance_with_pool):
    alive = _started_run(instance_with_pool, location_tags())
    gone = _started_run(instance_with_pool, _dead_process_tags())
    text = status_text(status(instance_with_pool))
    assert "pool price_api: 2 of 2 slots claimed, 0 waiting" in text
    assert (
        f"ticker_assets of run {alive.run_id[:8]} ticker_job STARTED (pid {psutil.Process().pid}"
        in text
    )
    assert f"{gone.run_id[:8]} ticker_job STARTED (pid {gone.tags[PID_TAG]}" in text
    assert "process gone" in text
    assert "1 run(s) whose process is gone" in text
