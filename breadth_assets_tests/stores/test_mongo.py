"""What the MongoDB store adds to the contract: a database an older version wrote opens as breadth
per group. Runs against mongomock (a mock: MongoStore's own code with an in-memory MongoDB)."""

from __future__ import annotations

import datetime as dt

import pymongo
import pytest

from breadth_assets import schema
from breadth_assets.stores.mongo import MongoStore
from breadth_assets_tests.support import make_store


@pytest.fixture
def mongo_store(tmp_path) -> MongoStore:
    return make_store("mongodb-mongomock", tmp_path)


def _write_the_layout_before_groups(store: MongoStore) -> None:
    """Breadth documents without group_name under a unique index on date, and the universe as
    one document of breadth_stale, as a version before groups wrote them."""
    db = store._client()[store.database]
    db[schema.BREADTH].create_index([("date", pymongo.ASCENDING)], unique=True)
    db[schema.BREADTH].insert_many(
        [
            {"date": dt.datetime(2024, 1, day), "universe": 5, "advancers": 3, "trin": 0.8}
            for day in (2, 3)
        ]
    )
    db["breadth_stale"].insert_one({"_id": "breadth_universe", "tickers": ["BBB", "AAA"]})


def test_a_database_from_before_groups_opens_with_its_rows_and_record_as_the_whole_universe(
    mongo_store,
):
    _write_the_layout_before_groups(mongo_store)

    read = mongo_store.read_breadth()

    assert read["group_name"].tolist() == ["ALL", "ALL"]
    assert read["universe"].tolist() == [5, 5]
    assert read["listed"].isna().all() and read["partial"].isna().all()
    assert mongo_store.read_breadth_groups() == {"ALL": ["AAA", "BBB"]}
    assert mongo_store.read_breadth_tickers() == ["AAA", "BBB"]


def test_a_database_from_before_groups_takes_other_groups_rows_of_the_same_days(mongo_store):
    _write_the_layout_before_groups(mongo_store)
    rows = mongo_store.read_breadth(end=dt.date(2024, 1, 2)).assign(
        group_name="G1", universe=2, listed=2, partial=False, zweig_thrust=False
    )
    day = dt.date(2024, 1, 2)

    mongo_store.write_breadth(
        rows,
        mongo_store.read_breadth_members(),
        {"G1": ["AAA"]},
        day,
        day,
        mongo_store.breadth_stale(),
        None,
    )

    read = mongo_store.read_breadth(group=None)
    assert read[["group_name", "universe"]].values.tolist() == [["ALL", 5], ["ALL", 5], ["G1", 2]]
    assert mongo_store.read_breadth_groups() == {"ALL": ["AAA", "BBB"], "G1": ["AAA"]}
