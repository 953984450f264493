"""Specification of the daily market breadth (docs/design.md "Breadth").

Each case is a handful of tickers over a few days, with the expected numbers worked by hand.
Days: D0 is history before the first breadth date; D1.. are the breadth dates.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from breadth_assets.analytics import compute_breadth
from breadth_assets.schema import BREADTH_COLUMNS, BREADTH_INPUT_COLUMNS
from breadth_assets_tests.support import reference_breadth, reference_mcclellan_and_zweig

NAN = np.nan
D0, D1, D2, D3, D4 = "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"


def bars(*rows: dict) -> pd.DataFrame:
    """Breadth input rows; high = low = close, volume 100 and NULL indicators unless given."""
    records = []
    for row in rows:
        record = dict.fromkeys(BREADTH_INPUT_COLUMNS, NAN)
        record.update(high=row["close"], low=row["close"], volume=100.0)
        record.update(row)
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(BREADTH_INPUT_COLUMNS))
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def closes(paths: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Bars from {ticker: {date: close}}; a date left out is a day the ticker did not trade."""
    return bars(
        *(
            {"ticker": ticker, "date": day, "close": close}
            for ticker, path in paths.items()
            for day, close in path.items()
        )
    )


def breadth(rows: pd.DataFrame, *dates: str) -> pd.DataFrame:
    return compute_breadth(rows, pd.to_datetime(list(dates)))


def one_day(rows: pd.DataFrame, day: str = D1) -> pd.Series:
    return breadth(rows, day).iloc[0]


# Four tickers whose days give A/D = 3/1, 1/3, 0/0 (all unchanged) and 2/2 on D1..D4.
SWINGS = closes(
    {
        "W": {D0: 10, D1: 11, D2: 10, D3: 10, D4: 11},
        "X": {D0: 10, D1: 11, D2: 10, D3: 10, D4: 11},
        "Y": {D0: 10, D1: 11, D2: 10, D3: 10, D4: 9},
        "Z": {D0: 10, D1: 9, D2: 10, D3: 10, D4: 9},
    }
)


# --- shape -------------------------------------------------------------------------------------


def test_output_has_the_breadth_columns_in_schema_order():
    assert list(breadth(SWINGS, D1, D2).columns) == list(BREADTH_COLUMNS)


def test_count_columns_are_int64_flags_bool_the_others_float64_and_date_datetime64():
    result = breadth(SWINGS, D1, D2)

    for name, sql_type in BREADTH_COLUMNS.items():
        if name == "date":
            assert pd.api.types.is_datetime64_dtype(result[name])
        elif name == "group_name":
            assert list(result[name]) == ["ALL", "ALL"]
        elif sql_type == "BOOLEAN":
            assert result[name].dtype == bool, name
        elif sql_type == "BIGINT":
            assert result[name].dtype == np.int64, name
        else:
            assert result[name].dtype == np.float64, name


def test_one_row_per_requested_date_in_order_with_a_fresh_index():
    result = breadth(SWINGS, D1, D2, D3, D4)

    assert list(result["date"]) == list(pd.to_datetime([D1, D2, D3, D4]))
    assert isinstance(result.index, pd.RangeIndex)


def test_rows_in_any_order_give_the_same_breadth():
    shuffled = SWINGS.sample(frac=1.0, random_state=3).reset_index(drop=True)

    pd.testing.assert_frame_equal(
        breadth(shuffled, D1, D2, D3, D4), breadth(SWINGS, D1, D2, D3, D4)
    )


def test_no_dates_give_an_empty_frame_with_the_breadth_columns():
    result = compute_breadth(SWINGS, pd.DatetimeIndex([]))

    assert list(result.columns) == list(BREADTH_COLUMNS)
    assert result.empty


# --- universe, advancers, decliners --------------------------------------------------------------


def test_universe_counts_the_tickers_with_a_bar_on_the_date():
    rows = closes({"A": {D0: 1, D1: 1}, "B": {D0: 1}, "C": {D1: 1}})

    assert one_day(rows)["universe"] == 2


