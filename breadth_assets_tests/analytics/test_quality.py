"""The data-quality rules on small hand-checkable tables."""

import numpy as np
import pandas as pd
import pytest
import talib

from breadth_assets.analytics import compute_indicators, quality
from breadth_assets_tests.support import (
    PANEL_CLOSURE,
    PANEL_DAYS,
    PANEL_OPEN,
    panel_breadth,
    panel_prices,
)


def bars(ticker: str, closes, start: str = "2024-01-01", dates=None) -> pd.DataFrame:
    closes = np.asarray(closes, dtype=float)
    dates = pd.bdate_range(start, periods=len(closes)) if dates is None else pd.DatetimeIndex(dates)
    return pd.DataFrame(
        {
            "ticker": ticker,
            "date": dates,
            "open": closes,
            "high": closes + 1,
            "low": closes - 1,
            "close": closes,
            "volume": 1000.0,
        }
    )


def walk(n: int, seed: int = 0) -> np.ndarray:
    return 100 + np.cumsum(np.random.default_rng(seed).normal(0, 1, n))


# --- raw_prices -------------------------------------------------------------------------------


def test_consistent_bars_have_no_ohlc_problem():
    assert quality.ohlc_problems(bars("AAA", [10, 11, 12])).empty


def test_a_high_below_the_close_is_an_ohlc_problem_naming_ticker_and_date():
    prices = bars("AAA", [10, 11, 12])
    prices.loc[1, "high"] = 10.5
    problems = quality.ohlc_problems(prices)
    assert problems.to_dict("records") == [
        {
            "ticker": "AAA",
            "date": pd.Timestamp("2024-01-02"),
            "problem": "high below max(open, close)",
        }
    ]


def test_a_low_above_the_open_is_an_ohlc_problem():
    prices = bars("AAA", [10, 11, 12])
    prices.loc[2, "low"] = 12.5
    assert quality.ohlc_problems(prices)["problem"].tolist() == ["low above min(open, close)"]


