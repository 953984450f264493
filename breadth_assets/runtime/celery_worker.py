"""The Celery app of the several-machine deployment's workers:
`celery -A breadth_assets.runtime.celery_worker worker -n NAME@%h --concurrency 1`.

It registers dagster-celery's tasks on an app made exactly as the runs' `celery_executor` makes
its own (deployment.celery_app_args): broker and result backend from the same environment
variables, the same settings. `dagster-celery worker start -y FILE` would instead write the
resolved URLs, passwords included, into a new module under `$DAGSTER_HOME` at every start.
"""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from breadth_assets.defs.deployment import celery_app_args

app = make_app(celery_app_args())
execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
