from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from breadth_assets.resources.duckdb_store import DuckDBStore


@pytest.fixture
def store(tmp_path) -> DuckDBStore:
    return DuckDBStore(path=str(tmp_path / "breadth.duckdb"))


def make_prices(ticker: str, start: str, closes: list[float]) -> pd.DataFrame:
    """Weekday bars with the given closes and consistent OHLC."""
    closes_arr = np.asarray(closes, dtype=float)
    return pd.DataFrame(
        {
            "ticker": ticker,
            "date": pd.bdate_range(start, periods=len(closes_arr)),
            "open": closes_arr,
            "high": closes_arr * 1.01,
            "low": closes_arr * 0.99,
            "close": closes_arr,
            "volume": 1000.0,
        }
    )
