"""Specification of the per-ticker indicators (docs/design.md "Indicators")."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import talib
from numpy.testing import assert_allclose, assert_array_equal

from breadth_assets.analytics import compute_indicators, macd_stage
from breadth_assets.schema import INDICATOR_COLUMNS

NAN = np.nan


def random_walk(ticker: str, dates: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, len(dates))))
    open_ = close * (1.0 + rng.normal(0.0, 0.005, len(dates)))
    return pd.DataFrame(
        {
            "ticker": ticker,
            "date": dates,
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.02, len(dates))),
            "low": np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.02, len(dates))),
            "close": close,
            "volume": rng.integers(1_000, 100_000, len(dates)).astype(float),
        }
    )


def two_tickers_shuffled() -> pd.DataFrame:
    """AAA trades every weekday; BBB lists later and skips (halts on) every seventh weekday."""
    days = pd.bdate_range("2023-01-02", periods=300)
    bbb_days = days[40:][np.arange(260) % 7 != 3]
    prices = pd.concat([random_walk("BBB", bbb_days, 2), random_walk("AAA", days, 1)])
    return prices.sample(frac=1.0, random_state=7).reset_index(drop=True)


# --- shape -------------------------------------------------------------------------------------


def test_output_has_the_indicator_columns_in_schema_order():
    result = compute_indicators(two_tickers_shuffled())

    assert list(result.columns) == list(INDICATOR_COLUMNS)


def test_output_has_one_row_per_input_row_sorted_by_ticker_then_date_with_a_fresh_index():
    prices = two_tickers_shuffled()

    result = compute_indicators(prices)

    expected = prices.sort_values(["ticker", "date"]).reset_index(drop=True)
    assert len(result) == len(prices)
    assert isinstance(result.index, pd.RangeIndex)
    assert_array_equal(result["ticker"], expected["ticker"])
    assert_array_equal(result["date"], expected["date"])
    assert_array_equal(result["close"], expected["close"])


def test_date_column_keeps_the_input_dtype():
    prices = two_tickers_shuffled()

    assert compute_indicators(prices)["date"].dtype == prices["date"].dtype


def test_empty_prices_give_an_empty_frame_with_the_indicator_columns():
    empty = random_walk("AAA", pd.bdate_range("2024-01-01", periods=1), 0).iloc[:0]

    result = compute_indicators(empty)

    assert list(result.columns) == list(INDICATOR_COLUMNS)
    assert result.empty


def test_rows_grouped_by_ticker_in_any_order_give_the_same_result_as_shuffled_rows():
    shuffled = two_tickers_shuffled()
    grouped = pd.concat(
        [
            shuffled[shuffled["ticker"] == "BBB"].sort_values("date", ascending=False),
            shuffled[shuffled["ticker"] == "AAA"].sort_values("date"),
        ]
    )

    pd.testing.assert_frame_equal(compute_indicators(grouped), compute_indicators(shuffled))


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ticker", ["AAA", "BBB"])
def test_indicators_equal_direct_talib_calls_over_each_tickers_own_bars(ticker):
    prices = two_tickers_shuffled()
    result = compute_indicators(prices)

    own = prices[prices["ticker"] == ticker].sort_values("date")
    close = own["close"].to_numpy(dtype=np.float64)
    got = result[result["ticker"] == ticker]
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2, 2, matype=0)
    expected = {
        "ema_10": talib.EMA(close, 10),
        "ema_20": talib.EMA(close, 20),
        "ema_50": talib.EMA(close, 50),
        "ema_100": talib.EMA(close, 100),
        "ema_200": talib.EMA(close, 200),
        "rsi_14": talib.RSI(close, 14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
    }
    for name, values in expected.items():
        assert_allclose(got[name].to_numpy(), values, rtol=1e-12, equal_nan=True, err_msg=name)


def reference_stage(previous: float, h: float) -> float:
    """The stage rules of docs/design.md "MACD stage" for one bar, first match wins."""
    if np.isnan(previous) or np.isnan(h):
        return NAN
    if previous < 0 <= h:
        return 2.0
    if previous > 0 >= h:
        return 5.0
    if h < 0 and h > previous:
        return 1.0
    if h > 0 and h >= previous:
        return 3.0
    if h > 0 and h < previous:
        return 4.0
    return 6.0


def test_macd_stage_column_is_the_stage_of_each_tickers_own_histogram():
    result = compute_indicators(two_tickers_shuffled())

    for _, group in result.groupby("ticker"):
        hist = group["macd_hist"].tolist()
        expected = [NAN] + [reference_stage(p, h) for p, h in itertools.pairwise(hist)]
        assert_array_equal(group["macd_stage"].to_numpy(), expected)
        assert group["macd_stage"].notna().sum() > 150


@pytest.mark.parametrize("period", [20, 40, 50, 200])
def test_sma_n_is_the_mean_of_the_last_n_closes_including_the_current_one(period):
    prices = random_walk("AAA", pd.bdate_range("2020-01-01", periods=230), 4)
    close = prices["close"].tolist()

    result = compute_indicators(prices)

    for i in range(len(close)):
        expected = sum(close[i - period + 1 : i + 1]) / period if i >= period - 1 else NAN
        assert_allclose(result[f"sma_{period}"][i], expected, rtol=1e-12)


def test_52w_high_and_low_are_the_extremes_of_the_252_previous_bars_excluding_the_current():
    prices = random_walk("AAA", pd.bdate_range("2020-01-01", periods=260), 3)
    high, low = prices["high"].tolist(), prices["low"].tolist()

    result = compute_indicators(prices)

    for i in range(252, 260):
        assert result["high_52w"][i] == max(high[i - 252 : i])
        assert result["low_52w"][i] == min(low[i - 252 : i])


def test_52w_high_and_low_are_null_while_fewer_than_252_earlier_bars_exist():
    prices = random_walk("AAA", pd.bdate_range("2020-01-01", periods=260), 3)

    result = compute_indicators(prices)

    assert result["high_52w"][:252].isna().all()
    assert result["low_52w"][:252].isna().all()
    assert result["high_52w"][252:].notna().all()


def test_a_ticker_shorter_than_every_period_gets_nulls_instead_of_an_error():
    prices = random_walk("NEW", pd.bdate_range("2024-01-01", periods=3), 4)

    result = compute_indicators(prices)

    indicator_names = [
        c for c in INDICATOR_COLUMNS if c not in ("ticker", "date", "close", "high", "low")
    ]
    assert result[indicator_names].isna().all().all()
    assert_array_equal(result["close"], prices["close"])


def test_a_ticker_with_a_single_bar_gets_nulls_instead_of_an_error():
    prices = random_walk("ONE", pd.bdate_range("2024-01-01", periods=1), 5)

    result = compute_indicators(prices)

    assert len(result) == 1
    assert np.isnan(result["ema_10"][0])


def test_indicators_on_the_first_n_bars_equal_the_first_n_rows_on_more_bars():
    days = pd.bdate_range("2022-01-03", periods=300)
    full = pd.concat([random_walk("AAA", days, 8), random_walk("BBB", days, 9)])
    first_n = full[full["date"] < days[270]]

    longer = compute_indicators(full)
    shorter = compute_indicators(first_n)

    head = longer[longer["date"] < days[270]].reset_index(drop=True)
    names = [c for c in INDICATOR_COLUMNS if c not in ("ticker", "date")]
    for name in names:
        assert_allclose(shorter[name], head[name], rtol=1e-9, atol=0, equal_nan=True, err_msg=name)


# --- macd_stage --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current"),
    [(-1.0, 0.0), (-1.0, 0.5)],
)
def test_macd_stage_2_confirmed_trough_when_the_histogram_crosses_up_through_zero(
    previous, current
):
    assert_array_equal(macd_stage(np.array([previous, current])), [NAN, 2.0])


@pytest.mark.parametrize(
    ("previous", "current"),
    [(1.0, 0.0), (1.0, -0.5)],
)
def test_macd_stage_5_confirmed_peak_when_the_histogram_crosses_down_through_zero(
    previous, current
):
    assert_array_equal(macd_stage(np.array([previous, current])), [NAN, 5.0])


def test_macd_stage_1_troughing_when_a_negative_histogram_rises():
    assert_array_equal(macd_stage(np.array([-2.0, -1.0])), [NAN, 1.0])


@pytest.mark.parametrize(
    ("previous", "current"),
    [(1.0, 2.0), (1.0, 1.0)],
)
def test_macd_stage_3_rising_when_a_positive_histogram_rises_or_holds(previous, current):
    assert_array_equal(macd_stage(np.array([previous, current])), [NAN, 3.0])


def test_macd_stage_4_peaking_when_a_positive_histogram_falls():
    assert_array_equal(macd_stage(np.array([2.0, 1.0])), [NAN, 4.0])


@pytest.mark.parametrize(
    ("previous", "current"),
    [(-1.0, -2.0), (-1.0, -1.0), (0.0, 0.0), (0.0, -1.0)],
)
def test_macd_stage_6_falling_below_zero_otherwise(previous, current):
    assert_array_equal(macd_stage(np.array([previous, current])), [NAN, 6.0])


def test_macd_stage_is_null_where_the_histogram_or_its_previous_bar_is_null():
    hist = np.array([NAN, 1.0, 2.0, NAN, 1.0, 2.0])

    assert_array_equal(macd_stage(hist), [NAN, NAN, 3.0, NAN, NAN, 3.0])


def test_macd_stage_follows_a_whole_cycle():
    hist = np.array([NAN, -2.0, -1.0, 0.5, 1.0, 2.0, 1.5, -0.5, -1.0, -0.5])

    assert_array_equal(
        macd_stage(hist),
        [NAN, NAN, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0, 1.0],
    )


def test_macd_stage_of_an_empty_histogram_is_empty():
    assert macd_stage(np.array([])).shape == (0,)
