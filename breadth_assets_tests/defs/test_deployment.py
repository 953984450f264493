from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest
from dagster_celery.config import (
    TASK_EXECUTE_JOB_NAME,
    TASK_EXECUTE_PLAN_NAME,
    TASK_RESUME_JOB_NAME,
)

from breadth_assets.defs.deployment import (
    executor_for_deployment,
    price_source_for,
    store_for_deployment,
)
from breadth_assets.runtime.workers import CELERY_SETTINGS, celery_settings, celery_worker_args
from breadth_assets.sources.upstox.source import UpstoxSource
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.stores.mongo import MongoStore
from breadth_assets.stores.postgres.store import PostgresStore
from breadth_assets.universe.file import load_universe


def test_duckdb_is_the_default_store(monkeypatch, tmp_path):
    monkeypatch.delenv("BREADTH_STORE", raising=False)
    monkeypatch.setenv("BREADTH_DUCKDB_PATH", str(tmp_path / "x.duckdb"))
    store = store_for_deployment()
    assert isinstance(store, DuckDBStore)
    assert store.path == str(tmp_path / "x.duckdb")


def test_breadth_store_mongodb_reads_the_connection_string_through_envvar(monkeypatch):
    monkeypatch.setenv("BREADTH_STORE", "mongodb")
    monkeypatch.setenv("BREADTH_MONGODB_DATABASE", "markets")
    store = store_for_deployment()
    assert isinstance(store, MongoStore)
    assert store.database == "markets"
    assert store.uri == dg.EnvVar("MONGODB_URI")


def test_breadth_store_postgres_reads_the_url_through_envvar(monkeypatch):
    monkeypatch.setenv("BREADTH_STORE", "postgres")
    monkeypatch.setenv("BREADTH_POSTGRES_URL", "postgresql+psycopg2://u:secret-value@db:5432/m")
    monkeypatch.delenv("BREADTH_POSTGRES_SCHEMA", raising=False)
    store = store_for_deployment()
    assert isinstance(store, PostgresStore)
    assert store.url == dg.EnvVar("BREADTH_POSTGRES_URL")
    assert store.schema_name == "public"
    monkeypatch.setenv("BREADTH_POSTGRES_SCHEMA", "markets")
    assert store_for_deployment().schema_name == "markets"


def test_an_unknown_store_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv("BREADTH_STORE", "sqlite")
    with pytest.raises(ValueError, match="duckdb, mongodb, postgres"):
        store_for_deployment()


def _upstox_universe(tmp_path):
    path = tmp_path / "universe.yaml"
    path.write_text(
        "market: NSE\nstart_date: 2020-01-01\nsource:\n  kind: upstox\n"
        "  rate_limits: {per_second: 20}\n  workers: 4\n"
        'tickers:\n  - symbol: SBIN\n    instrument_key: "NSE_EQ|INE062A01020"\n'
    )
    return load_universe(path)


def test_an_upstox_universe_gets_the_token_through_envvar_and_its_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN", "secret-value")
    monkeypatch.delenv("UPSTOX_API_HOST", raising=False)
    source = price_source_for(_upstox_universe(tmp_path))
    assert isinstance(source, UpstoxSource)
    assert isinstance(source.access_token, dg.EnvVar)
    assert source.access_token == "UPSTOX_ACCESS_TOKEN"
    assert source.host == "https://api.upstox.com"
    assert (source.per_second, source.workers) == (20, 4)


def test_upstox_api_host_points_the_source_at_another_host(monkeypatch, tmp_path):
    monkeypatch.setenv("UPSTOX_API_HOST", "http://127.0.0.1:8123")
    assert price_source_for(_upstox_universe(tmp_path)).host == "http://127.0.0.1:8123"


