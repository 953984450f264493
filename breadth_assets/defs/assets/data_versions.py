"""Data versions of the ticker partitions (Dagster's data versions, docs/design.md "Data
versions"): a partition whose rows did not change keeps its version, so an incremental run
that changed nothing leaves breadth in sync; a partition with new or changed rows gets a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pandas as pd


def partition_versions(
    previous: Mapping[str, str], tickers: Sequence[str], written: pd.DataFrame
) -> dict[str, str]:
    """Each ticker's version: its previous one when the run wrote none of its rows, else a hash
    of the previous one and the rows written."""
    hashes = _row_hashes(written)
    versions = {}
    for ticker in tickers:
        before = previous.get(ticker)
        if ticker not in hashes and before is not None:
            versions[ticker] = before
        else:
            text = f"{ticker}:{before or ''}:{hashes.get(ticker, '')}"
            versions[ticker] = hashlib.sha256(text.encode()).hexdigest()[:24]
    return versions


def _row_hashes(rows: pd.DataFrame) -> dict[str, str]:
    if rows.empty:
        return {}
    values = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    return {
        ticker: hashlib.sha256(values[positions].tobytes()).hexdigest()
        for ticker, positions in rows.groupby("ticker", sort=False).indices.items()
    }
