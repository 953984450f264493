"""Data-quality rules over the stored tables, as pure functions (no Dagster).

Every rule takes DataFrames as the store returns them and gives back its problems as a DataFrame,
one row per offending ticker-day (or day), empty when the data pass. `problems_markdown` turns
them into the short table the Dagster UI shows.

Real panels have listings, delistings and closures the calendar does not know, so the rules
that compare with time measure a ticker within its life (`ticker_spans`: first to last bar) and
the market in its *open days* (`open_days`: calendar trading days on which some ticker of the
universe has a bar). Freshness has its own module, `breadth_assets.analytics.freshness`.
"""

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from breadth_assets.analytics.bars import ohlc_breaks
from breadth_assets.analytics.indicators import EMA_PERIODS, SMA_PERIODS

MAX_GAP_TRADING_DAYS = 5
MIN_COVERAGE = 0.9
MAX_LISTED = 50

# The bar (1-based, in a ticker's own bars) from which each column is never NULL: TA-Lib's
# lookback + 1, checked against talib in breadth_assets_tests/analytics/test_quality.py.
# macd_stage needs the histogram of the bar before too, hence 35; the 52-week extremes cover
# the 252 bars before the current one, hence 253.
WARM_UP_BARS: dict[str, int] = {
    "close": 1,
    **{f"ema_{period}": period for period in EMA_PERIODS},
    **{f"sma_{period}": period for period in SMA_PERIODS},
    "close_65": 66,
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
    "bounded": "price above 1e9 or volume above 1e15",
}
"""Problem names by the relation a bar breaks, in the order they are listed."""


def _frame(rows: list[dict] | pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=list(columns)).reset_index(drop=True)


