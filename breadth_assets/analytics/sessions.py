"""Sessions the calendar does not know (docs/design.md "Breadth columns"): days it calls closed
on which the bars show the market traded."""

from __future__ import annotations

import pandas as pd

SESSION_SHARE = 0.5
"""A day the calendar calls closed is a session when more than this share of the tickers with a
bar on the trading day before have one on it."""


def found_sessions(bars_per_day: pd.Series, trading_days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Days off `trading_days` on which most tickers have bars (`SESSION_SHARE` of the trading
    day before, or after when none is before): NSE's Muhurat sessions, a holiday the calendar
    got wrong. `bars_per_day`: tickers with a bar per date."""
    counts = bars_per_day[bars_per_day > 0]
    dates = pd.DatetimeIndex(pd.to_datetime(counts.index))
    off = dates.difference(trading_days)
    with_bars = dates.intersection(trading_days)
    sessions = []
    for day in off:
        at = with_bars.searchsorted(day)
        neighbour = with_bars[at - 1] if at else (with_bars[at] if at < len(with_bars) else None)
        if neighbour is None:
            continue
        if counts.iloc[dates.get_loc(day)] > SESSION_SHARE * counts.iloc[dates.get_loc(neighbour)]:
            sessions.append(day)
    return pd.DatetimeIndex(sessions)
