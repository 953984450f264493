"""Data-quality rules over the stored tables, as pure functions (no Dagster).

Every rule takes DataFrames as the store returns them and gives back its problems as a DataFrame,
one row per offending ticker-day (or day), empty when the data pass. `problems_markdown` turns
them into the short table the Dagster UI shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from breadth_assets.analytics.bars import ohlc_breaks
from breadth_assets.analytics.indicators import EMA_PERIODS

MAX_GAP_TRADING_DAYS = 5
SPLIT_MOVE = 0.5
MIN_COVERAGE = 0.9
MAX_LISTED = 50

# The bar (1-based, in a ticker's own bars) from which each column is never NULL: TA-Lib's
# lookback + 1, checked against talib in breadth_assets_tests/analytics/test_quality.py.
# macd_stage needs the histogram of the bar before too, hence 35; the 52-week extremes cover
# the 252 bars before the current one, hence 253.
WARM_UP_BARS: dict[str, int] = {
    "close": 1,
    **{f"ema_{period}": period for period in EMA_PERIODS},
    "rsi_14": 15,
    "macd": 34,
    "macd_signal": 34,
    "macd_hist": 34,
    "macd_stage": 35,
    "bb_upper": 20,
    "bb_middle": 20,
    "bb_lower": 20,
    "high_52w": 253,
    "low_52w": 253,
}

PERCENT_COLUMNS: tuple[str, ...] = (
    "pct_above_ema_20",
    "pct_above_ema_50",
    "pct_above_ema_200",
    *(f"macd_stage_{k}" for k in range(1, 7)),
)


_OHLC_PROBLEMS = {
    "at least": "high below max(open, close)",
    "at most": "low above min(open, close)",
    "positive": "price not > 0",
    "non-negative": "volume < 0",
}
"""Problem names by the relation a bar breaks, in the order they are listed."""


def _frame(rows: list[dict] | pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=list(columns)).reset_index(drop=True)


def ohlc_problems(prices: pd.DataFrame) -> pd.DataFrame:
    """Bars that break the bar rule (`analytics.bars`): high < max(open, close), low >
    min(open, close), a price that is not > 0 (or missing), a negative volume.
    Columns: ticker, date, problem."""
    p = prices
    found = {name: np.zeros(len(p), dtype=bool) for name in _OHLC_PROBLEMS.values()}
    for rule, mask in ohlc_breaks(p).items():
        found[_OHLC_PROBLEMS[rule.relation]] |= mask
    frames = [
        pd.DataFrame(
            {"ticker": p.loc[mask, "ticker"], "date": p.loc[mask, "date"], "problem": name}
        )
        for name, mask in found.items()
        if mask.any()
    ]
    columns = ["ticker", "date", "problem"]
    if not frames:
        return _frame([], columns)
    return (
        pd.concat(frames)
        .sort_values(["ticker", "date"], kind="stable")[columns]
        .reset_index(drop=True)
    )


def duplicate_keys(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Keys that occur more than once. Columns: the keys and `rows`."""
    keys = list(keys)
    counts = frame.groupby(keys, sort=True).size().rename("rows").reset_index()
    return counts[counts["rows"] > 1].reset_index(drop=True)


def _day_positions(dates: pd.Series, days: pd.DatetimeIndex) -> np.ndarray:
    return np.searchsorted(days.values, pd.to_datetime(dates).values.astype(days.values.dtype))


def gaps(
    prices: pd.DataFrame, days: pd.DatetimeIndex, max_gap: int = MAX_GAP_TRADING_DAYS
) -> pd.DataFrame:
    """Consecutive bars of a ticker with more than `max_gap` trading days (of `days`, the
    market's calendar) missing between them; days before a ticker's first bar never count.
    Columns: ticker, date (the bar after the gap), previous_bar, missing_days."""
    columns = ["ticker", "date", "previous_bar", "missing_days"]
    if prices.empty:
        return _frame([], columns)
    p = prices[["ticker", "date"]].sort_values(["ticker", "date"], ignore_index=True)
    position = _day_positions(p["date"], days)
    same = p["ticker"].to_numpy()[1:] == p["ticker"].to_numpy()[:-1]
    missing = np.diff(position) - 1
    hit = np.flatnonzero(same & (missing > max_gap))
    return _frame(
        {
            "ticker": p["ticker"].to_numpy()[hit + 1],
            "date": p["date"].to_numpy()[hit + 1],
            "previous_bar": p["date"].to_numpy()[hit],
            "missing_days": missing[hit],
        },
        columns,
    )


def suspected_splits(prices: pd.DataFrame, threshold: float = SPLIT_MOVE) -> pd.DataFrame:
    """Bars whose close moved more than `threshold` (0.5 = 50%) from the ticker's previous
    close, a split or reverse split the source did not adjust for.
    Columns: ticker, date, previous_close, close, move_pct."""
    columns = ["ticker", "date", "previous_close", "close", "move_pct"]
    p = prices[["ticker", "date", "close"]].sort_values(["ticker", "date"], ignore_index=True)
    previous = p.groupby("ticker", sort=False)["close"].shift()
    move = p["close"] / previous - 1
    hit = move.abs() > threshold
    found = p[hit].assign(previous_close=previous[hit], move_pct=(100 * move[hit]).round(1))
    return _frame(found, columns)


