"""Asset checks on `raw_prices`, `indicators` and `breadth`, shown on each asset's Checks tab.

The rules live in `breadth_assets.analytics.quality`; here a table names each check, and one
check step reads each stored table it needs once, for the universe's current tickers
(the `tickers` partitions), `CHUNK_TICKERS` tickers at a time (every rule on prices and indicators
looks at one ticker's rows, so memory holds a chunk, not the table), and reports every selected
check's offenders as a markdown table (the first 50) with their counts. The checks are
non-blocking: run them from the UI ("Execute checks") or with `quality_checks_job`; the ticker and
breadth jobs do not run them, so a batch of 50 tickers never rereads the whole universe.
"""

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import dagster as dg
import pandas as pd
from dagster._core.storage.tags import BACKFILL_ID_TAG

from breadth_assets import schema
from breadth_assets.analytics import quality
from breadth_assets.assets import BREADTH, INDICATORS, RAW_PRICES
from breadth_assets.calendars import last_closed_day, trading_days
from breadth_assets.partitions import tickers_partitions
from breadth_assets.resources.market_store import MarketStore
from breadth_assets.resources.universe_file import UniverseFile
from breadth_assets.universe import Universe

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN
CHUNK_TICKERS = 100
"""Tickers whose prices and indicators are read and checked at a time."""


@dataclass
class Tables:
    """What the checks of one step read, each at most once."""

    store: MarketStore
    universe: Universe
    tickers: list[str]
    first_bars: pd.Series | None = None
    """Each ticker's first bar, gathered over the chunks for the breadth checks."""

    @cached_property
    def prices(self) -> pd.DataFrame:
        return self.store.read_prices(self.tickers)

    @cached_property
    def indicators(self) -> pd.DataFrame:
        return self.store.read_indicators(self.tickers)

    @cached_property
    def breadth(self) -> pd.DataFrame:
        return self.store.read_breadth()

    @cached_property
    def last_day(self) -> dt.date:
        return last_closed_day(self.universe.market, extra_closures=self.universe.extra_closures)

    def calendar(self, dates: pd.Series) -> pd.DatetimeIndex:
        if dates.empty:
            return pd.DatetimeIndex([])
        start, end = pd.Timestamp(dates.min()).date(), pd.Timestamp(dates.max()).date()
        return trading_days(self.universe.market, start, end, self.universe.extra_closures)

    def counts(self, rows: pd.DataFrame) -> dict[str, int]:
        return {"rows_checked": len(rows), "tickers_checked": rows["ticker"].nunique()}


@dataclass(frozen=True)
class Finding:
    problems: pd.DataFrame
    what: str
    """What a problem is, plural: "inconsistent bars"."""
    counts: dict[str, int]
    texts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    asset: dg.AssetKey
    name: str
    severity: dg.AssetCheckSeverity
    description: str
    find: Callable[[Tables], Finding]


def _coverage(tables: Tables) -> Finding:
    first_bars = tables.first_bars
    if first_bars is None:
        first_bars = tables.prices.groupby("ticker")["date"].min()
    return Finding(
        quality.coverage_shortfalls(tables.breadth, first_bars),
        f"days covering under {quality.MIN_COVERAGE:.0%} of the listed tickers",
        {"days_checked": len(tables.breadth), "tickers_listed": len(first_bars)},
    )


def _fresh(tables: Tables) -> Finding:
    day = tables.last_day
    return Finding(
        quality.stale_tickers(tables.prices, tables.tickers, day),
        f"tickers without a bar on {day:%Y-%m-%d}",
        {"tickers_checked": len(tables.tickers)},
        {"last_closed_day": f"{day:%Y-%m-%d}"},
    )


