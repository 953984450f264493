"""Asset checks on `raw_prices`, `indicators` and `breadth`, shown on each asset's Checks tab.

The rules live in `breadth_assets.analytics.quality` and `.freshness`; here a table names each
check, and one check step reads each stored table it needs once, for the universe's current
tickers (the `tickers` partitions), `CHUNK_TICKERS` tickers at a time. A check of scope "chunk"
looks at one ticker's rows, so it runs on each chunk and memory holds a chunk, not the table; a
check of scope "universe" runs once, on what the chunks left (`Gathered`: each ticker's first and
last bar, the days with bars, the per-chunk part of its rule), because listings, delistings and
closures found in the data are facts of the whole universe; a check of scope "breadth" reads only
`breadth`. Every selected check reports its offenders as a markdown table (the first 50) with
their counts. The checks are non-blocking: run them from the UI ("Execute checks") or with
`quality_checks_job`; the ticker and breadth jobs do not run them, so a batch of 50 tickers never
rereads the whole universe.
"""

from collections.abc import Iterator, Sequence

import dagster as dg
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics import freshness, quality
from breadth_assets.defs.assets import BREADTH, INDICATORS, RAW_PRICES
from breadth_assets.defs.check_tables import (
    Check,
    Finding,
    Gathered,
    Tables,
    gather,
    merged,
    result,
)
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.defs.signal_checks import build_signal_checks
from breadth_assets.defs.stale_breadth import breadth_days, stale_breadth
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.runtime.dagster_compat import BACKFILL_ID_TAG
from breadth_assets.stores.base import MarketStore

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN
CHUNK_TICKERS = 100
"""Tickers whose prices and indicators are read and checked at a time."""


def _day(day: object) -> str:
    return f"{pd.Timestamp(day):%Y-%m-%d}"


def _coverage(t: Tables) -> Finding:
    return Finding(
        quality.coverage_shortfalls(t.breadth, t.spans, t.open_days),
        f"days covering under {quality.MIN_COVERAGE:.0%} of the tickers listed on them",
        {"days_checked": len(t.breadth), "tickers_listed": len(t.spans)},
    )


def _every_day(t: Tables) -> Finding:
    closures = quality.closures_in_data(t.market_days, t.bar_days)
    return Finding(
        quality.missing_days(t.breadth, t.open_days),
        "trading days without breadth",
        {"days_checked": len(t.breadth), "closures_in_data": len(closures)},
        tables={"closures": pd.DataFrame({"date": closures})},
    )


def _fresh(t: Tables) -> Finding:
    found = freshness.freshness(t.spans, t.tickers, t.market_days, t.open_days, t.reference_day)
    counts = {"tickers_checked": len(t.tickers), "tickers_ended": len(found.ended)}
    texts = {"reference_day": _day(found.reference_day)}
    if pd.notna(found.latest_bar):
        texts["universe_last_bar"] = _day(found.latest_bar)
    tables = {"ended": found.ended}
    if not found.stale:
        return Finding(
            found.stopped,
            f"tickers whose last bar is 1 to {freshness.RECENT_STOP_DAYS} trading days before "
            f"the universe's latest bar, {texts.get('universe_last_bar', '—')}, or without bars",
            counts,
            texts,
            tables,
        )
    if pd.isna(found.latest_bar):
        message = f"no ticker of the universe has a bar (reference day {texts['reference_day']})"
    else:
        message = (
            f"no ticker has a bar after {_day(found.latest_bar)}, {found.behind} trading days "
            f"before {texts['reference_day']}; if the history is finished, set end_date in the "
            "universe file"
        )
    problem = pd.DataFrame(
        {
            "latest_bar": [found.latest_bar],
            "reference_day": [found.reference_day],
            "trading_days_behind": [found.behind],
        }
    )
    return Finding(problem, "stale universe", counts, texts, tables, message)


