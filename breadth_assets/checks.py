"""Asset checks on `raw_prices`, `indicators` and `breadth`, shown on each asset's Checks tab.

The rules live in `breadth_assets.analytics.quality`; here each one reads the whole stored table
for the universe's current tickers (the `tickers` partitions) and reports its offenders as a
markdown table (the first 50) with their counts. The checks are unpartitioned and non-blocking:
run them from the UI ("Execute checks") or with `quality_checks_job`; the ticker and breadth
jobs do not run them, so a batch of 50 tickers never rereads the whole universe.
"""

import dagster as dg
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics import quality
from breadth_assets.assets import INDICATORS, RAW_PRICES
from breadth_assets.calendars import last_closed_day, trading_days
from breadth_assets.partitions import UNIVERSE, tickers_partitions
from breadth_assets.resources.market_store import MarketStore

BREADTH = dg.AssetKey("breadth")
ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


def _tickers(context: dg.AssetCheckExecutionContext) -> list[str]:
    return context.instance.get_dynamic_partitions(tickers_partitions.name)


def _calendar(dates: pd.Series) -> pd.DatetimeIndex:
    if dates.empty:
        return pd.DatetimeIndex([])
    start, end = pd.Timestamp(dates.min()).date(), pd.Timestamp(dates.max()).date()
    return trading_days(UNIVERSE.market, start, end, UNIVERSE.extra_closures)


def _result(
    problems: pd.DataFrame,
    severity: dg.AssetCheckSeverity,
    what: str,
    checked: dict[str, int],
) -> dg.AssetCheckResult:
    """Passed when `problems` is empty; otherwise counts, offending tickers and the table."""
    metadata: dict[str, dg.MetadataValue] = {
        name: dg.MetadataValue.int(int(value)) for name, value in checked.items()
    }
    metadata["problems"] = dg.MetadataValue.int(len(problems))
    if "ticker" in problems.columns:
        metadata["tickers_affected"] = dg.MetadataValue.int(int(problems["ticker"].nunique()))
    if "date" in problems.columns and len(problems):
        dates = pd.to_datetime(problems["date"])
        metadata["first_date"] = dg.MetadataValue.text(f"{dates.min():%Y-%m-%d}")
        metadata["last_date"] = dg.MetadataValue.text(f"{dates.max():%Y-%m-%d}")
    metadata["offenders"] = dg.MetadataValue.md(quality.problems_markdown(problems))
    return dg.AssetCheckResult(
        passed=problems.empty,
        severity=severity,
        description=f"{len(problems)} {what}" if len(problems) else f"no {what}",
        metadata=metadata,
    )


def _price_counts(prices: pd.DataFrame) -> dict[str, int]:
    return {"rows_checked": len(prices), "tickers_checked": prices["ticker"].nunique()}


@dg.asset_check(
    asset=RAW_PRICES,
    name="ohlc_consistent",
    description="Every bar is a possible OHLCV bar: high >= max(open, close), "
    "low <= min(open, close), every price > 0 and volume >= 0.",
    blocking=False,
)
def prices_ohlc_consistent(
    context: dg.AssetCheckExecutionContext, store: MarketStore
) -> dg.AssetCheckResult:
    prices = store.read_prices(_tickers(context))
    return _result(quality.ohlc_problems(prices), ERROR, "inconsistent bars", _price_counts(prices))


@dg.asset_check(
    asset=RAW_PRICES,
    name="unique_keys",
    description="No (ticker, date) occurs twice in `prices`.",
    blocking=False,
)
def prices_unique_keys(
    context: dg.AssetCheckExecutionContext, store: MarketStore
) -> dg.AssetCheckResult:
    prices = store.read_prices(_tickers(context))
    problems = quality.duplicate_keys(prices, schema.KEYS[schema.PRICES])
    return _result(problems, ERROR, "duplicated (ticker, date) keys", _price_counts(prices))


@dg.asset_check(
    asset=RAW_PRICES,
    name="no_long_gaps",
    description=f"No ticker misses more than {quality.MAX_GAP_TRADING_DAYS} consecutive trading "
    "days of the market's calendar between two of its bars (days before its first bar do not "
    "count). A warning: a trading halt is a legitimate gap, but worth a look.",
    blocking=False,
)
def prices_no_long_gaps(
    context: dg.AssetCheckExecutionContext, store: MarketStore
) -> dg.AssetCheckResult:
    prices = store.read_prices(_tickers(context))
    problems = quality.gaps(prices, _calendar(prices["date"]))
    return _result(problems, WARN, "gaps between bars", _price_counts(prices))


@dg.asset_check(
    asset=RAW_PRICES,
    name="suspected_splits",
    description=f"Close-to-close moves above {quality.SPLIT_MOVE:.0%} in one bar, flagged as "
    "suspected unadjusted splits (a warning: a real crash or spike looks the same).",
    blocking=False,
)
def prices_suspected_splits(
    context: dg.AssetCheckExecutionContext, store: MarketStore
) -> dg.AssetCheckResult:
    prices = store.read_prices(_tickers(context))
    problems = quality.suspected_splits(prices)
    return _result(problems, WARN, "suspected splits", _price_counts(prices))


