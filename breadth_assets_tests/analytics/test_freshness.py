"""Freshness against the data's own end, on the hand-checkable panel of support.py."""

import datetime as dt

import pandas as pd

from breadth_assets.analytics import freshness, quality
from breadth_assets_tests.support import PANEL_DAYS, PANEL_LIVES, PANEL_TICKERS, panel_prices

END = PANEL_DAYS[-1]  # 2024-02-23, a Friday: the panel's latest bar
TWO_YEARS_LATER = dt.date(2026, 2, 23)
CALENDAR = pd.bdate_range(PANEL_DAYS[0], TWO_YEARS_LATER)  # the DEMO calendar: weekdays


def fresh(lives=PANEL_LIVES, reference_day=END, tickers=None) -> freshness.Freshness:
    prices = panel_prices(lives)
    return freshness.freshness(
        quality.ticker_spans(prices),
        sorted(lives) if tickers is None else tickers,
        CALENDAR,
        quality.open_days(CALENDAR, prices["date"]),
        reference_day,
    )


def test_a_universe_with_bars_on_the_reference_day_is_fresh():
    found = fresh()
    assert not found.stale
    assert found.stopped.empty


def test_a_finished_history_is_fresh_relative_to_its_end():
    found = fresh(reference_day=END.date())
    assert (found.latest_bar, found.behind, found.stale) == (END, 0, False)


def test_a_history_ended_two_years_ago_is_stale_as_a_whole():
    found = fresh(reference_day=TWO_YEARS_LATER)
    assert found.stale
    assert found.latest_bar == END
    assert found.behind == len(pd.bdate_range("2024-02-26", TWO_YEARS_LATER))


def test_one_trading_day_behind_the_reference_day_is_within_the_tolerance():
    monday = END + pd.Timedelta(days=3)  # a holiday the calendar does not know, or a late source
    assert fresh(reference_day=monday.date()).behind == 1
    assert not fresh(reference_day=monday.date()).stale
    assert fresh(reference_day=(monday + pd.Timedelta(days=1)).date()).stale


def test_a_delisted_ticker_has_ended_without_being_stale():
    found = fresh()
    assert found.ended.to_dict("records") == [
        {"ticker": "GONE", "last_bar": PANEL_DAYS[12], "trading_days_behind": 27}
    ]
    assert "GONE" not in set(found.stopped["ticker"])


def test_a_ticker_that_stopped_two_days_before_the_latest_bar_stopped_recently():
    found = fresh({**PANEL_LIVES, "STEADY0": PANEL_LIVES["STEADY0"][:-2]})
    assert found.stopped.to_dict("records") == [
        {"ticker": "STEADY0", "last_bar": PANEL_DAYS[37], "trading_days_behind": 2}
    ]


def test_five_open_days_behind_is_recent_and_six_have_ended():
    lives = {**PANEL_LIVES, "FIVE": PANEL_DAYS[:35], "SIX": PANEL_DAYS[:34]}
    found = fresh(
        {ticker: days.drop(PANEL_DAYS[10], errors="ignore") for ticker, days in lives.items()}
    )
    assert found.stopped["ticker"].tolist() == ["FIVE"]
    assert found.ended["ticker"].tolist() == ["GONE", "SIX"]


def test_a_closure_in_the_data_does_not_count_as_a_day_behind():
    found = fresh({**PANEL_LIVES, "EARLY": PANEL_DAYS[:10]})
    # 30 weekdays after its last bar, PANEL_DAYS[9], up to the latest; one is the closure
    assert found.ended.set_index("ticker").loc["EARLY", "trading_days_behind"] == 29


def test_a_ticker_without_any_bar_is_listed_as_stopped():
    found = fresh(tickers=[*PANEL_TICKERS, "NEW"])
    assert found.stopped["ticker"].tolist() == ["NEW"]
    assert pd.isna(found.stopped["last_bar"].iloc[0])
    assert pd.isna(found.stopped["trading_days_behind"].iloc[0])


def test_a_universe_without_any_bar_is_stale_and_an_empty_one_is_not():
    empty = quality.ticker_spans(panel_prices()).iloc[:0]
    days = pd.DatetimeIndex([])
    assert freshness.freshness(empty, ["AAA"], CALENDAR, days, TWO_YEARS_LATER).stale
    assert not freshness.freshness(empty, [], CALENDAR, days, TWO_YEARS_LATER).stale
