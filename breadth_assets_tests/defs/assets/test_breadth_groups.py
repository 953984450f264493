"""The breadth asset per group: a new day from stored rows equals a whole computation for every
group, a changed group is recomputed alone, sessions in the data and declared ones are breadth
days, a day with half the bars is partial (docs/design.md "Groups")."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from breadth_assets.analytics.signals import breadth_signals
from breadth_assets.defs.batches import range_tags
from breadth_assets.defs.stale_breadth import stale_breadth
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.sources.csv.source import CsvSource
from breadth_assets.sources.demo.source import demo_bars
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.universe.file import load_universe
from breadth_assets_tests.support import (
    TICKERS,
    breadth,
    materialize_tickers,
    metadata_of,
)

START, END = "2024-01-02", "2024-06-28"
GROUPS = {"G1": ["ALPHA", "BRAVO", "CHARLIE"], "G2": ["CHARLIE", "DELTA"]}


def _universe(folder: Path, groups: dict, extra: str = "") -> Path:
    path = folder / "universe.yaml"
    lines = ["market: DEMO", f"start_date: {START}", "source:", "  kind: demo", "tickers:"]
    lines += [f"  - {t}" for t in TICKERS] + ["groups:"]
    lines += [f"  {name}: [{', '.join(members)}]" for name, members in groups.items()]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def _breadth(instance, store, universe: Path, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [breadth],
        instance=instance,
        resources={"store": store, "universe": UniverseFile(path=str(universe))},
        tags=range_tags(first, last),
    )


def _copy(store: DuckDBStore, path: Path) -> DuckDBStore:
    shutil.copy(store.path, path)
    return DuckDBStore(path=str(path))


@pytest.fixture
def filled(instance_with_tickers, store, tmp_path) -> tuple[DuckDBStore, Path]:
    universe = _universe(tmp_path, GROUPS)
    assert materialize_tickers(instance_with_tickers, store, universe, END).success
    return store, universe


def test_new_days_from_stored_rows_equal_one_computation_for_every_group(
    instance_with_tickers, filled, tmp_path
):
    store, universe = filled
    whole = _copy(store, tmp_path / "whole.duckdb")
    _breadth(instance_with_tickers, whole, universe, START, END)
    _breadth(instance_with_tickers, store, universe, START, "2024-06-25")
    for day in ("2024-06-26", "2024-06-27", END):
        _breadth(instance_with_tickers, store, universe, day, day)

    pd.testing.assert_frame_equal(store.read_breadth(group=None), whole.read_breadth(group=None))
    pd.testing.assert_frame_equal(store.read_breadth_members(), whole.read_breadth_members())
    pd.testing.assert_frame_equal(store.read_breadth_signals(), whole.read_breadth_signals())
    assert set(whole.read_breadth(group=None)["group_name"]) == {"ALL", "G1", "G2"}


def test_the_signals_written_are_the_rules_over_each_groups_stored_rows(
    instance_with_tickers, filled
):
    store, universe = filled
    _breadth(instance_with_tickers, store, universe, START, END)

    for group in ("ALL", "G1", "G2"):
        rows = store.read_breadth(group=group)
        expected = breadth_signals(rows, rows["date"])
        got = store.read_breadth_signals(group=group)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert len(store.read_breadth_signals()) > 0


def test_changing_one_groups_members_recomputes_that_group_alone(
    instance_with_tickers, filled, tmp_path
):
    store, universe = filled
    _breadth(instance_with_tickers, store, universe, START, END)
    before = store.read_breadth(group=None)
    changed = {**GROUPS, "G2": ["CHARLIE", "DELTA", "ECHO"]}
    fresh = _copy(store, tmp_path / "fresh.duckdb")
    fresh.drop_breadth_groups(["G2"])

    result = _breadth(instance_with_tickers, store, _universe(tmp_path, changed), END, END)
    _breadth(instance_with_tickers, fresh, universe, START, END)

    after = store.read_breadth(group=None)
    others = before[before["group_name"] != "G2"].reset_index(drop=True)
    pd.testing.assert_frame_equal(after[after["group_name"] != "G2"].reset_index(drop=True), others)
    joined, _ = store.bar_span(["ECHO"])
    g2_days = ((after["group_name"] == "G2") & (after["date"].dt.date >= joined)).sum()
    assert metadata_of(result, "breadth")["rows_written"] == g2_days + 2
    assert metadata_of(result, "breadth")["computed_from"] == f"{joined}"
    expected = fresh.read_breadth(group="G2")
    pd.testing.assert_frame_equal(store.read_breadth(group="G2"), expected)
    assert not store.read_breadth(group="G2")["universe"].equals(
        before.query("group_name == 'G2'")["universe"].reset_index(drop=True)
    )


def test_a_group_dropped_from_the_universe_file_loses_its_rows(
    instance_with_tickers, filled, tmp_path
):
    store, universe = filled
    _breadth(instance_with_tickers, store, universe, "2024-06-24", END)

    _breadth(instance_with_tickers, store, _universe(tmp_path, {"G1": GROUPS["G1"]}), END, END)

    assert set(store.read_breadth(group=None)["group_name"]) == {"ALL", "G1"}
    assert set(store.read_breadth_members()["group_name"]) <= {"ALL", "G1"}


def test_a_group_without_a_ticker_of_the_universe_loses_its_rows_and_breadth_is_up_to_date(
    instance_with_tickers, filled, tmp_path
):
    store, universe = filled
    _breadth(instance_with_tickers, store, universe, "2024-06-24", END)
    outside = _universe(tmp_path, {**GROUPS, "G2": ["NOT_LISTED"]})

    _breadth(instance_with_tickers, store, outside, END, END)

    assert set(store.read_breadth(group=None)["group_name"]) == {"ALL", "G1"}
    current = load_universe(outside)
    days = [d.date() for d in pd.bdate_range("2024-06-24", END)]
    assert stale_breadth(store, TICKERS, days, groups=current.groups) is None


SUNDAY, QUIET_SUNDAY, HALF_DAY = "2024-06-16", "2024-06-09", "2024-06-20"


@pytest.fixture
def csv_market(instance_with_tickers, store, tmp_path) -> tuple[DuckDBStore, Path, CsvSource]:
    """Demo bars as CSV files, with a Sunday session (four of five tickers), a Sunday with one
    ticker's stray bar, and a day with two of five bars."""
    folder = tmp_path / "csv"
    folder.mkdir()
    for i, ticker in enumerate(TICKERS):
        bars = demo_bars(ticker)
        bars = bars[(bars["date"] >= "2024-01-02") & (bars["date"] <= END)]
        extra = []
        if i < 4:
            extra.append(bars[bars["date"] == "2024-06-14"].assign(date=pd.Timestamp(SUNDAY)))
        if i == 0:
            extra.append(bars[bars["date"] == "2024-06-07"].assign(date=pd.Timestamp(QUIET_SUNDAY)))
        if i >= 2:
            bars = bars[bars["date"] != HALF_DAY]
        bars = pd.concat([bars, *extra]).sort_values("date")
        bars.drop(columns="ticker").to_csv(folder / f"{ticker}.csv", index=False)
    universe = tmp_path / "universe.yaml"
    lines = ["market: DEMO", "start_date: 2024-01-02", "source:", "  kind: csv"]
    lines += [f"  path: {folder}", "tickers:", *(f"  - {t}" for t in TICKERS)]
    universe.write_text("\n".join(lines) + "\n")
    source = CsvSource(path=str(folder))
    assert materialize_tickers(instance_with_tickers, store, universe, END, source=source).success
    return store, universe, source