def test_the_limiter_url_reaches_the_source_through_envvar_with_the_configured_key(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("BREADTH_UPSTOX_LIMITER_URL", "redis://:secret@10.0.0.5:6379/0")
    monkeypatch.setenv("BREADTH_UPSTOX_LIMITER_KEY", "acct-1")
    source = price_source_for(_upstox_universe(tmp_path))
    assert isinstance(source.rate_limit_url, dg.EnvVar)
    assert source.rate_limit_url == "BREADTH_UPSTOX_LIMITER_URL"
    assert source.rate_limit_key == "acct-1"


def test_without_a_limiter_url_the_source_keeps_the_machine_wide_file(monkeypatch, tmp_path):
    monkeypatch.delenv("BREADTH_UPSTOX_LIMITER_URL", raising=False)
    monkeypatch.delenv("BREADTH_UPSTOX_LIMITER_KEY", raising=False)
    source = price_source_for(_upstox_universe(tmp_path))
    assert source.rate_limit_url is None and source.rate_limit_key is None


def test_at_run_time_the_limiter_url_makes_the_source_use_the_redis_limiter(monkeypatch, tmp_path):
    from breadth_assets.sources.upstox.redis_limiter import RedisRateLimiter

    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN", "secret-value")
    monkeypatch.setenv("BREADTH_UPSTOX_LIMITER_URL", "redis://:secret@10.0.0.5:6379/0")
    monkeypatch.delenv("BREADTH_UPSTOX_LIMITER_KEY", raising=False)
    with dg.build_resources({"source": price_source_for(_upstox_universe(tmp_path))}) as built:
        limiter = built.source._upstox()._limiter
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.address == "10.0.0.5:6379"


def test_a_mongodb_store_used_outside_a_run_reads_its_connection_string_itself(monkeypatch):
    monkeypatch.setenv("BREADTH_STORE", "mongodb")
    monkeypatch.setenv("MONGODB_URI", "mongodb://reader:s3cret@db.example:27017/")
    store = store_for_deployment()
    assert store.location() == "MongoDB at db.example:27017, database breadth"


def _worker_app_conf(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The workers' Celery app as `celery -A breadth_assets.runtime.celery_worker` loads it."""
    code = (
        "import json; from breadth_assets.runtime.celery_worker import app; c = app.conf; "
        "print(json.dumps({'broker': c.broker_url, 'backend': c.result_backend, "
        "'acks_late': c.task_acks_late, 'prefetch': c.worker_prefetch_multiplier, "
        "'reject_on_worker_lost': c.task_reject_on_worker_lost, "
        "'visibility': c.broker_transport_options['visibility_timeout'], "
        "'step_task': [k.__name__ for k in type(app.tasks['execute_plan']).__mro__], "
        "'tasks': sorted(t for t in app.tasks if not t.startswith('celery.'))}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BREADTH_CELERY_")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )


def test_the_workers_celery_app_takes_broker_backend_and_settings_as_the_runs_executor_does():
    broker, backend = "redis://127.0.0.1:6399/4", "redis://127.0.0.1:6399/5"
    done = _worker_app_conf({"BREADTH_CELERY_BROKER": broker, "BREADTH_CELERY_BACKEND": backend})
    assert done.returncode == 0, done.stderr[-2000:]
    conf = json.loads(done.stdout)
    assert (conf["broker"], conf["backend"]) == (broker, backend)
    assert conf["acks_late"] == CELERY_SETTINGS["task_acks_late"]
    assert conf["prefetch"] == CELERY_SETTINGS["worker_prefetch_multiplier"]
    assert conf["reject_on_worker_lost"] is False
    assert conf["visibility"] == 3600
    assert "StepTask" in conf["step_task"]
    assert conf["tasks"] == sorted(
        [TASK_EXECUTE_PLAN_NAME, TASK_EXECUTE_JOB_NAME, TASK_RESUME_JOB_NAME]
    )


def test_the_visibility_timeout_is_a_setting_shared_by_the_workers_and_the_runs(monkeypatch):
    broker, backend = "redis://127.0.0.1:6399/4", "redis://127.0.0.1:6399/5"
    done = _worker_app_conf(
        {
            "BREADTH_CELERY_BROKER": broker,
            "BREADTH_CELERY_BACKEND": backend,
            "BREADTH_CELERY_VISIBILITY_TIMEOUT": "900",
        }
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["visibility"] == 900
    monkeypatch.setenv("BREADTH_CELERY_VISIBILITY_TIMEOUT", "900")
    transport = celery_settings()["broker_transport_options"]
    assert transport["visibility_timeout"] == 900
    assert transport["max_retries"] == 3  # dagster-celery's own options kept


def test_a_worker_without_its_broker_variable_names_it():
    done = _worker_app_conf({"BREADTH_CELERY_BACKEND": "redis://127.0.0.1:6399/5"})
    assert done.returncode != 0
    assert "a Celery worker needs BREADTH_CELERY_BROKER" in done.stderr


def test_breadth_executor_celery_gives_every_job_the_celery_executor(monkeypatch):
    monkeypatch.setenv("BREADTH_EXECUTOR", "celery")
    assert executor_for_deployment().name == "celery_executor"


def test_celery_worker_args_start_one_named_worker_taking_one_step_at_a_time():
    args = celery_worker_args("worker3")
    assert args[:3] == ["-A", "breadth_assets.runtime.celery_worker", "worker"]
    assert args[args.index("-n") + 1] == "worker3@%h"
    assert args[args.index("--concurrency") + 1] == "1"
