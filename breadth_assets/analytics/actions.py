"""Corporate actions and the back-adjusted prices they make (docs/design.md "Corporate actions").

An action of a ticker on its ex-date multiplies every earlier bar's prices by its price factor and
divides their volume by it, so each bar's turnover (price x volume) stays as traded and the series
reads as if the latest share basis had always held. Several actions multiply. The bars on and
after the ex-date keep their raw values, until a later action scales them in turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

KINDS: tuple[str, ...] = ("split", "bonus", "consolidation", "factor", "dividend", "move")
"""What an action may be; `move` declares a real price move (factor 1) that is no action."""

ACTION_COLUMNS: tuple[str, ...] = ("ticker", "ex_date", "kind", "value", "factor", "origin")

_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$")
_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")


def ratio(value: str) -> tuple[float, float]:
    """`a:b` as two positive numbers; ValueError saying what is wrong otherwise."""
    found = _RATIO.match(str(value))
    if not found:
        raise ValueError(f"{value!r} is not a ratio a:b of two positive numbers")
    a, b = float(found.group(1)), float(found.group(2))
    if a <= 0 or b <= 0:
        raise ValueError(f"{value!r}: both sides of the ratio must be above 0")
    return a, b


def price_factor(kind: str, value: str) -> float | None:
    """The factor the bars before the ex-date are multiplied by; None for a dividend, whose
    factor depends on the close before its ex-date (`dividend_factor`).

    split a:b: a old shares become b, prices x a/b; bonus a:b: a new shares for every b held,
    prices x b/(a+b); consolidation a:b: a old shares become b, prices x a/b; factor: the value
    itself, above 0 and at most 1000; move: 1.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if kind in ("split", "consolidation"):
        a, b = ratio(value)
        factor = a / b
        if kind == "split" and factor >= 1:
            raise ValueError(f"split {value}: a split gives more shares (a:b with a < b)")
        if kind == "consolidation" and factor <= 1:
            raise ValueError(
                f"consolidation {value}: a consolidation gives fewer shares (a:b with a > b)"
            )
        return factor
    if kind == "bonus":
        a, b = ratio(value)
        return b / (a + b)
    if kind == "factor":
        if not _NUMBER.match(str(value)) or not 0 < float(value) <= 1000:
            raise ValueError(f"factor {value!r} must be a number above 0 and at most 1000")
        return float(value)
    if kind == "dividend":
        if not _NUMBER.match(str(value)) or float(value) <= 0:
            raise ValueError(f"dividend {value!r} must be an amount above 0 per share")
        return None
    return 1.0


def dividend_factor(amount: float, previous_close: float) -> float:
    """1 - amount / the close before the ex-date (the CRSP and Yahoo convention); ValueError
    when the dividend is not below that close."""
    if not amount < previous_close:
        raise ValueError(
            f"dividend {amount:g} is not below the close {previous_close:g} before its ex-date"
        )
    return 1.0 - amount / previous_close


def empty_actions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": pd.Series(dtype=object),
            "ex_date": pd.Series(dtype="datetime64[us]"),
            "kind": pd.Series(dtype=object),
            "value": pd.Series(dtype=object),
            "factor": pd.Series(dtype=np.float64),
            "origin": pd.Series(dtype=object),
        }
    )


def resolve_factors(
    actions: pd.DataFrame,
    prices: pd.DataFrame,
    adjust_dividends: bool,
    stored: pd.DataFrame | None = None,
) -> Resolved:
    """The `actions` as applied to `prices` (raw bars, one or many tickers), with their factor.

    An action is applied once its ticker has a bar on or after its ex-date; a dividend only with
    `adjust_dividends`, its factor taken from `stored` when it was applied before (fixed from
    the close before its ex-date when first applied), else from that close in `prices`. The
    others keep a NULL factor (declared, not applied yet).
    """
    out = actions.reset_index(drop=True).copy()
    out["factor"] = np.nan
    resolved = Resolved(out)
    if out.empty:
        return resolved
    known = _stored_dividends(stored)
    last_bar = prices.groupby("ticker")["date"].max()
    column = out.columns.get_loc("factor")
    for i, row in enumerate(out.itertuples(index=False)):
        last = last_bar.get(row.ticker)
        if last is None or pd.Timestamp(row.ex_date) > last:
            continue
        if row.kind != "dividend":
            out.iat[i, column] = price_factor(row.kind, row.value)
        elif adjust_dividends:
            factor = known.get((row.ticker, pd.Timestamp(row.ex_date), str(row.value)))
            if factor is None:
                factor = _new_dividend(row, prices, resolved)
            if factor is not None:
                out.iat[i, column] = factor
    return resolved