def test_advancers_decliners_and_unchanged_compare_with_the_previous_close():
    rows = closes(
        {
            "UP": {D0: 10, D1: 10.5},
            "DOWN": {D0: 10, D1: 9.5},
            "FLAT": {D0: 10, D1: 10},
            "UP2": {D0: 5, D1: 6},
        }
    )

    day = one_day(rows)

    assert (day["advancers"], day["decliners"], day["unchanged"]) == (2, 1, 1)


def test_net_advances_is_advancers_minus_decliners():
    assert list(breadth(SWINGS, D1, D2, D3, D4)["net_advances"]) == [2, -2, 0, 0]


def test_advancers_compare_a_halted_ticker_with_its_last_bar_before_the_halt():
    rows = closes(
        {
            "HALTED": {D0: 10, D2: 9},
            "TRADED": {D0: 10, D1: 11, D2: 12},
        }
    )

    day2 = breadth(rows, D1, D2).iloc[1]

    assert (day2["advancers"], day2["decliners"], day2["universe"]) == (1, 1, 2)


def test_a_ticker_listed_mid_range_counts_in_universe_only_on_its_first_bar():
    rows = bars(
        {"ticker": "EARLY", "date": D0, "close": 10},
        {"ticker": "EARLY", "date": D1, "close": 11},
        {"ticker": "EARLY", "date": D2, "close": 12},
        {"ticker": "LATE", "date": D1, "close": 50, "volume": 1000.0},
        {"ticker": "LATE", "date": D2, "close": 40, "volume": 1000.0},
    )

    result = breadth(rows, D1, D2)

    first, second = result.iloc[0], result.iloc[1]
    assert first["universe"] == 2
    assert (first["advancers"], first["decliners"], first["unchanged"]) == (1, 0, 0)
    assert (first["up_volume"], first["down_volume"]) == (100.0, 0.0)
    assert (second["advancers"], second["decliners"], second["down_volume"]) == (1, 1, 1000.0)


def test_a_ticker_on_its_first_bar_still_counts_in_the_indicator_counts_it_has_values_for():
    rows = bars(
        {
            "ticker": "NEW",
            "date": D1,
            "close": 10,
            "high": 12,
            "high_52w": 11,
            "ema_20": 9,
            "rsi_14": 80,
            "macd_stage": 3,
        },
    )

    day = one_day(rows)

    assert day["pct_above_ema_20"] == 100.0
    assert day["new_highs_52w"] == 1
    assert day["rsi_overbought"] == 1
    assert day["macd_stage_3"] == 100.0


def test_rows_before_the_first_date_serve_only_as_previous_bars():
    result = breadth(SWINGS, D2, D3)

    assert list(result["date"]) == list(pd.to_datetime([D2, D3]))
    assert list(result["advancers"]) == [1, 0]
    assert list(result["ad_line"]) == [-2, -2]


def test_a_days_row_does_not_depend_on_later_bars_or_dates():
    early = SWINGS[pd.to_datetime(SWINGS["date"]) <= pd.Timestamp(D2)]

    pd.testing.assert_frame_equal(breadth(early, D1, D2), breadth(SWINGS, D1, D2, D3, D4).iloc[:2])


def test_a_date_where_no_ticker_has_a_bar_gets_no_row():
    rows = closes({"A": {D0: 10, D1: 11, D3: 12}, "B": {D0: 10, D1: 9, D3: 10}})

    result = breadth(rows, D1, D2, D3)

    assert list(result["date"]) == list(pd.to_datetime([D1, D3]))


def test_the_cumulative_columns_do_not_move_on_a_date_without_bars():
    # D1: A/D = 2/1, D2: 0/3, D3: no bar at all (a closure the calendar missed), D4: 3/0.
    rows = closes(
        {
            "A": {D0: 10, D1: 11, D2: 10, D4: 11},
            "B": {D0: 10, D1: 9, D2: 8, D4: 9},
            "C": {D0: 10, D1: 11, D2: 10, D4: 11},
        }
    )

    result = breadth(rows, D1, D2, D3, D4)

    # By hand over the three breadth days: x = 1000/3, -1000, 1000.
    e19 = [1000 / 3, 1000 / 3 + 0.10 * (-1000 - 1000 / 3)]
    e39 = [1000 / 3, 1000 / 3 + 0.05 * (-1000 - 1000 / 3)]
    e19.append(e19[-1] + 0.10 * (1000 - e19[-1]))
    e39.append(e39[-1] + 0.05 * (1000 - e39[-1]))
    osc = [fast - slow for fast, slow in zip(e19, e39, strict=True)]
    assert list(result["ad_line"]) == [1, -2, 1]
    assert list(result["mcclellan_osc"]) == pytest.approx(osc)
    assert list(result["mcclellan_sum"]) == pytest.approx([osc[0], osc[0] + osc[1], sum(osc)])
    assert list(result["zweig_ema"]) == pytest.approx([2 / 3, 6 / 11, 76 / 121])


