"""`breadth[trading_day]`: market breadth over every ticker of the universe, one row a day."""

import datetime as dt
import time
import warnings
from collections.abc import Sequence

import dagster as dg
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics import breadth_report
from breadth_assets.analytics.breadth import BreadthState, compute_breadth_in_chunks, state_after
from breadth_assets.assets.column_schemas import table_asset_args
from breadth_assets.assets.reporting import date_range_text, record_good_partitions
from breadth_assets.deployment import worker_name
from breadth_assets.partitions import tickers_partitions
from breadth_assets.resources.market_store import MarketStore, StaleMark
from breadth_assets.resources.universe_file import UniverseFile

BREADTH = dg.AssetKey("breadth")
SUMMARY_COLUMNS = ["universe", "advancers", "decliners", "ad_line", "mcclellan_osc"]
CHUNK_DAYS = 500
"""Trading days read and counted at a time: memory holds about two years of ticker-days."""
RECENT_DAYS = 400
"""Calendar days of stored rows read back for the UI's table and year chart."""
CLOSURES_LISTED = 30


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
    """Computes the asked days from the stored row of the day before them.

    The cumulative columns (A/D line, McClellan, Zweig) depend on every earlier day; a stored
    row carries what their recursions need, so a day costs one day. When inputs changed on or
    before that row (the store's stale mark) or no row is stored, the computation starts at the
    first day it must: the rows equal one computation from the first trading day. The days are
    read and counted `CHUNK_DAYS` at a time, so memory holds a chunk, not the history.
    """
    started = time.perf_counter()
    current = universe.load()
    closed = current.last_day().isoformat()
    keys = [key for key in sorted(context.partition_keys) if key <= closed]
    not_over = [key for key in sorted(context.partition_keys) if key > closed]
    tickers = context.instance.get_dynamic_partitions(tickers_partitions.name)
    written = pd.DataFrame(columns=list(schema.BREADTH_COLUMNS))
    recent = written
    first = None
    if keys:
        days = pd.DatetimeIndex(
            pd.to_datetime(
                trading_days.get_partition_keys_in_range(
                    dg.PartitionKeyRange(trading_days.get_first_partition_key(), keys[-1])
                )
            )
        )
        left_or_joined = sorted(set(store.read_breadth_tickers()) ^ set(tickers))
        if left_or_joined:
            store.mark_breadth_stale(left_or_joined)
        mark = store.breadth_stale()
        asked = days.get_loc(pd.Timestamp(keys[0]))
        begin, state = _starting_point(store, tickers, days, asked, mark)
        first = days[begin]
        if first < pd.Timestamp(keys[0]):
            context.log.info(
                f"breadth: computing from {first:%Y-%m-%d}, the first day whose row is missing "
                f"or whose inputs changed (stale mark {mark.stale_from})"
            )

        def count(chunk: pd.DatetimeIndex) -> pd.DataFrame:
            return store.count_breadth(tickers, chunk)

        computed = days[begin:]
        parts = []
        chunks = compute_breadth_in_chunks(count, computed, CHUNK_DAYS, state)
        for number, part in enumerate(chunks, start=1):
            parts.append(part)
            done = min(number * CHUNK_DAYS, len(computed))
            context.log.info(
                f"breadth: counted {done} of {len(computed)} days "
                f"(up to {computed[done - 1]:%Y-%m-%d})"
            )
        series = pd.concat(parts, ignore_index=True)
        # Days before the asked ones are written only where a (stale) row is stored: a day
        # Dagster has never materialized stays absent from the table.
        stored = store.read_breadth(start=first.date(), end=pd.Timestamp(keys[0]).date())["date"]
        written = series[series["date"].isin(stored) | (series["date"] >= pd.Timestamp(keys[0]))]
        dropped = computed.difference(pd.DatetimeIndex(series["date"]))
        store.write_breadth(
            written,
            sorted(tickers),
            mark,
            _stale_after(store, mark, keys[-1]),
            dropped=[day.date() for day in dropped],
        )
        last_bar = _last_breadth_day(store, series, first)
        metadata_days = _days_without_bars(context, keys, dropped, last_bar)
        shown_until = last_bar if last_bar is not None else pd.Timestamp(keys[-1])
        recent = store.read_breadth(
            start=(shown_until - pd.Timedelta(days=RECENT_DAYS)).date(), end=shown_until.date()
        )
    seconds = time.perf_counter() - started
    metadata = {
        "rows_written": dg.MetadataValue.int(len(written)),
        "date_range": dg.MetadataValue.text(date_range_text(written)),
        "tickers": dg.MetadataValue.int(len(tickers)),
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
        "worker": dg.MetadataValue.text(worker_name()),
    }
    if first is not None:
        metadata["computed_from"] = dg.MetadataValue.text(f"{first:%Y-%m-%d}")
        metadata.update(metadata_days)
    report: dict[str, dg.MetadataValue] = {}
    if len(written):
        last = written.iloc[-1]
        for column in SUMMARY_COLUMNS:
            metadata[f"last_{column}"] = dg.MetadataValue.float(float(last[column]))
    if len(recent):
        # The table and chart go on the run's last day only: Dagster copies a ranged run's
        # metadata into every day's materialization, and the chart is tens of KB.
        report = {
            "last_days": dg.MetadataValue.md(breadth_report.last_days_table(recent)),
            "chart": dg.MetadataValue.md(
                breadth_report.chart_markdown(breadth_report.chart_png(recent))
            ),
        }
        context.add_asset_metadata(report, partition_key=keys[-1])
    context.log.info(
        f"breadth: {len(written)} days over {len(tickers)} tickers written in {seconds:.2f} s"
    )
    if not_over:
        extra = {keys[-1]: report} if keys else {}
        record_good_partitions(context, BREADTH, keys, {}, metadata, extra)
        market = current.calendar
        raise dg.Failure(
            description=f"{', '.join(not_over)}: the {current.market} trading day has not reached "
            f"its update time ({market.update_time:%H:%M} {market.timezone}) yet; the daily update "
            "materializes it then. The other days were written."
        )
    return dg.MaterializeResult(metadata=metadata)


