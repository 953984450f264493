"""The MongoDB store's breadth bookkeeping: its writes by group, the stale mark, the groups'
records, and the migration of a database an older version wrote."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import pymongo
from pymongo.errors import PyMongoError

from breadth_assets import schema
from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.base import BreadthSteps, MarketStore, StaleMark
from breadth_assets.stores.mongo_documents import as_documents, bson_date, key_of

STALE = "breadth_stale"
UNIVERSE = "breadth_universe"
"""The collection of the breadth groups' tickers; also the `_id` of the one document in
`breadth_stale` where an older version kept the whole universe's."""


def migrate(db: Any) -> None:
    """Brings a database an older version wrote to breadth per group: its breadth documents
    (keyed by date alone) and its universe record are the whole universe's."""
    breadth = db[schema.BREADTH]
    breadth.update_many({"group_name": {"$exists": False}}, {"$set": {"group_name": ALL_GROUP}})
    for name, index in breadth.index_information().items():
        if index.get("unique") and [key for key, _ in index["key"]] == ["date"]:
            breadth.drop_index(name)
    old = db[STALE].find_one({"_id": UNIVERSE})
    if old is not None:
        record = {"tickers": list(old.get("tickers", []))}
        db[UNIVERSE].update_one({"_id": ALL_GROUP}, {"$setOnInsert": record}, upsert=True)
        db[STALE].delete_one({"_id": UNIVERSE})


class MongoSteps(BreadthSteps):
    def __init__(self, store: MarketStore) -> None:
        """`store`: the MongoStore, whose database, errors and upserts the steps use."""
        self.store = store

    def _do(self, doing: str, step: Callable[[Any], object]) -> None:
        try:
            step(self.store._db())
        except PyMongoError as error:
            raise self.store._fail(error, doing) from None

    def _replace(self, table: str, query: dict[str, Any], rows: pd.DataFrame) -> None:
        """The documents `query` finds become `rows`: these upserted first, then the ones found
        that are not among them deleted (a reader never misses a row that stays)."""
        keys = schema.KEYS[table]
        kept: set[tuple] = set()
        if len(rows):
            kept = {key_of(doc, keys) for doc in as_documents(rows, schema.TABLES[table])}
            self.store.write({table: rows}, stale_from=None)

        def clear(db: Any) -> None:
            found = db[table].find(query, dict.fromkeys(keys, True))
            gone = [doc["_id"] for doc in found if key_of(doc, keys) not in kept]
            if gone:
                db[table].delete_many({"_id": {"$in": gone}})

        self._do(f"replacing {table} rows", clear)

    def replace_rows(
        self,
        first: dt.date,
        last: dt.date,
        groups: Sequence[str],
        frames: Mapping[str, pd.DataFrame],
    ) -> None:
        query = {
            "date": {"$gte": bson_date(first), "$lte": bson_date(last)},
            "group_name": {"$in": list(groups)},
        }
        for table in schema.GROUP_TABLES:
            self._replace(table, query, frames.get(table, pd.DataFrame()))

    def delete(self, days: Sequence[dt.date]) -> None:
        dates = {"date": {"$in": [bson_date(day) for day in days]}}

        def step(db: Any) -> None:
            for table in schema.GROUP_TABLES:
                db[table].delete_many(dates)

        self._do("deleting breadth rows", step)

    def replace_universe(self, members: Mapping[str, Sequence[str]]) -> None:
        operations = [
            pymongo.ReplaceOne({"_id": group}, {"_id": group, "tickers": list(tickers)}, True)
            for group, tickers in members.items()
        ]
        if operations:
            self._do(
                "writing the breadth groups",
                lambda db: db[UNIVERSE].bulk_write(operations, ordered=False),
            )

    def drop_groups(self, groups: Sequence[str]) -> None:
        named = {"$in": list(groups)}

        def step(db: Any) -> None:
            for table in schema.GROUP_TABLES:
                db[table].delete_many({"group_name": named})
            db[UNIVERSE].delete_many({"_id": named})

        self._do("dropping breadth groups", step)

    def settle(self, seen: StaleMark, stale_from: dt.date | None) -> None:
        change = (
            {"$set": {"stale_from": bson_date(stale_from)}}
            if stale_from
            else {"$unset": {"stale_from": ""}}
        )
        self._do(
            "settling the breadth stale mark",
            lambda db: db[STALE].update_one({"_id": STALE, "version": seen.version}, change),
        )

    def move_mark(self, day: dt.date) -> None:
        change = {"$min": {"stale_from": bson_date(day)}, "$inc": {"version": 1}}
        self._do(
            "moving the breadth stale mark",
            lambda db: db[STALE].update_one({"_id": STALE}, change, upsert=True),
        )
