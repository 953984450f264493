"""`breadth[trading_day]`: market breadth over every ticker of the universe, one row a day."""

import time
import warnings

import dagster as dg
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics import breadth_report
from breadth_assets.analytics.breadth import compute_breadth_in_chunks
from breadth_assets.assets.column_schemas import table_asset_args
from breadth_assets.assets.reporting import date_range_text, record_good_partitions
from breadth_assets.calendars import TIMEZONES, UPDATE_TIMES, last_closed_day
from breadth_assets.partitions import tickers_partitions
from breadth_assets.resources.market_store import MarketStore
from breadth_assets.resources.universe_file import UniverseFile

BREADTH = dg.AssetKey("breadth")
SUMMARY_COLUMNS = ["universe", "advancers", "decliners", "ad_line", "mcclellan_osc"]
CHUNK_DAYS = 500
"""Trading days read and counted at a time: memory holds about two years of ticker-days."""


def build_breadth(
    trading_days: dg.DailyPartitionsDefinition, store_kind: str
) -> dg.AssetsDefinition:
    """Breadth over the market's trading days; a backfill of any range is one run."""

    def breadth(
        context: dg.AssetExecutionContext, store: MarketStore, universe: UniverseFile
    ) -> dg.MaterializeResult:
        return _materialize(context, store, universe, trading_days)

    # BackfillPolicy is how a breadth backfill becomes one run; Dagster flags the parameter as
    # beta on @asset (not on @multi_asset), which would be the only warning the location emits.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        return dg.asset(
            name="breadth",
            partitions_def=trading_days,
            deps=[dg.AssetDep("indicators", partition_mapping=dg.AllPartitionMapping())],
            backfill_policy=dg.BackfillPolicy.single_run(),
            description="Advance/decline, McClellan, % above EMAs, new 52-week highs/lows, "
            "TRIN, RSI extremes, Zweig and MACD-stage shares over the universe, in the "
            "`breadth` table.",
            **table_asset_args(schema.BREADTH, store_kind),
        )(breadth)


def _materialize(
    context: dg.AssetExecutionContext,
    store: MarketStore,
    universe: UniverseFile,
    trading_days: dg.DailyPartitionsDefinition,
) -> dg.MaterializeResult:
    """Recomputes the series from the first trading day up to the run's last day.

    The cumulative columns (A/D line, McClellan, Zweig) depend on every earlier day, so
    computing them from the start is what makes one date equal to a run over the whole range.
    The days are read and counted `CHUNK_DAYS` at a time, carrying the cumulative columns
    over, so memory holds a chunk of ticker-days rather than the whole history.
    """
    started = time.perf_counter()
    current = universe.load()
    closed = last_closed_day(current.market, extra_closures=current.extra_closures).isoformat()
    keys = [key for key in sorted(context.partition_keys) if key <= closed]
    not_over = [key for key in sorted(context.partition_keys) if key > closed]
    tickers = context.instance.get_dynamic_partitions(tickers_partitions.name)
    wanted = pd.DataFrame(columns=list(schema.BREADTH_COLUMNS))
    if keys:
        all_days = trading_days.get_partition_keys_in_range(
            dg.PartitionKeyRange(trading_days.get_first_partition_key(), keys[-1])
        )

        def read(first: pd.Timestamp | None, last: pd.Timestamp) -> pd.DataFrame:
            start = first.date() if first is not None else None
            return store.read_breadth_inputs(tickers, last.date(), start=start)

        wanted_days = pd.to_datetime(keys)
        parts = []
        for part in compute_breadth_in_chunks(read, pd.to_datetime(all_days), CHUNK_DAYS):
            parts.append(part)
            context.log.info(f"breadth: counted up to {part['date'].iloc[-1]:%Y-%m-%d}")
        series = pd.concat(parts, ignore_index=True)
        wanted = series[series["date"].isin(wanted_days)]
        store.write({schema.BREADTH: wanted})
    seconds = time.perf_counter() - started
    metadata = {
        "rows_written": dg.MetadataValue.int(len(wanted)),
        "date_range": dg.MetadataValue.text(date_range_text(wanted)),
        "tickers": dg.MetadataValue.int(len(tickers)),
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
    }
    report: dict[str, dg.MetadataValue] = {}
    if len(wanted):
        last = wanted.iloc[-1]
        for column in SUMMARY_COLUMNS:
            metadata[f"last_{column}"] = dg.MetadataValue.float(float(last[column]))
        # The table and chart go on the run's last day only: Dagster copies a ranged run's
        # metadata into every day's materialization, and the chart is tens of KB.
        recent = series[series["date"] <= pd.Timestamp(keys[-1])]
        report = {
            "last_days": dg.MetadataValue.md(breadth_report.last_days_table(recent)),
            "chart": dg.MetadataValue.md(
                breadth_report.chart_markdown(breadth_report.chart_png(recent))
            ),
        }
        context.add_asset_metadata(report, partition_key=keys[-1])
    context.log.info(
        f"breadth: {len(wanted)} days over {len(tickers)} tickers written in {seconds:.2f} s"
    )
    if not_over:
        extra = {keys[-1]: report} if keys else {}
        record_good_partitions(context, BREADTH, keys, {}, metadata, extra)
        at = UPDATE_TIMES[current.market]
        raise dg.Failure(
            description=f"{', '.join(not_over)}: the {current.market} trading day has not reached "
            f"its update time ({at:%H:%M} {TIMEZONES[current.market]}) yet; the daily update "
            "materializes it then. The other days were written."
        )
    return dg.MaterializeResult(metadata=metadata)