# --- ad line and ratios ------------------------------------------------------------------------


def test_ad_line_is_the_running_sum_of_net_advances_from_the_first_date():
    assert list(breadth(SWINGS, D1, D2, D3, D4)["ad_line"]) == [2, 0, 0, 0]


def test_ad_ratio_is_advancers_over_decliners():
    assert list(breadth(SWINGS, D1, D2)["ad_ratio"]) == [3.0, 1 / 3]


def test_ad_ratio_and_trin_are_null_on_a_day_without_decliners():
    rows = closes({"P": {D0: 10, D1: 11}, "Q": {D0: 10, D1: 12}, "R": {D0: 10, D1: 10}})

    day = one_day(rows)

    assert day["decliners"] == 0
    assert np.isnan(day["ad_ratio"])
    assert np.isnan(day["trin"])


def test_ad_ratio_is_zero_on_a_day_without_advancers():
    rows = closes({"P": {D0: 10, D1: 9}})

    assert one_day(rows)["ad_ratio"] == 0.0


# --- volume and trin ---------------------------------------------------------------------------

VOLUME_DAY = bars(
    *({"ticker": t, "date": D0, "close": 10} for t in "PQRS"),
    {"ticker": "P", "date": D1, "close": 11, "volume": 100.0},
    {"ticker": "Q", "date": D1, "close": 12, "volume": 200.0},
    {"ticker": "R", "date": D1, "close": 9, "volume": 600.0},
    {"ticker": "S", "date": D1, "close": 10, "volume": 50.0},
)


def test_up_and_down_volume_sum_the_volume_of_advancers_and_decliners_only():
    day = one_day(VOLUME_DAY)

    assert (day["up_volume"], day["down_volume"]) == (300.0, 600.0)


def test_trin_is_the_advance_decline_ratio_over_the_up_down_volume_ratio():
    # (A/D) / (up/down) = (2/1) / (300/600) = 4
    assert one_day(VOLUME_DAY)["trin"] == 4.0


def test_trin_is_null_when_up_volume_is_zero():
    rows = bars(
        {"ticker": "P", "date": D0, "close": 10},
        {"ticker": "Q", "date": D0, "close": 10},
        {"ticker": "P", "date": D1, "close": 11, "volume": 0.0},
        {"ticker": "Q", "date": D1, "close": 9, "volume": 100.0},
    )

    day = one_day(rows)

    assert day["ad_ratio"] == 1.0
    assert np.isnan(day["trin"])


# --- McClellan and Zweig -----------------------------------------------------------------------
# SWINGS: x = 1000(A-D)/(A+D) is 500, -500, (carried), 0.
#   D1: E19 = E39 = 500                                   osc 0       sum 0
#   D2: E19 = 500 + 0.10(-1000) = 400, E39 = 500 + 0.05(-1000) = 450    osc -50   sum -50
#   D3: A+D = 0, EMAs carried                             osc -50     sum -100
#   D4: E19 = 400 + 0.10(-400) = 360, E39 = 450 + 0.05(-450) = 427.5   osc -67.5  sum -167.5
# Zweig, α = 2/11, of A/(A+D) = 3/4, 1/4, (carried), 1/2:
#   3/4;  3/4 + (2/11)(1/4 - 3/4) = 29/44;  29/44;  29/44 + (2/11)(1/2 - 29/44) = 305/484


def test_mcclellan_oscillator_is_seeded_with_the_first_days_value_so_starts_at_zero():
    day = breadth(SWINGS, D1, D2).iloc[0]

    assert (day["mcclellan_osc"], day["mcclellan_sum"]) == (0.0, 0.0)


