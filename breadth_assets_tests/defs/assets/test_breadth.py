from __future__ import annotations

import datetime as dt
import shutil

import dagster as dg
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.calendars import Calendar
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_tests.support import (
    TICKERS,
    materialize_breadth,
    materialize_tickers,
    metadata_of,
)

END = "2024-06-28"


@pytest.fixture
def filled_store(instance_with_tickers, store, universe_path) -> DuckDBStore:
    assert materialize_tickers(instance_with_tickers, store, universe_path, END).success
    return store


def test_breadth_writes_one_row_per_trading_day_of_the_run(instance_with_tickers, filled_store):
    assert materialize_breadth(instance_with_tickers, filled_store, "2024-06-03", END).success
    rows = filled_store.read_breadth()
    assert rows["date"].dt.strftime("%Y-%m-%d").tolist() == [
        d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-06-03", END)
    ]
    assert list(rows.columns) == list(schema.BREADTH_COLUMNS)


def test_breadth_counts_every_ticker_with_a_bar_that_day(instance_with_tickers, filled_store):
    materialize_breadth(instance_with_tickers, filled_store, END, END)
    row = filled_store.read_breadth().iloc[-1]
    bars = filled_store.read_prices(TICKERS)
    on_day = bars[bars["date"] == END]
    assert row["universe"] == len(on_day)
    assert row["advancers"] + row["decliners"] + row["unchanged"] == len(on_day)


def test_one_date_gives_the_same_row_as_a_run_over_the_whole_range(
    instance_with_tickers, filled_store, tmp_path
):
    single = DuckDBStore(path=str(tmp_path / "single.duckdb"))
    shutil.copy(filled_store.path, single.path)
    materialize_breadth(instance_with_tickers, filled_store, "2023-01-02", END)
    materialize_breadth(instance_with_tickers, single, END, END)
    from_range = filled_store.read_breadth().iloc[[-1]].reset_index(drop=True)
    pd.testing.assert_frame_equal(single.read_breadth(), from_range)


def test_materializing_breadth_again_changes_nothing(instance_with_tickers, filled_store):
    materialize_breadth(instance_with_tickers, filled_store, "2024-05-01", END)
    before = filled_store.read_breadth()
    materialize_breadth(instance_with_tickers, filled_store, "2024-05-01", END)
    pd.testing.assert_frame_equal(filled_store.read_breadth(), before)


def test_a_ticker_removed_from_the_partitions_leaves_the_breadth_universe(
    instance_with_tickers, filled_store
):
    materialize_breadth(instance_with_tickers, filled_store, END, END)
    with_all = filled_store.read_breadth().iloc[-1]["universe"]
    instance_with_tickers.delete_dynamic_partition(tickers_partitions.name, "ECHO")
    materialize_breadth(instance_with_tickers, filled_store, END, END)
    assert filled_store.read_breadth().iloc[-1]["universe"] == with_all - 1


def test_breadth_metadata_reports_rows_days_and_tickers(instance_with_tickers, filled_store):
    result = materialize_breadth(instance_with_tickers, filled_store, "2024-06-24", END)
    metadata = metadata_of(result, "breadth")
    assert metadata["rows_written"] == 5
    assert metadata["date_range"] == f"2024-06-24 to {END}"
    assert metadata["tickers"] == len(TICKERS)


def test_a_day_before_its_update_time_fails_alone_and_the_earlier_days_are_written(
    instance_with_tickers, filled_store, monkeypatch
):
    # Stands in for the clock: the market's update time on 2024-06-28 has not come yet.
    monkeypatch.setattr(Calendar, "last_closed_day", lambda self, now=None: dt.date(2024, 6, 27))
    result = materialize_breadth(
        instance_with_tickers, filled_store, "2024-06-26", END, raise_on_error=False
    )
    assert not result.success
    assert filled_store.read_breadth()["date"].dt.day.tolist() == [26, 27]
    assert instance_with_tickers.get_materialized_partitions(dg.AssetKey("breadth")) == {
        "2024-06-26",
        "2024-06-27",
    }
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "2024-06-28: the DEMO trading day has not reached its update time" in (
        failure.step_failure_data.error.message
    )


