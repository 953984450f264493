"""The Celery app of the several-machine deployment's workers:
`celery -A breadth_assets.runtime.celery_worker worker -n NAME@%h --concurrency 1`.

It registers dagster-celery's tasks on an app made exactly as the runs' `celery_executor` makes
its own (workers.celery_app_args): broker and result backend from the same environment
variables, the same settings. `dagster-celery worker start -y FILE` would instead write the
resolved URLs, passwords included, into a new module under `$DAGSTER_HOME` at every start.

The step task is dagster-celery's, run through `StepTask`: before the step it checks that the
step is still to be executed (`recovery.step_refusal`: a message delivered again after its
worker died, or while its worker still executes it, is dropped), then records this worker in the
run's tags and keeps a heartbeat there while the step runs (`recovery.step_heartbeat`), so that
a run whose worker dies is failed within the heartbeat timeout instead of waiting for ever.
Like the executor it serves (breadth_assets.runtime.executor), it reads Dagster's internal step
arguments (`ExecuteStepArgs`), which dagster-celery's task receives packed.
"""

import os

from celery import Task
from celery.exceptions import Ignore
from celery.utils.log import get_task_logger
from dagster import DagsterInstance

# How dagster-celery packs a step (its own task reads them the same way): the worker needs the
# run and step of a task to record and beat. Can go when dagster-celery exposes a task hook.
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import unpack_value
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from breadth_assets.runtime.step_workers import step_heartbeat, step_refusal
from breadth_assets.runtime.workers import WORKER_ENV, celery_app_args

logger = get_task_logger(__name__)


class StepTask(Task):
    """dagster-celery's step task, refused when the step must not run, with a heartbeat."""

    def __call__(self, execute_step_args_packed, executable_dict):
        args = unpack_value(execute_step_args_packed, as_type=ExecuteStepArgs)
        name = os.environ.get(WORKER_ENV) or self.request.hostname
        # dagster-celery sends one step per task
        step = ", ".join(args.step_keys_to_execute or [])
        with DagsterInstance.from_ref(args.instance_ref) as instance:
            refusal = step_refusal(instance.get_run_by_id(args.run_id), args.run_id, step)
            if refusal is not None:
                logger.warning(f"not executing {step} of run {args.run_id}: {refusal}")
                raise Ignore()  # acknowledged, no result stored
            with step_heartbeat(instance, args.run_id, step, name, logger.warning):
                # Celery has pushed this task's request: `run` sees it (self.request.hostname)
                return self.run(execute_step_args_packed, executable_dict)


app = make_app(celery_app_args())
execute_plan = create_task(app, base=StepTask)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
