"""What `breadth-assets run` prints besides each run's line: refused rows, breadth's progress
while it runs, the checks' verdicts and where the data is."""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from typing import TextIO

import dagster as dg
import pandas as pd

from breadth_assets.analytics import breadth_report
from breadth_assets.defs.report_keys import (
    ACTIONS_APPLIED_LIST,
    BREADTH_PROGRESS,
    CLOSURES_FOUND,
    CLOSURES_FOUND_DAYS,
    NO_BARS_AFTER,
    PARTIAL_GROUP_DAYS,
    ROWS_REJECTED,
    SESSIONS_FOUND,
    SESSIONS_FOUND_DAYS,
)

POLL_SECONDS = 1.0
TABLES = "prices, indicators, breadth, breadth_members, breadth_signals"
TAIL_COLUMNS = [
    "date",
    "universe",
    "advancers",
    "decliners",
    "ad_line",
    "mcclellan_osc",
    "mcclellan_sum",
    "pct_above_ema_50",
    "pct_above_ema_200",
    "new_highs_52w",
    "new_lows_52w",
    "trin",
]


def refused_rows(events: Iterable[dg.DagsterEvent]) -> Counter[str]:
    """Rows the source refused, per ticker, from a run's `raw_prices` materializations."""
    refused: Counter[str] = Counter()
    for event in events:
        materialization = event.materialization
        count = materialization.metadata.get(ROWS_REJECTED)
        partition = materialization.partition
        if materialization.asset_key.path == ["raw_prices"] and count and count.value:
            refused[partition or "?"] += int(count.value)
    return refused


def actions_applied(events: Iterable[dg.DagsterEvent]) -> str | None:
    """`5 actions applied: ABC split 1:5 on 2019-06-03, ...` from a ticker batch's `indicators`
    materializations (each carries its batch's list), or None when it applied none."""
    for event in events:
        materialization = event.materialization
        if materialization.asset_key.path != ["indicators"]:
            continue
        listed = materialization.metadata.get(ACTIONS_APPLIED_LIST)
        if listed is not None:
            return str(listed.value)
    return None


def refused_text(refused: Counter[str], shown: int = 5) -> str:
    """`74 rows refused in 9 tickers (AAA 20, BBB 12, ...)`."""
    top = ", ".join(f"{ticker} {count}" for ticker, count in refused.most_common(shown))
    more = ", ..." if len(refused) > shown else ""
    tickers = "ticker" if len(refused) == 1 else "tickers"
    return f"{refused.total()} rows refused in {len(refused)} {tickers} ({top}{more})"


def breadth_notes(events: Iterable[dg.DagsterEvent]) -> list[str]:
    """What the breadth run found about days without any bar (its last materialization)."""
    materializations = [event.materialization for event in events]
    if not materializations:
        return []
    metadata = materializations[-1].metadata
    notes = []
    closures = metadata.get(CLOSURES_FOUND)
    if closures is not None and closures.value:
        days = metadata.get(CLOSURES_FOUND_DAYS)
        notes.append(
            f"{closures.value} closures found in the data (no ticker has a bar; no row): "
            f"{days.value if days else ''}"
        )
    sessions = metadata.get(SESSIONS_FOUND)
    if sessions is not None and sessions.value:
        days = metadata.get(SESSIONS_FOUND_DAYS)
        notes.append(
            f"{sessions.value} sessions found in the data on days the calendar calls closed "
            f"(counted; declare them as extra_sessions): {days.value if days else ''}"
        )
    partial = metadata.get(PARTIAL_GROUP_DAYS)
    if partial is not None and partial.value:
        notes.append(
            f"{partial.value} group-days partial (bars cover fewer than min_coverage of the "
            "listed tickers): percentages NULL there"
        )
    after = metadata.get(NO_BARS_AFTER)
    if after is not None:
        notes.append(f"no ticker has a bar after {after.value}: breadth ends there")
    return notes


