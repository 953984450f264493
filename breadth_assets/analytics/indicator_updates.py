"""Which tickers' indicators go on from their stored state and which are computed again
(docs/design.md "Indicators from state")."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from breadth_assets.analytics.indicators import EMA_PERIODS, LOOKBACK_52W
from breadth_assets.schema import INDICATOR_STATE_COLUMNS

STATE_COLUMNS: tuple[str, ...] = (
    "high",
    "low",
    *(f"ema_{period}" for period in EMA_PERIODS),
    "macd_signal",
    "macd_hist",
    *INDICATOR_STATE_COLUMNS,
)
"""Every value a stored row must have for the next bar to go on from it (a store written before
`high` and `low` were kept in `indicators` is computed again once)."""


@dataclass(frozen=True)
class IndicatorPlan:
    prices: pd.DataFrame
    """Bars of the tickers that go on from a stored row: at least LOOKBACK_52W before it."""
    previous: pd.DataFrame
    """Their stored indicators row of the bar before the first new or changed bar."""
    recompute: list[str]
    """Tickers computed again over their whole history."""


def plan_indicator_update(
    prices: pd.DataFrame, changed: pd.DataFrame, stored: pd.DataFrame
) -> IndicatorPlan:
    """Splits the tickers of `prices` (each one's latest bars, with `changed` applied) by how
    their indicators are brought up to date.

    A ticker needs rows from its first changed bar, or from the first bar after its last stored
    indicators row. It goes on from the stored row of the bar before that when the row has every
    state value and `prices` holds LOOKBACK_52W bars up to it; a ticker without a stored row, in
    its warm-up or changed deeper in the past is recomputed; a ticker with nothing new is left.
    """
    last_price = prices.groupby("ticker")["date"].max()
    last_stored = stored.groupby("ticker")["date"].max().reindex(last_price.index)
    first_changed = changed.groupby("ticker")["date"].min().reindex(last_price.index)
    after_stored = prices.merge(last_stored.rename("last_stored"), on="ticker", how="left")
    after_stored = after_stored[after_stored["date"] > after_stored["last_stored"]]
    first_missing = after_stored.groupby("ticker")["date"].min().reindex(last_price.index)
    first_needed = pd.concat([first_changed, first_missing], axis=1).min(axis=1)

    needed = first_needed.dropna()
    bars = prices.merge(needed.rename("first_needed"), on="ticker")
    before = bars[bars["date"] < bars["first_needed"]]
    counts = before.groupby("ticker")["date"].count().reindex(needed.index, fill_value=0)
    previous_dates = before.groupby("ticker")["date"].max()
    previous = stored.merge(previous_dates.rename("date").reset_index(), on=["ticker", "date"])
    complete = previous[list(STATE_COLUMNS)].notna().all(axis=1)
    previous = previous[complete.to_numpy()]
    going_on = [
        ticker
        for ticker in previous["ticker"]
        if counts[ticker] >= LOOKBACK_52W and not pd.isna(last_stored[ticker])
    ]
    recompute = sorted(
        ticker
        for ticker in needed.index
        if ticker not in set(going_on) or pd.isna(last_stored[ticker])
    )
    return IndicatorPlan(
        prices=prices[prices["ticker"].isin(going_on)].reset_index(drop=True),
        previous=previous[previous["ticker"].isin(going_on)].reset_index(drop=True),
        recompute=recompute,
    )
