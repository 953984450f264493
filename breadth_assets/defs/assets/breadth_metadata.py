"""What a breadth run reports in the Dagster UI: each asked day's figures, and the run's own
(rows, sessions, partial days, who moved, the chart) on its last asked day."""

import time

import dagster as dg
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics import breadth_report
from breadth_assets.defs.assets.adjusting import actions_in_days
from breadth_assets.defs.assets.breadth_plan import Plan
from breadth_assets.defs.assets.reporting import date_range_text
from breadth_assets.defs.report_keys import (
    CLOSURES_FOUND,
    CLOSURES_FOUND_DAYS,
    NO_BARS_AFTER,
    PARTIAL_GROUP_DAYS,
    SESSIONS_FOUND,
    SESSIONS_FOUND_DAYS,
    WHO_MOVED,
)
from breadth_assets.runtime.workers import worker_name
from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.base import MarketStore
from breadth_assets.universe.file import Universe

DAY_COLUMNS = [
    "universe",
    "listed",
    "partial",
    "advancers",
    "decliners",
    "unchanged",
    "ad_line",
    "mcclellan_osc",
    "mcclellan_sum",
    "pct_above_ema_50",
    "pct_above_ema_200",
    "pct_above_sma_50",
    "pct_above_sma_200",
    "new_highs_52w",
    "new_lows_52w",
    "high_low_index",
]
"""The breadth columns each day's materialization shows, with that day's values."""
RECENT_DAYS = 400
"""Calendar days of stored rows read back for the UI's table and year chart."""
CLOSURES_LISTED = 30


def report_breadth(
    context: dg.AssetExecutionContext,
    store: MarketStore,
    current: Universe,
    plan: Plan,
    series: pd.DataFrame,
    written: pd.DataFrame,
    dropped: pd.DatetimeIndex,
    tickers: int,
    started: float,
) -> dict[str, dict[str, dg.MetadataValue]]:
    """Each asked day's own figures, and the run's (rows written, range, who moved, chart) on
    its last asked day: Dagster would copy a run's metadata into every day's materialization."""
    first = plan.days[plan.begin]
    everyone = series[series["group_name"] == ALL_GROUP]
    last_bar = _last_breadth_day(store, everyone, first)
    by_day = _days_metadata(plan.keys, everyone, last_bar)
    groups = sorted(set(series["group_name"]) - {ALL_GROUP})
    partial = written[written["partial"]]
    run: dict[str, dg.MetadataValue] = {
        "rows_written": dg.MetadataValue.int(len(written)),
        "date_range": dg.MetadataValue.text(date_range_text(written)),
        "tickers": dg.MetadataValue.int(tickers),
        "groups": dg.MetadataValue.int(len(groups)),
        PARTIAL_GROUP_DAYS: dg.MetadataValue.int(len(partial)),
        "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        "worker": dg.MetadataValue.text(worker_name()),
        "computed_from": dg.MetadataValue.text(f"{first:%Y-%m-%d}"),
        **_days_without_bars(context, plan.keys, dropped, last_bar),
        **_sessions_metadata(context, current, plan),
        **actions_in_days(store, first, plan.days[-1]),
    }
    _warn_partial(context, current, partial)
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
    run.update(_recent_figures(store, current, shown_until))
    by_day[plan.keys[-1]] = {**by_day[plan.keys[-1]], **run}
    return by_day


def _warn_partial(
    context: dg.AssetExecutionContext, current: Universe, partial: pd.DataFrame
) -> None:
    """Names the partial group-days written: missing data is said, never silent."""
    if len(partial):
        context.log.info(
            f"breadth: {len(partial)} group-days written as partial (bars cover fewer than "
            f"{current.min_coverage:.0%} of the listed tickers; percentages NULL): "
            + ", ".join(
                f"{row.group_name} {row.date:%Y-%m-%d} ({row.universe} of {row.listed})"
                for row in partial.head(CLOSURES_LISTED).itertuples()
            )
        )


def _recent_figures(
    store: MarketStore, current: Universe, shown_until: pd.Timestamp
) -> dict[str, dg.MetadataValue]:
    """The UI's view of the days up to the last one written: the last days, who moved and the
    signals on it (per group) and the chart (`ALL` and the charted groups)."""
    run: dict[str, dg.MetadataValue] = {}
    recent = store.read_breadth(
        start=(shown_until - pd.Timedelta(days=RECENT_DAYS)).date(),
        end=shown_until.date(),
        group=None,
    )
    if len(recent):
        run["last_days"] = dg.MetadataValue.md(
            breadth_report.last_days_table(recent[recent["group_name"] == ALL_GROUP])
        )
        charted = [ALL_GROUP, *(g for g in current.chart_groups if g in set(recent["group_name"]))]
        run["chart"] = dg.MetadataValue.md(
            breadth_report.chart_markdown(breadth_report.chart_png(recent, charted))
        )
        day = recent["date"].max()
        moved = store.read_breadth_members(start=day.date(), end=day.date())
        run[WHO_MOVED] = dg.MetadataValue.md(
            breadth_report.who_moved_markdown(recent[recent["date"] == day], moved)
        )
        fired = store.read_breadth_signals(start=day.date(), end=day.date())
        run["signals"] = dg.MetadataValue.md(breadth_report.signals_markdown(fired))
    return run


def _sessions_metadata(
    context: dg.AssetExecutionContext, current: Universe, plan: Plan
) -> dict[str, dg.MetadataValue]:
    """The computed days the calendar calls closed on which the bars show a session (the
    universe's `extra_sessions` are expected, not found)."""
    declared = pd.DatetimeIndex(pd.to_datetime(list(current.extra_sessions)))
    found = plan.sessions.difference(declared)
    metadata = {SESSIONS_FOUND: dg.MetadataValue.int(len(found))}
    if len(found):
        listed = ", ".join(f"{day:%Y-%m-%d}" for day in found[:CLOSURES_LISTED])
        metadata[SESSIONS_FOUND_DAYS] = dg.MetadataValue.text(listed)
        context.log.info(
            f"breadth: {len(found)} sessions found in the data on days the calendar calls "
            f"closed (most tickers have bars; counted as breadth days): {listed}; declare them "
            "as extra_sessions in the universe file"
        )
    return metadata


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
        by_day[key] = {column: _value(column, row[column]) for column in DAY_COLUMNS}
    return by_day


def _value(column: str, value: object) -> dg.MetadataValue:
    kind = schema.BREADTH_COLUMNS[column]
    if kind == "BIGINT":
        return dg.MetadataValue.int(int(value))
    if kind == "BOOLEAN":
        return dg.MetadataValue.bool(bool(value))
    return _float(value)


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