CHECKS: Sequence[Check] = (
    Check(
        RAW_PRICES,
        "ohlc_consistent",
        ERROR,
        "Every bar is a possible OHLCV bar: high >= max(open, close), low <= min(open, close), "
        "every price > 0 and volume >= 0.",
        lambda t: Finding(quality.ohlc_problems(t.prices), "inconsistent bars", t.counts(t.prices)),
    ),
    Check(
        RAW_PRICES,
        "unique_keys",
        ERROR,
        "No (ticker, date) occurs twice in `prices`.",
        lambda t: Finding(
            quality.duplicate_keys(t.prices, schema.KEYS[schema.PRICES]),
            "duplicated (ticker, date) keys",
            t.counts(t.prices),
        ),
    ),
    Check(
        RAW_PRICES,
        "no_long_gaps",
        WARN,
        f"No ticker misses more than {quality.MAX_GAP_TRADING_DAYS} consecutive trading days of "
        "the market's calendar between two of its bars (days before its first bar do not "
        "count). A warning: a trading halt is a legitimate gap, but worth a look.",
        lambda t: Finding(
            quality.gaps(t.prices, t.calendar(t.prices["date"])),
            "gaps between bars",
            t.counts(t.prices),
        ),
    ),
    Check(
        RAW_PRICES,
        "suspected_splits",
        WARN,
        f"Close-to-close moves above {quality.SPLIT_MOVE:.0%} in one bar, flagged as suspected "
        "unadjusted splits (a warning: a real crash or spike looks the same).",
        lambda t: Finding(
            quality.suspected_splits(t.prices), "suspected splits", t.counts(t.prices)
        ),
    ),
    Check(
        RAW_PRICES,
        "fresh",
        ERROR,
        "Every ticker of the universe has a bar on the market's last closed trading day (the "
        "last day whose daily update time has passed). A stale ticker is an error: the daily "
        "update did not reach it, and breadth for that day leaves it out.",
        _fresh,
    ),
    Check(
        INDICATORS,
        "one_row_per_price",
        ERROR,
        "`indicators` has exactly the (ticker, date) keys of `prices`: one row per bar.",
        lambda t: Finding(
            quality.key_mismatches(t.prices, t.indicators),
            "keys in only one of prices and indicators",
            {"price_rows": len(t.prices), "indicator_rows": len(t.indicators)},
        ),
    ),
    Check(
        INDICATORS,
        "no_nulls_after_warm_up",
        ERROR,
        "No NULL indicator after its warm-up, counted in the ticker's own bars: ema_N from bar "
        "N, rsi_14 from bar 15, macd/macd_signal/macd_hist from bar 34, macd_stage from bar 35, "
        "bb_* from bar 20, high_52w/low_52w from bar 253 (TA-Lib's lookbacks).",
        lambda t: Finding(
            quality.unexpected_nulls(t.indicators),
            "NULL values after the warm-up",
            {
                "rows_checked": len(t.indicators),
                "tickers_checked": t.indicators["ticker"].nunique(),
            },
        ),
    ),
    Check(
        BREADTH,
        "every_trading_day",
        ERROR,
        "Every trading day of the market's calendar from the first to the last stored breadth "
        "date has a breadth row.",
        lambda t: Finding(
            quality.missing_days(t.breadth, t.calendar(t.breadth["date"])),
            "trading days without breadth",
            {"days_checked": len(t.breadth)},
        ),
    ),
    Check(
        BREADTH,
        "universe_coverage",
        ERROR,
        f"Each day's `universe` covers at least {quality.MIN_COVERAGE:.0%} of the universe's "
        "tickers listed by then (a first bar on or before that day), so a day that left out "
        "many failed or missing tickers does not pass for the whole market.",
        _coverage,
    ),
    Check(
        BREADTH,
        "percentages_in_range",
        ERROR,
        "The percentages (pct_above_ema_20/50/200, macd_stage_1..6) lie within 0..100.",
        lambda t: Finding(
            quality.percentages_out_of_range(t.breadth),
            "percentages outside 0..100",
            {"days_checked": len(t.breadth)},
        ),
    ),
)


def _merged(parts: list[Finding]) -> Finding:
    """The findings of the chunks as one: problems together, counts added up."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Finding(pd.DataFrame(), "problems", {})
    counts = {name: sum(part.counts[name] for part in parts) for name in parts[0].counts}
    problems = pd.concat([part.problems for part in parts], ignore_index=True)
    return Finding(problems, parts[0].what, counts, parts[0].texts)


def _concat(series: list[pd.Series]) -> pd.Series:
    return pd.concat(series) if series else pd.Series(dtype="datetime64[us]")


def _result(check: Check, found: Finding) -> dg.AssetCheckResult:
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
    return dg.AssetCheckResult(
        asset_key=check.asset,
        check_name=check.name,
        passed=problems.empty,
        severity=check.severity,
        description=f"{len(problems)} {found.what}" if len(problems) else f"no {found.what}",
        metadata=metadata,
    )


def _deferred(context: dg.AssetCheckExecutionContext) -> bool:
    """A batch run of a backfill: the checks read whole tables, so they wait for its end."""
    return BACKFILL_ID_TAG in context.run.tags


def build_checks() -> list[dg.AssetChecksDefinition]:
    """One check step for every check, reading each stored table at most once."""

    @dg.multi_asset_check(
        name="quality_checks",
        specs=[
            dg.AssetCheckSpec(check.name, asset=check.asset, description=check.description)
            for check in CHECKS
        ],
        can_subset=True,
    )
    def quality_checks(
        context: dg.AssetCheckExecutionContext, store: MarketStore, universe: UniverseFile
    ) -> Iterator[dg.AssetCheckResult]:
        if _deferred(context):
            context.log.info(
                "asset checks left out of this backfill batch run: quality_after_backfill_sensor "
                "runs them once over the stored tables when the backfill ends"
            )
            return
        tickers = context.instance.get_dynamic_partitions(tickers_partitions.name)
        current = universe.load()
        selected = [
            check
            for check in CHECKS
            if dg.AssetCheckKey(check.asset, check.name) in context.selected_asset_check_keys
        ]
        by_ticker = [check for check in selected if check.asset != BREADTH]
        found: dict[str, list[Finding]] = {check.name: [] for check in by_ticker}
        first_bars = []
        for start in range(0, len(tickers), CHUNK_TICKERS):
            chunk = Tables(store, current, tickers[start : start + CHUNK_TICKERS])
            for check in by_ticker:
                found[check.name].append(check.find(chunk))
            if len(selected) > len(by_ticker):
                first_bars.append(chunk.prices.groupby("ticker")["date"].min())
        for check in by_ticker:
            yield _result(check, _merged(found[check.name]))
        whole = Tables(store, current, tickers, _concat(first_bars))
        for check in selected:
            if check.asset == BREADTH:
                yield _result(check, check.find(whole))

    return [quality_checks]
