"""The one rule of where breadth must be computed again (docs/design.md "History and
recomputation"), on a real DuckDB store."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.defs.stale_breadth import stale_breadth
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.universe.groups import Group
from breadth_assets_tests.support import make_prices

DAYS = [day.date() for day in pd.bdate_range("2024-01-01", periods=10)]


def _indicators(ticker: str, first: int, last: int) -> pd.DataFrame:
    prices = make_prices(ticker, f"{DAYS[first]}", [10.0 + i for i in range(last - first + 1)])
    return prices[["ticker", "date", "close", "high", "low"]].assign(
        **{name: np.nan for name in schema.INDICATOR_COLUMNS if name not in prices}
    )[list(schema.INDICATOR_COLUMNS)]


def _breadth_rows(first: int, last: int, group: str = "ALL") -> pd.DataFrame:
    days = pd.to_datetime(DAYS[first : last + 1])
    values = {"DATE": days, "VARCHAR": group, "BIGINT": 0, "BOOLEAN": False, "DOUBLE": 0.5}
    return pd.DataFrame(
        {name: values[kind] for name, kind in schema.BREADTH_COLUMNS.items()},
        index=range(len(days)),
    )


def _write_breadth(store: DuckDBStore, rows: pd.DataFrame, groups: dict) -> None:
    first, last = rows["date"].min().date(), rows["date"].max().date()
    members = pd.DataFrame(columns=list(schema.BREADTH_MEMBER_COLUMNS))
    store.write_breadth(rows, members, groups, first, last, store.breadth_stale(), None)


@pytest.fixture
def current(tmp_path) -> DuckDBStore:
    """AAA and BBB with bars on days 0..7, and breadth computed over them up to day 7."""
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    store.write(
        {schema.INDICATORS: pd.concat([_indicators("AAA", 0, 7), _indicators("BBB", 0, 7)])}
    )
    _write_breadth(store, _breadth_rows(0, 7), {"ALL": ["AAA", "BBB"]})
    return store


def test_breadth_computed_over_every_input_is_up_to_date(current):
    assert stale_breadth(current, ["AAA", "BBB"], DAYS) is None


def test_a_write_before_the_last_row_makes_breadth_stale_from_its_day(current):
    current.write({schema.INDICATORS: _indicators("AAA", 3, 3)})

    found = stale_breadth(current, ["AAA", "BBB"], DAYS)

    assert (found.first_day, found.last_day) == (DAYS[3], DAYS[7])
    assert "written from 2024-01-04" in found.reason


def test_a_ticker_that_joined_makes_breadth_stale_from_its_first_bar(current):
    current.write({schema.INDICATORS: _indicators("CCC", 2, 7)})
    current.settle_breadth_stale(current.breadth_stale(), None)

    found = stale_breadth(current, ["AAA", "BBB", "CCC"], DAYS)

    assert found.first_day == DAYS[2]
    assert found.reason.startswith("CCC joined the universe")


def test_a_ticker_that_left_makes_breadth_stale_from_its_first_bar(current):
    found = stale_breadth(current, ["AAA"], DAYS)

    assert found.first_day == DAYS[0]
    assert found.reason.startswith("BBB left the universe")


def test_a_group_added_or_changed_makes_the_last_day_stale(current):
    _write_breadth(current, _breadth_rows(0, 7, "PAIR"), {"PAIR": ["AAA", "BBB"]})
    assert (
        stale_breadth(current, ["AAA", "BBB"], DAYS, groups=[Group("PAIR", ("AAA", "BBB"))]) is None
    )

    found = stale_breadth(current, ["AAA", "BBB"], DAYS, groups=[Group("PAIR", ("AAA",))])

    assert (found.first_day, found.last_day) == (DAYS[7], DAYS[7])
    assert found.reason.startswith("groups PAIR were added or changed in the universe file")


def test_a_group_removed_from_the_universe_file_makes_the_last_day_stale(current):
    _write_breadth(current, _breadth_rows(0, 7, "PAIR"), {"PAIR": ["AAA", "BBB"]})

    found = stale_breadth(current, ["AAA", "BBB"], DAYS, groups=[])

    assert "groups PAIR were removed" in found.reason


def test_bars_after_the_last_row_make_breadth_stale_from_the_next_day(current):
    current.write({schema.INDICATORS: _indicators("AAA", 8, 9)})
    current.settle_breadth_stale(current.breadth_stale(), None)

    found = stale_breadth(current, ["AAA", "BBB"], DAYS)

    assert (found.first_day, found.last_day) == (DAYS[8], DAYS[9])


def test_bars_after_the_last_wanted_day_do_not_count(current):
    current.write({schema.INDICATORS: _indicators("AAA", 8, 9)})
    current.settle_breadth_stale(current.breadth_stale(), None)

    assert stale_breadth(current, ["AAA", "BBB"], DAYS[:8]) is None


def test_a_store_without_breadth_rows_is_stale_from_the_first_day(tmp_path):
    store = DuckDBStore(path=str(tmp_path / "new.duckdb"))
    store.write({schema.INDICATORS: _indicators("AAA", 1, 5)})

    found = stale_breadth(store, ["AAA"], DAYS)

    assert (found.first_day, found.last_day) == (DAYS[0], DAYS[5])


def test_a_day_dagster_never_materialized_counts_only_when_asked(current):
    materialized = {f"{day}" for day in DAYS[:8]} - {f"{DAYS[4]}"}

    assert stale_breadth(current, ["AAA", "BBB"], DAYS) is None
    found = stale_breadth(current, ["AAA", "BBB"], DAYS, materialized)
    assert found.first_day == DAYS[4]
    assert "never materialized" in found.reason


def test_the_earliest_reason_wins(current):
    current.write({schema.INDICATORS: _indicators("AAA", 5, 5)})

    found = stale_breadth(current, ["AAA"], DAYS)

    assert found.first_day == DAYS[0]
    assert "BBB left" in found.reason


def test_a_stale_day_falls_on_the_next_trading_day(current):
    weekdays_only = [day for day in DAYS if day != DAYS[3]]
    current.write({schema.INDICATORS: _indicators("AAA", 3, 3)})

    found = stale_breadth(current, ["AAA", "BBB"], weekdays_only)

    assert found.first_day == DAYS[4]
    assert dt.date(2024, 1, 4) == DAYS[3]
