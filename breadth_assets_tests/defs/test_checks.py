"""The asset checks executed through Dagster, on demo data written by the assets and on a
hand-checkable panel with the life of a real market (support.py)."""

import dataclasses
import datetime as dt
import importlib

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import BACKFILL_ID_TAG

from breadth_assets import schema
from breadth_assets.analytics.signals import SIGNALS
from breadth_assets.definitions import defs
from breadth_assets.defs.assets import INDICATORS, RAW_PRICES
from breadth_assets.defs.batches import range_tags
from breadth_assets.defs.checks import build_checks
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.sources.demo.source import DemoSource
from breadth_assets.universe.file import Universe
from breadth_assets_tests.support import (
    PANEL_CLOSURE,
    PANEL_DAYS,
    PANEL_LIVES,
    PANEL_TICKERS,
    PROJECT_UNIVERSE,
    TICKERS,
    add_tickers,
    breadth,
    materialize_breadth,
    materialize_tickers,
    panel_breadth,
    panel_prices,
    ticker_assets,
    write_universe,
)

END = "2024-06-28"


@pytest.fixture
def loaded(instance_with_tickers, store, tmp_path):
    """The demo universe's prices and indicators to END, and breadth for its last days."""
    assert materialize_tickers(
        instance_with_tickers, store, write_universe(tmp_path, TICKERS), END
    ).success
    materialize_breadth(instance_with_tickers, store, "2024-06-03", END)
    return instance_with_tickers, store


class EndingUniverse(UniverseFile):
    """The project's universe file with an `end_date` (a finished history), set here until the
    file itself can say it."""

    end_date: str

    def load(self) -> Universe:
        end = dt.date.fromisoformat(self.end_date)
        return dataclasses.replace(super().load(), end_date=end)