def checks_text(events: Iterable[dg.DagsterEvent]) -> list[str]:
    """One summary line of the checks' verdicts, then one line per check that did not pass."""
    evaluations = [
        event.event_specific_data
        for event in events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed = [e for e in evaluations if not e.passed]
    by_severity = Counter(e.severity.value.lower() for e in failed)
    verdicts = ", ".join(f"{count} {name}" for name, count in sorted(by_severity.items()))
    lines = [
        f"checks: {len(evaluations) - len(failed)} of {len(evaluations)} passed"
        + (f" ({verdicts})" if verdicts else "")
    ]
    for evaluation in failed:
        asset = evaluation.asset_key.to_user_string()
        lines.append(
            f"  {evaluation.severity.value} {asset} {evaluation.check_name}: "
            f"{evaluation.description or ''}"
        )
    return lines


class ProgressFollower:
    """Prints the breadth step's progress lines while its run executes in this process.

    Reads the run's event log in a thread, every `POLL_SECONDS`, from a cursor, through the
    caller's instance (its storages pool their connections per thread): a long breadth run says
    how far it is, and a short one costs a query or two.
    """

    def __init__(self, instance: dg.DagsterInstance, job_name: str, out: TextIO) -> None:
        self._instance = instance
        self._job_name = job_name
        self._out = out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._known: set[str] = {
            r.dagster_run.run_id for r in instance.get_run_records(self._filter(), limit=5)
        }

    def _filter(self) -> dg.RunsFilter:
        return dg.RunsFilter(job_name=self._job_name)

    def __enter__(self) -> ProgressFollower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _follow(self) -> None:
        run_id, cursor = None, None
        while True:
            stopping = self._stop.wait(POLL_SECONDS)
            try:
                if run_id is None:
                    runs = self._instance.get_run_records(self._filter(), limit=5)
                    fresh = [
                        r.dagster_run.run_id
                        for r in runs
                        if r.dagster_run.run_id not in self._known
                    ]
                    run_id = fresh[0] if fresh else None
                if run_id is not None:
                    cursor = self._print_new(self._instance, run_id, cursor)
            except Exception:  # a progress line is not worth failing the main job
                pass
            if stopping:
                return

    def _print_new(
        self, instance: dg.DagsterInstance, run_id: str, cursor: str | None
    ) -> str | None:
        while True:
            page = instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
            for record in page.records:
                entry = record.event_log_entry
                if entry.dagster_event is None and entry.user_message.startswith(BREADTH_PROGRESS):
                    print(f"  {entry.user_message}", file=self._out, flush=True)
            cursor = page.cursor or cursor
            if not page.has_more:
                return cursor


def print_breadth_tail(days: int, out=sys.stdout) -> None:
    from breadth_assets.defs.deployment import store_for_deployment

    store = store_for_deployment()
    tail = store.read_breadth().tail(days)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(
            tail[TAIL_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.2f}"), file=out
        )
        if tail.empty:
            return
        day = tail["date"].iloc[-1].date()
        groups = breadth_report.top_groups(store.read_breadth(start=day, end=day, group=None))
        if len(groups):
            print(f"top groups on {day} by % above SMA 50:", file=out)
            print(groups.to_string(index=False, float_format=lambda v: f"{v:.2f}"), file=out)
        print(signals_of_day(store.read_breadth_signals(start=day, end=day), day), file=out)


def signals_of_day(fired: pd.DataFrame, day: dt.date, shown: int = 10) -> str:
    """The last breadth day's signals, a line each, or a line saying there were none."""
    if fired.empty:
        return f"signals on {day}: none (`breadth-assets signals` lists the last days')"
    lines = [f"  {row.group_name} {row.signal}: {row.detail}" for row in fired.itertuples()]
    if len(lines) > shown:
        lines[shown:] = [f"  ... and {len(lines) - shown} more (`breadth-assets signals`)"]
    return "\n".join([f"signals on {day}:", *lines])


def print_signals(days: int, out: TextIO | None = None) -> None:
    """The signals of the last `days` breadth days (of the whole universe's rows), oldest
    first, or a line saying there are none."""
    from breadth_assets.defs.deployment import store_for_deployment

    out = out or sys.stdout
    store = store_for_deployment()
    tail = store.read_breadth().tail(days)
    if tail.empty:
        print("no breadth rows yet: run `breadth-assets run` first", file=out)
        return
    start = tail["date"].iloc[0].date()
    fired = store.read_breadth_signals(start=start)
    if fired.empty:
        print(f"no breadth signal since {start}", file=out)
        return
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(fired.to_string(index=False), file=out)


def print_where(out=sys.stdout) -> None:
    """Where the tables are, and how to look at the runs, assets and checks in the UI."""
    from breadth_assets.defs.deployment import store_for_deployment

    print(f"\ndata: {store_for_deployment().location()} (tables {TABLES})", file=out)
    print(f"Dagster home: {os.environ['DAGSTER_HOME']}", file=out)
    print(
        "UI: bash scripts/dev.sh, then open http://127.0.0.1:3000 (Runs, Catalog > breadth, "
        "its Checks tab)",
        file=out,
    )
