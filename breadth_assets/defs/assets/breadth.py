"""`breadth[trading_day]`: market breadth over every ticker of the universe, one row a day."""

import datetime as dt
import time
import warnings

import dagster as dg
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics.breadth import compute_breadth_in_chunks
from breadth_assets.analytics.signals import HINDENBURG_DAYS, SignalSettings, breadth_signals
from breadth_assets.defs.assets.breadth_metadata import report_breadth
from breadth_assets.defs.assets.breadth_plan import Pass, Plan, plan_breadth
from breadth_assets.defs.assets.column_schemas import table_asset_args
from breadth_assets.defs.assets.reporting import record_good_partitions
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.defs.report_keys import (
    BREADTH_PROGRESS,
)
from breadth_assets.defs.stale_breadth import listed_names
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.base import MarketStore, StaleMark
from breadth_assets.universe.file import Universe
from breadth_assets.universe.groups import members_in, missing_members

BREADTH = dg.AssetKey("breadth")
SIGNAL_LOOKBACK_DAYS = HINDENBURG_DAYS + 10
"""Stored rows read back before a run's days: what the signals' rules look back on."""
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
            description="Advance/decline, McClellan, % above SMAs and EMAs, new 52-week "
            "highs/lows and the High-Low Index, Stockbee's movers, TRIN, RSI extremes, Zweig "
            "and MACD-stage shares, for the whole universe (group ALL) and every group of the "
            "universe file, in the `breadth` table; who moved in `breadth_members`.",
            **table_asset_args(schema.BREADTH, store_kind),
        )(breadth)


