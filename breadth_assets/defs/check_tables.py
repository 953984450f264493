"""What one check step reads and reports: the tables, what the chunks gather, the findings.

`breadth_assets.defs.checks` names the checks and runs them; this module holds their plumbing: the
tables a step reads once (`Tables`), what the chunks leave for the checks over the whole
universe (`Gathered`), a rule's result (`Finding`) and how it becomes a Dagster check result.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import dagster as dg
import numpy as np
import pandas as pd

from breadth_assets.analytics import quality
from breadth_assets.stores.base import MarketStore
from breadth_assets.universe.file import Universe

Scope = Literal["chunk", "universe", "breadth"]
"""Where a check runs: on each chunk of tickers, once over the universe on what the chunks
gathered, or once on `breadth` alone."""


@dataclass
class Gathered:
    """What the chunks leave for the checks of scope "universe", so no table is read twice."""

    spans: list[pd.DataFrame] = field(default_factory=list)
    bar_days: list[pd.DatetimeIndex] = field(default_factory=list)
    parts: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    """Per check name, the per-chunk part of its rule (`Check.gather`)."""


@dataclass
class Tables:
    """What the checks of one step read, each at most once: a chunk's tickers, or the whole
    universe with what its chunks gathered."""

    store: MarketStore
    universe: Universe
    tickers: list[str]
    gathered: Gathered | None = None

    @cached_property
    def prices(self) -> pd.DataFrame:
        return self.store.read_prices(self.tickers)

    @cached_property
    def indicators(self) -> pd.DataFrame:
        return self.store.read_indicators(self.tickers)

    @cached_property
    def actions(self) -> pd.DataFrame:
        return self.store.read_actions(self.tickers)

    @cached_property
    def instrument_keys(self) -> pd.DataFrame:
        return self.store.read_instrument_keys(self.tickers)

    @cached_property
    def breadth(self) -> pd.DataFrame:
        return self.store.read_breadth()

    @cached_property
    def spans(self) -> pd.DataFrame:
        """Each ticker's first and last bar and its number of bars."""
        if self.gathered is None or not self.gathered.spans:
            return quality.ticker_spans(self.prices if self.gathered is None else _NO_BARS)
        return pd.concat(self.gathered.spans)

    @cached_property
    def bar_days(self) -> pd.DatetimeIndex:
        """The days on which at least one ticker has a bar."""
        if self.gathered is None:
            return quality.days_index(self.prices["date"])
        days = self.gathered.bar_days
        return quality.days_index(np.concatenate(days) if days else [])

    def part(self, name: str) -> pd.DataFrame:
        parts = [] if self.gathered is None else self.gathered.parts.get(name, [])
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    @cached_property
    def reference_day(self) -> dt.date:
        """The last closed day, or the universe's `end_date` when earlier (a finished history)."""
        return self.universe.last_day()

    @cached_property
    def market_days(self) -> pd.DatetimeIndex:
        """The calendar from the first bar to the later of the last bar and the reference day."""
        ends = [*self.bar_days[:1], *self.bar_days[-1:], pd.Timestamp(self.reference_day)]
        return self.calendar(pd.Series(ends))

    @cached_property
    def open_days(self) -> pd.DatetimeIndex:
        """Trading days on which some ticker has a bar; the others are closures in the data."""
        return quality.open_days(self.market_days, self.bar_days)

    def calendar(self, dates: pd.Series) -> pd.DatetimeIndex:
        if dates.empty:
            return pd.DatetimeIndex([])
        start, end = pd.Timestamp(dates.min()).date(), pd.Timestamp(dates.max()).date()
        return self.universe.calendar.trading_days(start, end)

    def counts(self, rows: pd.DataFrame) -> dict[str, int]:
        return {"rows_checked": len(rows), "tickers_checked": rows["ticker"].nunique()}

    def span_counts(self) -> dict[str, int]:
        return {"rows_checked": int(self.spans["bars"].sum()), "tickers_checked": len(self.spans)}


_NO_BARS = pd.DataFrame({"ticker": pd.Series(dtype=object), "date": pd.Series(dtype="M8[ns]")})


@dataclass(frozen=True)
class Finding:
    problems: pd.DataFrame
    what: str
    """What a problem is, plural: "inconsistent bars"."""
    counts: dict[str, int]
    texts: dict[str, str] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Listed in the metadata as markdown, without failing the check."""
    description: str | None = None
    """Said instead of "<count> <what>" when there are problems."""
    hint: str | None = None
    """What to do about the problems, said after "<count> <what>"."""


@dataclass(frozen=True)
class Check:
    asset: dg.AssetKey
    name: str
    severity: dg.AssetCheckSeverity
    description: str
    find: Callable[[Tables], Finding]
    scope: Scope = "chunk"
    gather: Callable[[Tables], pd.DataFrame] | None = None
    """For scope "universe": the part of the rule computed on each chunk, kept for `find`."""


def merged(parts: list[Finding]) -> Finding:
    """The findings of the chunks as one: problems together, counts added up."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Finding(pd.DataFrame(), "problems", {})
    counts = {name: sum(part.counts[name] for part in parts) for name in parts[0].counts}
    problems = pd.concat([part.problems for part in parts], ignore_index=True)
    return Finding(problems, parts[0].what, counts, parts[0].texts, hint=parts[0].hint)


def gather(gathered: Gathered, chunk: Tables, checks: Sequence[Check]) -> None:
    """Keeps from a chunk what the checks of scope "universe" need of its rows."""
    gathered.spans.append(quality.ticker_spans(chunk.prices))
    gathered.bar_days.append(quality.days_index(chunk.prices["date"]))
    for check in checks:
        if check.gather is not None:
            gathered.parts.setdefault(check.name, []).append(check.gather(chunk))


def result(check: Check, found: Finding) -> dg.AssetCheckResult:
    """Passed when there is no problem; otherwise counts, offending tickers and the table."""
    problems = found.problems
    metadata: dict[str, dg.MetadataValue] = {
        name: dg.MetadataValue.int(int(value)) for name, value in found.counts.items()
    }
    metadata["problems"] = dg.MetadataValue.int(len(problems))
    if "ticker" in problems.columns:
        metadata["tickers_affected"] = dg.MetadataValue.int(int(problems["ticker"].nunique()))
    if "date" in problems.columns and len(problems):
        dates = pd.to_datetime(problems["date"])
        metadata["first_date"] = dg.MetadataValue.text(f"{dates.min():%Y-%m-%d}")
        metadata["last_date"] = dg.MetadataValue.text(f"{dates.max():%Y-%m-%d}")
    metadata["offenders"] = dg.MetadataValue.md(quality.problems_markdown(problems))
    metadata.update({name: dg.MetadataValue.text(text) for name, text in found.texts.items()})
    metadata.update(
        {
            name: dg.MetadataValue.md(quality.problems_markdown(t))
            for name, t in found.tables.items()
        }
    )
    description = f"no {found.what}"
    if len(problems):
        description = found.description or f"{len(problems)} {found.what}"
        if found.hint:
            description += f": {found.hint}"
    return dg.AssetCheckResult(
        asset_key=check.asset,
        check_name=check.name,
        passed=problems.empty,
        severity=check.severity,
        description=description,
        metadata=metadata,
    )
