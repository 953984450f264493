"""Kept import path of the Celery workers' app (`celery -A breadth_assets.celery_worker`), as
worker commands written for earlier versions name it; the app is
`breadth_assets.runtime.celery_worker`."""

from breadth_assets.runtime.celery_worker import app, execute_job, execute_plan, resume_job

__all__ = ["app", "execute_job", "execute_plan", "resume_job"]
