"""Corporate actions through the assets: an action declared after its ex-date, then removed
(docs/design.md "Corporate actions")."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from breadth_assets.analytics.breadth import compute_breadth
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_tests.support import (
    TICKERS,
    materialize_breadth,
    materialize_tickers,
    metadata_of,
    write_universe,
)

END = "2024-06-28"
FIRST = "2023-01-02"
EX_DATE = "2024-03-01"
SPLIT_TICKER = "CHARLIE"


def with_actions(tmp_path, lines: list[str]):
    """The demo universe of TICKERS with an actions file holding `lines`."""
    universe = write_universe(tmp_path, TICKERS)
    (tmp_path / "actions.csv").write_text(
        "ticker,ex_date,kind,value\n" + "".join(f"{line}\n" for line in lines)
    )
    universe.write_text(universe.read_text() + "actions: actions.csv\n")
    return universe


def all_breadth_recomputed(store) -> pd.DataFrame:
    """Breadth over every stored day computed at once from the stored inputs."""
    rows = store.read_breadth_inputs(TICKERS, pd.Timestamp(END).date())
    return compute_breadth(rows, pd.DatetimeIndex(sorted(rows["date"].unique())))


@pytest.fixture(scope="module")
def built_history(tmp_path_factory):
    """A store with prices, indicators and breadth of TICKERS to END and an actions file
    declaring none, built once for the module."""
    folder = tmp_path_factory.mktemp("history")
    store = DuckDBStore(path=str(folder / "breadth.duckdb"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(tickers_partitions.name, TICKERS)
        universe = with_actions(folder, [])
        assert materialize_tickers(instance, store, universe, END).success
        materialize_breadth(instance, store, FIRST, END)
    return Path(store.path)


@pytest.fixture
def history(built_history, instance_with_tickers, store, tmp_path):
    """The built history in this test's own store file."""
    shutil.copy(built_history, store.path)
    return instance_with_tickers, with_actions(tmp_path, [])


def test_an_action_declared_after_its_ex_date_recomputes_its_ticker_and_breadth_from_it(
    history, store, tmp_path
):
    instance, _ = history
    indicators_before = store.read_indicators(TICKERS)
    breadth_before = store.read_breadth()
    universe = with_actions(tmp_path, [f"{SPLIT_TICKER},{EX_DATE},split,1:2"])

    tickers = materialize_tickers(instance, store, universe, END)
    written = metadata_of(tickers, "indicators")
    assert written["rows_written"] == (indicators_before["ticker"] == SPLIT_TICKER).sum()
    assert (
        written["actions_applied_list"]
        == f"1 action applied: {SPLIT_TICKER} split 1:2 on {EX_DATE}"
    )
    assert store.breadth_stale().stale_from == pd.Timestamp(EX_DATE).date()

    result = materialize_breadth(instance, store, EX_DATE, END)  # as the main job asks
    days_from_ex_date = (breadth_before["date"] >= EX_DATE).sum()
    assert metadata_of(result, "breadth")["rows_written"] == days_from_ex_date
    assert store.breadth_stale().stale_from is None
    after = store.read_breadth()
    earlier = after["date"] < EX_DATE
    pd.testing.assert_frame_equal(after[earlier], breadth_before[earlier])
    pd.testing.assert_frame_equal(
        after.reset_index(drop=True), all_breadth_recomputed(store), check_dtype=False
    )


def test_the_adjusted_ticker_reads_half_its_raw_price_before_the_ex_date(history, store, tmp_path):
    instance, _ = history
    raw_before = store.read_prices(TICKERS)
    universe = with_actions(tmp_path, [f"{SPLIT_TICKER},{EX_DATE},split,1:2"])
    assert materialize_tickers(instance, store, universe, END).success
    raw = store.read_prices([SPLIT_TICKER]).set_index("date")
    adjusted = store.read_indicators([SPLIT_TICKER]).set_index("date")
    before, after = raw.index < EX_DATE, raw.index >= EX_DATE
    assert (adjusted.loc[before, "close"] == raw.loc[before, "close"] * 0.5).all()
    assert (adjusted.loc[after, "close"] == raw.loc[after, "close"]).all()
    stored = store.read_actions([SPLIT_TICKER])
    assert stored[["kind", "value", "factor"]].values.tolist() == [["split", "1:2", 0.5]]
    view = store.read_adjusted_prices([SPLIT_TICKER]).set_index("date")
    assert (view.loc[before, "volume"] == raw.loc[before, "volume"] * 2).all()
    pd.testing.assert_frame_equal(store.read_prices(TICKERS), raw_before)  # raw stays raw


def test_removing_the_action_restores_the_earlier_numbers_exactly(history, store, tmp_path):
    instance, _ = history
    indicators_before = store.read_indicators(TICKERS)
    breadth_before = store.read_breadth()
    universe = with_actions(tmp_path, [f"{SPLIT_TICKER},{EX_DATE},split,1:2"])
    assert materialize_tickers(instance, store, universe, END).success
    materialize_breadth(instance, store, FIRST, END)

    universe = with_actions(tmp_path, [])
    removed = materialize_tickers(instance, store, universe, END)
    assert store.breadth_stale().stale_from == pd.Timestamp(EX_DATE).date()
    assert "1 action undone" in metadata_of(removed, "indicators")["actions_undone"]
    materialize_breadth(instance, store, EX_DATE, END)
    pd.testing.assert_frame_equal(store.read_indicators(TICKERS), indicators_before)
    pd.testing.assert_frame_equal(store.read_breadth(), breadth_before)
    assert store.read_actions(TICKERS).empty


def test_materializing_again_with_the_same_actions_writes_nothing(history, store, tmp_path):
    instance, _ = history
    universe = with_actions(tmp_path, [f"{SPLIT_TICKER},{EX_DATE},split,1:2"])
    assert materialize_tickers(instance, store, universe, END).success
    again = materialize_tickers(instance, store, universe, END)
    assert metadata_of(again, "indicators")["rows_written"] == 0
    assert metadata_of(again, "indicators")["actions_applied"] == 0


def test_a_bad_actions_line_holds_back_its_ticker_alone(history, store, tmp_path):
    instance, _ = history
    universe = with_actions(tmp_path, [f"{SPLIT_TICKER},{EX_DATE},split,5:1"])
    result = materialize_tickers(instance, store, universe, END)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert f"{SPLIT_TICKER}: actions.csv line 2: split 5:1" in message
    assert "1 of 5 tickers failed" in message or "1 ticker" in message
    assert store.read_actions(TICKERS).empty


def test_an_action_declared_ahead_applies_when_a_new_bar_reaches_its_ex_date(
    instance_with_tickers, store, tmp_path
):
    universe = with_actions(tmp_path, [f"{SPLIT_TICKER},{EX_DATE},split,1:2"])
    assert materialize_tickers(instance_with_tickers, store, universe, "2024-02-15").success
    assert store.read_actions([SPLIT_TICKER])["factor"].isna().all()  # declared, not applied
    assert materialize_tickers(instance_with_tickers, store, universe, END).success
    assert store.read_actions([SPLIT_TICKER])["factor"].tolist() == [0.5]

    whole = DuckDBStore(path=str(tmp_path / "whole.duckdb"))
    with dg.instance_for_test() as fresh:
        fresh.add_dynamic_partitions(tickers_partitions.name, TICKERS)
        assert materialize_tickers(fresh, whole, universe, END).success
    pd.testing.assert_frame_equal(
        store.read_indicators(TICKERS), whole.read_indicators(TICKERS), rtol=1e-9
    )
