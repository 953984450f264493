"""Breadth per group against a plain per-date, per-group loop (`support.reference_breadth`):
every column of every group on random panels with listings, delistings, gaps, splits,
overlapping groups and a partial day; going on from stored rows equals one computation; who
moved equals the loop's lists (docs/design.md "Breadth" and "Groups")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from breadth_assets.analytics.actions import adjust_prices, resolve_factors
from breadth_assets.analytics.breadth import compute_breadth, compute_breadth_in_chunks, state_after
from breadth_assets.analytics.breadth_counts import count_breadth
from breadth_assets.analytics.breadth_events import breadth_members
from breadth_assets.analytics.indicators import compute_indicators
from breadth_assets.analytics.sessions import found_sessions
from breadth_assets.schema import BREADTH_INPUT_COLUMNS
from breadth_assets_tests.support import reference_breadth, reference_members

DAYS = pd.bdate_range("2020-01-01", periods=330)
TICKERS = [f"T{i}" for i in range(12)]


def random_panel(seed: int) -> tuple[pd.DataFrame, dict[str, list[str]], pd.DatetimeIndex]:
    """Breadth inputs of twelve tickers (late listings, early delistings, gaps, a split each for
    some, quiet stretches with equal closes), three overlapping groups, and a day on which half
    the tickers have no bar (partial)."""
    rng = np.random.default_rng(seed)
    partial_day = DAYS[int(rng.integers(280, 320))]
    frames, declared = [], []
    for ticker in TICKERS:
        first = int(rng.integers(0, 60)) if rng.random() < 0.5 else 0
        last = DAYS.size - (int(rng.integers(1, 40)) if rng.random() < 0.25 else 0)
        days = DAYS[first:last]
        days = days[rng.random(days.size) > 0.04]
        if rng.random() < 0.5:
            days = days[days != partial_day]
        n = days.size
        steps = rng.normal(0, 0.025, n)
        steps[rng.random(n) < 0.1] = 0.0
        close = np.round(40 * np.exp(np.cumsum(steps)), 2)
        if rng.random() < 0.4:
            at = int(rng.integers(n // 2, n))
            close[at:] = np.round(close[at:] / 2, 2)
            declared.append((ticker, days[at], "split", "1:2", None, "test"))
        frames.append(
            pd.DataFrame(
                {
                    "ticker": ticker,
                    "date": days.astype("datetime64[us]"),
                    "open": close,
                    "high": np.round(close * (1 + rng.random(n) * 0.03), 2),
                    "low": np.round(close * (1 - rng.random(n) * 0.03), 2),
                    "close": close,
                    "volume": rng.integers(1000, 9000, n).astype(float),
                }
            )
        )
    prices = pd.concat(frames, ignore_index=True)
    actions = pd.DataFrame(
        declared, columns=["ticker", "ex_date", "kind", "value", "factor", "origin"]
    ).astype({"factor": float})
    actions["ex_date"] = pd.to_datetime(actions["ex_date"])
    resolved = resolve_factors(actions, prices, False)
    indicators = compute_indicators(adjust_prices(prices, resolved.actions))
    rows = indicators.merge(prices[["ticker", "date", "volume"]], on=["ticker", "date"])
    picks = rng.permutation(TICKERS)
    groups = {
        "BIG": sorted(picks[:6]),
        "SMALL": sorted(picks[4:9]),
        "PAIR": sorted(picks[[0, 9]]),
    }
    return rows[list(BREADTH_INPUT_COLUMNS)], groups, DAYS


def _dtypes_loose(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reset_index(drop=True).astype({"group_name": object})


@pytest.mark.parametrize("seed", range(4))
def test_every_column_of_every_group_equals_the_plain_per_date_computation(seed):
    rows, groups, days = random_panel(seed)

    mine = compute_breadth(rows, days, members=groups)
    expected = reference_breadth(rows, list(days), groups)

    assert mine["partial"].any()
    assert (mine["listed"] > mine["universe"]).any()
    pd.testing.assert_frame_equal(
        _dtypes_loose(mine), _dtypes_loose(expected), check_dtype=False, atol=1e-9, rtol=0
    )


@pytest.mark.parametrize("seed", range(4))
def test_who_moved_equals_the_plain_per_ticker_lists(seed):
    rows, groups, days = random_panel(seed)

    mine = breadth_members(rows, days, groups).astype(str)
    mine = mine.sort_values(["date", "group_name", "event", "ticker"], ignore_index=True)
    mine["date"] = pd.to_datetime(mine["date"])
    expected = reference_members(rows, list(days), groups)

    assert set(expected["event"]) >= {"up_4pct", "cross_above_sma_50", "new_high_52w"}
    pd.testing.assert_frame_equal(_dtypes_loose(mine), _dtypes_loose(expected), check_dtype=False)


def _from_stored(rows, groups, whole, cut_day, chunk_days):
    """What the breadth asset does after `cut_day`: each group's state from its last ten
    stored rows, then chunks counted from their ticker-days and each ticker's last bar."""
    stored = whole[whole["date"] <= cut_day]
    states = {
        name: state_after(own.tail(10)) for name, own in stored.groupby("group_name", sort=False)
    }

    def count_days(chunk: pd.DatetimeIndex) -> pd.DataFrame:
        inside = rows[(rows["date"] >= chunk[0]) & (rows["date"] <= chunk[-1])]
        previous = rows[rows["date"] < chunk[0]].groupby("ticker").tail(1)
        return count_breadth(pd.concat([previous, inside]), chunk, groups)

    after = DAYS[cut_day < DAYS]
    parts = compute_breadth_in_chunks(count_days, after, chunk_days, states)
    return pd.concat(list(parts), ignore_index=True)


