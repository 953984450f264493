"""Indicators from state equal indicators over the whole history (docs/design.md "Indicators
from state").

Property: for random tickers (histories of different lengths, gaps between bars) and random cut
points, going on from the stored row of the bar before the cut gives the rows of one
`compute_indicators` over everything (floats within 1e-9, stages equal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from breadth_assets.analytics.indicator_updates import plan_indicator_update
from breadth_assets.analytics.indicators import (
    LOOKBACK_52W,
    compute_indicators,
    continue_indicators,
)
from breadth_assets.schema import INDICATOR_COLUMNS, INDICATOR_STATE_COLUMNS

VALUES = [name for name in INDICATOR_COLUMNS if name not in ("ticker", "date", "macd_stage")]


def _prices(seed: int, tickers: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(tickers):
        n = int(rng.integers(LOOKBACK_52W + 5, 700))
        days = pd.bdate_range("2019-01-01", periods=int(n * 1.2))
        days = days[np.sort(rng.choice(days.size, size=n, replace=False))]  # gaps
        close = np.maximum(50 + np.cumsum(rng.normal(0, 1, n)), 1.0)
        frames.append(
            pd.DataFrame(
                {
                    "ticker": f"T{t}",
                    "date": days,
                    "open": close,
                    "high": close + rng.random(n),
                    "low": close - rng.random(n) * 0.5,
                    "close": close,
                    "volume": 1000.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    actual = actual.sort_values(["ticker", "date"], ignore_index=True)
    expected = expected.sort_values(["ticker", "date"], ignore_index=True)
    assert actual[["ticker", "date"]].equals(expected[["ticker", "date"]])
    np.testing.assert_allclose(actual[VALUES], expected[VALUES], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(actual["macd_stage"], expected["macd_stage"])


@pytest.mark.parametrize("seed", range(10))
def test_going_on_from_the_row_before_any_cut_gives_the_rows_of_one_computation(seed):
    prices = _prices(seed)
    whole = compute_indicators(prices)
    rng = np.random.default_rng(100 + seed)
    position = whole.groupby("ticker").cumcount()
    lengths = whole.groupby("ticker")["date"].transform("size")
    cut = LOOKBACK_52W + (rng.random(len(whole)) * (lengths - LOOKBACK_52W)).astype(int)
    cut = cut.groupby(whole["ticker"]).transform("first")
    previous = whole[position == cut - 1]

    going_on = continue_indicators(prices.sample(frac=1.0, random_state=seed), previous)

    _assert_same_rows(going_on, whole[position >= cut])


def test_the_stored_state_is_what_talib_macd_and_rsi_carry():
    rows = compute_indicators(_prices(3, tickers=1))
    defined = rows["macd"].notna()
    np.testing.assert_array_equal(
        rows.loc[defined, "macd"],
        rows.loc[defined, "macd_ema_12"] - rows.loc[defined, "macd_ema_26"],
    )
    gain, loss = rows["rsi_avg_gain"], rows["rsi_avg_loss"]
    np.testing.assert_allclose(100 * gain / (gain + loss), rows["rsi_14"], rtol=1e-12, atol=1e-11)


def test_state_is_null_while_macd_and_rsi_are():
    rows = compute_indicators(_prices(4, tickers=1))
    assert rows["macd_ema_12"].isna().equals(rows["macd"].isna())
    assert rows["rsi_avg_gain"].isna().equals(rows["rsi_14"].isna())


# --- which tickers go on, which are computed again ----------------------------------------------


def _stored_and_new(seed: int = 7):
    """Whole indicators of one ticker of 400 bars, the last 3 of which are new."""
    prices = _prices(seed, tickers=1).iloc[:400]
    whole = compute_indicators(prices)
    return prices, whole.iloc[:-3], prices.iloc[-3:]


def test_a_ticker_with_new_bars_goes_on_from_the_row_before_them():
    prices, stored, new = _stored_and_new()

    plan = plan_indicator_update(prices, new, stored)

    assert plan.recompute == []
    assert plan.previous["date"].tolist() == [stored["date"].iloc[-1]]


def test_a_ticker_with_nothing_new_is_left_alone():
    prices, _, _ = _stored_and_new()
    stored = compute_indicators(prices)

    plan = plan_indicator_update(prices, prices.iloc[0:0], stored)

    assert plan.recompute == [] and plan.previous.empty


def test_indicators_lagging_behind_the_prices_go_on_from_the_last_stored_row():
    prices, stored, _ = _stored_and_new()

    plan = plan_indicator_update(prices, prices.iloc[0:0], stored)

    assert plan.previous["date"].tolist() == [stored["date"].iloc[-1]]


def test_a_change_deeper_than_the_52_week_window_recomputes_the_ticker():
    prices, stored, _ = _stored_and_new()

    plan = plan_indicator_update(prices, prices.iloc[[100]], stored)

    assert plan.recompute == ["T0"] and plan.previous.empty


def test_a_ticker_without_stored_indicators_is_recomputed():
    prices, stored, new = _stored_and_new()

    plan = plan_indicator_update(prices, new, stored.iloc[0:0])

    assert plan.recompute == ["T0"]


def test_a_row_stored_before_the_state_columns_existed_recomputes_the_ticker():
    prices, stored, new = _stored_and_new()
    stored = stored.assign(**{name: np.nan for name in INDICATOR_STATE_COLUMNS})

    plan = plan_indicator_update(prices, new, stored)

    assert plan.recompute == ["T0"]