def run_checks(
    instance, store, *names: str, end_date: str | None = None
) -> dict[str, dg.AssetCheckEvaluation]:
    """Runs the named checks (asset:check) alone, as "Execute checks" does in the UI."""
    keys = [dg.AssetCheckKey.from_user_string(name) for name in names]
    universe = UniverseFile(path=str(PROJECT_UNIVERSE))
    if end_date is not None:
        universe = EndingUniverse(path=str(PROJECT_UNIVERSE), end_date=end_date)
    result = dg.materialize(
        [ticker_assets, breadth, *build_checks()],
        selection=dg.AssetSelection.checks(*keys),
        instance=instance,
        resources={"store": store, "price_source": DemoSource(), "universe": universe},
    )
    return {e.asset_check_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_the_code_location_has_the_checks_on_each_asset():
    keys = {key.to_user_string() for key in defs().resolve_asset_graph().asset_check_keys}
    assert keys == {
        "raw_prices:ohlc_consistent",
        "raw_prices:unique_keys",
        "raw_prices:no_long_gaps",
        "raw_prices:instrument_key_changes",
        "raw_prices:fresh",
        "indicators:one_row_per_price",
        "indicators:unexplained_moves",
        "indicators:no_nulls_after_warm_up",
        "breadth:every_trading_day",
        "breadth:universe_coverage",
        "breadth:percentages_in_range",
        "breadth:breadth_up_to_date",
        *(f"breadth:signal_{signal}" for signal in SIGNALS),
    }


def test_the_ticker_and_breadth_jobs_do_not_run_the_checks():
    for name in ("ticker_job", "breadth_job"):
        assert not defs().resolve_job_def(name).asset_layer.asset_graph.asset_check_keys


def test_demo_data_passes_the_error_checks(loaded):
    names = [
        "raw_prices:ohlc_consistent",
        "raw_prices:unique_keys",
        "indicators:one_row_per_price",
        "indicators:no_nulls_after_warm_up",
        "breadth:every_trading_day",
        "breadth:percentages_in_range",
    ]
    evaluations = run_checks(*loaded, *names)
    assert {name: e.passed for name, e in evaluations.items()} == dict.fromkeys(names, True)
    assert {e.severity for e in evaluations.values()} == {dg.AssetCheckSeverity.ERROR}


def test_demo_data_ending_on_its_end_date_passes_freshness_and_coverage(loaded):
    names = ["raw_prices:fresh", "breadth:universe_coverage"]
    evaluations = run_checks(*loaded, *names, end_date=END)
    assert {name: e.passed for name, e in evaluations.items()} == dict.fromkeys(names, True)


def test_a_tampered_bar_fails_the_ohlc_check_naming_ticker_and_date(loaded):
    instance, store = loaded
    bar = store.read_prices(["CHARLIE"]).iloc[[100]].copy()
    bar["high"] = bar["close"] - 1
    store.write({schema.PRICES: bar})
    check = run_checks(instance, store, "raw_prices:ohlc_consistent")["raw_prices:ohlc_consistent"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["problems"].value == 1
    table = check.metadata["offenders"].value
    assert f"| CHARLIE | {bar['date'].iloc[0]:%Y-%m-%d} | high below max(open, close) |" in table


def test_a_price_row_without_indicators_fails_one_row_per_price(loaded):
    instance, store = loaded
    extra = store.read_prices(["ALPHA"]).iloc[[-1]].copy()
    extra["date"] = pd.Timestamp("2024-07-01")
    store.write({schema.PRICES: extra})
    name = "indicators:one_row_per_price"
    check = run_checks(instance, store, name)[name]
    assert not check.passed
    assert (
        "| ALPHA | 2024-07-01 | price row without indicators |" in check.metadata["offenders"].value
    )


def test_a_percentage_over_100_fails_the_breadth_range_check(loaded):
    instance, store = loaded
    row = store.read_breadth().iloc[[-1]].copy()
    row["pct_above_ema_50"] = 120.0
    store.write({schema.BREADTH: row})
    name = "breadth:percentages_in_range"
    check = run_checks(instance, store, name)[name]
    assert not check.passed
    assert f"| {END} | pct_above_ema_50 | 120.0 |" in check.metadata["offenders"].value


def test_a_universe_behind_the_last_closed_day_is_one_freshness_warning(loaded):
    check = run_checks(*loaded, "raw_prices:fresh")["raw_prices:fresh"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["problems"].value == 1
    assert "tickers_affected" not in check.metadata
    assert check.description.startswith(f"no ticker has a bar after {END}, ")
    assert check.description.endswith("set end_date in the universe file")


def test_the_demo_markets_declared_splits_leave_no_unexplained_move(loaded):
    name = "indicators:unexplained_moves"
    check = run_checks(*loaded, name)[name]
    assert check.passed, check.description
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["max_daily_move"].value == "20%"


def _materialize_with_ohlc_check(instance, store, tmp_path, tags=None):
    ohlc = dg.AssetCheckKey(RAW_PRICES, "ohlc_consistent")
    return dg.materialize(
        [ticker_assets, *build_checks()],
        selection=dg.AssetSelection.assets(RAW_PRICES, INDICATORS).without_checks()
        | dg.AssetSelection.checks(ohlc),
        instance=instance,
        resources={
            "store": store,
            "price_source": DemoSource(),
            "universe": UniverseFile(path=str(write_universe(tmp_path, TICKERS))),
        },
        tags={**range_tags(TICKERS[0], TICKERS[-1]), **(tags or {})},
        run_config={"ops": {"ticker_assets": {"config": {"end_date": END}}}},
    )


def test_a_check_runs_in_the_same_run_as_its_asset(instance_with_tickers, store, tmp_path):
    result = _materialize_with_ohlc_check(instance_with_tickers, store, tmp_path)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["tickers_checked"].value == len(TICKERS)


def test_a_backfill_batch_run_leaves_the_checks_for_the_end_of_the_backfill(
    instance_with_tickers, store, tmp_path
):
    tags = {BACKFILL_ID_TAG: "abcdefgh"}
    result = _materialize_with_ohlc_check(instance_with_tickers, store, tmp_path, tags)
    assert result.success
    assert result.get_asset_check_evaluations() == []
    assert len(store.read_prices(TICKERS)) > 0


def test_checks_read_in_chunks_of_tickers_report_what_one_read_reports(loaded, monkeypatch):
    instance, store = loaded
    bar = store.read_prices(["CHARLIE"]).iloc[[100]].assign(high=lambda d: d["close"] - 1)
    store.write({schema.PRICES: bar})
    names = [
        "raw_prices:ohlc_consistent",
        "raw_prices:fresh",
        "raw_prices:no_long_gaps",
        "indicators:one_row_per_price",
        "breadth:every_trading_day",
        "breadth:universe_coverage",
    ]
    whole = run_checks(instance, store, *names)
    monkeypatch.setattr(importlib.import_module("breadth_assets.defs.checks"), "CHUNK_TICKERS", 2)

    chunked = run_checks(instance, store, *names)

    for name in names:
        assert chunked[name].passed == whole[name].passed
        assert {k: v.value for k, v in chunked[name].metadata.items()} == {
            k: v.value for k, v in whole[name].metadata.items()
        }


# --- a panel with a listing, a delisting, a halt and a closure found in the data ---------------


@pytest.fixture
def panel(instance, store):
    """The panel of support.py in the store: prices, and breadth on each day with a bar."""
    prices = panel_prices()
    store.write({schema.PRICES: prices, schema.BREADTH: panel_breadth(prices)})
    return add_tickers(instance, PANEL_TICKERS), store


PANEL_END = f"{PANEL_DAYS[-1]:%Y-%m-%d}"


def test_the_panels_breadth_covers_the_tickers_listed_on_each_day(panel):
    check = run_checks(*panel, "breadth:universe_coverage")["breadth:universe_coverage"]
    assert check.passed
    assert check.metadata["tickers_listed"].value == len(PANEL_TICKERS)


def test_a_closure_found_in_the_data_is_no_missing_breadth_day(panel):
    check = run_checks(*panel, "breadth:every_trading_day")["breadth:every_trading_day"]
    assert check.passed
    assert check.metadata["closures_in_data"].value == 1
    assert f"| {PANEL_CLOSURE:%Y-%m-%d} |" in check.metadata["closures"].value


def test_the_real_gap_is_the_only_gap_not_the_delisting_nor_the_closure(panel):
    check = run_checks(*panel, "raw_prices:no_long_gaps")["raw_prices:no_long_gaps"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["problems"].value == 1
    assert f"| HALT | {PANEL_DAYS[26]:%Y-%m-%d} | {PANEL_DAYS[19]:%Y-%m-%d} | 6 |" in (
        check.metadata["offenders"].value
    )


def test_a_closure_does_not_lengthen_a_gap_when_each_ticker_is_read_alone(panel, monkeypatch):
    monkeypatch.setattr(importlib.import_module("breadth_assets.defs.checks"), "CHUNK_TICKERS", 1)
    check = run_checks(*panel, "raw_prices:no_long_gaps")["raw_prices:no_long_gaps"]
    assert check.metadata["problems"].value == 1  # HALT's, not SHORT's
    assert check.metadata["tickers_checked"].value == len(PANEL_TICKERS)


def test_a_finished_history_without_end_date_is_one_stale_finding(panel):
    check = run_checks(*panel, "raw_prices:fresh")["raw_prices:fresh"]
    assert not check.passed
    assert check.metadata["problems"].value == 1
    assert check.description.startswith(f"no ticker has a bar after {PANEL_END}, ")


def test_a_finished_history_with_end_date_is_fresh_and_lists_its_delisting(panel):
    check = run_checks(*panel, "raw_prices:fresh", end_date=PANEL_END)["raw_prices:fresh"]
    assert check.passed
    assert check.metadata["reference_day"].value == PANEL_END
    assert check.metadata["tickers_ended"].value == 1
    assert f"| GONE | {PANEL_DAYS[12]:%Y-%m-%d} | 27 |" in check.metadata["ended"].value


def test_a_ticker_that_stopped_recently_warns(instance, store):
    prices = panel_prices({**PANEL_LIVES, "STEADY0": PANEL_LIVES["STEADY0"][:-2]})
    store.write({schema.PRICES: prices})
    add_tickers(instance, PANEL_TICKERS)
    check = run_checks(instance, store, "raw_prices:fresh", end_date=PANEL_END)["raw_prices:fresh"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert f"| STEADY0 | {PANEL_DAYS[37]:%Y-%m-%d} | 2 |" in check.metadata["offenders"].value


# --- breadth_up_to_date --------------------------------------------------------------------------

UP_TO_DATE = "breadth:breadth_up_to_date"


def test_breadth_computed_after_its_inputs_is_up_to_date(loaded):
    check = run_checks(*loaded, UP_TO_DATE, end_date=END)[UP_TO_DATE]
    assert check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR


def test_a_write_after_breadth_fails_the_check_with_the_day_and_reason_until_recomputed(loaded):
    instance, store = loaded
    changed = store.read_indicators(["ALPHA"])
    store.write({schema.INDICATORS: changed[changed["date"] == "2024-06-12"]})

    check = run_checks(instance, store, UP_TO_DATE, end_date=END)[UP_TO_DATE]

    assert not check.passed
    assert check.description == (
        "breadth stale from 2024-06-12: prices or indicators were written from 2024-06-12 on"
    )
    assert check.metadata["first_stale_day"].value == "2024-06-12"
    materialize_breadth(instance, store, END, END)
    assert run_checks(instance, store, UP_TO_DATE, end_date=END)[UP_TO_DATE].passed


def test_a_ticker_missing_from_the_breadth_universe_fails_the_check(loaded):
    instance, store = loaded
    instance.add_dynamic_partitions("tickers", ["NEWCO"])
    store.write({schema.INDICATORS: store.read_indicators(["ALPHA"]).assign(ticker="NEWCO")})
    store.settle_breadth_stale(store.breadth_stale(), None)

    check = run_checks(instance, store, UP_TO_DATE, end_date=END)[UP_TO_DATE]

    assert not check.passed
    assert "NEWCO joined the universe since breadth was computed" in check.description