def _materialize(
    context: dg.AssetExecutionContext,
    store: MarketStore,
    universe: UniverseFile,
    trading_days: dg.DailyPartitionsDefinition,
) -> dg.MaterializeResult:
    """Computes the asked days, for the whole universe and every group, from the stored rows of
    the day before them.

    The cumulative columns (A/D line, McClellan, Zweig) and the 10-day windows depend on earlier
    days; stored rows carry what they need, so a day costs one day. When inputs changed on or
    before those rows (the store's stale mark) or no row is stored, the computation starts at
    the first day it must, and a group whose members changed from the first day they affect;
    when inputs changed before the last asked day and later rows are stored, it carries on to
    the last stored row. The days are read and counted `CHUNK_DAYS` at a time, so memory holds
    a chunk, not the history.
    """
    started = time.perf_counter()
    current = universe.load()
    closed = current.last_day().isoformat()
    keys = [key for key in sorted(context.partition_keys) if key <= closed]
    not_over = [key for key in sorted(context.partition_keys) if key > closed]
    tickers = context.instance.get_dynamic_partitions(tickers_partitions.name)
    groups = _groups(context, store, current, tickers)
    by_day: dict[str, dict[str, dg.MetadataValue]] = {}
    if keys:
        plan = plan_breadth(context, store, current, groups, trading_days, keys)
        series, members, dropped = _compute(context, store, groups, plan, current.min_coverage)
        written = _write(store, groups, plan, series, members, current.signals)
        by_day = report_breadth(
            context, store, current, plan, series, written, dropped, len(tickers), started
        )
    context.log.info(
        f"breadth: {sum('universe' in m for m in by_day.values())} asked days over "
        f"{len(tickers)} tickers and {len(groups) - 1} groups written in "
        f"{time.perf_counter() - started:.2f} s"
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


def _groups(
    context: dg.AssetExecutionContext, store: MarketStore, current: Universe, tickers: list[str]
) -> dict[str, list[str]]:
    """`ALL_GROUP` (the universe's tickers) and each group of the universe file with its
    members in the universe; members outside it are reported, and the rows of groups the file
    dropped (or that have no ticker of the universe) go."""
    groups = {ALL_GROUP: sorted(tickers), **members_in(current.groups, tickers)}
    for name, missing in missing_members(current.groups, tickers).items():
        context.log.warning(
            f"breadth: group {name}: {len(missing)} members are not tickers of the universe "
            f"and are left out: {listed_names(missing)}"
        )
    for name in [name for name, members in groups.items() if not members and name != ALL_GROUP]:
        context.log.warning(f"breadth: group {name} has no ticker of the universe: no rows")
        del groups[name]
    gone = sorted(set(store.read_breadth_groups()) - set(groups))
    if gone:
        store.drop_breadth_groups(gone)
        context.log.info(
            f"breadth: groups no longer in the universe file (or empty) removed: {gone}"
        )
    return groups


def _compute(
    context: dg.AssetExecutionContext,
    store: MarketStore,
    groups: dict[str, list[str]],
    plan: Plan,
    min_coverage: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DatetimeIndex]:
    """The breadth rows and `breadth_members` of the planned days, and the days that got no
    row (no ticker has a bar)."""
    tickers = groups[ALL_GROUP]
    series, members = [], []
    for run in plan.passes:
        computed = plan.days[run.begin :]
        chunk_members: list[pd.DataFrame] = []

        def count(chunk: pd.DatetimeIndex, run: Pass = run, into: list = chunk_members):
            counts, events = store.count_breadth(tickers, chunk, run.groups)
            into.append(events[events["group_name"].isin(list(run.groups))])
            return counts

        chunks = compute_breadth_in_chunks(
            count, computed, CHUNK_DAYS, run.states, min_coverage, list(run.groups)
        )
        for number, part in enumerate(chunks, start=1):
            series.append(part)
            done = min(number * CHUNK_DAYS, len(computed))
            context.log.info(
                f"{BREADTH_PROGRESS}{done} of {len(computed)} days "
                f"(up to {computed[done - 1]:%Y-%m-%d})"
            )
        members.extend(chunk_members)
    rows = pd.concat(series, ignore_index=True)
    events = pd.concat(members, ignore_index=True)
    everyone = rows.loc[rows["group_name"] == ALL_GROUP, "date"]
    computed = plan.days[plan.begin :]
    return rows, events, computed.difference(pd.DatetimeIndex(everyone))


def _write(
    store: MarketStore,
    groups: dict[str, list[str]],
    plan: Plan,
    series: pd.DataFrame,
    members: pd.DataFrame,
    settings: SignalSettings,
) -> pd.DataFrame:
    """Writes the asked days and the stored days it recomputed, with who moved and the signals
    of those days; returns the rows written.

    Days outside the asked ones are written only where the whole universe has a (stale) row
    stored: a day Dagster has never materialized stays absent from the table.
    """
    first, last = plan.days[plan.begin], plan.days[-1]
    stored = store.read_breadth(start=first.date(), end=last.date())["date"]
    asked = (series["date"] >= plan.asked_from) & (series["date"] <= pd.Timestamp(plan.keys[-1]))
    written = series[series["date"].isin(stored) | asked]
    days = pd.DatetimeIndex(written["date"].unique())
    firsts = {name: plan.days[run.begin].date() for run in plan.passes for name in run.groups}
    store.write_breadth(
        written,
        members[members["date"].isin(days)],
        {name: groups[name] for name in firsts},
        firsts,
        last.date(),
        plan.mark,
        _stale_after(store, plan.mark, f"{last:%Y-%m-%d}"),
        signals=_signals(store, plan, series, written, settings),
    )
    return written


def _signals(
    store: MarketStore,
    plan: Plan,
    series: pd.DataFrame,
    written: pd.DataFrame,
    settings: SignalSettings,
) -> pd.DataFrame:
    """The signals of the written days, each group's computed rows going on from its stored
    rows before them (the days the rules look back on)."""
    parts = []
    for run in plan.passes:
        start = plan.days[run.begin]
        before = store.read_breadth_tail(start.date(), days=SIGNAL_LOOKBACK_DAYS)
        for name in run.groups:
            own = series[(series["group_name"] == name) & (series["date"] >= start)]
            rows = pd.concat([before[before["group_name"] == name], own], ignore_index=True)
            days = written.loc[written["group_name"] == name, "date"]
            parts.append(breadth_signals(rows, days, settings))
    return pd.concat(parts, ignore_index=True) if parts else breadth_signals(series[:0], [])


def _stale_after(store: MarketStore, mark: StaleMark, last: str) -> dt.date | None:
    """Where the stale mark stands once breadth is current up to `last`: the next stored day
    (still computed from old inputs), or nowhere; unchanged when it is after `last`."""
    if mark.stale_from is None or mark.stale_from.isoformat() > last:
        return mark.stale_from
    after = (pd.Timestamp(last) + pd.Timedelta(days=1)).date()
    latest = store.read_breadth_before(dt.date.max)
    return after if latest is not None and pd.Timestamp(latest["date"]).date() >= after else None
