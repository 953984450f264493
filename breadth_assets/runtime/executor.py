"""Dagster's in-process executor, with the run's location recorded and pool waits that are cheap.

Every run of the project is one step in one process, so the in-process executor is right; three
things about Dagster 1.13's version of it are not:

- A step waiting for a pool slot spins: `InstanceConcurrencyContext.interval_to_next_pending_
  claim_check` returns `min(0, ...)`, never a positive wait, so the loop polls the database at
  100 % of a core. Here it sleeps until the next claim check (at most a second at a time).
- A SIGTERM or SIGINT during that wait is captured by Dagster and only acted on inside a step,
  which never starts: the run ignores it for ever. Here the wait raises Dagster's own
  `DagsterExecutionInterruptedError`, so the run ends as any interrupted run does and its
  pending claims are released.
- Nothing says where the run executes. Here the run's tags get its host, pid and process start
  time before any step runs (`breadth_assets.runtime.recovery`), and when the plan ends,
  however it ends, every slot the run still holds is freed: no step of an in-process run
  outlives it.

The Celery deployment's executor (`watched_celery_executor`) is dagster-celery's, with the same
record of the run's process, and a run process that does not wait for ever on a worker that
died: dagster-celery waits for the step's result until the broker delivers the message again,
an hour later by default. Here the run's process looks at the worker's heartbeat
(`breadth_assets.runtime.recovery.StepWorker`) every few seconds while it waits; once the worker has
been silent for the heartbeat timeout it marks the run FAILURE naming the worker, frees its
slots, revokes the step's task and stops. It stops the same way when someone else (the recovery
sensor, a user) ended the run.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

import dagster as dg

# Dagster's in-process executor and plan iteration, subclassed to record the run's location and
# wait for pool slots without spinning (no public executor API). Can go when Dagster's in-process
# executor sleeps while it waits for a slot and runs record where they execute.
from dagster._core.definitions.executor_definition import (
    IN_PROC_CONFIG,
    _core_in_process_executor_creation,
)
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import inner_plan_execution_iterator
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.executor.in_process import InProcessExecutor
from dagster._utils.interrupts import check_captured_interrupt

from breadth_assets.runtime.recovery import holders_text, record_location
from breadth_assets.runtime.step_workers import (
    StepWorker,
    fail_run,
    heartbeat_interval,
    heartbeat_timeout,
    this_host,
)

MAX_WAIT_SECONDS = 1.0
"""Longest sleep between two looks at a captured interrupt while a step waits for a slot."""
WAIT_LOG_INTERVAL_SECONDS = 60.0
WATCH_SECONDS = 5.0
"""Longest time between two looks of a Celery run's process at its step's worker."""


class PoolWait(InstanceConcurrencyContext):
    """Claims pool slots like Dagster's context; waits by sleeping and logs who holds the pool."""

    def __init__(
        self, instance: dg.DagsterInstance, run: dg.DagsterRun, log: Callable[[str], None]
    ) -> None:
        super().__init__(instance, run)
        self._log = log
        self._last_logged: dict[str, tuple[float, str]] = {}

    def claim(self, concurrency_key: str, step_key: str, step_priority: int = 0) -> bool:
        claimed = super().claim(concurrency_key, step_key, step_priority)
        if not claimed:
            self._log_wait(concurrency_key, step_key)
        elif step_key in self._last_logged:
            del self._last_logged[step_key]
            self._log(f"{step_key} got a slot of pool {concurrency_key}")
        return claimed

    def _log_wait(self, pool: str, step_key: str) -> None:
        holders = holders_text(self._instance, pool)
        last = self._last_logged.get(step_key)
        now = time.monotonic()
        if last and last[1] == holders and now - last[0] < WAIT_LOG_INTERVAL_SECONDS:
            return
        self._last_logged[step_key] = (now, holders)
        self._log(
            f"{step_key} waits for a slot of pool {pool}: {holders}. It starts as soon as one "
            "is freed; a run whose process is gone, or whose Celery worker stopped "
            "answering, is cleared by run_recovery_sensor or `breadth-assets status --repair`."
        )

    def interval_to_next_pending_claim_check(self) -> float:
        if check_captured_interrupt():
            raise DagsterExecutionInterruptedError(
                "interrupted while waiting for a pool slot: " + ", ".join(self._pending_claims)
            )
        if not self._pending_claims:
            return 0.0
        now = time.time()
        due = min(self._pending_timeouts.get(step, now) for step in self._pending_claims)
        return min(MAX_WAIT_SECONDS, max(0.01, due - now))


def _execution_iterator(
    job_context: PlanExecutionContext, execution_plan: ExecutionPlan
) -> Iterator[DagsterEvent]:
    with PoolWait(job_context.instance, job_context.dagster_run, job_context.log.warning) as pools:
        yield from inner_plan_execution_iterator(job_context, execution_plan, pools)


