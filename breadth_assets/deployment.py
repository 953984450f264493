"""Which resources this deployment uses: chosen from the environment and the universe file."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg

from breadth_assets.resources.csv_source import CsvSource
from breadth_assets.resources.demo_source import DemoSource
from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets.resources.market_store import MarketStore
from breadth_assets.resources.price_source import PriceSource
from breadth_assets.universe import Universe
from breadth_assets.upstox import PRODUCTION_HOST

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LIMITER_URL_ENV = "BREADTH_UPSTOX_LIMITER_URL"


def duckdb_path() -> str:
    """`$BREADTH_DUCKDB_PATH`, else `data/breadth.duckdb` under the project root."""
    return os.environ.get("BREADTH_DUCKDB_PATH") or str(PROJECT_ROOT / "data" / "breadth.duckdb")


def price_source_for(universe: Universe) -> PriceSource:
    """The source the universe file names, configured from its settings.

    Upstox takes its token from `$UPSTOX_ACCESS_TOKEN` through `EnvVar` (the UI and the run
    config show the variable's name only) and its host from `$UPSTOX_API_HOST`. With
    `$BREADTH_UPSTOX_LIMITER_URL` (redis://host:port/db, also through `EnvVar`: it may hold a
    password) its rate limits hold across every machine using that Redis, keyed by
    `$BREADTH_UPSTOX_LIMITER_KEY` or a hash of the token; without it, across the machine.
    """
    if universe.source == "csv":
        return CsvSource(**universe.source_options)
    if universe.source == "upstox":
        from breadth_assets.resources.upstox_source import UpstoxSource  # the SDK only when used

        return UpstoxSource(
            access_token=dg.EnvVar("UPSTOX_ACCESS_TOKEN"),
            host=os.environ.get("UPSTOX_API_HOST", "").strip() or PRODUCTION_HOST,
            rate_limit_file=os.environ.get("BREADTH_UPSTOX_RATE_FILE") or None,
            rate_limit_url=dg.EnvVar(LIMITER_URL_ENV) if os.environ.get(LIMITER_URL_ENV) else None,
            rate_limit_key=os.environ.get("BREADTH_UPSTOX_LIMITER_KEY", "").strip() or None,
            **universe.source_options,
        )
    return DemoSource(**universe.source_options)


STORES = ("duckdb", "mongodb", "postgres")


def store_for_deployment() -> MarketStore:
    """`$BREADTH_STORE`: `duckdb` (the default, an embedded file), `mongodb` or `postgres`.

    MongoDB takes its connection string from `$MONGODB_URI`, PostgreSQL its URL from
    `$BREADTH_POSTGRES_URL` (and its schema from `$BREADTH_POSTGRES_SCHEMA`, default `public`),
    both through `EnvVar`, so the UI and the run config show the variable's name, never its value.
    """
    kind = os.environ.get("BREADTH_STORE", "duckdb").strip().lower() or "duckdb"
    if kind == "mongodb":
        from breadth_assets.resources.mongo_store import MongoStore  # pymongo only when chosen

        return MongoStore(
            uri=dg.EnvVar("MONGODB_URI"),
            database=os.environ.get("BREADTH_MONGODB_DATABASE", "breadth"),
        )
    if kind == "postgres":
        from breadth_assets.resources.postgres_store import PostgresStore  # psycopg2 when chosen

        return PostgresStore(
            url=dg.EnvVar("BREADTH_POSTGRES_URL"),
            schema_name=os.environ.get("BREADTH_POSTGRES_SCHEMA", "").strip() or "public",
        )
    if kind != "duckdb":
        raise ValueError(f"BREADTH_STORE={kind!r}: use one of {', '.join(STORES)}")
    return DuckDBStore(path=duckdb_path())


EXECUTORS = ("in_process", "celery")
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
heartbeat rule (breadth_assets.recovery) and the message, delivered again after the visibility
timeout, is dropped by the next worker (`recovery.step_refusal`)."""
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


def executor_for_deployment() -> dg.ExecutorDefinition:
    """`$BREADTH_EXECUTOR`: `in_process` (the default: a run's one step in the run's process) or
    `celery` (each step sent to a Celery worker through `$BREADTH_CELERY_BROKER`, results on
    `$BREADTH_CELERY_BACKEND`; the run config names the variables, never their values)."""
    kind = os.environ.get("BREADTH_EXECUTOR", "in_process").strip().lower() or "in_process"
    if kind == "celery":
        # dagster-celery's executor, watching the step's worker (breadth_assets.executor)
        from breadth_assets.executor import watched_celery_executor

        return watched_celery_executor().configured(
            {
                "broker": {"env": CELERY_BROKER_ENV},
                "backend": {"env": CELERY_BACKEND_ENV},
                "config_source": celery_settings(),
            },
            name="celery_executor",
        )
    if kind != "in_process":
        raise ValueError(f"BREADTH_EXECUTOR={kind!r}: use one of {', '.join(EXECUTORS)}")
    from breadth_assets.executor import recording_in_process_executor

    return recording_in_process_executor


def celery_app_args() -> dict:
    """What a Celery worker's app is made with: what the runs' `celery_executor` gives its own
    app (`CeleryExecutor.app_args`), read from the same environment variables."""
    missing = [name for name in (CELERY_BROKER_ENV, CELERY_BACKEND_ENV) if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            f"a Celery worker needs {' and '.join(missing)} (README 'Running on several machines')"
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
        "breadth_assets.celery_worker",
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
