"""Finding and clearing what crashed runs leave behind, on a real (temporary) Dagster instance."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid

import dagster as dg
import psutil
import pytest
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, StepSuccessData
from dagster._core.test_utils import create_run_for_test

from breadth_assets.runtime.executor import WatchedResult
from breadth_assets.runtime.recovery import (
    HOST_TAG,
    LOCATION_RUN_TAG,
    PID_TAG,
    PROCESS_START_TAG,
    location_tags,
    repair,
    status,
    status_text,
)
from breadth_assets.runtime.step_workers import (
    HEARTBEAT_TIMEOUT_ENV,
    STEP_WORKER_TAG,
    StepWorker,
    heartbeat_timeout,
    step_heartbeat,
    step_refusal,
    this_host,
)

POOL = "price_api"
STEP = "ticker_assets"
TIMEOUT = 120.0


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


def test_a_reexecution_does_not_take_its_parents_location_for_its_own(instance_with_pool):
    """The UI copies the parent's tags into a re-execution: the parent's dead process is not
    the new run's."""
    parent = create_run_for_test(instance_with_pool, status=dg.DagsterRunStatus.FAILURE)
    tags = {**_dead_process_tags(), LOCATION_RUN_TAG: parent.run_id}
    run = create_run_for_test(
        instance_with_pool,
        status=dg.DagsterRunStatus.STARTED,
        tags=tags,
        parent_run_id=parent.run_id,
        root_run_id=parent.run_id,
    )
    repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED


# A Celery run: its step executes in a worker, which records itself and beats in the run's tags.


def _worker(run_id: str, heartbeat: float, *, ended: float | None = None, step: str = STEP):
    return StepWorker(
        step_key=step,
        run_id=run_id,
        name="worker1",
        host="box-7",
        pid=4242,
        heartbeat=heartbeat,
        every=TIMEOUT / 6,
        ended=ended,
    )


def _celery_run(instance: dg.DagsterInstance, silent_for: float, **worker) -> dg.DagsterRun:
    """A STARTED run holding a slot, its orchestrating process this one (alive), its step on a
    worker last heard from `silent_for` seconds ago."""
    run_id = str(uuid.uuid4())
    tags = {
        **location_tags(run_id=run_id),
        **_worker(run_id, time.time() - silent_for, **worker).tags(),
    }
    run = create_run_for_test(
        instance,
        run_id=run_id,
        job_name="ticker_job",
        status=dg.DagsterRunStatus.STARTED,
        tags=tags,
    )
    instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, STEP)
    return run


def test_a_celery_run_whose_worker_stopped_answering_is_failed_naming_the_worker(
    instance_with_pool,
):
    run = _celery_run(instance_with_pool, silent_for=TIMEOUT + 30)
    result = repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    message = _failure_message(instance_with_pool, run.run_id)
    assert "worker worker1 on box-7 stopped answering (last heartbeat " in message
    assert f"s ago) while it executed step {STEP}" in message
    assert result.failed_runs == [message]


def test_the_slots_of_a_celery_run_whose_worker_stopped_answering_are_freed(instance_with_pool):
    run = _celery_run(instance_with_pool, silent_for=TIMEOUT + 30)
    assert _claimed_by(instance_with_pool) == {run.run_id}
    repair(instance_with_pool)
    assert _claimed_by(instance_with_pool) == set()


def test_a_celery_run_whose_worker_beats_is_left_alone(instance_with_pool):
    run = _celery_run(instance_with_pool, silent_for=TIMEOUT / 6)
    assert repair(instance_with_pool).lines() == []
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    assert _claimed_by(instance_with_pool) == {run.run_id}


def test_the_heartbeat_timeout_is_a_setting(instance_with_pool, monkeypatch):
    run = _celery_run(instance_with_pool, silent_for=45)
    repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    monkeypatch.setenv(HEARTBEAT_TIMEOUT_ENV, "30")
    assert heartbeat_timeout() == 30
    # the worker beats every 20 s (a sixth of its own 120 s): it is lost after three missed beats
    repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    repair(instance_with_pool, now=time.time() + 20)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_step_its_worker_finished_is_not_a_lost_worker(instance_with_pool):
    """Between the step's end and the run's, the run process collects the result."""
    run = _celery_run(instance_with_pool, silent_for=TIMEOUT + 30, ended=time.time() - 10)
    assert repair(instance_with_pool).lines() == []
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED


def test_a_step_the_event_log_says_ended_is_not_a_lost_worker(instance_with_pool):
    """Two steps of one run recording themselves at once can overwrite each other's record."""
    run = _celery_run(instance_with_pool, silent_for=TIMEOUT + 30)
    success = DagsterEvent(
        event_type_value=dg.DagsterEventType.STEP_SUCCESS.value,
        job_name="ticker_job",
        step_key=STEP,
        event_specific_data=StepSuccessData(duration_ms=5.0),
    )
    instance_with_pool.report_dagster_event(success, run_id=run.run_id)
    repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED


