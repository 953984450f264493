"""Corporate actions and the back-adjusted prices they make (docs/design.md "Corporate actions").

An action of a ticker on its ex-date multiplies every earlier bar's prices by its price factor and
divides their volume by it, so each bar's turnover (price x volume) stays as traded and the series
reads as if the latest share basis had always held. Several actions multiply. The bars on and
after the ex-date keep their raw values, until a later action scales them in turn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

KINDS: tuple[str, ...] = ("split", "bonus", "consolidation", "factor", "dividend", "move")
"""What an action may be; `move` declares a real price move (factor 1) that is no action."""

RATIO_KINDS = ("split", "bonus", "consolidation")
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
    actions: pd.DataFrame, prices: pd.DataFrame, adjust_dividends: bool
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The actions applied to `prices` (raw bars, one or many tickers), with their factor.

    An action is applied once its ticker has a bar on or after its ex-date; a dividend only with
    `adjust_dividends` and a bar before it. The others keep a NULL factor (declared, not
    applied). Returns the actions and, per ticker, why one of its actions cannot be applied.
    """
    out = actions.copy()
    out["factor"] = np.nan
    problems: dict[str, str] = {}
    if out.empty:
        return out, problems
    last_bar = prices.groupby("ticker")["date"].max()
    for i, row in enumerate(out.itertuples(index=False)):
        last = last_bar.get(row.ticker)
        if last is None or pd.Timestamp(row.ex_date) > last:
            continue
        if row.kind != "dividend":
            out.iat[i, out.columns.get_loc("factor")] = price_factor(row.kind, row.value)
            continue
        if not adjust_dividends:
            continue
        bars = prices[(prices["ticker"] == row.ticker) & (prices["date"] < row.ex_date)]
        if bars.empty:
            continue
        previous = float(bars.sort_values("date")["close"].iloc[-1])
        try:
            factor = dividend_factor(float(row.value), previous)
        except ValueError as error:
            problems[row.ticker] = f"{row.origin}: {error}"
            continue
        out.iat[i, out.columns.get_loc("factor")] = factor
    return out, problems


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
    tickers = prices["ticker"].to_numpy()
    days = pd.to_datetime(prices["date"]).to_numpy().astype("datetime64[D]")
    for ticker, own in applied.groupby("ticker", sort=False):
        rows = np.flatnonzero(tickers == ticker)
        if not rows.size:
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


def keep_stored_dividends(declared: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """`declared` with the factor of each dividend that `stored` already applied: a dividend's
    factor is fixed from the close before its ex-date when it is first applied."""
    if declared.empty or stored.empty:
        return declared
    stored_dividends = stored[(stored["kind"] == "dividend") & stored["factor"].notna()]
    if stored_dividends.empty:
        return declared
    known: Mapping[tuple, float] = {
        (row.ticker, pd.Timestamp(row.ex_date), str(row.value)): float(row.factor)
        for row in stored_dividends.itertuples(index=False)
    }
    out = declared.copy()
    for i, row in enumerate(out.itertuples(index=False)):
        factor = known.get((row.ticker, pd.Timestamp(row.ex_date), str(row.value)))
        if row.kind == "dividend" and factor is not None and not np.isnan(row.factor):
            out.iat[i, out.columns.get_loc("factor")] = factor
    return out


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
