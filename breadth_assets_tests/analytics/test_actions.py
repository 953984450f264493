"""Corporate actions and back-adjustment (docs/design.md "Corporate actions")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from breadth_assets.analytics.actions import (
    ACTION_COLUMNS,
    adjust_prices,
    bar_factors,
    breadth_changes_from,
    dividend_factor,
    first_changed_ex_dates,
    price_factor,
    resolve_factors,
)
from breadth_assets.analytics.breadth import compute_breadth
from breadth_assets.analytics.indicators import compute_indicators
from breadth_assets.schema import BREADTH_INPUT_COLUMNS
from breadth_assets_tests.support import reference_breadth


def actions(*rows: tuple) -> pd.DataFrame:
    """Rows of (ticker, ex_date, kind, value)."""
    frame = pd.DataFrame(
        [(t, pd.Timestamp(d), k, v, np.nan, "test") for t, d, k, v in rows],
        columns=list(ACTION_COLUMNS),
    )
    return frame.astype({"ex_date": "datetime64[us]", "factor": "float64"})


def bars(ticker: str, closes: list[float], start: str = "2024-01-01") -> pd.DataFrame:
    days = pd.bdate_range(start, periods=len(closes))
    close = np.asarray(closes, dtype=float)
    return pd.DataFrame(
        {
            "ticker": ticker,
            "date": days.astype("datetime64[us]"),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": np.full(len(closes), 1000.0),
        }
    )


# --- factors, one kind at a time --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "factor"),
    [
        ("split", "1:5", 1 / 5),  # 1 old share becomes 5
        ("split", "2:5", 2 / 5),
        ("bonus", "1:1", 1 / 2),  # 1 bonus share for each held: twice the shares
        ("bonus", "1:2", 2 / 3),  # 1 bonus for every 2 held: 3 shares for 2
        ("consolidation", "10:1", 10.0),
        ("factor", "0.8312", 0.8312),
        ("move", "", 1.0),
    ],
)
def test_each_kind_gives_the_price_factor_of_the_bars_before_its_ex_date(kind, value, factor):
    assert price_factor(kind, value) == pytest.approx(factor, rel=1e-15)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("split", "5:1"),  # fewer shares: a consolidation
        ("consolidation", "1:10"),
        ("bonus", "1-1"),
        ("factor", "0"),
        ("factor", "abc"),
        ("dividend", "-2"),
        ("rights", "1:4"),
    ],
)
def test_a_value_that_cannot_be_that_kind_is_refused(kind, value):
    with pytest.raises(ValueError):
        price_factor(kind, value)


def test_a_dividend_factor_is_one_minus_the_dividend_over_the_previous_close():
    assert dividend_factor(5.0, 100.0) == pytest.approx(0.95)


def test_a_dividend_not_below_the_previous_close_is_refused():
    with pytest.raises(ValueError, match="not below the close"):
        dividend_factor(100.0, 100.0)


# --- adjusting bars ---------------------------------------------------------------------------


def test_bars_before_the_ex_date_are_scaled_and_the_ex_date_bar_is_not():
    prices = bars("ABC", [100, 100, 20, 20])
    resolved = resolve_factors(actions(("ABC", "2024-01-03", "split", "1:5")), prices, False)
    adjusted = adjust_prices(prices, resolved.actions)
    assert adjusted["close"].tolist() == [20, 20, 20, 20]
    assert adjusted["volume"].tolist() == [5000, 5000, 1000, 1000]


def test_two_actions_on_one_day_multiply():
    prices = bars("ABC", [100, 100, 10, 10])
    declared = actions(("ABC", "2024-01-03", "split", "1:5"), ("ABC", "2024-01-03", "bonus", "1:1"))
    factors = bar_factors(prices, resolve_factors(declared, prices, False).actions)
    assert factors.tolist() == [0.1, 0.1, 1.0, 1.0]


def test_actions_on_different_days_compound_for_the_bars_before_both():
    prices = bars("ABC", [100] * 5)
    declared = actions(
        ("ABC", "2024-01-02", "split", "1:2"), ("ABC", "2024-01-04", "consolidation", "3:1")
    )
    factors = bar_factors(prices, resolve_factors(declared, prices, False).actions)
    assert factors.tolist() == [1.5, 3.0, 3.0, 1.0, 1.0]


def test_an_action_dated_after_the_last_bar_is_declared_but_not_applied():
    prices = bars("ABC", [100, 100])
    resolved = resolve_factors(actions(("ABC", "2024-02-01", "split", "1:5")), prices, False)
    assert resolved.actions["factor"].isna().all()
    assert adjust_prices(prices, resolved.actions)["close"].tolist() == [100, 100]


def test_an_action_on_a_day_without_a_bar_scales_the_bars_before_it():
    prices = bars("ABC", [100, 100, 50]).drop(index=1)  # no bar on the ex-date
    resolved = resolve_factors(actions(("ABC", "2024-01-02", "split", "1:2")), prices, False)
    assert adjust_prices(prices, resolved.actions)["close"].tolist() == [50, 50]


def test_an_action_of_one_ticker_never_scales_another():
    prices = pd.concat([bars("ABC", [100, 50]), bars("XYZ", [100, 100])], ignore_index=True)
    resolved = resolve_factors(actions(("ABC", "2024-01-02", "split", "1:2")), prices, False)
    assert bar_factors(prices, resolved.actions).tolist() == [0.5, 1.0, 1.0, 1.0]


def test_a_dividend_adjusts_only_when_the_universe_says_so():
    prices = bars("ABC", [100, 95])
    declared = actions(("ABC", "2024-01-02", "dividend", "5"))
    assert resolve_factors(declared, prices, False).actions["factor"].isna().all()
    factor = resolve_factors(declared, prices, True).actions["factor"].iloc[0]
    assert factor == pytest.approx(0.95)


def test_a_dividend_applied_before_keeps_its_stored_factor():
    prices = bars("ABC", [100, 95])
    declared = actions(("ABC", "2024-01-02", "dividend", "5"))
    stored = declared.assign(factor=0.9)
    assert resolve_factors(declared, prices, True, stored).actions["factor"].iloc[0] == 0.9


def test_a_dividend_whose_previous_close_is_not_given_asks_for_the_history():
    prices = bars("ABC", [100, 95], start="2024-01-02")
    resolved = resolve_factors(actions(("ABC", "2024-01-02", "dividend", "5")), prices, True)
    assert resolved.need_history == {"ABC"}


# --- what changed -----------------------------------------------------------------------------


def test_the_first_changed_ex_date_is_the_earliest_added_removed_or_corrected_action():
    prices = bars("ABC", [100] * 10)
    before = resolve_factors(
        actions(("ABC", "2024-01-04", "split", "1:2"), ("ABC", "2024-01-10", "bonus", "1:1")),
        prices,
        False,
    ).actions
    after = resolve_factors(
        actions(("ABC", "2024-01-04", "split", "1:2"), ("ABC", "2024-01-10", "bonus", "1:2")),
        prices,
        False,
    ).actions
    assert first_changed_ex_dates(before, after, ["ABC"]) == {"ABC": pd.Timestamp("2024-01-10")}
    assert first_changed_ex_dates(after, after, ["ABC"]) == {}
    removed = first_changed_ex_dates(before, after.iloc[0:0], ["ABC"])
    assert removed == {"ABC": pd.Timestamp("2024-01-04")}


def test_rows_rescaled_by_an_action_count_for_breadth_only_from_its_ex_date():
    prices = bars("ABC", list(100 + np.arange(30.0)))
    old = compute_indicators(prices)
    declared = actions(("ABC", "2024-01-22", "split", "1:2"))
    new = compute_indicators(
        adjust_prices(prices, resolve_factors(declared, prices, False).actions)
    )
    since = {"ABC": pd.Timestamp("2024-01-22")}
    assert breadth_changes_from(new, old, since) == pd.Timestamp("2024-01-22")


def test_rows_that_changed_other_than_by_one_factor_count_from_their_own_day():
    prices = bars("ABC", list(100 + np.arange(30.0)))
    old = compute_indicators(prices)
    edited = prices.copy()
    edited.loc[3, ["open", "high", "low", "close"]] = 150.0
    new = compute_indicators(edited)
    assert breadth_changes_from(new, old, {"ABC": pd.Timestamp("2024-01-22")}) == pd.Timestamp(
        "2024-01-01"
    )


# --- the property: adjusted indicators and breadth, against a plain loop ----------------------

KINDS = [("split", "1:2", 0.5), ("split", "1:5", 0.2), ("bonus", "1:1", 0.5)]
KINDS += [("bonus", "2:3", 0.6), ("consolidation", "10:1", 10.0), ("factor", "0.8312", 0.8312)]


def random_market(seed: int, tickers: int = 5, days: int = 320):
    """Raw bars that drop (or jump) on each ex-date by the action's factor, and the actions."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=days)
    frames, rows = [], []
    for i in range(tickers):
        first = int(rng.integers(0, 40))
        ticker_days = dates[first:][rng.random(days - first) > 0.03]
        n = len(ticker_days)
        true = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        scale = np.ones(n)
        for _ in range(int(rng.integers(0, 4))):
            at = int(rng.integers(1, n))
            picks = rng.choice(len(KINDS), size=int(rng.integers(1, 3)), replace=False)
            for k in picks:  # one or two actions of different kinds on one day
                kind, value, factor = KINDS[k]
                if (f"T{i}", ticker_days[at], kind) in {(r[0], r[1], r[2]) for r in rows}:
                    continue
                rows.append((f"T{i}", ticker_days[at], kind, value))
                scale[at:] *= factor
        close = np.round(true * scale, 2)
        frames.append(
            pd.DataFrame(
                {
                    "ticker": f"T{i}",
                    "date": ticker_days.astype("datetime64[us]"),
                    "open": close,
                    "high": np.round(close * (1 + rng.random(n) * 0.02), 2),
                    "low": np.round(close * (1 - rng.random(n) * 0.02), 2),
                    "close": close,
                    "volume": rng.integers(1000, 9000, n).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True), actions(*rows)


def hand_factor(bar_day: pd.Timestamp, own: pd.DataFrame) -> float:
    """The product of the factors of the actions dated after the bar, by the rules of the
    actions file, in a plain loop."""
    factor = 1.0
    for row in own.itertuples(index=False):
        if row.ex_date > bar_day:
            a, b = (float(x) for x in row.value.split(":")) if ":" in row.value else (0, 0)
            factor *= {
                "split": a / b if b else 0,
                "bonus": b / (a + b) if b else 0,
                "consolidation": a / b if b else 0,
                "factor": float(row.value) if ":" not in row.value else 0,
            }[row.kind]
    return factor


def hand_adjusted(prices: pd.DataFrame, declared: pd.DataFrame) -> pd.DataFrame:
    out = prices.copy()
    for i, row in enumerate(prices.itertuples(index=False)):
        f = hand_factor(row.date, declared[declared["ticker"] == row.ticker])
        for name in ("open", "high", "low", "close"):
            out.iat[i, out.columns.get_loc(name)] = getattr(row, name) * f
        out.iat[i, out.columns.get_loc("volume")] = row.volume / f
    return out


def pipeline_indicators(prices: pd.DataFrame, declared: pd.DataFrame) -> pd.DataFrame:
    resolved = resolve_factors(declared, prices, False)
    return compute_indicators(adjust_prices(prices, resolved.actions))


def breadth_rows(indicators: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """The breadth inputs as the stores join them: volume as traded, the rest adjusted."""
    rows = indicators.merge(prices[["ticker", "date", "volume"]], on=["ticker", "date"])
    return rows[list(BREADTH_INPUT_COLUMNS)]


@pytest.mark.parametrize("seed", range(6))
def test_indicators_on_raw_bars_and_actions_equal_talib_on_the_hand_adjusted_series(seed):
    prices, declared = random_market(seed)
    got = pipeline_indicators(prices, declared)
    by_hand = hand_adjusted(prices, declared)
    for ticker, own in by_hand.groupby("ticker"):
        mine = got[got["ticker"] == ticker]
        close = own["close"].to_numpy()
        np.testing.assert_allclose(mine["close"], close, rtol=1e-12)
        np.testing.assert_allclose(mine["high"], own["high"], rtol=1e-12)
        for n in (20, 50, 200):
            expected = talib.EMA(close, timeperiod=n)
            np.testing.assert_allclose(mine[f"ema_{n}"], expected, rtol=1e-9, equal_nan=True)
        np.testing.assert_allclose(mine["rsi_14"], talib.RSI(close, 14), rtol=1e-9, atol=1e-9)
        macd = talib.MACD(close, 12, 26, 9)[2]
        np.testing.assert_allclose(mine["macd_hist"], macd, rtol=1e-7, atol=1e-9, equal_nan=True)
        highs = own["high"].to_numpy()
        for j in range(252, len(highs)):
            assert mine["high_52w"].iloc[j] == pytest.approx(max(highs[j - 252 : j]), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_breadth_on_adjusted_bars_equals_the_plain_per_date_computation(seed):
    prices, declared = random_market(seed)
    got = pipeline_indicators(prices, declared)
    rows = breadth_rows(got, prices)
    dates = sorted(prices["date"].unique())
    mine = compute_breadth(rows, pd.DatetimeIndex(dates))
    expected = reference_breadth(breadth_rows(_talib_by_hand(prices, declared), prices), dates)
    pd.testing.assert_frame_equal(
        mine.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )


def _talib_by_hand(prices: pd.DataFrame, declared: pd.DataFrame) -> pd.DataFrame:
    """The breadth inputs of the hand-adjusted series: TA-Lib's EMA, RSI and MACD stage, the
    52-week extremes by a loop."""
    adjusted = hand_adjusted(prices, declared)
    out = compute_indicators(adjusted)  # TA-Lib on the series adjusted in a plain loop
    for ticker, own in adjusted.groupby("ticker"):
        where = out["ticker"] == ticker
        highs, lows = own["high"].to_numpy(), own["low"].to_numpy()
        out.loc[where, "high_52w"] = [
            max(highs[j - 252 : j]) if j >= 252 else np.nan for j in range(len(highs))
        ]
        out.loc[where, "low_52w"] = [
            min(lows[j - 252 : j]) if j >= 252 else np.nan for j in range(len(lows))
        ]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_breadth_before_an_ex_date_does_not_change_when_its_action_is_added(seed):
    prices, declared = random_market(seed)
    dates = pd.DatetimeIndex(sorted(prices["date"].unique()))
    with_all = compute_breadth(breadth_rows(pipeline_indicators(prices, declared), prices), dates)
    for i in range(len(declared)):
        without = declared.drop(index=i)
        ex_date = declared["ex_date"].iloc[i]
        before = compute_breadth(breadth_rows(pipeline_indicators(prices, without), prices), dates)
        earlier = with_all["date"] < ex_date
        pd.testing.assert_frame_equal(
            with_all[earlier].reset_index(drop=True), before[earlier].reset_index(drop=True)
        )
