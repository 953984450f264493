"""The fixtures every test package shares; the helpers are in support.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy

from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets_tests.support import TICKERS, add_tickers, write_universe


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A temporary Dagster instance (`dg.instance_for_test`), the one every test uses."""
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def instance_with_tickers(instance) -> dg.DagsterInstance:
    """The instance with the TICKERS partitions (a module with its own list overrides this)."""
    return add_tickers(instance, TICKERS)


@pytest.fixture
def store(tmp_path) -> DuckDBStore:
    return DuckDBStore(path=str(tmp_path / "breadth.duckdb"))


@pytest.fixture
def universe_path(tmp_path) -> Path:
    """A demo universe file with the TICKERS."""
    return write_universe(tmp_path, TICKERS)


@pytest.fixture
def postgres_database() -> Iterator[Callable[[], str]]:
    """Makes fresh databases on the test PostgreSQL server (`BREADTH_TEST_POSTGRES`, a URL
    without a database, e.g. postgresql+psycopg2://postgres@127.0.0.1:54329, as
    `scripts/postgres.sh start` serves) and drops them afterwards. Skipped without a server,
    except on CI, where it fails."""
    server = os.environ.get("BREADTH_TEST_POSTGRES", "").rstrip("/")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("CI must set BREADTH_TEST_POSTGRES (bash scripts/postgres.sh start)")
        pytest.skip("BREADTH_TEST_POSTGRES is not set (bash scripts/postgres.sh start)")
    admin = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"breadth_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return f"{server}/{name}"

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
