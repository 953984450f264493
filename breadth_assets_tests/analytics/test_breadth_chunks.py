"""Breadth counted from a stored row and in chunks equals breadth counted at once
(docs/design.md "History and recomputation").

Property: for random universes (tickers listing and delisting mid-history, gaps, ties, missing
indicators), random cut points and random chunk sizes, going on from the row of the day before
the cut (`state_after`) and counting in chunks gives exactly the rows of one `compute_breadth`
(counts equal, floats within 1e-9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from breadth_assets.analytics.breadth import compute_breadth, compute_breadth_in_chunks, state_after
from breadth_assets.analytics.breadth_counts import count_breadth
from breadth_assets.schema import BREADTH_INPUT_COLUMNS

DAYS = pd.bdate_range("2024-01-01", periods=80)


def _universe(seed: int) -> pd.DataFrame:
    """Ticker-days with listings, delistings, gaps, repeated closes and NULL indicators."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(int(rng.integers(1, 9))):
        first, last = sorted(rng.integers(0, DAYS.size, size=2))
        days = DAYS[first : last + 1]
        days = days[rng.random(days.size) > 0.15]  # gaps
        n = days.size
        close = np.round(100 + np.cumsum(rng.normal(0, 1, n)), 0)  # rounding makes ties
        frame = pd.DataFrame({"ticker": f"T{t}", "date": days, "close": close})
        for name in BREADTH_INPUT_COLUMNS:
            if name not in frame:
                values = close + rng.normal(0, 2, n)
                values[rng.random(n) < 0.2] = np.nan
                frame[name] = values
        frame["volume"] = rng.integers(0, 1000, n).astype(float)
        frame["macd_stage"] = rng.integers(1, 7, n).astype(float)
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)[list(BREADTH_INPUT_COLUMNS)]
    return rows.sort_values(["ticker", "date"], ignore_index=True)


def _in_chunks(
    rows: pd.DataFrame, dates: pd.DatetimeIndex, chunk_days: int, stored_rows=None
) -> pd.DataFrame:
    """What the breadth asset does: the state from the stored rows (the last ten), each chunk
    counted from its ticker-days and each ticker's last bar before it."""

    def count_days(chunk: pd.DatetimeIndex) -> pd.DataFrame:
        inside = rows[(rows["date"] >= chunk[0]) & (rows["date"] <= chunk[-1])]
        previous = rows[rows["date"] < chunk[0]].groupby("ticker").tail(1)
        return count_breadth(pd.concat([previous[["ticker", "date", "close"]], inside]), chunk)

    states = {"ALL": state_after(stored_rows)} if stored_rows is not None else None
    parts = list(compute_breadth_in_chunks(count_days, dates, chunk_days, states))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("seed", range(12))
def test_chunks_of_any_size_give_the_rows_of_one_computation(seed):
    rows = _universe(seed)
    rng = np.random.default_rng(1000 + seed)
    dates = DAYS[int(rng.integers(0, 10)) :]
    whole = compute_breadth(rows, dates)
    for chunk_days in {1, int(rng.integers(2, 30)), int(rng.integers(30, 90)), dates.size}:
        pd.testing.assert_frame_equal(
            _in_chunks(rows, dates, chunk_days), whole, check_exact=False, rtol=0, atol=1e-9
        )


def test_a_chunk_without_any_bar_has_no_rows_and_the_next_goes_on_unchanged():
    rows = _universe(3)
    quiet = DAYS[30:40]
    rows = rows[~rows["date"].isin(quiet)]
    whole = compute_breadth(rows, DAYS)
    pd.testing.assert_frame_equal(_in_chunks(rows, DAYS, 10), whole, atol=1e-9, rtol=0)


@pytest.mark.parametrize("seed", range(12))
def test_going_on_from_the_row_before_any_cut_gives_the_rows_of_one_computation(seed):
    rows = _universe(seed)
    rng = np.random.default_rng(2000 + seed)
    whole = compute_breadth(rows, DAYS)
    for cut in sorted({1, *rng.integers(1, len(whole), size=3).tolist(), len(whole) - 1}):
        stored_rows = whole.iloc[max(0, cut - 10) : cut]
        chunk_days = int(rng.integers(1, 40))
        after = DAYS[DAYS.searchsorted(stored_rows["date"].iloc[-1], side="right") :]
        rest = _in_chunks(rows, after, chunk_days, stored_rows)
        pd.testing.assert_frame_equal(
            rest, whole.iloc[cut:].reset_index(drop=True), check_exact=False, rtol=0, atol=1e-9
        )


def test_a_row_stored_without_the_state_columns_cannot_be_gone_on_from():
    whole = compute_breadth(_universe(5), DAYS)
    seeded = whole[whole["mcclellan_osc"].notna()].iloc[-1].copy()
    seeded[["mcclellan_ema_19", "mcclellan_ema_39"]] = np.nan

    assert state_after(seeded) is None