def test_mcclellan_oscillator_is_the_19_day_minus_the_39_day_ema_of_the_ratio_adjusted_net():
    result = breadth(SWINGS, D1, D2, D3, D4)

    assert_allclose(result["mcclellan_osc"], [0.0, -50.0, -50.0, -67.5], rtol=1e-12)


def test_mcclellan_summation_is_the_running_sum_of_the_oscillator():
    result = breadth(SWINGS, D1, D2, D3, D4)

    assert_allclose(result["mcclellan_sum"], [0.0, -50.0, -100.0, -167.5], rtol=1e-12)


def test_mcclellan_and_zweig_are_null_before_the_first_day_with_advancers_or_decliners():
    rows = closes({"A": {D1: 10, D2: 11, D3: 10}, "B": {D1: 10, D2: 9, D3: 10}})

    result = breadth(rows, D1, D2, D3)

    assert np.isnan(result["mcclellan_osc"][0])
    assert np.isnan(result["mcclellan_sum"][0])
    assert np.isnan(result["zweig_ema"][0])
    assert (result["mcclellan_osc"][1], result["mcclellan_sum"][1]) == (0.0, 0.0)
    assert result["zweig_ema"][1] == 0.5


def test_zweig_ema_smooths_the_advancing_share_with_alpha_2_over_11():
    result = breadth(SWINGS, D1, D2, D3, D4)

    assert_allclose(result["zweig_ema"], [0.75, 29 / 44, 29 / 44, 305 / 484], rtol=1e-12)


def test_mcclellan_and_zweig_follow_the_recursion_over_many_days():
    rng = np.random.default_rng(11)
    days = pd.bdate_range("2024-01-01", periods=60)
    paths = {
        f"T{i}": dict(zip(days, 100 + np.round(np.cumsum(rng.normal(0, 1, 60))), strict=True))
        for i in range(5)
    }
    for day in days[20:24]:
        for path in paths.values():
            path[day] = path[days[19]]
    rows = bars(
        *(
            {"ticker": t, "date": day, "close": float(close)}
            for t, path in paths.items()
            for day, close in path.items()
        )
    )
    result = compute_breadth(rows, days)

    osc, total, zweig, fast, slow = reference_mcclellan_and_zweig(
        list(zip(result["advancers"], result["decliners"], strict=True))
    )
    assert_allclose(result["mcclellan_ema_19"], fast, rtol=1e-12, equal_nan=True)
    assert_allclose(result["mcclellan_ema_39"], slow, rtol=1e-12, equal_nan=True)
    assert_allclose(result["mcclellan_osc"], osc, rtol=1e-12, atol=1e-9, equal_nan=True)
    assert_allclose(result["mcclellan_sum"], total, rtol=1e-12, atol=1e-9, equal_nan=True)
    assert_allclose(result["zweig_ema"], zweig, rtol=1e-12, equal_nan=True)


# --- indicator-based counts ----------------------------------------------------------------------


def test_pct_above_ema_counts_closes_strictly_above_over_tickers_with_that_ema():
    rows = bars(
        {"ticker": "A", "date": D1, "close": 10, "ema_20": 9, "ema_50": 11, "ema_200": 5},
        {"ticker": "B", "date": D1, "close": 10, "ema_20": 11, "ema_50": 11, "ema_200": 5},
        {"ticker": "C", "date": D1, "close": 10, "ema_20": NAN, "ema_50": 11, "ema_200": 5},
        {"ticker": "D", "date": D1, "close": 10, "ema_20": 10, "ema_50": 9.99, "ema_200": 5},
    )

    day = one_day(rows)

    assert day["pct_above_ema_20"] == pytest.approx(100 / 3)
    assert day["pct_above_ema_50"] == 25.0
    assert day["pct_above_ema_200"] == 100.0


def test_pct_above_ema_is_null_when_no_ticker_has_that_ema():
    rows = bars({"ticker": "A", "date": D1, "close": 10, "ema_20": 9})

    assert math.isnan(one_day(rows)["pct_above_ema_50"])


