"""The stores the contract runs on, and a mock, named as such: MongoStore's own code against
mongomock's in-memory MongoDB.

A MongoDB server cannot be installed on the CI machine; tests that need one use this, and the
store contract also runs against a real server whenever MONGODB_URI is set.
"""

from __future__ import annotations

import os
import uuid

import mongomock
import pytest

from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets.resources.mongo_store import MongoStore

_MOCK_SERVERS: dict[str, mongomock.MongoClient] = {}


def _accept_sort(method):
    """mongomock 4.3 predates the `sort` argument pymongo 4.11+ passes for each bulk operation."""

    def wrapper(self, *args, sort=None, **kwargs):
        return method(self, *args, **kwargs)

    return wrapper


for _name in ("add_replace", "add_update"):
    _method = getattr(mongomock.collection.BulkOperationBuilder, _name)
    setattr(mongomock.collection.BulkOperationBuilder, _name, _accept_sort(_method))


class MongomockStore(MongoStore):
    """MongoStore's own code, with mongomock's in-memory client in place of a server (a mock)."""

    def _client(self) -> mongomock.MongoClient:
        return _MOCK_SERVERS.setdefault(self.uri, mongomock.MongoClient())


def make_store(kind: str, tmp_path) -> DuckDBStore | MongoStore:
    if kind == "duckdb":
        return DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    database = f"breadth_test_{uuid.uuid4().hex[:12]}"
    if kind == "mongodb-mongomock":
        return MongomockStore(uri=f"mongodb://mock-{uuid.uuid4().hex}/", database=database)
    return MongoStore(uri=os.environ["MONGODB_URI"], database=database)


STORE_KINDS = [
    "duckdb",
    "mongodb-mongomock",
    pytest.param(
        "mongodb-real",
        marks=pytest.mark.skipif("MONGODB_URI" not in os.environ, reason="MONGODB_URI is not set"),
    ),
]