def _last_breadth_day(
    store: MarketStore, series: pd.DataFrame, first: pd.Timestamp
) -> pd.Timestamp | None:
    """The last day with a breadth row up to the computed ones: the data's last day so far."""
    if len(series):
        return pd.Timestamp(series["date"].iloc[-1])
    before = store.read_breadth_before(first.date())
    return None if before is None else pd.Timestamp(before["date"])


def _days_without_bars(
    context: dg.AssetExecutionContext,
    keys: list[str],
    dropped: pd.DatetimeIndex,
    last_bar: pd.Timestamp | None,
) -> dict[str, dg.MetadataValue]:
    """Reports the asked days on which no ticker had a bar: closures found in the data (a day
    the calendar thought open), and the days after the data's last day."""
    asked = dropped[dropped >= pd.Timestamp(keys[0])]
    closures = asked[asked < last_bar] if last_bar is not None else asked[:0]
    after = asked.difference(closures)
    metadata: dict[str, dg.MetadataValue] = {"closures_found": dg.MetadataValue.int(len(closures))}
    if len(closures):
        listed = ", ".join(f"{day:%Y-%m-%d}" for day in closures[:CLOSURES_LISTED])
        hidden = len(closures) - CLOSURES_LISTED
        more = f" and {hidden} more" if hidden > 0 else ""
        metadata["closures_found_days"] = dg.MetadataValue.text(listed + more)
        context.log.info(
            f"breadth: {len(closures)} closures found in the data (no ticker has a bar; no row, "
            f"the cumulative columns do not move): {listed}{more}"
        )
    if len(after):
        since = f"after {last_bar:%Y-%m-%d}" if last_bar is not None else "in these days"
        metadata["no_bars_after"] = dg.MetadataValue.text(
            f"{last_bar:%Y-%m-%d}" if last_bar is not None else "none"
        )
        context.log.info(
            f"breadth: no ticker has a bar {since}: {len(after)} asked days "
            f"({after[0]:%Y-%m-%d}..{after[-1]:%Y-%m-%d}) get no row"
        )
    return metadata


def _starting_point(
    store: MarketStore,
    tickers: Sequence[str],
    days: pd.DatetimeIndex,
    begin: int,
    mark: StaleMark,
) -> tuple[int, BreadthState]:
    """The first day to compute and the state it goes on from.

    The stored row before `days[begin]` serves when the stale mark is after it and it carries
    the state columns; else the start moves back to the mark (or to the day after the latest
    stored row), and ultimately to the first trading day. Without any row before it, a day
    before which no ticker has a bar starts afresh: the days before it have no row either.
    """
    while begin > 0:
        row = store.read_breadth_before(days[begin].date())
        if row is None:
            if store.read_previous_closes(tickers, days[begin].date()).empty:
                return begin, BreadthState()
            break
        base = pd.Timestamp(row["date"])
        if base not in days:
            break
        state = state_after(row)
        if state is None:
            break
        if mark.stale_from is not None and pd.Timestamp(mark.stale_from) <= base:
            begin = int(days.searchsorted(pd.Timestamp(mark.stale_from)))
            continue
        return days.get_loc(base) + 1, state
    return 0, BreadthState()


def _stale_after(store: MarketStore, mark: StaleMark, last: str) -> dt.date | None:
    """Where the stale mark stands once breadth is current up to `last`: the next stored day
    (still computed from old inputs), or nowhere; unchanged when it is after `last`."""
    if mark.stale_from is None or mark.stale_from.isoformat() > last:
        return mark.stale_from
    after = (pd.Timestamp(last) + pd.Timedelta(days=1)).date()
    latest = store.read_breadth_before(dt.date.max)
    return after if latest is not None and pd.Timestamp(latest["date"]).date() >= after else None