# --- from the stored state -----------------------------------------------------------------------


def _fresh_copy(store: DuckDBStore, tmp_path, name: str) -> DuckDBStore:
    """The prices and indicators of `store` in a new file without breadth rows."""
    copy = DuckDBStore(path=str(tmp_path / name))
    copy.write(
        {
            schema.PRICES: store.read_prices(TICKERS),
            schema.INDICATORS: store.read_indicators(TICKERS),
        }
    )
    return copy


def test_a_new_day_is_computed_from_the_stored_row_of_the_day_before(
    instance_with_tickers, filled_store, tmp_path
):
    materialize_breadth(instance_with_tickers, filled_store, "2024-06-03", "2024-06-27")

    result = materialize_breadth(instance_with_tickers, filled_store, END, END)

    assert metadata_of(result, "breadth")["computed_from"] == END
    whole = _fresh_copy(filled_store, tmp_path, "whole.duckdb")
    materialize_breadth(instance_with_tickers, whole, "2024-06-03", END)
    pd.testing.assert_frame_equal(filled_store.read_breadth(), whole.read_breadth())


def test_a_changed_bar_recomputes_breadth_from_its_day_and_no_earlier(
    instance_with_tickers, filled_store, tmp_path
):
    materialize_breadth(instance_with_tickers, filled_store, "2024-06-03", "2024-06-27")
    before = filled_store.read_breadth()
    changed = filled_store.read_indicators(["ALPHA"])
    changed = changed[changed["date"] == "2024-06-12"].assign(close=lambda d: d["close"] * 1.5)
    filled_store.write({schema.INDICATORS: changed})

    result = materialize_breadth(instance_with_tickers, filled_store, END, END)

    assert metadata_of(result, "breadth")["computed_from"] == "2024-06-12"
    after = filled_store.read_breadth()
    untouched = after["date"] < "2024-06-12"
    pd.testing.assert_frame_equal(after[untouched], before[before["date"] < "2024-06-12"])
    whole = _fresh_copy(filled_store, tmp_path, "whole.duckdb")
    materialize_breadth(instance_with_tickers, whole, "2024-06-03", END)
    pd.testing.assert_frame_equal(after, whole.read_breadth())
    assert filled_store.breadth_stale().stale_from is None


def test_a_ticker_leaving_the_universe_recomputes_from_its_first_bar(
    instance_with_tickers, filled_store
):
    materialize_breadth(instance_with_tickers, filled_store, "2022-12-01", "2024-06-27")
    instance_with_tickers.delete_dynamic_partition(tickers_partitions.name, "ECHO")
    first_bar = filled_store.read_indicators(["ECHO"])["date"].min()

    result = materialize_breadth(instance_with_tickers, filled_store, END, END)

    assert metadata_of(result, "breadth")["computed_from"] == f"{first_bar:%Y-%m-%d}"
    assert (filled_store.read_breadth()["universe"] <= len(TICKERS) - 1).all()


# --- days without any bar ------------------------------------------------------------------------


def _remove_bars(store: DuckDBStore, day: str) -> None:
    """As if the exchange had been closed on `day`, which the calendar thinks open."""
    import duckdb

    with duckdb.connect(store.path) as con:
        for table in ("prices", "indicators"):
            con.execute(f"DELETE FROM {table} WHERE date = ?", [dt.date.fromisoformat(day)])


def test_a_day_without_any_bar_gets_no_row_and_is_reported_as_a_closure(
    instance_with_tickers, filled_store
):
    _remove_bars(filled_store, "2024-06-26")

    result = materialize_breadth(instance_with_tickers, filled_store, "2024-06-24", END)

    days = filled_store.read_breadth()["date"].dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2024-06-24", "2024-06-25", "2024-06-27", END]
    metadata = metadata_of(result, "breadth")
    assert metadata["closures_found"] == 1
    assert metadata["closures_found_days"] == "2024-06-26"