def ohlc_problems(prices: pd.DataFrame) -> pd.DataFrame:
    """Bars that break the bar rule (`analytics.bars`): high < max(open, close), low >
    min(open, close), a price that is not > 0 (or missing), a negative volume, a price or volume
    beyond its plausible bound.
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


def _ns(dates: object) -> np.ndarray:
    """Dates as datetime64[ns], so that tables of different time units compare."""
    return np.asarray(pd.to_datetime(dates), dtype="datetime64[ns]")


def days_index(dates: object) -> pd.DatetimeIndex:
    """The distinct `dates`, sorted, in nanoseconds."""
    return pd.DatetimeIndex(np.unique(_ns(dates)))


def days_between(days: pd.DatetimeIndex, after: object, before: object) -> np.ndarray:
    """How many of `days` (sorted) lie strictly between each `after` and its `before`."""
    values = _ns(days)
    return np.searchsorted(values, _ns(before), "left") - np.searchsorted(
        values, _ns(after), "right"
    )


def open_days(calendar: pd.DatetimeIndex, bar_days: object) -> pd.DatetimeIndex:
    """The calendar's trading days on which at least one ticker has a bar. A calendar day without
    any bar is a closure the calendar did not know (breadth has no row for it), not a missing
    day."""
    return days_index(calendar).intersection(days_index(bar_days))


def closures_in_data(calendar: pd.DatetimeIndex, bar_days: object) -> pd.DatetimeIndex:
    """The calendar's trading days between the first and the last day with a bar on which no
    ticker has one: holidays the calendar did not know, found in the data."""
    days = days_index(bar_days)
    if days.empty:
        return days
    calendar = days_index(calendar)
    return calendar[(calendar >= days[0]) & (calendar <= days[-1])].difference(days)


def ticker_spans(prices: pd.DataFrame) -> pd.DataFrame:
    """Each ticker's life in the data: its first and last bar and its number of bars.
    Index: ticker; columns: first_bar, last_bar, bars. Tickers are disjoint between chunks, so
    the spans of chunks are concatenated."""
    dates = pd.Series(_ns(prices["date"]), index=prices.index)
    grouped = dates.groupby(prices["ticker"])
    spans = pd.DataFrame(
        {"first_bar": grouped.min(), "last_bar": grouped.max(), "bars": grouped.size()}
    )
    return spans.rename_axis("ticker").astype({"bars": "int64"})


def gaps(
    prices: pd.DataFrame, days: pd.DatetimeIndex, max_gap: int = MAX_GAP_TRADING_DAYS
) -> pd.DataFrame:
    """Consecutive bars of a ticker with more than `max_gap` of `days` between them (the open
    days, `open_days`): only inside a ticker's life, so neither the days before its first bar
    nor those after its last (a delisting) count. Counted in the calendar instead, the result
    holds every gap of the open days and maybe more: `recount_gaps` then keeps the real ones.
    Columns: ticker, date (the bar after the gap), previous_bar, missing_days."""
    columns = ["ticker", "date", "previous_bar", "missing_days"]
    if prices.empty:
        return _frame([], columns)
    p = prices[["ticker", "date"]].sort_values(["ticker", "date"], ignore_index=True)
    dates = p["date"].to_numpy()
    same = p["ticker"].to_numpy()[1:] == p["ticker"].to_numpy()[:-1]
    missing = days_between(days, dates[:-1], dates[1:])
    hit = np.flatnonzero(same & (missing > max_gap))
    return _frame(
        {
            "ticker": p["ticker"].to_numpy()[hit + 1],
            "date": dates[hit + 1],
            "previous_bar": dates[hit],
            "missing_days": missing[hit],
        },
        columns,
    )


def recount_gaps(
    found: pd.DataFrame, days: pd.DatetimeIndex, max_gap: int = MAX_GAP_TRADING_DAYS
) -> pd.DataFrame:
    """The gaps of `found` (from `gaps` over a chunk, counted in the calendar) counted again in
    `days`, the universe's open days, known once every chunk was read; those still longer than
    `max_gap`. Same columns as `gaps`."""
    if found.empty:
        return found.reset_index(drop=True)
    missing = days_between(days, found["previous_bar"], found["date"])
    keep = missing > max_gap
    return found[keep].assign(missing_days=missing[keep]).reset_index(drop=True)


def unexplained_moves(
    indicators: pd.DataFrame, actions: pd.DataFrame, max_move: float
) -> pd.DataFrame:
    """Bars whose adjusted close (`indicators.close`) moved more than `max_move` (0.2 = 20%)
    from the ticker's previous bar, unless a `move` action declares that day's move real.

    An action declared that day is applied already, so a listed day with one names it: its
    value does not explain the move. Columns: ticker, date, previous_close, close, move_pct,
    actions (the kinds and values declared that day).
    """
    columns = ["ticker", "date", "previous_close", "close", "move_pct", "actions"]
    p = indicators[["ticker", "date", "close"]].sort_values(["ticker", "date"], ignore_index=True)
    previous = p.groupby("ticker", sort=False)["close"].shift()
    move = p["close"] / previous - 1
    found = p.assign(previous_close=previous, move_pct=(100 * move).round(1))
    found = found[(move.abs() > max_move).to_numpy()]
    if found.empty:
        return _frame(found.reindex(columns=columns), columns)
    days = actions.assign(date=pd.to_datetime(actions["ex_date"]).astype(found["date"].dtype))
    declared: dict[tuple, str] = {}
    for row in days.itertuples(index=False):
        said = declared.get((row.ticker, row.date))
        declared[(row.ticker, row.date)] = f"{said}, " * bool(said) + f"{row.kind} {row.value}"
    real = days.loc[days["kind"] == "move", ["ticker", "date"]].assign(real=True)
    found = found.merge(real, on=["ticker", "date"], how="left")
    found = found[found["real"].isna()]
    found["actions"] = [
        declared.get((t, d), "") for t, d in zip(found["ticker"], found["date"], strict=True)
    ]
    return _frame(found, columns)


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


def key_changes(instrument_keys: pd.DataFrame) -> pd.DataFrame:
    """Each change of a ticker's instrument key in the `instrument_keys` rows: every key recorded
    after another, with the one before it and the date of the first bar fetched under it.
    Columns: ticker, old_key, new_key, first_used."""
    columns = ["ticker", "old_key", "new_key", "first_used"]
    keys = instrument_keys.sort_values(["ticker", "first_used", "instrument_key"], kind="stable")
    old = keys.groupby("ticker", sort=False)["instrument_key"].shift()
    changed = keys.assign(old_key=old, new_key=keys["instrument_key"])[old.notna().to_numpy()]
    return _frame(changed, columns)


def missing_days(breadth: pd.DataFrame, days: pd.DatetimeIndex) -> pd.DataFrame:
    """Days of `days` (the open days: trading days on which some ticker has a bar) between the
    first and the last stored breadth date that have no breadth row. Columns: date."""
    if breadth.empty:
        return _frame([], ["date"])
    dates = days_index(breadth["date"])
    expected = days_index(days)
    expected = expected[(expected >= dates.min()) & (expected <= dates.max())]
    return pd.DataFrame({"date": expected.difference(dates)})


def coverage_shortfalls(
    breadth: pd.DataFrame,
    spans: pd.DataFrame,
    days: pd.DatetimeIndex,
    min_share: float = MIN_COVERAGE,
) -> pd.DataFrame:
    """Days whose `universe` (tickers with a bar that day) is below `min_share` of the tickers
    listed on that day: from `spans` (`ticker_spans`), those whose first bar is on or before it
    and whose last bar on or after it, so neither a later listing nor a delisting counts against
    a day. Only days of `days` (the open days) are compared: on a day without any bar there is
    nothing to cover. Columns: date, universe, listed, share."""
    columns = ["date", "universe", "listed", "share"]
    if breadth.empty:
        return _frame([], columns)
    rows = breadth[np.isin(_ns(breadth["date"]), _ns(days))]
    firsts = np.sort(_ns(spans["first_bar"].dropna()))
    lasts = np.sort(_ns(spans["last_bar"].dropna()))
    dates = _ns(rows["date"])
    listed = np.searchsorted(firsts, dates, "right") - np.searchsorted(lasts, dates, "left")
    universe = rows["universe"].to_numpy(dtype=float)
    short = universe < min_share * listed
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.round(100 * universe / listed, 1)
    return _frame(
        {
            "date": rows["date"].to_numpy()[short],
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
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
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