def test_a_reexecution_does_not_take_its_parents_worker_for_its_own(instance_with_pool):
    parent = create_run_for_test(instance_with_pool, status=dg.DagsterRunStatus.FAILURE)
    tags = _worker(parent.run_id, time.time() - TIMEOUT - 30).tags()
    run = create_run_for_test(
        instance_with_pool,
        status=dg.DagsterRunStatus.STARTED,
        tags=tags,
        parent_run_id=parent.run_id,
        root_run_id=parent.run_id,
    )
    assert StepWorker.all_of(run) == []
    repair(instance_with_pool)
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED


def test_status_names_the_worker_of_each_celery_step(instance_with_pool):
    beating = _celery_run(instance_with_pool, silent_for=5)
    lost = _celery_run(instance_with_pool, silent_for=TIMEOUT + 30)
    text = status_text(status(instance_with_pool))
    on_worker = f"{STEP} on worker worker1 on box-7 \\(pid 4242\\)"
    assert re.search(
        rf"{beating.run_id[:8]} ticker_job STARTED .*; {on_worker}, heartbeat \d+ s ago", text
    )
    assert re.search(
        rf"{lost.run_id[:8]} ticker_job STARTED .*; {on_worker}, stopped answering 1[5-9]\d s ago",
        text,
    )
    assert "1 run(s) whose Celery worker stopped answering" in text


def test_a_step_delivered_again_is_refused_while_its_worker_beats_or_after_its_run_ended(
    instance,
):
    now = time.time()
    assert step_refusal(None, "gone-run", STEP) == "run gone-run does not exist"
    fresh = _celery_run(instance, silent_for=10)
    assert "worker worker1 on box-7 executes ticker_assets" in step_refusal(
        fresh, fresh.run_id, STEP, now
    )
    finished = _celery_run(instance, silent_for=10, ended=now - 5)
    assert "already executed ticker_assets" in step_refusal(finished, finished.run_id, STEP, now)
    instance.report_run_failed(fresh, "worker lost")
    failed = instance.get_run_by_id(fresh.run_id)
    assert "is FAILURE, not STARTED" in step_refusal(failed, failed.run_id, STEP, now)


def test_a_step_is_executed_when_new_or_when_its_worker_stopped_answering(instance):
    now = time.time()
    run = _celery_run(instance, silent_for=TIMEOUT + 30)
    assert step_refusal(run, run.run_id, STEP, now) is None
    assert step_refusal(run, run.run_id, "quality_checks", now) is None


def test_a_worker_records_itself_beats_and_records_the_steps_end(instance):
    run = create_run_for_test(instance, status=dg.DagsterRunStatus.STARTED)

    def record() -> StepWorker:
        worker = StepWorker.of(instance.get_run_by_id(run.run_id), STEP)
        assert worker is not None
        return worker

    with step_heartbeat(instance, run.run_id, STEP, "worker9", print, every=0.2):
        first = record()
        assert (first.name, first.host, first.ended) == ("worker9", this_host(), None)
        deadline = time.time() + 10
        while record().heartbeat <= first.heartbeat and time.time() < deadline:
            time.sleep(0.1)
        assert record().heartbeat > first.heartbeat
    assert record().ended is not None
    assert json.loads(instance.get_run_by_id(run.run_id).tags[STEP_WORKER_TAG + STEP])["ended"]


class _PendingResult:
    """A Celery result that never arrives (its worker is dead)."""

    def __init__(self) -> None:
        self.revoked = False

    def ready(self) -> bool:
        return False

    def revoke(self) -> None:
        self.revoked = True


def _watched(
    instance: dg.DagsterInstance, run: dg.DagsterRun
) -> tuple[WatchedResult, _PendingResult]:
    pending = _PendingResult()
    watched = WatchedResult(pending, instance, run.run_id, STEP)
    watched._next_look = 0.0  # look at once
    return watched, pending


def test_the_run_process_fails_its_run_when_the_steps_worker_stopped_answering(
    instance_with_pool,
):
    run = _celery_run(instance_with_pool, silent_for=TIMEOUT + 30)
    watched, pending = _watched(instance_with_pool, run)
    with pytest.raises(DagsterExecutionInterruptedError, match="worker worker1 on box-7 stopped"):
        watched.ready()
    assert pending.revoked
    assert instance_with_pool.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert "worker worker1 on box-7" in _failure_message(instance_with_pool, run.run_id)
    assert _claimed_by(instance_with_pool) == set()


def test_the_run_process_waits_while_the_worker_beats_and_stops_once_the_run_ended(
    instance_with_pool,
):
    run = _celery_run(instance_with_pool, silent_for=5)
    watched, pending = _watched(instance_with_pool, run)
    assert watched.ready() is False
    instance_with_pool.report_run_failed(run, "ended by the recovery sensor")
    watched._next_look = 0.0
    with pytest.raises(DagsterExecutionInterruptedError, match="ended \\(FAILURE\\)"):
        watched.ready()
    assert pending.revoked