@pytest.mark.parametrize("seed", range(4))
def test_going_on_from_every_groups_stored_rows_equals_one_computation(seed):
    rows, groups, days = random_panel(seed)
    rng = np.random.default_rng(100 + seed)
    whole = compute_breadth(rows, days, members=groups)
    for cut in rng.integers(5, DAYS.size - 5, size=3):
        cut_day = DAYS[cut]
        rest = _from_stored(rows, groups, whole, cut_day, int(rng.integers(1, 60)))
        expected = whole[whole["date"] > cut_day]
        order = ["group_name", "date"]
        pd.testing.assert_frame_equal(
            rest.sort_values(order, ignore_index=True),
            expected.sort_values(order, ignore_index=True),
            atol=1e-9,
            rtol=0,
        )


def test_a_group_changed_alone_leaves_the_others_rows_as_they_were():
    rows, groups, days = random_panel(7)
    before = compute_breadth(rows, days, members=groups)
    changed = {**groups, "PAIR": sorted({*groups["PAIR"], groups["SMALL"][0]})}

    after = compute_breadth(rows, days, members=changed)

    for name in ("ALL", "BIG", "SMALL"):
        pd.testing.assert_frame_equal(
            after[after["group_name"] == name].reset_index(drop=True),
            before[before["group_name"] == name].reset_index(drop=True),
        )
    assert not after[after["group_name"] == "PAIR"]["universe"].equals(
        before[before["group_name"] == "PAIR"]["universe"]
    )


def test_a_day_off_the_calendar_with_most_tickers_trading_is_a_session():
    trading = pd.bdate_range("2024-10-28", "2024-11-08")
    counts = pd.Series(
        [50, 50, 50, 50, 30, 2, 50],
        index=pd.to_datetime(
            [
                "2024-10-28",
                "2024-10-29",
                "2024-10-31",
                "2024-11-01",
                "2024-11-03",
                "2024-11-09",
                "2024-11-04",
            ]
        ),
    ).sort_index()

    found = found_sessions(counts, trading)

    assert list(found) == [pd.Timestamp("2024-11-03")]


def test_a_zweig_thrust_is_the_day_the_ema_crosses_0615_after_being_below_040():
    # Ten decliners a day, then a burst of advancers: the Zweig EMA climbs from 0 through 0.615.
    days = pd.bdate_range("2024-01-01", periods=30)
    frames = []
    for i in range(10):
        closes = [100.0 - d for d in range(15)] + [85.0 + d for d in range(1, 16)]
        frames.append(
            pd.DataFrame({"ticker": f"T{i}", "date": days, "close": closes, "volume": 1.0})
        )
    rows = pd.concat(frames, ignore_index=True).reindex(columns=list(BREADTH_INPUT_COLUMNS))
    rows["volume"] = 1.0

    result = compute_breadth(rows, days)

    zweig = result["zweig_ema"].to_numpy()
    crossing = [i for i in range(1, len(zweig)) if zweig[i] > 0.615 >= zweig[i - 1]]
    assert result["zweig_thrust"].sum() == 1
    assert list(np.flatnonzero(result["zweig_thrust"])) == crossing