def test_new_highs_count_highs_strictly_above_the_52_week_high():
    rows = bars(
        {"ticker": "A", "date": D1, "close": 10, "high": 11, "high_52w": 10},
        {"ticker": "B", "date": D1, "close": 10, "high": 10, "high_52w": 10},
        {"ticker": "C", "date": D1, "close": 10, "high": 12, "high_52w": NAN},
        {"ticker": "D", "date": D1, "close": 10, "high": 13, "high_52w": 12.5},
    )

    assert one_day(rows)["new_highs_52w"] == 2


def test_new_lows_count_lows_strictly_below_the_52_week_low():
    rows = bars(
        {"ticker": "A", "date": D1, "close": 10, "low": 9, "low_52w": 10},
        {"ticker": "B", "date": D1, "close": 10, "low": 10, "low_52w": 10},
        {"ticker": "C", "date": D1, "close": 10, "low": 8, "low_52w": NAN},
        {"ticker": "D", "date": D1, "close": 10, "low": 7, "low_52w": 7},
    )

    assert one_day(rows)["new_lows_52w"] == 1


def test_rsi_counts_tickers_strictly_above_70_and_strictly_below_30():
    rows = bars(
        *(
            {"ticker": f"T{i}", "date": D1, "close": 10, "rsi_14": rsi}
            for i, rsi in enumerate([70, 70.5, 85, 30, 29.5, NAN, 50])
        )
    )

    day = one_day(rows)

    assert (day["rsi_overbought"], day["rsi_oversold"]) == (2, 1)


def test_macd_stage_percentages_are_over_tickers_with_a_stage():
    stages = {D1: [1, 1, 2, NAN, 6], D2: [3, 4, 5, 5]}
    rows = bars(
        *(
            {"ticker": f"T{i}", "date": day, "close": 10, "macd_stage": stage}
            for day, values in stages.items()
            for i, stage in enumerate(values)
        )
    )

    result = breadth(rows, D1, D2)

    columns = [f"macd_stage_{k}" for k in range(1, 7)]
    assert_array_equal(result.loc[0, columns], [50.0, 25.0, 0.0, 0.0, 0.0, 25.0])
    assert_array_equal(result.loc[1, columns], [0.0, 0.0, 25.0, 25.0, 50.0, 0.0])


def test_macd_stage_percentages_are_null_when_no_ticker_has_a_stage():
    rows = bars({"ticker": "A", "date": D1, "close": 10, "macd_stage": NAN})

    day = one_day(rows)

    assert all(np.isnan(day[f"macd_stage_{k}"]) for k in range(1, 7))


# --- everything at once ------------------------------------------------------------------------


def maybe_null(rng: np.random.Generator, value) -> float:
    return NAN if rng.random() < 0.3 else float(value)


def test_every_column_matches_a_plain_python_reference_on_random_bars_with_halts_and_listings():
    rng = np.random.default_rng(5)
    days = pd.bdate_range("2024-01-01", periods=40)
    records = []
    for i in range(8):
        first = int(rng.integers(0, 25))
        for day in days[first:]:
            if rng.random() < 0.15:
                continue
            close = float(rng.integers(8, 13))
            records.append(
                {
                    "ticker": f"T{i}",
                    "date": day,
                    "close": close,
                    "high": close + float(rng.integers(0, 3)),
                    "low": close - float(rng.integers(0, 3)),
                    "volume": float(rng.integers(0, 4) * 100),
                    "ema_20": maybe_null(rng, rng.integers(8, 13)),
                    "ema_50": maybe_null(rng, rng.integers(8, 13)),
                    "ema_200": maybe_null(rng, rng.integers(8, 13)),
                    "rsi_14": maybe_null(rng, rng.choice([20, 30, 50, 70, 80])),
                    "macd_stage": maybe_null(rng, rng.integers(1, 7)),
                    "high_52w": maybe_null(rng, rng.integers(9, 14)),
                    "low_52w": maybe_null(rng, rng.integers(7, 12)),
                }
            )
    rows = pd.DataFrame(records, columns=list(BREADTH_INPUT_COLUMNS))
    dates = list(days[5:])

    result = compute_breadth(rows.sample(frac=1.0, random_state=1), pd.DatetimeIndex(dates))

    pd.testing.assert_frame_equal(
        result, reference_breadth(rows, dates), check_dtype=False, check_exact=False, rtol=1e-9
    )