def stale_tickers(prices: pd.DataFrame, tickers: Sequence[str], last_day: dt.date) -> pd.DataFrame:
    """Tickers whose last bar is before `last_day` (the last closed trading day), or that have
    no bar at all. Columns: ticker, last_bar (NaT when none)."""
    last = pd.to_datetime(prices.groupby("ticker")["date"].max())
    last_bar = last.reindex(pd.Index(list(tickers), dtype=object)).to_numpy()
    found = pd.DataFrame({"ticker": list(tickers), "last_bar": pd.to_datetime(last_bar)})
    stale = found["last_bar"].isna() | (found["last_bar"] < pd.Timestamp(last_day))
    return found[stale].reset_index(drop=True)


def key_mismatches(
    prices: pd.DataFrame, indicators: pd.DataFrame, keys: Sequence[str] = ("ticker", "date")
) -> pd.DataFrame:
    """(ticker, date) keys in only one of the two tables. Columns: ticker, date, problem."""
    keys = list(keys)
    both = prices[keys].merge(indicators[keys], on=keys, how="outer", indicator=True)
    both = both[both["_merge"] != "both"].sort_values(keys, ignore_index=True)
    problem = both["_merge"].map(
        {"left_only": "price row without indicators", "right_only": "indicators without a price"}
    )
    return _frame(both[keys].assign(problem=problem.astype(str)), [*keys, "problem"])


def unexpected_nulls(
    indicators: pd.DataFrame, warm_up: Mapping[str, int] = WARM_UP_BARS
) -> pd.DataFrame:
    """NULL indicator values on or after the bar from which the column is always defined.
    Columns: ticker, date, column, bar (the row's 1-based bar number in its ticker)."""
    columns = ["ticker", "date", "column", "bar"]
    ind = indicators.sort_values(["ticker", "date"], ignore_index=True)
    bar = ind.groupby("ticker", sort=False).cumcount() + 1
    found = []
    for column, first_bar in warm_up.items():
        if column not in ind.columns:
            continue
        mask = ind[column].isna() & (bar >= first_bar)
        if mask.any():
            found.append(
                pd.DataFrame(
                    {
                        "ticker": ind.loc[mask, "ticker"],
                        "date": ind.loc[mask, "date"],
                        "column": column,
                        "bar": bar[mask],
                    }
                )
            )
    if not found:
        return _frame([], columns)
    return _frame(pd.concat(found).sort_values(["ticker", "date"], kind="stable"), columns)


def missing_days(breadth: pd.DataFrame, days: pd.DatetimeIndex) -> pd.DataFrame:
    """Trading days (of `days`) between the first and the last stored breadth date that have no
    breadth row. Columns: date."""
    if breadth.empty:
        return _frame([], ["date"])
    dates = pd.to_datetime(breadth["date"])
    expected = days[(days >= dates.min()) & (days <= dates.max())]
    return pd.DataFrame({"date": expected.difference(pd.DatetimeIndex(dates))})


def coverage_shortfalls(
    breadth: pd.DataFrame, first_bars: pd.Series, min_share: float = MIN_COVERAGE
) -> pd.DataFrame:
    """Days whose `universe` (tickers with a bar that day) is below `min_share` of the tickers
    listed by then: `first_bars` maps each universe ticker to its first bar's date, so a ticker
    listed later never counts against an earlier day. Columns: date, universe, listed, share."""
    columns = ["date", "universe", "listed", "share"]
    if breadth.empty:
        return _frame([], columns)
    firsts = np.sort(pd.to_datetime(first_bars.dropna()).values)
    dates = pd.to_datetime(breadth["date"]).values.astype(firsts.dtype)
    listed = np.searchsorted(firsts, dates, side="right")
    universe = breadth["universe"].to_numpy(dtype=float)
    short = universe < min_share * listed
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.round(100 * universe / listed, 1)
    return _frame(
        {
            "date": breadth["date"].to_numpy()[short],
            "universe": universe[short].astype(int),
            "listed": listed[short],
            "share": share[short],
        },
        columns,
    )


def percentages_out_of_range(
    breadth: pd.DataFrame, columns: Sequence[str] = PERCENT_COLUMNS
) -> pd.DataFrame:
    """Percentage values outside 0..100 (NULL is allowed). Columns: date, column, value."""
    found = [
        pd.DataFrame(
            {"date": breadth.loc[mask, "date"], "column": column, "value": breadth[column][mask]}
        )
        for column in columns
        if column in breadth.columns
        and (mask := (breadth[column] < 0) | (breadth[column] > 100)).any()
    ]
    if not found:
        return _frame([], ["date", "column", "value"])
    return _frame(pd.concat(found).sort_values("date", kind="stable"), ["date", "column", "value"])


def _cell(value: object) -> str:
    if isinstance(value, pd.Timestamp | dt.datetime | np.datetime64):
        stamp = pd.Timestamp(value)
        return "—" if pd.isna(stamp) else f"{stamp:%Y-%m-%d}"
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def problems_markdown(problems: pd.DataFrame, limit: int = MAX_LISTED) -> str:
    """The first `limit` problems as a markdown table, with a line counting the rest."""
    if problems.empty:
        return "no problems"
    header = list(problems.columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in problems.head(limit).itertuples(index=False):
        lines.append("| " + " | ".join(_cell(value) for value in row) + " |")
    if len(problems) > limit:
        lines.append(f"\n… and {len(problems) - limit} more ({len(problems)} in all)")
    return "\n".join(lines)