@dg.asset_check(
    asset=RAW_PRICES,
    name="fresh",
    description="Every ticker of the universe has a bar on the market's last closed trading day "
    "(the last day whose daily update time has passed). A stale ticker is an error: the daily "
    "update did not reach it, and breadth for that day leaves it out.",
    blocking=False,
)
def prices_fresh(context: dg.AssetCheckExecutionContext, store: MarketStore) -> dg.AssetCheckResult:
    tickers = _tickers(context)
    prices = store.read_prices(tickers)
    last_day = last_closed_day(UNIVERSE.market, extra_closures=UNIVERSE.extra_closures)
    result = _result(
        quality.stale_tickers(prices, tickers, last_day),
        ERROR,
        f"tickers without a bar on {last_day:%Y-%m-%d}",
        {"tickers_checked": len(tickers)},
    )
    result.metadata["last_closed_day"] = dg.MetadataValue.text(f"{last_day:%Y-%m-%d}")
    return result


@dg.asset_check(
    asset=INDICATORS,
    name="one_row_per_price",
    description="`indicators` has exactly the (ticker, date) keys of `prices`: one row per bar.",
    blocking=False,
)
def indicators_match_prices(
    context: dg.AssetCheckExecutionContext, store: MarketStore
) -> dg.AssetCheckResult:
    tickers = _tickers(context)
    prices, indicators = store.read_prices(tickers), store.read_indicators(tickers)
    problems = quality.key_mismatches(prices, indicators)
    counts = {"price_rows": len(prices), "indicator_rows": len(indicators)}
    return _result(problems, ERROR, "keys in only one of prices and indicators", counts)


@dg.asset_check(
    asset=INDICATORS,
    name="no_nulls_after_warm_up",
    description="No NULL indicator after its warm-up, counted in the ticker's own bars: ema_N "
    "from bar N, rsi_14 from bar 15, macd/macd_signal/macd_hist from bar 34, macd_stage from "
    "bar 35, bb_* from bar 20, high_52w/low_52w from bar 253 (TA-Lib's lookbacks).",
    blocking=False,
)
def indicators_no_nulls_after_warm_up(
    context: dg.AssetCheckExecutionContext, store: MarketStore
) -> dg.AssetCheckResult:
    indicators = store.read_indicators(_tickers(context))
    counts = {"rows_checked": len(indicators), "tickers_checked": indicators["ticker"].nunique()}
    problems = quality.unexpected_nulls(indicators)
    return _result(problems, ERROR, "NULL values after the warm-up", counts)


@dg.asset_check(
    asset=BREADTH,
    name="every_trading_day",
    description="Every trading day of the market's calendar from the first to the last stored "
    "breadth date has a breadth row.",
    blocking=False,
)
def breadth_every_trading_day(store: MarketStore) -> dg.AssetCheckResult:
    rows = store.read_breadth()
    problems = quality.missing_days(rows, _calendar(rows["date"]))
    return _result(problems, ERROR, "trading days without breadth", {"days_checked": len(rows)})


@dg.asset_check(
    asset=BREADTH,
    name="universe_coverage",
    description=f"Each day's `universe` covers at least {quality.MIN_COVERAGE:.0%} of the "
    "universe's tickers listed by then (a first bar on or before that day), so a day that "
    "left out many failed or missing tickers does not pass for the whole market.",
    blocking=False,
)
def breadth_universe_coverage(
    context: dg.AssetCheckExecutionContext, store: MarketStore
) -> dg.AssetCheckResult:
    rows = store.read_breadth()
    prices = store.read_prices(_tickers(context))
    first_bars = prices.groupby("ticker")["date"].min()
    problems = quality.coverage_shortfalls(rows, first_bars)
    return _result(
        problems,
        ERROR,
        f"days covering under {quality.MIN_COVERAGE:.0%} of the listed tickers",
        {"days_checked": len(rows), "tickers_listed": len(first_bars)},
    )


@dg.asset_check(
    asset=BREADTH,
    name="percentages_in_range",
    description="The percentages (pct_above_ema_20/50/200, macd_stage_1..6) lie within 0..100.",
    blocking=False,
)
def breadth_percentages_in_range(store: MarketStore) -> dg.AssetCheckResult:
    rows = store.read_breadth()
    problems = quality.percentages_out_of_range(rows)
    return _result(problems, ERROR, "percentages outside 0..100", {"days_checked": len(rows)})


raw_prices_checks = [
    prices_ohlc_consistent,
    prices_unique_keys,
    prices_no_long_gaps,
    prices_suspected_splits,
    prices_fresh,
]
indicators_checks = [indicators_match_prices, indicators_no_nulls_after_warm_up]
breadth_checks = [
    breadth_every_trading_day,
    breadth_universe_coverage,
    breadth_percentages_in_range,
]
all_checks = [*raw_prices_checks, *indicators_checks, *breadth_checks]

quality_checks_job = dg.define_asset_job(
    "quality_checks_job",
    selection=dg.AssetSelection.all_asset_checks(),
    description="Run every data-quality check over the whole stored tables (no asset is "
    "materialized).",
)
