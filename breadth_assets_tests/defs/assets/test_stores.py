"""The pipeline gives the same breadth whichever store holds the data."""

from __future__ import annotations

import logging

import dagster as dg
import pandas as pd
import pytest

from breadth_assets.stores.mongo import MongoStore
from breadth_assets.universe.file import load_universe
from breadth_assets_tests.support import (
    STORE_KINDS,
    add_tickers,
    drop_store,
    make_store,
    materialize_breadth,
    materialize_tickers,
    write_universe,
)

START, END = "2024-03-01", "2024-03-28"
DEMO_TICKERS = load_universe().symbols
PASSWORD = "s3cr3t-Pa55word"


@pytest.fixture
def demo_instance(instance):
    """The instance with the project universe's tickers as partitions."""
    return add_tickers(instance, DEMO_TICKERS)


def _materialize_demo(instance, store, tmp_path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Every group's breadth, who moved, and each group's recorded tickers."""
    universe = write_universe(tmp_path, DEMO_TICKERS, start=START)
    assert materialize_tickers(instance, store, universe, END, tickers=DEMO_TICKERS).success
    assert materialize_breadth(instance, store, START, END).success
    return store.read_breadth(group=None), store.read_breadth_members(), store.read_breadth_groups()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_demo_universe_gives_the_same_breadth_of_every_group_through_every_store(
    kind, demo_instance, store, tmp_path
):
    rows, members, groups = _materialize_demo(demo_instance, store, tmp_path)
    assert len(rows) == 3 * len(pd.bdate_range(START, END))  # ALL and the two demo groups
    other = make_store(kind, tmp_path / kind)
    try:
        other_rows, other_members, other_groups = _materialize_demo(demo_instance, other, tmp_path)
        pd.testing.assert_frame_equal(other_rows, rows)
        pd.testing.assert_frame_equal(other_members, members)
        assert other_groups == groups
    finally:
        drop_store(other)


def test_an_unreachable_mongodb_fails_fast_naming_the_host_but_never_the_password(caplog):
    store = MongoStore(
        uri=f"mongodb://alice:{PASSWORD}@127.0.0.1:9/?authSource=admin",
        server_selection_timeout_ms=300,
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as raised:
        store.read_prices(["AAA"])
    assert "127.0.0.1:9" in str(raised.value)
    assert PASSWORD not in str(raised.value)
    assert PASSWORD not in repr(store)
    assert PASSWORD not in caplog.text


def test_the_password_appears_nowhere_in_a_failed_runs_events(instance, monkeypatch, tmp_path):
    monkeypatch.setenv("MONGODB_URI", f"mongodb://alice:{PASSWORD}@127.0.0.1:9/")
    store = MongoStore(uri=dg.EnvVar("MONGODB_URI"), server_selection_timeout_ms=300)
    universe = write_universe(tmp_path, ["AAA"], start=START)
    add_tickers(instance, ["AAA"])
    result = materialize_tickers(instance, store, universe, END, tickers=["AAA"])
    assert not result.success
    records = instance.all_logs(result.run_id)
    text = "\n".join(str(record) for record in records)
    assert "127.0.0.1:9" in text
    assert PASSWORD not in text
    assert PASSWORD not in str(instance.get_run_by_id(result.run_id))