@dataclass
class Resolved:
    actions: pd.DataFrame
    """The actions with the factor of each one applied."""
    problems: dict[str, str] = field(default_factory=dict)
    """Per ticker, why one of its actions cannot be applied."""
    need_history: set[str] = field(default_factory=set)
    """Tickers with a dividend to apply whose previous close is not among the bars given."""


def _stored_dividends(stored: pd.DataFrame | None) -> dict[tuple, float]:
    if stored is None or stored.empty:
        return {}
    applied = stored[(stored["kind"] == "dividend") & stored["factor"].notna()]
    return {
        (row.ticker, pd.Timestamp(row.ex_date), str(row.value)): float(row.factor)
        for row in applied.itertuples(index=False)
    }


def _new_dividend(row, prices: pd.DataFrame, resolved: Resolved) -> float | None:
    bars = prices[(prices["ticker"] == row.ticker) & (prices["date"] < row.ex_date)]
    if bars.empty:
        resolved.need_history.add(row.ticker)
        return None
    previous = float(bars.sort_values("date")["close"].iloc[-1])
    try:
        return dividend_factor(float(row.value), previous)
    except ValueError as error:
        resolved.problems[row.ticker] = f"{row.origin}: {error}"
        return None


def bar_factors(prices: pd.DataFrame, actions: pd.DataFrame) -> np.ndarray:
    """Per bar of `prices`, the product of the applied factors (non-NULL) of its ticker's
    actions dated after it; 1 for a bar no action reaches.

    The product runs from the latest ex-date back, so the same actions always give the same
    bits, whatever else changed.
    """
    factors = np.ones(len(prices))
    applied = actions[actions["factor"].notna()]
    if applied.empty or prices.empty:
        return factors
    wanted = set(applied["ticker"])
    codes, names = pd.factorize(prices["ticker"].to_numpy())
    rows_of = {
        names[code]: rows
        for code, rows in pd.Series(np.arange(len(codes))).groupby(codes).indices.items()
        if names[code] in wanted
    }
    days = pd.to_datetime(prices["date"]).to_numpy().astype("datetime64[D]")
    for ticker, own in applied.groupby("ticker", sort=False):
        rows = rows_of.get(ticker)
        if rows is None:
            continue
        own = own.sort_values(["ex_date", "kind"], ascending=[False, True])
        ex_dates = pd.to_datetime(own["ex_date"]).to_numpy().astype("datetime64[D]")
        # cumulative[k]: the product of the factors of the k latest actions
        cumulative = np.ones(len(own) + 1)
        for k, factor in enumerate(own["factor"].to_numpy(dtype=np.float64)):
            cumulative[k + 1] = cumulative[k] * factor
        later = np.searchsorted(-ex_dates.astype(np.int64), -days[rows].astype(np.int64), "left")
        factors[rows] = cumulative[later]
    return factors