def _unexplained_moves(t: Tables) -> Finding:
    moves = quality.unexplained_moves(t.indicators, t.actions, t.universe.max_daily_move)
    return Finding(
        moves,
        "unexplained moves",
        {"rows_checked": len(t.indicators)},
        {"max_daily_move": f"{t.universe.max_daily_move:.0%}"},
        hint="declare each in the universe's actions file (split, bonus, consolidation, "
        "factor; move when it is real)",
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
        f"No ticker misses more than {quality.MAX_GAP_TRADING_DAYS} consecutive open days (trading "
        "days of the calendar on which some ticker of the universe has a bar) between two of its "
        "bars: only inside its life, so a listing or a delisting is no gap, nor a closure found "
        "in the data. A warning: a trading halt is a legitimate gap, but worth a look.",
        lambda t: Finding(
            quality.recount_gaps(t.part("no_long_gaps"), t.open_days),
            "gaps between bars",
            t.span_counts(),
        ),
        scope="universe",
        gather=lambda t: quality.gaps(t.prices, t.calendar(t.prices["date"])),
    ),
    Check(
        RAW_PRICES,
        "instrument_key_changes",
        WARN,
        "No ticker's instrument key changed (an NSE split gives the stock a new ISIN, so its "
        "Upstox key changes): every change recorded in `instrument_keys` is listed with the old "
        "key, the new one and the date of the first bar fetched under it. A warning: the bars "
        "from that date come from the new key, joined to the stored ones; declare the split in "
        "the universe's actions file.",
        lambda t: Finding(
            quality.key_changes(t.instrument_keys),
            "instrument key changes",
            {"tickers_checked": len(t.tickers), "keys_recorded": len(t.instrument_keys)},
        ),
    ),
    Check(
        RAW_PRICES,
        "fresh",
        WARN,
        "The universe's latest bar is at most "
        f"{freshness.FRESH_TOLERANCE_DAYS} trading day before the reference day (the last "
        "closed day, or the universe's end_date if earlier), else one warning for the universe; "
        "and no ticker stopped recently: its last bar 1 to "
        f"{freshness.RECENT_STOP_DAYS} open days before the universe's latest bar (a failed "
        "fetch, a new halt or delisting), or no bar at all. Tickers that ended earlier "
        "(delisted) are listed in `ended`, without a warning.",
        _fresh,
        scope="universe",
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
        "unexplained_moves",
        ERROR,
        "No adjusted close (indicators.close) moves more than the universe's max_daily_move from "
        "the ticker's previous bar (default: the market's widest price band, NSE 20%) without "
        "a corporate action that day: an undeclared split or bonus would distort every "
        "indicator and breadth for months. Declare it in the universe's actions file "
        "(`TICKER,YYYY-MM-DD,split,1:5`), or as `move` when the move is real.",
        _unexplained_moves,
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
        "Every open day (a trading day of the market's calendar on which some ticker of the "
        "universe has a bar) from the first to the last stored breadth date has a breadth row. "
        "A calendar day without any bar is a closure found in the data (listed in `closures`), "
        "and has no breadth row.",
        _every_day,
        scope="universe",
    ),
    Check(
        BREADTH,
        "universe_coverage",
        WARN,
        f"Each open day's `universe` covers at least {quality.MIN_COVERAGE:.0%} of the tickers "
        "listed on it (first bar on or before it, last bar on or after it), so a day that left "
        "out many failed or missing tickers does not pass for the whole market. A warning: a "
        "thin day of an illiquid market looks the same.",
        _coverage,
        scope="universe",
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
        scope="breadth",
    ),
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
        by_chunk = [check for check in selected if check.scope == "chunk"]
        over_universe = [check for check in selected if check.scope == "universe"]
        found: dict[str, list[Finding]] = {check.name: [] for check in by_chunk}
        gathered = Gathered()
        for start in range(0, len(tickers), CHUNK_TICKERS):
            chunk = Tables(store, current, tickers[start : start + CHUNK_TICKERS])
            for check in by_chunk:
                found[check.name].append(check.find(chunk))
            if over_universe:
                gather(gathered, chunk, over_universe)
        for check in by_chunk:
            yield result(check, merged(found[check.name]))
        whole = Tables(store, current, tickers, gathered)
        for check in selected:
            if check.scope != "chunk":
                yield result(check, check.find(whole))

    return [quality_checks, breadth_up_to_date, build_signal_checks()]


@dg.asset_check(
    asset=BREADTH,
    name="breadth_up_to_date",
    description="The stored breadth is as new as its inputs: no prices or indicators written "
    "on or before its last row since it was computed (the store's stale mark), no ticker "
    "joined or left the universe since, no group of the universe file added, changed or removed, "
    "and no bars after its last row. On failure it names "
    "the first stale day and why; `breadth-assets run`, or daily_breadth_sensor under the "
    "daemon, recomputes from there.",
    blocking=False,
)
def breadth_up_to_date(
    context: dg.AssetCheckExecutionContext, store: MarketStore, universe: UniverseFile
) -> dg.AssetCheckResult:
    tickers = context.instance.get_dynamic_partitions(tickers_partitions.name)
    current = universe.load()
    found = stale_breadth(store, tickers, breadth_days(current), groups=current.groups)
    if found is None:
        return dg.AssetCheckResult(passed=True, severity=ERROR, description="up to date")
    return dg.AssetCheckResult(
        passed=False,
        severity=ERROR,
        description=found.text(),
        metadata={
            "first_stale_day": dg.MetadataValue.text(f"{found.first_day}"),
            "last_day": dg.MetadataValue.text(f"{found.last_day}"),
            "reason": dg.MetadataValue.text(found.reason),
        },
    )
