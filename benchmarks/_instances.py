"""The two kinds of Dagster home the benchmarks measure: the project's SQLite one and the
PostgreSQL one (`deploy/postgres/dagster.yaml`, on the server that `BREADTH_TEST_POSTGRES` names,
as `bash scripts/postgres.sh start` serves it: a fresh database per home)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import sqlalchemy

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "sqlite": PROJECT_ROOT / "dagster_home" / "dagster.yaml",
    "postgres": PROJECT_ROOT / "deploy" / "postgres" / "dagster.yaml",
}
POSTGRES_ENV = "BREADTH_TEST_POSTGRES"


def postgres_server() -> str | None:
    return os.environ.get(POSTGRES_ENV, "").rstrip("/") or None


def new_home(kind: str, home: Path) -> dict[str, str]:
    """Writes a Dagster home of `kind` into `home`; the environment its processes need."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIGS[kind], home / "dagster.yaml")
    env = {"DAGSTER_HOME": str(home)}
    if kind == "postgres":
        server = postgres_server()
        if server is None:
            raise SystemExit(f"set {POSTGRES_ENV} (bash scripts/postgres.sh start) for PostgreSQL")
        name = f"breadth_bench_{uuid.uuid4().hex[:10]}"
        engine = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        env["DAGSTER_POSTGRES_URL"] = f"{server}/{name}"
    return env


def drop_home(env: dict[str, str]) -> None:
    url = env.get("DAGSTER_POSTGRES_URL")
    if url:
        server, name = url.rsplit("/", 1)
        engine = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def events_written(env: dict[str, str]) -> int:
    """Rows in the home's event log."""
    import dagster as dg

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        count = sqlalchemy.text("select count(*) from event_logs")
        with (
            dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance,
            instance.event_log_storage.index_connection() as conn,
        ):
            return int(conn.execute(count).scalar())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
