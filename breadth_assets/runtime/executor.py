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
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import dagster as dg
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

from breadth_assets.runtime.recovery import holders_text, record_location, this_host

MAX_WAIT_SECONDS = 1.0
"""Longest sleep between two looks at a captured interrupt while a step waits for a slot."""
WAIT_LOG_INTERVAL_SECONDS = 60.0


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
            "is freed; a run whose process is gone is cleared by run_recovery_sensor or "
            "`breadth-assets status --repair`."
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
