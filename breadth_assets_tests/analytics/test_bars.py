"""The bar rule every source and check applies."""

from __future__ import annotations

import numpy as np
import pytest

from breadth_assets.analytics.bars import Rule, impossible_bars, ohlc_breaks

GOOD = {"open": 10.0, "high": 12.0, "low": 9.0, "close": 11.0, "volume": 100.0}


def one_bar(**changes: float) -> dict[str, np.ndarray]:
    return {name: np.array([value]) for name, value in {**GOOD, **changes}.items()}


def broken_rules(**changes: float) -> list[Rule]:
    return [rule for rule, mask in ohlc_breaks(one_bar(**changes)).items() if mask[0]]


def test_a_consistent_bar_breaks_no_rule():
    assert broken_rules() == []
    assert not impossible_bars(one_bar()).any()


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"open": 0.0, "low": 0.0}, Rule("open", "positive")),
        ({"high": 10.5}, Rule("high", "at least", "close")),
        ({"high": 9.5, "low": 8.0, "close": 9.0}, Rule("high", "at least", "open")),
        ({"low": 10.5}, Rule("low", "at most", "open")),
        ({"volume": -1.0}, Rule("volume", "non-negative")),
    ],
)
def test_each_broken_rule_is_named(changes, rule):
    assert rule in broken_rules(**changes)


def test_a_missing_price_is_not_positive_and_breaks_no_comparison():
    assert broken_rules(close=np.nan) == [Rule("close", "positive")]


def test_a_zero_volume_is_allowed():
    assert broken_rules(volume=0.0) == []
