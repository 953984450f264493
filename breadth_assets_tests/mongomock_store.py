"""A mock, named as such: MongoStore's own code against mongomock's in-memory MongoDB.

A MongoDB server cannot be installed on the CI machine; tests that need one use this, and the
store contract also runs against a real server whenever MONGODB_URI is set.
"""

from __future__ import annotations

import mongomock

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