def test_a_sunday_on_which_most_tickers_traded_is_a_breadth_day_found_in_the_data(
    instance_with_tickers, csv_market
):
    store, universe, _ = csv_market

    result = _breadth(instance_with_tickers, store, universe, "2024-06-03", END)

    days = set(store.read_breadth()["date"].dt.strftime("%Y-%m-%d"))
    assert SUNDAY in days and QUIET_SUNDAY not in days
    assert store.read_breadth().set_index("date").loc[SUNDAY, "universe"] == 4
    metadata = metadata_of(result, "breadth")
    assert metadata["sessions_found_in_data"] == 1
    assert metadata["sessions_found_in_data_days"] == SUNDAY


def test_a_declared_extra_session_is_a_breadth_day_not_reported_as_found(
    instance_with_tickers, csv_market
):
    store, universe, _ = csv_market
    universe.write_text(universe.read_text() + f"extra_sessions: [{SUNDAY}]\n")

    result = _breadth(instance_with_tickers, store, universe, "2024-06-17", "2024-06-17")

    assert SUNDAY in set(store.read_breadth()["date"].dt.strftime("%Y-%m-%d"))
    assert metadata_of(result, "breadth")["sessions_found_in_data"] == 0


def test_a_day_with_two_of_five_bars_is_partial_with_its_percentages_null(
    instance_with_tickers, csv_market
):
    store, universe, _ = csv_market

    result = _breadth(instance_with_tickers, store, universe, "2024-06-03", END)

    row = store.read_breadth().set_index("date").loc[HALF_DAY]
    assert (row["universe"], row["listed"], bool(row["partial"])) == (2, 5, True)
    assert pd.isna(row["pct_above_sma_50"]) and pd.isna(row["mcclellan_osc"])
    assert metadata_of(result, "breadth")["partial_group_days"] == 1