def test_a_stored_row_of_a_day_that_lost_its_bars_is_removed(instance_with_tickers, filled_store):
    materialize_breadth(instance_with_tickers, filled_store, "2024-06-24", END)
    _remove_bars(filled_store, "2024-06-26")

    materialize_breadth(instance_with_tickers, filled_store, "2024-06-26", END)

    assert pd.Timestamp("2024-06-26") not in set(filled_store.read_breadth()["date"])


def test_days_after_the_last_bar_get_no_row_and_the_metadata_names_the_last_bar(
    instance_with_tickers, filled_store
):
    result = materialize_breadth(instance_with_tickers, filled_store, "2024-07-01", "2024-07-03")

    assert filled_store.read_breadth(dt.date(2024, 7, 1)).empty
    assert metadata_of(result, "breadth")["no_bars_after"] == END


# --- each day's metadata, and ranges that end before the last stored row -------------------------


def _materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        event.partition: {k: v.value for k, v in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


def test_each_breadth_day_carries_its_own_values(instance_with_tickers, filled_store):
    result = materialize_breadth(instance_with_tickers, filled_store, "2024-06-24", END)

    by_day = _materializations(result)
    rows = filled_store.read_breadth().set_index("date")
    assert sorted(by_day) == [f"{d:%Y-%m-%d}" for d in pd.bdate_range("2024-06-24", END)]
    for day, metadata in by_day.items():
        row = rows.loc[pd.Timestamp(day)]
        for column in ("universe", "advancers", "decliners", "ad_line"):
            assert metadata[column] == row[column], (day, column)
        assert metadata["mcclellan_osc"] == pytest.approx(row["mcclellan_osc"], nan_ok=True)
    assert len({metadata["ad_line"] for metadata in by_day.values()}) > 1


def test_the_runs_own_figures_go_on_its_last_day_only(instance_with_tickers, filled_store):
    result = materialize_breadth(instance_with_tickers, filled_store, "2024-06-24", END)

    by_day = _materializations(result)
    run_level = {"rows_written", "date_range", "seconds", "chart", "last_days"}
    assert run_level <= set(by_day[END])
    for day, metadata in by_day.items():
        if day != END:
            assert not run_level & set(metadata), day


def _change_a_close(store: DuckDBStore, ticker: str, day: str) -> None:
    changed = store.read_indicators([ticker])
    changed = changed[changed["date"] == day].assign(close=lambda d: d["close"] * 1.5)
    store.write({schema.INDICATORS: changed})


def test_a_range_ending_before_the_last_stored_row_carries_on_over_the_stale_rows(
    instance_with_tickers, filled_store, tmp_path
):
    materialize_breadth(instance_with_tickers, filled_store, "2024-06-03", END)
    _change_a_close(filled_store, "ALPHA", "2024-06-12")

    result = materialize_breadth(instance_with_tickers, filled_store, "2024-06-03", "2024-06-20")

    assert metadata_of(result, "breadth")["carried_on_to"] == END
    whole = _fresh_copy(filled_store, tmp_path, "whole.duckdb")
    materialize_breadth(instance_with_tickers, whole, "2024-06-03", END)
    pd.testing.assert_frame_equal(filled_store.read_breadth(), whole.read_breadth())
    assert filled_store.breadth_stale().stale_from is None


def test_a_range_ending_before_unchanged_later_rows_leaves_them_as_they_were(
    instance_with_tickers, filled_store
):
    materialize_breadth(instance_with_tickers, filled_store, "2024-06-03", END)
    before = filled_store.read_breadth()

    result = materialize_breadth(instance_with_tickers, filled_store, "2024-06-03", "2024-06-20")

    assert "carried_on_to" not in metadata_of(result, "breadth")
    pd.testing.assert_frame_equal(filled_store.read_breadth(), before)
    assert filled_store.breadth_stale().stale_from is None
