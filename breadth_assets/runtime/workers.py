"""How the several-machine deployment's Celery is set, the same for the runs' executor and the
workers' app, and the name of whoever executes a step (`$BREADTH_WORKER_NAME`)."""

from __future__ import annotations

import os
import socket

CELERY_SETTINGS = {
    "task_acks_late": True,
    "worker_prefetch_multiplier": 1,
    "task_reject_on_worker_lost": False,
}
"""A worker takes a step only when it is free, and acknowledges it once done: a step lasts
seconds to minutes, so a worker must not reserve the next one while another worker idles. When
the process executing a step dies and its worker lives on, the step fails (WorkerLostError) and
is not delivered again (`task_reject_on_worker_lost` False: a step that kills its process, out
of memory, would kill the next worker too). When the whole worker dies, its run is failed by the
heartbeat rule (breadth_assets.runtime.recovery) and the message, delivered again after the
visibility timeout, is dropped by the next worker (`recovery.step_refusal`)."""
VISIBILITY_TIMEOUT_ENV = "BREADTH_CELERY_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY_TIMEOUT = 3600
"""Celery's own default for Redis, kept: longer than any step, so the message of a step that a
live worker executes is not delivered to a second worker (if one outlasts it, the second worker
sees the first one's heartbeat and drops it)."""
WORKER_ENV = "BREADTH_WORKER_NAME"
CELERY_BROKER_ENV = "BREADTH_CELERY_BROKER"
CELERY_BACKEND_ENV = "BREADTH_CELERY_BACKEND"


def visibility_timeout() -> int:
    """`$BREADTH_CELERY_VISIBILITY_TIMEOUT`: seconds before Redis delivers an unacknowledged
    step's message again (default 3600)."""
    raw = os.environ.get(VISIBILITY_TIMEOUT_ENV, "").strip()
    try:
        return int(raw) if raw else DEFAULT_VISIBILITY_TIMEOUT
    except ValueError:
        raise ValueError(f"{VISIBILITY_TIMEOUT_ENV}={raw!r}: give a number of seconds") from None


def celery_settings() -> dict:
    """The Celery settings of both the runs' executor and the workers: `CELERY_SETTINGS`, and
    dagster-celery's broker transport options with the visibility timeout."""
    from dagster_celery.defaults import broker_transport_options

    return {
        **CELERY_SETTINGS,
        "broker_transport_options": {
            **broker_transport_options,
            "visibility_timeout": visibility_timeout(),
        },
    }


def celery_app_args() -> dict:
    """What a Celery worker's app is made with: what the runs' `celery_executor` gives its own
    app (`CeleryExecutor.app_args`), read from the same environment variables."""
    missing = [name for name in (CELERY_BROKER_ENV, CELERY_BACKEND_ENV) if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            f"a Celery worker needs {' and '.join(missing)} (docs/deployment.md 'Running on "
            "several machines')"
        )
    return {
        "broker": os.environ[CELERY_BROKER_ENV],
        "backend": os.environ[CELERY_BACKEND_ENV],
        "include": [],
        "config_source": celery_settings(),
    }


def celery_worker_args(name: str) -> list[str]:
    """`celery` arguments that start one worker of this deployment, named `name`, one step at a
    time (a step is a run's batch of tickers or its breadth)."""
    return [
        "-A",
        "breadth_assets.runtime.celery_worker",
        "worker",
        "-n",
        f"{name}@%h",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
    ]


def worker_name() -> str:
    """Who executes this step: `$BREADTH_WORKER_NAME` (scripts/cluster.sh names its Celery
    workers), else this host and process."""
    return os.environ.get(WORKER_ENV) or f"{socket.gethostname()}:{os.getpid()}"