def test_a_zero_or_missing_price_is_an_ohlc_problem():
    prices = bars("AAA", [10, 11, 12])
    prices.loc[0, "low"] = 0.0
    prices.loc[2, "open"] = np.nan
    problems = quality.ohlc_problems(prices)
    assert problems["problem"].tolist() == ["price not > 0", "price not > 0"]
    assert problems["date"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-03")]


def test_a_negative_volume_is_an_ohlc_problem():
    prices = bars("AAA", [10, 11, 12])
    prices.loc[0, "volume"] = -1.0
    assert quality.ohlc_problems(prices)["problem"].tolist() == ["volume < 0"]


def test_unique_keys_have_no_duplicates():
    assert quality.duplicate_keys(bars("AAA", [1, 2]), ["ticker", "date"]).empty


def test_a_repeated_ticker_date_is_a_duplicate_with_its_count():
    prices = bars("AAA", [1, 2])
    prices = pd.concat([prices, prices.iloc[[1, 1]]], ignore_index=True)
    found = quality.duplicate_keys(prices, ["ticker", "date"])
    assert found.to_dict("records") == [
        {"ticker": "AAA", "date": pd.Timestamp("2024-01-02"), "rows": 3}
    ]


DAYS = pd.bdate_range("2024-01-01", "2024-03-29")


def test_a_gap_of_five_trading_days_is_allowed():
    dates = [*DAYS[:3], *DAYS[8:10]]  # DAYS[3..7] missing: 5 days
    assert quality.gaps(bars("AAA", range(1, 6), dates=dates), DAYS).empty


def test_a_gap_of_six_trading_days_is_reported_with_both_bars():
    dates = [*DAYS[:3], *DAYS[9:11]]  # DAYS[3..8] missing: 6 days
    found = quality.gaps(bars("AAA", range(1, 6), dates=dates), DAYS)
    assert found.to_dict("records") == [
        {"ticker": "AAA", "date": DAYS[9], "previous_bar": DAYS[2], "missing_days": 6}
    ]


def test_days_before_a_late_listing_are_not_a_gap():
    late = bars("BBB", [1, 2, 3], dates=DAYS[40:43])
    assert quality.gaps(pd.concat([bars("AAA", range(50), dates=DAYS[:50]), late]), DAYS).empty


def test_a_gap_counts_trading_days_not_holidays():
    calendar = DAYS.delete(range(3, 9))  # six exchange holidays
    dates = [*DAYS[:3], *DAYS[9:11]]
    assert quality.gaps(bars("AAA", range(1, 6), dates=dates), calendar).empty


def test_a_calendar_day_without_any_bar_is_a_closure_not_an_open_day():
    prices = panel_prices()
    assert quality.closures_in_data(PANEL_DAYS, prices["date"]).tolist() == [PANEL_CLOSURE]
    assert quality.open_days(PANEL_DAYS, prices["date"]).equals(PANEL_OPEN)


def test_each_tickers_span_is_its_first_and_last_bar():
    spans = quality.ticker_spans(panel_prices())
    assert spans.loc["LATE"].tolist() == [PANEL_DAYS[15], PANEL_DAYS[39], 25]
    assert spans.loc["GONE"].tolist() == [PANEL_DAYS[0], PANEL_DAYS[12], 12]


def test_the_real_gap_inside_a_tickers_life_is_the_only_gap_of_the_panel():
    prices = panel_prices()
    found = quality.gaps(prices, quality.open_days(PANEL_DAYS, prices["date"]))
    assert found.to_dict("records") == [
        {
            "ticker": "HALT",
            "date": PANEL_DAYS[26],
            "previous_bar": PANEL_DAYS[19],
            "missing_days": 6,
        }
    ]


def test_a_delisting_is_not_a_gap():
    gone = bars("GONE", range(5), dates=DAYS[:5])
    steady = bars("AAA", range(60), dates=DAYS[:60])
    prices = pd.concat([steady, gone])
    assert quality.gaps(prices, quality.open_days(DAYS, prices["date"])).empty


def test_a_closure_in_the_data_does_not_lengthen_a_gap():
    prices = panel_prices()
    short = prices[prices["ticker"] == "SHORT"]
    assert len(quality.gaps(short, PANEL_DAYS)) == 1  # 6 days of the calendar
    assert quality.gaps(short, quality.open_days(PANEL_DAYS, prices["date"])).empty


def test_a_gap_counted_in_the_calendar_is_dropped_once_counted_in_the_open_days():
    prices = panel_prices()
    in_calendar = quality.gaps(prices, PANEL_DAYS)
    assert sorted(in_calendar["ticker"]) == ["HALT", "SHORT"]
    found = quality.recount_gaps(in_calendar, quality.open_days(PANEL_DAYS, prices["date"]))
    assert found["ticker"].tolist() == ["HALT"]


def moves(prices: pd.DataFrame, declared: pd.DataFrame | None = None) -> pd.DataFrame:
    """The unexplained moves of `prices` taken as adjusted closes, beyond 20%."""
    none = pd.DataFrame(columns=["ticker", "ex_date", "kind", "value"])
    return quality.unexplained_moves(prices, none if declared is None else declared, 0.2)


def declared(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["ticker", "ex_date", "kind", "value"])
    return frame.assign(ex_date=pd.to_datetime(frame["ex_date"]))


def test_moves_up_to_the_market_band_are_explained():
    assert moves(bars("AAA", [100, 120, 96])).empty


def test_a_halving_without_an_action_is_an_unexplained_move():
    found = moves(bars("AAA", [100, 101, 50]))
    assert found.to_dict("records") == [
        {
            "ticker": "AAA",
            "date": pd.Timestamp("2024-01-03"),
            "previous_close": 101.0,
            "close": 50.0,
            "move_pct": -50.5,
            "actions": "",
        }
    ]


def test_a_move_declared_real_is_explained():
    assert moves(bars("AAA", [100, 101, 50]), declared(("AAA", "2024-01-03", "move", ""))).empty


def test_a_move_left_after_the_days_action_names_that_action():
    found = moves(bars("AAA", [100, 101, 50]), declared(("AAA", "2024-01-03", "bonus", "1:1")))
    assert found["actions"].tolist() == ["bonus 1:1"]


def test_an_unexplained_move_never_compares_two_tickers():
    prices = pd.concat([bars("AAA", [100, 101]), bars("BBB", [10, 10.5])])
    assert moves(prices).empty


def instrument_keys(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [(ticker, key, pd.Timestamp(day)) for ticker, key, day in rows],
        columns=["ticker", "instrument_key", "first_used"],
    )


def test_a_ticker_with_one_recorded_key_has_no_key_change():
    keys = instrument_keys(("AAA", "NSE_EQ|A1", "2020-01-01"), ("BBB", "NSE_EQ|B1", "2021-01-01"))
    assert quality.key_changes(keys).empty


def test_each_key_recorded_after_another_is_a_change_from_the_one_before_it():
    keys = instrument_keys(
        ("AAA", "NSE_EQ|A3", "2024-07-01"),
        ("BBB", "NSE_EQ|B1", "2021-01-01"),
        ("AAA", "NSE_EQ|A1", "2020-01-01"),
        ("AAA", "NSE_EQ|A2", "2022-03-01"),
    )
    assert quality.key_changes(keys).values.tolist() == [
        ["AAA", "NSE_EQ|A1", "NSE_EQ|A2", pd.Timestamp("2022-03-01")],
        ["AAA", "NSE_EQ|A2", "NSE_EQ|A3", pd.Timestamp("2024-07-01")],
    ]


# --- indicators -------------------------------------------------------------------------------


def test_indicators_with_the_keys_of_prices_match():
    prices = bars("AAA", walk(40))
    assert quality.key_mismatches(prices, compute_indicators(prices)).empty


def test_a_price_row_without_indicators_and_an_orphan_indicator_row_are_mismatches():
    prices = bars("AAA", walk(5))
    indicators = compute_indicators(prices).drop(index=2)
    indicators = pd.concat([indicators, compute_indicators(bars("ZZZ", [1.0]))])
    found = quality.key_mismatches(prices, indicators)
    assert found.to_dict("records") == [
        {
            "ticker": "AAA",
            "date": pd.Timestamp("2024-01-03"),
            "problem": "price row without indicators",
        },
        {
            "ticker": "ZZZ",
            "date": pd.Timestamp("2024-01-01"),
            "problem": "indicators without a price",
        },
    ]


def test_computed_indicators_have_no_null_after_warm_up():
    prices = pd.concat([bars("AAA", walk(300)), bars("BBB", walk(40, seed=1))])
    assert quality.unexpected_nulls(compute_indicators(prices)).empty


@pytest.mark.parametrize(
    ("column", "values"),
    [
        *((f"ema_{n}", lambda c, n=n: talib.EMA(c, n)) for n in (10, 20, 50, 100, 200)),
        ("rsi_14", lambda c: talib.RSI(c, 14)),
        ("macd_hist", lambda c: talib.MACD(c, 12, 26, 9)[2]),
        ("bb_middle", lambda c: talib.BBANDS(c, 20, 2, 2, matype=0)[1]),
    ],
)
def test_warm_up_is_talibs_first_defined_bar(column, values):
    close = walk(300)
    first_defined = int(np.flatnonzero(~np.isnan(values(close)))[0]) + 1
    assert quality.WARM_UP_BARS[column] == first_defined


def test_warm_up_of_every_column_is_the_first_bar_compute_indicators_defines():
    indicators = compute_indicators(bars("AAA", walk(300)))
    first_defined = {
        column: int(np.flatnonzero(indicators[column].notna())[0]) + 1
        for column in quality.WARM_UP_BARS
    }
    assert first_defined == quality.WARM_UP_BARS


def test_a_null_after_warm_up_is_reported_with_column_and_bar():
    indicators = compute_indicators(bars("AAA", walk(60)))
    indicators.loc[39, "rsi_14"] = np.nan
    found = quality.unexpected_nulls(indicators)
    assert found.to_dict("records") == [
        {"ticker": "AAA", "date": indicators.loc[39, "date"], "column": "rsi_14", "bar": 40}
    ]


def test_a_null_during_warm_up_is_expected():
    indicators = compute_indicators(bars("AAA", walk(60)))
    indicators.loc[10, "ema_20"] = np.nan  # already NULL: bar 11 < 20
    indicators.loc[18, "ema_20"] = np.nan
    assert quality.unexpected_nulls(indicators).empty


# --- breadth ----------------------------------------------------------------------------------


def breadth_rows(dates, universe=10, pct=50.0) -> pd.DataFrame:
    frame = pd.DataFrame({"date": pd.DatetimeIndex(dates), "universe": universe})
    for column in quality.PERCENT_COLUMNS:
        frame[column] = pct
    return frame


def test_breadth_on_every_trading_day_has_no_missing_day():
    assert quality.missing_days(breadth_rows(DAYS[5:20]), DAYS).empty


def test_a_trading_day_without_breadth_is_missing():
    found = quality.missing_days(breadth_rows(DAYS[5:20].delete(4)), DAYS)
    assert found["date"].tolist() == [DAYS[9]]


def test_a_closure_in_the_data_without_breadth_row_is_not_missing():
    prices = panel_prices()
    rows = panel_breadth(prices)
    assert PANEL_CLOSURE not in set(rows["date"])
    assert quality.missing_days(rows, quality.open_days(PANEL_DAYS, prices["date"])).empty


def spans_of(lives: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Spans from (first, last) positions in DAYS."""
    return pd.DataFrame(
        {
            "first_bar": [DAYS[first] for first, _ in lives.values()],
            "last_bar": [DAYS[last] for _, last in lives.values()],
            "bars": 1,
        },
        index=pd.Index(list(lives), name="ticker"),
    )


def test_full_coverage_has_no_shortfall():
    spans = spans_of({f"T{i}": (0, 60) for i in range(10)})
    assert quality.coverage_shortfalls(breadth_rows(DAYS[:5], universe=9), spans, DAYS).empty


def test_a_day_covering_under_ninety_percent_is_a_shortfall():
    spans = spans_of({f"T{i}": (0, 60) for i in range(10)})
    rows = breadth_rows(DAYS[:3], universe=[10, 8, 10])
    found = quality.coverage_shortfalls(rows, spans, DAYS)
    assert found.to_dict("records") == [
        {"date": DAYS[1], "universe": 8, "listed": 10, "share": 80.0}
    ]


def test_tickers_listed_later_do_not_count_against_earlier_days():
    spans = spans_of({**{f"T{i}": (0, 60) for i in range(5)}, "LATE": (3, 60)})
    rows = breadth_rows(DAYS[:5], universe=[5, 5, 5, 6, 6])
    assert quality.coverage_shortfalls(rows, spans, DAYS).empty


def test_a_delisted_ticker_does_not_count_after_its_last_bar():
    spans = spans_of({**{f"T{i}": (0, 60) for i in range(5)}, "GONE": (0, 1)})
    rows = breadth_rows(DAYS[:5], universe=[6, 6, 5, 5, 5])
    assert quality.coverage_shortfalls(rows, spans, DAYS).empty


def test_a_breadth_row_on_a_day_without_any_bar_has_nothing_to_cover():
    spans = spans_of({f"T{i}": (0, 60) for i in range(10)})
    rows = breadth_rows(DAYS[:3], universe=[10, 0, 10])  # an older row on a closure
    assert quality.coverage_shortfalls(rows, spans, DAYS.delete(1)).empty


def test_the_panel_with_a_listing_a_delisting_a_halt_and_a_closure_is_covered():
    prices = panel_prices()
    days = quality.open_days(PANEL_DAYS, prices["date"])
    spans = quality.ticker_spans(prices)
    assert quality.coverage_shortfalls(panel_breadth(prices), spans, days).empty


def test_percentages_within_0_and_100_and_null_are_in_range():
    rows = breadth_rows(DAYS[:3], pct=100.0)
    rows.loc[0, "pct_above_ema_200"] = np.nan
    rows.loc[1, "macd_stage_3"] = 0.0
    assert quality.percentages_out_of_range(rows).empty


def test_a_percentage_above_100_is_out_of_range():
    rows = breadth_rows(DAYS[:3])
    rows.loc[2, "macd_stage_6"] = 100.5
    rows.loc[0, "pct_above_ema_20"] = -1.0
    found = quality.percentages_out_of_range(rows)
    assert found.to_dict("records") == [
        {"date": DAYS[0], "column": "pct_above_ema_20", "value": -1.0},
        {"date": DAYS[2], "column": "macd_stage_6", "value": 100.5},
    ]


# --- the UI table -----------------------------------------------------------------------------


def test_problems_markdown_lists_offenders_with_dates():
    text = quality.problems_markdown(moves(bars("AAA", [100, 101, 50])))
    assert text.splitlines()[0] == (
        "| ticker | date | previous_close | close | move_pct | actions |"
    )
    assert "| AAA | 2024-01-03 | 101.0 | 50.0 | -50.5 |  |" in text


def test_problems_markdown_shows_at_most_fifty_rows_and_counts_the_rest():
    problems = pd.DataFrame({"ticker": [f"T{i:03d}" for i in range(120)], "date": DAYS[0]})
    text = quality.problems_markdown(problems)
    assert text.count("| T") == 50
    assert "70 more (120 in all)" in text


def test_every_rule_accepts_empty_tables():
    prices = bars("AAA", []).astype({"date": "datetime64[ns]"})
    indicators = compute_indicators(prices)
    empty_breadth = breadth_rows([])
    assert quality.ohlc_problems(prices).empty
    assert quality.duplicate_keys(prices, ["ticker", "date"]).empty
    assert quality.gaps(prices, DAYS).empty
    assert moves(prices).empty
    assert quality.recount_gaps(quality.gaps(prices, DAYS), DAYS).empty
    assert quality.ticker_spans(prices).empty
    assert quality.open_days(DAYS, prices["date"]).empty
    assert quality.closures_in_data(DAYS, prices["date"]).empty
    assert quality.key_mismatches(prices, indicators).empty
    assert quality.unexpected_nulls(indicators).empty
    assert quality.missing_days(empty_breadth, DAYS).empty
    assert quality.coverage_shortfalls(empty_breadth, quality.ticker_spans(prices), DAYS).empty
    assert quality.percentages_out_of_range(empty_breadth).empty
    assert quality.key_changes(instrument_keys()).empty
