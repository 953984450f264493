from __future__ import annotations

import numpy as np
import pandas as pd

from breadth_assets.analytics.changes import changed_rows

KEYS = ("ticker", "date")


def _rows(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"ticker": "AAA", "date": pd.bdate_range("2024-01-01", periods=len(values)), "x": values}
    )


def test_rows_absent_from_the_store_are_changed():
    assert len(changed_rows(_rows([1.0, 2.0]), _rows([1.0]), KEYS)) == 1


def test_identical_rows_are_not_changed_and_nan_equals_nan():
    assert changed_rows(_rows([1.0, np.nan]), _rows([1.0, np.nan]), KEYS).empty


def test_a_value_that_differs_or_turns_null_is_changed():
    changed = changed_rows(_rows([1.0, 2.0, np.nan]), _rows([1.0, 2.5, 3.0]), KEYS)
    assert changed["date"].dt.day.tolist() == [2, 3]


def test_everything_is_changed_when_nothing_is_stored():
    assert len(changed_rows(_rows([1.0, 2.0]), _rows([]), KEYS)) == 2