def adjust_prices(prices: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """`prices` back-adjusted by the applied `actions`: open, high, low and close times each
    bar's factor, volume divided by it (`bar_factors`)."""
    factors = bar_factors(prices, actions)
    if np.all(factors == 1.0):
        return prices
    adjusted = prices.copy()
    for name in ("open", "high", "low", "close"):
        adjusted[name] = prices[name].to_numpy(dtype=np.float64) * factors
    adjusted["volume"] = prices["volume"].to_numpy(dtype=np.float64) / factors
    return adjusted


def applied_key(actions: pd.DataFrame) -> dict[str, set[tuple]]:
    """Per ticker, its applied actions as comparable tuples (ex-date, kind, value, factor)."""
    applied = actions[actions["factor"].notna()]
    keys: dict[str, set[tuple]] = {}
    for row in applied.itertuples(index=False):
        day = pd.Timestamp(row.ex_date).date()
        keys.setdefault(row.ticker, set()).add((day, row.kind, str(row.value), float(row.factor)))
    return keys


def first_changed_ex_dates(
    before: pd.DataFrame, after: pd.DataFrame, tickers: list[str]
) -> dict[str, pd.Timestamp]:
    """Per ticker whose applied actions differ between `before` and `after`, the earliest
    ex-date among the actions added, removed or changed: where its adjusted series stops
    being a rescaling of what it was."""
    old, new = applied_key(before), applied_key(after)
    changed = {}
    for ticker in tickers:
        differing = old.get(ticker, set()) ^ new.get(ticker, set())
        if differing:
            changed[ticker] = pd.Timestamp(min(item[0] for item in differing))
    return changed


def describe(actions: pd.DataFrame, limit: int = 10) -> str:
    """`3 actions applied: ABC split 1:5 on 2019-06-03, ...`."""
    rows = actions.sort_values(["ex_date", "ticker"])
    shown = [
        f"{row.ticker} {row.kind} {row.value} on {pd.Timestamp(row.ex_date):%Y-%m-%d}"
        for row in rows.head(limit).itertuples(index=False)
    ]
    more = f", and {len(rows) - limit} more" if len(rows) > limit else ""
    noun = "action" if len(rows) == 1 else "actions"
    return f"{len(rows)} {noun} applied: " + ", ".join(shown) + more


RESCALED_TOLERANCE = 1e-9
"""How far two rows' close ratios may differ and still be one rescaling (last-bit noise of
TA-Lib's recursions over the rescaled bars)."""


def breadth_changes_from(
    written: pd.DataFrame,
    stored: pd.DataFrame,
    changed: dict[str, pd.Timestamp],
) -> pd.Timestamp | None:
    """The earliest day of the `indicators` rows `written` whose breadth inputs changed.

    For a ticker whose applied actions changed from `changed[ticker]` on, its rows before that
    day changed by one common factor when their closes are those of `stored` times one ratio:
    every comparison breadth makes among them (close against its EMAs, its 52-week high and
    low, the previous close) holds as it did, so its breadth starts at the ex-date. Any other
    written row counts from its own day.
    """
    firsts: list[pd.Timestamp] = []
    for ticker, rows in written.groupby("ticker", sort=False):
        first = rows["date"].min()
        since = changed.get(ticker)
        if since is not None and first < since and _rescaled(rows, stored, ticker, since):
            later = rows.loc[rows["date"] >= since, "date"]
            if later.empty:
                continue
            first = later.min()
        firsts.append(pd.Timestamp(first))
    return min(firsts) if firsts else None


def _rescaled(rows: pd.DataFrame, stored: pd.DataFrame, ticker: str, since: pd.Timestamp) -> bool:
    """Whether `rows` before `since` are the ticker's `stored` rows times one factor."""
    old = stored[(stored["ticker"] == ticker) & (stored["date"] < since)]
    new = rows[rows["date"] < since]
    if len(new) > len(old):
        return False
    both = new.merge(old, on="date", suffixes=("", "_old"))
    if len(both) != len(new) or both.empty:
        return len(new) == 0
    ratios = [
        both[name].to_numpy(dtype=np.float64) / both[f"{name}_old"].to_numpy(dtype=np.float64)
        for name in ("close", "high", "low")
    ]
    values = np.concatenate(ratios)
    if not np.all(np.isfinite(values)):
        return False
    return bool(np.all(np.abs(values / values[0] - 1.0) <= RESCALED_TOLERANCE))