class RecordingInProcessExecutor(InProcessExecutor):
    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        """`InProcessExecutor.execute` with `PoolWait` and the run's location around it."""
        instance, run_id = plan_context.instance, plan_context.run_id
        record_location(instance, run_id)
        steps = execution_plan.step_keys_to_execute
        pid = os.getpid()
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {pid} on {this_host()})",
            event_specific_data=EngineEventData.in_process(pid, steps),
        )
        try:
            yield from ExecuteRunWithPlanIterable(
                execution_plan=plan_context.execution_plan,
                iterator=_execution_iterator,
                execution_context_manager=PlanExecutionContextManager(
                    job=plan_context.job,
                    retry_mode=plan_context.retry_mode,
                    execution_plan=plan_context.execution_plan,
                    run_config=plan_context.run_config,
                    dagster_run=plan_context.dagster_run,
                    instance=instance,
                    raise_on_error=plan_context.raise_on_error,
                    output_capture=plan_context.output_capture,
                    step_dependency_config=self.step_dependency_config,
                ),
            )
        finally:
            if instance.event_log_storage.supports_global_concurrency_limits:
                instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {pid})",
            event_specific_data=EngineEventData.in_process(pid, steps),
        )


@dg.executor(name="in_process", config_schema=IN_PROC_CONFIG)
def recording_in_process_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """In-process execution that records where the run executes and waits for pools cheaply."""
    base = _core_in_process_executor_creation(init_context.executor_config)
    return RecordingInProcessExecutor(
        retries=base.retries, step_dependency_config=base.step_dependency_config
    )


class WatchedResult:
    """A step's Celery result that also watches the worker executing the step.

    dagster-celery's loop polls `ready()` every second; between two looks at the run (every
    `WATCH_SECONDS` at most) it answers from Celery alone.
    """

    def __init__(self, result, instance: dg.DagsterInstance, run_id: str, step_key: str) -> None:
        self._result = result
        self._instance = instance
        self._run_id = run_id
        self._step_key = step_key
        self._timeout = heartbeat_timeout()
        self._every = min(WATCH_SECONDS, heartbeat_interval(self._timeout))
        self._next_look = time.monotonic() + self._every

    def get(self):
        return self._result.get()

    def revoke(self) -> None:
        self._result.revoke()

    def ready(self) -> bool:
        if self._result.ready():
            return True
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + self._every
        try:
            run = self._instance.get_run_by_id(self._run_id)
        except Exception:  # the storage is unreachable for now: look again later
            return False
        if run is None or run.is_finished:
            self._give_up()
            status = run.status.value if run is not None else "deleted"
            raise DagsterExecutionInterruptedError(
                f"run {self._run_id[:8]} ended ({status}) while its step {self._step_key} "
                "was with a Celery worker"
            )
        worker = StepWorker.of(run, self._step_key)
        if worker is None or not worker.is_lost(time.time(), self._timeout):
            return False
        reason = worker.lost_reason(time.time())
        self._give_up()
        if run.status == dg.DagsterRunStatus.CANCELING:
            # Dagster ends it CANCELED once this process stops.
            self._instance.event_log_storage.free_concurrency_slots_for_run(self._run_id)
        else:
            fail_run(self._instance, run, reason)
        raise DagsterExecutionInterruptedError(reason)

    def _give_up(self) -> None:
        """Revokes the task: a worker that knows it drops the message if it comes again."""
        # The broker may be unreachable: the worker's own check (step_refusal) still holds.
        with contextlib.suppress(Exception):
            self._result.revoke()


def watched_celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's `celery_executor` (same configuration), whose run process records where
    it runs and stops waiting for a step whose worker stopped answering."""
    from dagster._core.definitions.executor_definition import (
        multiple_process_executor_requirements,
    )
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.core_execution_loop import core_celery_execution_loop
    from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task

    def submit(app, plan_context, step, queue, priority, known_state) -> WatchedResult:
        result = _submit_task(app, plan_context, step, queue, priority, known_state)
        return WatchedResult(result, plan_context.instance, plan_context.run_id, step.key)

    class WatchedCeleryExecutor(CeleryExecutor):
        def execute(
            self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
        ) -> Iterator[DagsterEvent]:
            instance, run_id = plan_context.instance, plan_context.run_id
            record_location(instance, run_id)
            try:
                yield from core_celery_execution_loop(
                    plan_context, execution_plan, step_execution_fn=submit
                )
            finally:
                if instance.event_log_storage.supports_global_concurrency_limits:
                    instance.event_log_storage.free_concurrency_slots_for_run(run_id)

    @dg.executor(
        name="celery",
        config_schema=CELERY_CONFIG,
        requirements=multiple_process_executor_requirements(),
    )
    def watched_celery(init_context: dg.InitExecutorContext) -> dg.Executor:
        config = init_context.executor_config
        return WatchedCeleryExecutor(
            broker=config.get("broker"),
            backend=config.get("backend"),
            config_source=config.get("config_source"),
            include=config.get("include"),
            retries=RetryMode.from_config(config["retries"]),
        )

    return watched_celery
