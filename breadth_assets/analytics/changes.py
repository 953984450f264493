"""Which incoming rows differ from the stored ones, so that runs write only what changed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# Recomputing from the same inputs gives the same floats; anything beyond this is a real change.
RELATIVE_TOLERANCE = 1e-12


def changed_rows(incoming: pd.DataFrame, stored: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Rows of `incoming` whose key is not in `stored` or whose values differ from it.

    NaN equals NaN; numbers equal within a relative 1e-12.
    """
    if incoming.empty or stored.empty:
        return incoming.reset_index(drop=True)
    values = [name for name in incoming.columns if name not in keys]
    merged = incoming.merge(
        stored[[*keys, *values]],
        on=list(keys),
        how="left",
        suffixes=("", "__stored"),
        indicator=True,
    )
    changed = (merged["_merge"] == "left_only").to_numpy().copy()
    for name in values:
        new = merged[name].to_numpy(dtype=float)
        old = merged[f"{name}__stored"].to_numpy(dtype=float)
        same = np.isclose(new, old, rtol=RELATIVE_TOLERANCE, atol=0.0, equal_nan=True)
        changed |= ~same
    return incoming.iloc[np.flatnonzero(changed)].reset_index(drop=True)


def apply_changes(stored: pd.DataFrame, changes: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The stored rows as they will be once `changes` is written: changed keys replaced."""
    if changes.empty:
        return stored
    keys = list(keys)
    kept = stored.merge(changes[keys], on=keys, how="left", indicator=True)
    kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge")
    return pd.concat([kept, changes], ignore_index=True).sort_values(keys, ignore_index=True)
