"""Freshness of a universe's prices, measured against the data's own end (no Dagster).

A real panel has tickers that ended (delisted, halted) and may be a finished history, so one
ticker behind today says little. The universe is stale when its latest bar, over all tickers,
lies more than `FRESH_TOLERANCE_DAYS` trading days before the reference day (the last closed day,
or the universe's `end_date` for a finished history): one finding, not one per ticker. Otherwise
each ticker is measured against the universe's latest bar, in open days (trading days on which
some ticker has a bar, `quality.open_days`): on it, fresh; up to `RECENT_STOP_DAYS` before it,
stopped recently (a failed fetch, a new halt or delisting: worth a look); further back, ended.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from breadth_assets.analytics.quality import days_between

FRESH_TOLERANCE_DAYS = 1
"""Trading days the universe's latest bar may lie before the reference day: a closure the
calendar does not know, or a source a day late, does not make the universe stale."""
RECENT_STOP_DAYS = 5
"""Open days (a trading week) before the universe's latest bar within which a ticker's last bar
means it stopped recently; a ticker whose last bar is further back has ended."""
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Freshness:
    """Where the data end, and the tickers that end before them."""

    reference_day: pd.Timestamp
    latest_bar: pd.Timestamp
    """The universe's latest bar (NaT when no ticker has one)."""
    behind: int
    """Trading days of the calendar after `latest_bar`, up to and including the reference day."""
    stale: bool
    """No ticker has a bar within the tolerance of the reference day (or none has any bar)."""
    stopped: pd.DataFrame
    """Tickers whose last bar is 1..`recent` open days before `latest_bar`, and tickers without
    any bar (last_bar NaT). Columns: ticker, last_bar, trading_days_behind."""
    ended: pd.DataFrame
    """Tickers whose last bar is more than `recent` open days before `latest_bar`."""


def freshness(
    spans: pd.DataFrame,
    tickers: Sequence[str],
    calendar: pd.DatetimeIndex,
    days: pd.DatetimeIndex,
    reference_day: dt.date,
    tolerance: int = FRESH_TOLERANCE_DAYS,
    recent: int = RECENT_STOP_DAYS,
) -> Freshness:
    """The freshness of `tickers` from their `spans` (`quality.ticker_spans`): `calendar` holds
    the market's trading days up to `reference_day`, `days` the open days."""
    index = pd.Index(list(tickers), dtype=object)
    last = pd.to_datetime(spans["last_bar"].reindex(index)).astype("datetime64[ns]")
    has_bar = last.notna().to_numpy()
    latest = last.max() if has_bar.any() else pd.NaT
    reference = pd.Timestamp(reference_day)
    behind = 0
    since = np.zeros(len(last), dtype=np.int64)
    if has_bar.any():
        behind = max(int(days_between(calendar, [latest], [reference + _DAY])[0]), 0)
        since[has_bar] = days_between(days, last[has_bar], [latest + _DAY] * int(has_bar.sum()))
    frame = pd.DataFrame(
        {
            "ticker": list(index),
            "last_bar": last.to_numpy(),
            "trading_days_behind": pd.Series(since, dtype="Int64").where(has_bar),
        }
    )
    recently = ~has_bar | ((since >= 1) & (since <= recent))
    return Freshness(
        reference_day=reference,
        latest_bar=latest,
        behind=behind,
        stale=bool(len(index)) and (not has_bar.any() or behind > tolerance),
        stopped=frame[recently].reset_index(drop=True),
        ended=frame[has_bar & (since > recent)].reset_index(drop=True),
    )
