"""Breadth signals on hand-made breadth series (docs/design.md "Breadth signals"): each fires on
its day and not the day before or after; thresholds come from the settings; never on a partial
day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from breadth_assets.analytics.signals import SignalSettings, breadth_signals

DAYS = pd.bdate_range("2024-01-01", periods=60)


QUIET = {
    "partial": False,
    "universe": 100,
    "mcclellan_osc": 10.0,
    "mcclellan_sum": 500.0,
    "pct_above_sma_200": 60.0,
    "new_highs_52w": 1,
    "new_lows_52w": 1,
    "ad_line": 0,
    "zweig_ema": 0.5,
    "zweig_thrust": False,
}


def _series(**columns: list) -> pd.DataFrame:
    """60 days of one group on which nothing fires, but for the given columns: their values
    from day 0, the last one kept to the end (flags fall back to False)."""
    frame = {"date": DAYS, "group_name": ["ALL"] * len(DAYS)}
    for name, quiet in QUIET.items():
        values = list(columns.get(name, [quiet]))
        rest = False if isinstance(quiet, bool) else values[-1]
        frame[name] = values + [rest] * (len(DAYS) - len(values))
    return pd.DataFrame(frame)


def _fired(rows: pd.DataFrame, settings: SignalSettings | None = None) -> list[tuple]:
    found = breadth_signals(rows, DAYS, settings)
    pairs = zip(found["date"], found["signal"], strict=True)
    return [(DAYS.get_loc(day), signal) for day, signal in pairs]


def test_a_quiet_series_fires_nothing():
    assert _fired(_series()) == []


@pytest.mark.parametrize(
    ("column", "values", "signal"),
    [
        ("mcclellan_osc", [10.0, -5.0, -2.0, 3.0, 4.0], "mcclellan_cross_up"),
        ("pct_above_sma_200", [60.0, 45.0, 40.0, 55.0, 70.0], "sma200_breadth_cross_up"),
    ],
)
def test_a_cross_up_fires_on_the_day_the_value_passes_its_level(column, values, signal):
    assert (3, signal) in _fired(_series(**{column: values}))
    assert [day for day, s in _fired(_series(**{column: values})) if s == signal] == [3]


def test_a_cross_down_fires_on_the_day_the_value_falls_below_its_level():
    fired = _fired(_series(mcclellan_osc=[10.0, 5.0, -1.0, -3.0], pct_above_sma_200=[55, 51, 49]))
    assert fired == [(2, "mcclellan_cross_down"), (2, "sma200_breadth_cross_down")]


def test_summation_levels_come_from_the_settings():
    rows = _series(mcclellan_sum=[500.0, 900.0, 1100.0, 1200.0, 800.0])
    assert _fired(rows) == [(2, "summation_above"), (4, "summation_below")]
    assert _fired(rows, SignalSettings(summation_levels=(850.0,))) == [
        (1, "summation_above"),
        (4, "summation_below"),
    ]


def test_new_lows_expansion_fires_above_its_share_of_the_group():
    rows = _series(new_lows_52w=[1, 10, 11, 12, 1])
    assert _fired(rows) == [(2, "new_lows_expansion"), (3, "new_lows_expansion")]
    assert _fired(rows, SignalSettings(new_lows_share=0.115)) == [(3, "new_lows_expansion")]


def test_the_zweig_thrust_signal_is_the_breadth_rows_thrust():
    assert _fired(_series(zweig_thrust=[False, False, True])) == [(2, "zweig_thrust")]


def test_a_hindenburg_omen_needs_highs_and_lows_a_rising_line_and_a_negative_oscillator():
    line = list(range(60))  # the A/D line above its value 50 days before from day 50 on
    omen = {"new_highs_52w": [3] * 60, "new_lows_52w": [3] * 60, "ad_line": line}
    osc = [10.0] * 55 + [-5.0] * 5
    fired = _fired(_series(**omen, mcclellan_osc=osc))
    assert [day for day, s in fired if s == "hindenburg_omen"] == [55, 56, 57, 58, 59]
    two_lows = {**omen, "new_lows_52w": [2] * 60}  # 2 % of 100 issues: below 2.2 %
    assert "hindenburg_omen" not in {s for _, s in _fired(_series(**two_lows, mcclellan_osc=osc))}


def test_no_hindenburg_omen_without_the_rising_line_or_with_highs_above_twice_the_lows():
    omen = {"new_highs_52w": [3] * 60, "new_lows_52w": [3] * 60, "mcclellan_osc": [-5.0] * 60}
    flat = _series(**omen, ad_line=[7] * 60)
    assert "hindenburg_omen" not in {s for _, s in _fired(flat)}
    many_highs = _series(**{**omen, "new_highs_52w": [7] * 60}, ad_line=list(range(60)))
    assert "hindenburg_omen" not in {s for _, s in _fired(many_highs)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_hindenburg_trend_is_the_50_day_average_of_the_line_rising(seed):
    """McHugh's "10-week moving average rising", the A/D line's talib.SMA over 50 days."""
    days = pd.bdate_range("2024-01-01", periods=300)
    line = np.random.default_rng(seed).integers(-20, 21, size=days.size).cumsum()
    rows = pd.DataFrame(
        {**{k: [v] * days.size for k, v in QUIET.items()}, "date": days, "group_name": "ALL"}
    )
    rows = rows.assign(ad_line=line, mcclellan_osc=-5.0, new_highs_52w=3, new_lows_52w=3)
    average = talib.SMA(line.astype(float), timeperiod=50)
    rising = [days[i] for i in range(1, days.size) if average[i] > average[i - 1] + 1e-9]

    found = breadth_signals(rows, days, SignalSettings(enabled=("hindenburg_omen",)))

    assert list(found["date"]) == rising


def test_a_partial_day_fires_nothing_and_the_next_day_compares_with_the_last_whole_one():
    rows = _series(
        mcclellan_osc=[10.0, 5.0, None, -2.0],
        partial=[False, False, True],
        new_lows_52w=[1, 1, 50, 1],
    )
    assert _fired(rows) == [(3, "mcclellan_cross_down")]


def test_only_the_asked_days_are_evaluated_the_others_serve_as_the_days_before():
    rows = _series(mcclellan_osc=[10.0, -5.0, 3.0])
    found = breadth_signals(rows, DAYS[2:])
    assert list(found["signal"]) == ["mcclellan_cross_up"]


def test_a_signal_turned_off_in_the_settings_never_fires():
    rows = _series(mcclellan_osc=[10.0, -5.0])
    assert _fired(rows, SignalSettings(enabled=("zweig_thrust",))) == []
