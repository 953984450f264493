from __future__ import annotations

import dagster as dg
import pytest

from breadth_assets.deployment import store_for_deployment
from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets.resources.mongo_store import MongoStore


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


def test_an_unknown_store_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv("BREADTH_STORE", "postgres")
    with pytest.raises(ValueError, match="duckdb, mongodb"):
        store_for_deployment()
