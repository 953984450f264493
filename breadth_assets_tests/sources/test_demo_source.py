from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from breadth_assets.schema import PRICE_COLUMNS
from breadth_assets.sources.base import PriceRequest
from breadth_assets.sources.demo.source import DemoSource, demo_bars
from breadth_assets.universe.file import load_universe

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HISTORY_START = pd.Timestamp("2015-01-01")
HISTORY_END = pd.Timestamp("2026-06-30")


@pytest.fixture(scope="module")
def demo_history() -> dict[str, pd.DataFrame]:
    """Each shipped demo ticker's bars over the years a user of the demo universe sees."""
    symbols = load_universe(PROJECT_ROOT / "universe.yaml").symbols
    history = {}
    for symbol in symbols:
        bars = demo_bars(symbol)
        history[symbol] = bars[bars["date"].between(HISTORY_START, HISTORY_END)]
    return history


def fetch(ticker: str, start: str, end: str, seed: int = 0) -> pd.DataFrame:
    request = PriceRequest(ticker, dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    return DemoSource(seed=seed).fetch(request).bars


def test_same_ticker_gives_identical_bars_on_every_call():
    pd.testing.assert_frame_equal(
        fetch("ARVEN", "2015-01-01", "2025-12-31"), fetch("ARVEN", "2015-01-01", "2025-12-31")
    )


def test_bars_for_a_date_do_not_depend_on_the_requested_range():
    short = fetch("BELKO", "2021-03-01", "2021-03-31").set_index("date")
    long = fetch("BELKO", "2000-01-01", "2040-12-31").set_index("date")
    full = demo_bars("BELKO").set_index("date")
    assert len(short) > 15
    pd.testing.assert_frame_equal(short, long.loc[short.index])
    pd.testing.assert_frame_equal(long, full)


def test_bars_are_pinned_so_every_machine_sees_the_same_series():
    bars = demo_bars("ARVEN")
    first_2015 = bars[bars["date"] >= HISTORY_START].iloc[0]
    assert len(bars) == 10_639
    assert first_2015["date"] == pd.Timestamp("2015-01-01")
    assert first_2015["close"] == pytest.approx(251.3921933324028, rel=1e-9)
    assert first_2015["volume"] == 2_727_350.0


def test_other_tickers_and_seeds_give_other_bars():
    base = fetch("ARVEN", "2020-01-01", "2020-12-31")
    other_ticker = fetch("BELKO", "2020-01-01", "2020-12-31")
    other_seed = fetch("ARVEN", "2020-01-01", "2020-12-31", seed=1)
    assert not np.allclose(base["close"].iloc[:50], other_ticker["close"].iloc[:50])
    assert not np.allclose(base["close"].iloc[:50], other_seed["close"].iloc[:50])


def test_range_is_inclusive_at_both_ends():
    bars = fetch("ARVEN", "2000-01-01", "2040-12-31")
    start, end = bars["date"].iloc[100], bars["date"].iloc[200]
    sliced = fetch("ARVEN", start.date().isoformat(), end.date().isoformat())
    assert (sliced["date"].iloc[0], sliced["date"].iloc[-1]) == (start, end)
    assert len(sliced) == 101


def test_a_range_without_bars_gives_an_empty_frame_with_the_columns():
    bars = fetch("ARVEN", "1990-01-01", "1999-12-31")
    assert bars.empty
    assert list(bars.columns) == list(PRICE_COLUMNS)


def test_columns_types_and_sort_order():
    bars = fetch("CIRAX", "2015-01-01", "2025-12-31")
    assert list(bars.columns) == list(PRICE_COLUMNS)
    assert (bars["ticker"] == "CIRAX").all()
    assert bars["date"].dtype == "datetime64[us]"
    assert bars["date"].is_monotonic_increasing and bars["date"].is_unique
    assert (bars["date"] == bars["date"].dt.normalize()).all()
    for column in ("open", "high", "low", "close", "volume"):
        assert bars[column].dtype == np.float64


def test_bars_fall_only_on_weekdays(demo_history):
    every_date = pd.concat([bars["date"] for bars in demo_history.values()])
    assert every_date.dt.day_of_week.max() <= 4


def test_ohlc_is_consistent_and_positive_and_volume_whole(demo_history):
    bars = pd.concat(demo_history.values())
    values = bars[["open", "high", "low", "close"]]
    assert (values > 0).all().all()
    assert (bars["high"] >= values[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= values[["open", "close"]].min(axis=1)).all()
    assert (bars["volume"] > 0).all()
    assert (bars["volume"] == bars["volume"].round()).all()


def test_daily_volatility_stays_in_a_plausible_band(demo_history):
    for bars in demo_history.values():
        daily = np.log(bars["close"]).diff().dropna()
        assert 0.005 < daily.std() < 0.05


def test_some_demo_ticker_lists_mid_history_after_2015(demo_history):
    listed_late = [s for s, bars in demo_history.items() if bars["date"].min().year > 2015]
    assert 2 <= len(listed_late) <= 20


def test_some_demo_ticker_has_a_multi_day_halt(demo_history):
    def longest_gap(bars: pd.DataFrame) -> int:
        weekdays = np.busday_count(
            bars["date"].to_numpy()[:-1].astype("datetime64[D]"),
            bars["date"].to_numpy()[1:].astype("datetime64[D]"),
        )
        return int(weekdays.max())

    halted = [s for s, bars in demo_history.items() if longest_gap(bars) >= 6]
    assert len(halted) >= 3


def test_about_half_a_percent_of_weekdays_are_missing_at_random(demo_history):
    weekdays = pd.bdate_range(HISTORY_START, HISTORY_END)
    missing = [
        1 - len(bars) / weekdays[weekdays >= bars["date"].min()].size
        for bars in demo_history.values()
    ]
    assert 0.002 < float(np.median(missing)) < 0.02


def test_some_demo_ticker_has_a_split_like_one_day_halving(demo_history):
    def halves(bars: pd.DataFrame) -> bool:
        ratio = bars["close"] / bars["close"].shift()
        return bool(ratio.between(0.4, 0.6).any())

    split = [s for s, bars in demo_history.items() if halves(bars)]
    assert 1 <= len(split) <= 10


def test_negative_seed_is_refused():
    with pytest.raises(ValueError, match="seed"):
        demo_bars("ARVEN", seed=-1)


def test_a_negative_seed_is_refused_when_the_source_is_built():
    with pytest.raises(ValueError, match="expected a whole number >= 0"):
        DemoSource(seed=-1)
