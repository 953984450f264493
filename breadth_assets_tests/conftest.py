"""The fixtures every test package shares; the helpers are in support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_tests.support import (
    TICKERS,
    add_tickers,
    create_postgres_database,
    drop_postgres_database,
    postgres_server,
    write_universe,
)


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
    """Makes fresh databases on the test PostgreSQL server and drops them afterwards."""
    server = postgres_server()
    made: list[str] = []

    def make() -> str:
        made.append(create_postgres_database(server))
        return made[-1]

    yield make
    for url in made:
        drop_postgres_database(url)
