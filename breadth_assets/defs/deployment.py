"""Which resources this deployment uses: chosen from the environment and the universe file."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from breadth_assets.runtime.workers import (
    CELERY_BACKEND_ENV,
    CELERY_BROKER_ENV,
    celery_settings,
)
from breadth_assets.sources.base import PriceSource
from breadth_assets.sources.csv.source import CsvSource
from breadth_assets.sources.demo.source import DemoSource
from breadth_assets.sources.upstox import PRODUCTION_HOST
from breadth_assets.stores.base import MarketStore
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.universe.file import Universe

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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
        return CsvSource(**universe.source_settings.resource_options())
    if universe.source == "upstox":
        from breadth_assets.sources.upstox.source import UpstoxSource  # the SDK only when used

        return UpstoxSource(
            access_token=dg.EnvVar("UPSTOX_ACCESS_TOKEN"),
            host=os.environ.get("UPSTOX_API_HOST", "").strip() or PRODUCTION_HOST,
            rate_limit_file=os.environ.get("BREADTH_UPSTOX_RATE_FILE") or None,
            rate_limit_url=dg.EnvVar(LIMITER_URL_ENV) if os.environ.get(LIMITER_URL_ENV) else None,
            rate_limit_key=os.environ.get("BREADTH_UPSTOX_LIMITER_KEY", "").strip() or None,
            **universe.source_settings.resource_options(),
        )
    return DemoSource(**universe.source_settings.resource_options())


STORES = ("duckdb", "mongodb", "postgres")


def store_for_deployment() -> MarketStore:
    """`$BREADTH_STORE`: `duckdb` (the default, an embedded file), `mongodb` or `postgres`.

    MongoDB takes its connection string from `$MONGODB_URI`, PostgreSQL its URL from
    `$BREADTH_POSTGRES_URL` (and its schema from `$BREADTH_POSTGRES_SCHEMA`, default `public`),
    both through `EnvVar`, so the UI and the run config show the variable's name, never its value.
    """
    kind = os.environ.get("BREADTH_STORE", "duckdb").strip().lower() or "duckdb"
    if kind == "mongodb":
        from breadth_assets.stores.mongo import MongoStore  # pymongo only when chosen

        return MongoStore(
            uri=dg.EnvVar("MONGODB_URI"),
            database=os.environ.get("BREADTH_MONGODB_DATABASE", "breadth"),
        )
    if kind == "postgres":
        from breadth_assets.stores.postgres.store import PostgresStore  # psycopg2 when chosen

        return PostgresStore(
            url=dg.EnvVar("BREADTH_POSTGRES_URL"),
            schema_name=os.environ.get("BREADTH_POSTGRES_SCHEMA", "").strip() or "public",
        )
    if kind != "duckdb":
        raise ValueError(f"BREADTH_STORE={kind!r}: use one of {', '.join(STORES)}")
    return DuckDBStore(path=duckdb_path())


EXECUTORS = ("in_process", "celery")


def executor_for_deployment() -> dg.ExecutorDefinition:
    """`$BREADTH_EXECUTOR`: `in_process` (the default: a run's one step in the run's process) or
    `celery` (each step sent to a Celery worker through `$BREADTH_CELERY_BROKER`, results on
    `$BREADTH_CELERY_BACKEND`; the run config names the variables, never their values)."""
    kind = os.environ.get("BREADTH_EXECUTOR", "in_process").strip().lower() or "in_process"
    if kind == "celery":
        # dagster-celery's executor, watching the step's worker (breadth_assets.runtime.executor)
        from breadth_assets.runtime.executor import watched_celery_executor

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
    from breadth_assets.runtime.executor import recording_in_process_executor

    return recording_in_process_executor
