"""`breadth[trading_day]`: market breadth over every ticker of the universe, one row a day."""

import datetime as dt
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics import breadth_report
from breadth_assets.analytics.breadth import BreadthState, compute_breadth_in_chunks, state_after
from breadth_assets.defs.assets.adjusting import actions_in_days
from breadth_assets.defs.assets.column_schemas import table_asset_args
from breadth_assets.defs.assets.reporting import date_range_text, record_good_partitions
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.defs.report_keys import (
    BREADTH_PROGRESS,
    CLOSURES_FOUND,
    CLOSURES_FOUND_DAYS,
    NO_BARS_AFTER,
)
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.runtime.workers import worker_name
from breadth_assets.stores.base import MarketStore, StaleMark

BREADTH = dg.AssetKey("breadth")
DAY_COLUMNS = [
    "universe",
    "advancers",
    "decliners",
    "unchanged",
    "ad_line",
    "mcclellan_osc",
    "mcclellan_sum",
    "pct_above_ema_50",
    "pct_above_ema_200",
    "new_highs_52w",
    "new_lows_52w",
]
"""The breadth columns each day's materialization shows, with that day's values."""
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


@dataclass(frozen=True)
class _Plan:
    """What a run computes: `days[begin:]` from `state`, the asked `keys`, and how far it must
    carry on past them (stored rows the new inputs made stale)."""

    days: pd.DatetimeIndex
    begin: int
    state: BreadthState
    keys: list[str]
    mark: StaleMark
    carried_to: pd.Timestamp | None


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
    first day it must; when they changed before the last asked day and later rows are stored,
    it carries on to the last stored row: the rows equal one computation from the first trading
    day, with no break after the range. The days are read and counted `CHUNK_DAYS` at a time,
    so memory holds a chunk, not the history.
    """
    started = time.perf_counter()
    current = universe.load()
    closed = current.last_day().isoformat()
    keys = [key for key in sorted(context.partition_keys) if key <= closed]
    not_over = [key for key in sorted(context.partition_keys) if key > closed]
    tickers = context.instance.get_dynamic_partitions(tickers_partitions.name)
    by_day: dict[str, dict[str, dg.MetadataValue]] = {}
    if keys:
        plan = _plan(context, store, tickers, trading_days, keys)
        series, dropped = _compute(context, store, tickers, plan)
        written = _write(store, tickers, plan, series, dropped)
        by_day = _report(context, store, plan, series, written, dropped, len(tickers), started)
    context.log.info(
        f"breadth: {sum('universe' in m for m in by_day.values())} asked days over "
        f"{len(tickers)} tickers written in {time.perf_counter() - started:.2f} s"
    )
    if not_over:
        record_good_partitions(context, BREADTH, keys, {}, {}, by_day)
        market = current.calendar
        raise dg.Failure(
            description=f"{', '.join(not_over)}: the {current.market} trading day has not reached "
            f"its update time ({market.update_time:%H:%M} {market.timezone}) yet; the daily update "
            "materializes it then. The other days were written."
        )
    for key, values in by_day.items():
        context.add_asset_metadata(values, partition_key=key)
    return dg.MaterializeResult()


def _plan(
    context: dg.AssetExecutionContext,
    store: MarketStore,
    tickers: Sequence[str],
    trading_days: dg.DailyPartitionsDefinition,
    keys: list[str],
) -> _Plan:
    """Where the computation starts (docs/design.md "History and recomputation") and ends."""
    left_or_joined = sorted(set(store.read_breadth_tickers()) ^ set(tickers))
    if left_or_joined:
        store.mark_breadth_stale(left_or_joined)
    mark = store.breadth_stale()
    last_asked = pd.Timestamp(keys[-1])
    end = last_asked
    latest = store.read_breadth_before(dt.date.max)
    if (
        mark.stale_from is not None
        and pd.Timestamp(mark.stale_from) <= last_asked
        and latest is not None
        and pd.Timestamp(latest["date"]) > last_asked
    ):
        end = pd.Timestamp(latest["date"])
    days = pd.DatetimeIndex(
        pd.to_datetime(
            trading_days.get_partition_keys_in_range(
                dg.PartitionKeyRange(trading_days.get_first_partition_key(), f"{end:%Y-%m-%d}")
            )
        )
    )
    asked = days.get_loc(pd.Timestamp(keys[0]))
    begin, state = _starting_point(store, tickers, days, asked, mark)
    if days[begin] < pd.Timestamp(keys[0]):
        context.log.info(
            f"breadth: computing from {days[begin]:%Y-%m-%d}, the first day whose row is missing "
            f"or whose inputs changed (stale mark {mark.stale_from})"
        )
    carried_to = end if end > last_asked else None
    if carried_to is not None:
        context.log.info(
            f"breadth: carrying on to {carried_to:%Y-%m-%d}, the last stored row: inputs changed "
            f"from {mark.stale_from}, so the rows after {keys[-1]} were stale"
        )
    return _Plan(days, begin, state, keys, mark, carried_to)


def _compute(
    context: dg.AssetExecutionContext,
    store: MarketStore,
    tickers: Sequence[str],
    plan: _Plan,
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """The breadth rows of the planned days, and the days that got none (no bar)."""

    def count(chunk: pd.DatetimeIndex) -> pd.DataFrame:
        return store.count_breadth(tickers, chunk)

    computed = plan.days[plan.begin :]
    parts = []
    chunks = compute_breadth_in_chunks(count, computed, CHUNK_DAYS, plan.state)
    for number, part in enumerate(chunks, start=1):
        parts.append(part)
        done = min(number * CHUNK_DAYS, len(computed))
        context.log.info(
            f"{BREADTH_PROGRESS}{done} of {len(computed)} days "
            f"(up to {computed[done - 1]:%Y-%m-%d})"
        )
    series = pd.concat(parts, ignore_index=True)
    return series, computed.difference(pd.DatetimeIndex(series["date"]))


def _write(
    store: MarketStore,
    tickers: Sequence[str],
    plan: _Plan,
    series: pd.DataFrame,
    dropped: pd.DatetimeIndex,
) -> pd.DataFrame:
    """Writes the asked days and the stored rows it recomputed; returns the rows written.

    Days outside the asked ones are written only where a (stale) row is stored: a day Dagster
    has never materialized stays absent from the table.
    """
    first, last = plan.days[plan.begin], plan.days[-1]
    stored = store.read_breadth(start=first.date(), end=last.date())["date"]
    asked = (series["date"] >= pd.Timestamp(plan.keys[0])) & (
        series["date"] <= pd.Timestamp(plan.keys[-1])
    )
    written = series[series["date"].isin(stored) | asked]
    store.write_breadth(
        written,
        sorted(tickers),
        plan.mark,
        _stale_after(store, plan.mark, f"{last:%Y-%m-%d}"),
        dropped=[day.date() for day in dropped],
    )
    return written


def _report(
    context: dg.AssetExecutionContext,
    store: MarketStore,
    plan: _Plan,
    series: pd.DataFrame,
    written: pd.DataFrame,
    dropped: pd.DatetimeIndex,
    tickers: int,
    started: float,
) -> dict[str, dict[str, dg.MetadataValue]]:
    """Each asked day's own figures, and the run's (rows written, range, chart) on its last
    asked day: Dagster would copy a run's metadata into every day's materialization."""
    first = plan.days[plan.begin]
    last_bar = _last_breadth_day(store, series, first)
    by_day = _days_metadata(plan.keys, series, last_bar)
    run: dict[str, dg.MetadataValue] = {
        "rows_written": dg.MetadataValue.int(len(written)),
        "date_range": dg.MetadataValue.text(date_range_text(written)),
        "tickers": dg.MetadataValue.int(tickers),
        "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        "worker": dg.MetadataValue.text(worker_name()),
        "computed_from": dg.MetadataValue.text(f"{first:%Y-%m-%d}"),
        **_days_without_bars(context, plan.keys, dropped, last_bar),
        **actions_in_days(store, first, plan.days[-1]),
    }
    if plan.carried_to is not None:
        run["carried_on_to"] = dg.MetadataValue.text(f"{plan.carried_to:%Y-%m-%d}")
    still = store.breadth_stale().stale_from
    if still is not None:
        run["stale_from"] = dg.MetadataValue.text(f"{still}")
        context.log.warning(
            f"breadth: rows from {still} on are still computed from older inputs (written "
            "after this run's days, or while it ran); the next breadth run recomputes them"
        )
    shown_until = last_bar if last_bar is not None else pd.Timestamp(plan.keys[-1])
    recent = store.read_breadth(
        start=(shown_until - pd.Timedelta(days=RECENT_DAYS)).date(), end=shown_until.date()
    )
    if len(recent):
        run["last_days"] = dg.MetadataValue.md(breadth_report.last_days_table(recent))
        run["chart"] = dg.MetadataValue.md(
            breadth_report.chart_markdown(breadth_report.chart_png(recent))
        )
    by_day[plan.keys[-1]] = {**by_day[plan.keys[-1]], **run}
    return by_day


def _days_metadata(
    keys: list[str], series: pd.DataFrame, last_bar: pd.Timestamp | None
) -> dict[str, dict[str, dg.MetadataValue]]:
    """Each asked day's row values (`DAY_COLUMNS`), or why it has no row."""
    rows = series.set_index("date")
    by_day: dict[str, dict[str, dg.MetadataValue]] = {}
    for key in keys:
        day = pd.Timestamp(key)
        if day not in rows.index:
            after = last_bar is None or day > last_bar
            reason = (
                "no ticker has a bar after the data's last day"
                if after
                else "closure found in the data: no ticker has a bar"
            )
            by_day[key] = {"no_row": dg.MetadataValue.text(reason)}
            continue
        row = rows.loc[day]
        by_day[key] = {
            column: dg.MetadataValue.int(int(row[column]))
            if schema.BREADTH_COLUMNS[column] == "BIGINT"
            else _float(row[column])
            for column in DAY_COLUMNS
        }
    return by_day


def _float(value: float) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(value)) if pd.notna(value) else dg.MetadataValue.null()


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
    metadata: dict[str, dg.MetadataValue] = {CLOSURES_FOUND: dg.MetadataValue.int(len(closures))}
    if len(closures):
        listed = ", ".join(f"{day:%Y-%m-%d}" for day in closures[:CLOSURES_LISTED])
        hidden = len(closures) - CLOSURES_LISTED
        more = f" and {hidden} more" if hidden > 0 else ""
        metadata[CLOSURES_FOUND_DAYS] = dg.MetadataValue.text(listed + more)
        context.log.info(
            f"breadth: {len(closures)} closures found in the data (no ticker has a bar; no row, "
            f"the cumulative columns do not move): {listed}{more}"
        )
    if len(after):
        since = f"after {last_bar:%Y-%m-%d}" if last_bar is not None else "in these days"
        metadata[NO_BARS_AFTER] = dg.MetadataValue.text(
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
