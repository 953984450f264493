"""`breadth-assets run`: the main job, the whole universe end to end through Dagster.

Tickers go in runs of the universe's batch size (the same batches a UI backfill makes), then
breadth in one run over every trading day. Runs execute in this process against the Dagster
instance of `$DAGSTER_HOME`, so they show in the UI like any other run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from breadth_assets.cli import run_report
from breadth_assets.defs.assets import BREADTH, INDICATORS, RAW_PRICES
from breadth_assets.defs.batches import range_tags, update_batches
from breadth_assets.defs.partitions import (
    build_trading_days,
    sync_ticker_partitions,
    tickers_partitions,
)
from breadth_assets.defs.report_keys import CREDENTIALS_REFUSED
from breadth_assets.defs.stale_breadth import (
    StaleBreadth,
    breadth_days,
    listed_names,
    stale_breadth,
)
from breadth_assets.runtime.console import crash_line, failure_lines, one_line
from breadth_assets.runtime.dagster_compat import ReconstructableRepository, RunFailureReason
from breadth_assets.runtime.instance import open_instance
from breadth_assets.runtime.recovery import repair, status, status_text
from breadth_assets.stores.base import StoreError
from breadth_assets.universe.file import Universe, UniverseError, load_universe

DEFINITIONS_MODULE = "breadth_assets.definitions"
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_main_job(
    instance: dg.DagsterInstance,
    full: bool = False,
    out=sys.stdout,
    end_date: dt.date | None = None,
    checks: bool = False,
    allow_partial: bool = False,
) -> bool:
    """Every ticker partition in batches, then breadth; True when every run succeeds.

    Breadth is materialized from the earliest day whose inputs changed (or that was never
    materialized) to the last trading day; `full` redoes every day. The universe file is read
    once, here: its batch size and tickers are those of this run. `end_date` stops prices and
    breadth at that day instead of the last closed one. `checks` runs the data-quality checks
    once at the end (their verdicts do not change the result). Breadth is not computed while a
    ticker with history failed to update (it would count the day without its bar) unless
    `allow_partial`.
    """
    started = time.perf_counter()
    universe = load_universe()
    for line in repair(instance).lines():
        print(f"recovered: {line}", file=out)
    added, removed = sync_ticker_partitions(instance, universe.symbols)
    print(
        f"universe {universe.path.name}: {len(universe.symbols)} tickers on {universe.market} "
        f"({len(added)} added, {len(removed)} removed), history from {universe.start_date}"
        + (f" to {universe.end_date}" if universe.end_date else ""),
        file=out,
    )
    if universe.skipped:
        names = ", ".join(f"{name} ({reason})" for name, reason in universe.skipped[:5])
        more = f" and {len(universe.skipped) - 5} more" if len(universe.skipped) > 5 else ""
        print(f"universe: {len(universe.skipped)} names skipped: {names}{more}", file=out)
    tickers = _run_ticker_batches(instance, universe, out, end_date)
    last = universe.last_day().isoformat()
    if end_date is not None:
        last = min(last, end_date.isoformat())
    days = [day for day in build_trading_days(universe).get_partition_keys() if day <= last]
    first = days[0] if full else None
    if not full:
        found = _stale(instance, universe, days)
        if found is None:
            print("breadth: every trading day is up to date", file=out)
        else:
            print(found.text(), file=out)
            first = found.first_day.isoformat()
    if first is not None and tickers.not_updated and not allow_partial:
        print(
            f"breadth: not computed: {len(tickers.not_updated)} tickers with history failed to "
            f"update ({listed_names(tickers.not_updated)}), so their latest bars are missing; run "
            "again once they succeed, or `breadth-assets run --allow-partial` to compute it "
            "without them",
            file=out,
        )
        first = None
    breadth_ok = first is None or _run_breadth(instance, first, days[-1], out)
    if checks:
        _run_checks(instance, out)
    print(f"main job finished in {time.perf_counter() - started:.1f} s", file=out)
    return tickers.ok and breadth_ok


@dataclass
class TickerOutcome:
    """What the ticker batches left: success, the tickers with history that failed to update
    (breadth would miss their new bars), and why fetching stopped early, if it did."""

    ok: bool = True
    not_updated: list[str] = field(default_factory=list)
    stopped: str | None = None


def _run_ticker_batches(
    instance: dg.DagsterInstance, universe: Universe, out, end_date: dt.date | None = None
) -> TickerOutcome:
    """Runs `ticker_job` per batch; after the source refused its credentials, no later batch."""
    keys = instance.get_dynamic_partitions(tickers_partitions.name)
    with_history = instance.get_materialized_partitions(RAW_PRICES)
    batches = update_batches(
        keys, universe.symbols, with_history, universe.batch_size, universe.update_batch_size
    )
    outcome = TickerOutcome()
    refused: Counter[str] = Counter()
    for number, batch in enumerate(batches, start=1):
        started = time.perf_counter()
        config = {"end_date": end_date.isoformat()} if end_date else {}
        result = _execute(
            "ticker_job",
            instance,
            range_tags(batch[0], batch[-1]),
            {"ops": {"ticker_assets": {"config": config}}},
        )
        events = _materializations(instance, result.run_id)
        in_batch = run_report.refused_rows(events)
        refused += in_batch
        cause = "" if result.success else f": {_cause(result)}"
        print(
            f"tickers batch {number}/{len(batches)} "
            f"({batch[0]}..{batch[-1]}, {len(batch)} tickers): "
            f"{'ok' if result.success else 'FAILED'} in "
            f"{time.perf_counter() - started:.1f} s  run {result.run_id[:8]}{cause}"
            + (f"; {in_batch.total()} rows refused" if in_batch else ""),
            file=out,
        )
        applied = run_report.actions_applied(events)
        if applied:
            print(f"  {applied}", file=out)
        if result.success:
            continue
        outcome.ok = False
        _print_failure(result, out, skip_first=True)
        written = {event.partition for event in events if event.asset_key == INDICATORS}
        outcome.not_updated += [t for t in batch if t in with_history and t not in written]
        if _credentials_refused(result) and number < len(batches):
            outcome.stopped = (
                f"the price source refused its credentials; batches {number + 1} to "
                f"{len(batches)} were not started (no request could succeed)"
            )
            print(f"tickers: stopped: {outcome.stopped}", file=out)
            break
    if refused:
        print(
            f"tickers: {run_report.refused_text(refused)}; the raw_prices metadata lists them",
            file=out,
        )
    return outcome


def _materializations(instance: dg.DagsterInstance, run_id: str) -> list[dg.DagsterEvent]:
    """The run's materializations as stored: a failed step's good partitions are recorded in
    the event log, not in the result's own list of events."""
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    return [entry.dagster_event for entry in entries if entry.dagster_event is not None]


def _credentials_refused(result: dg.ExecutionResult) -> bool:
    for event in result.all_events:
        data = event.step_failure_data if event.is_step_failure else None
        user = data.user_failure_data if data is not None else None
        flag = user.metadata.get(CREDENTIALS_REFUSED) if user is not None else None
        if flag is not None and flag.value:
            return True
    return False


def _cause(result: dg.ExecutionResult) -> str:
    """The failure's root cause in one line (the run's log has the rest)."""
    lines = failure_lines(result.all_events)
    return one_line(lines[0]) if lines else "see the run in the UI"


def _stale(
    instance: dg.DagsterInstance, universe: Universe, days: Sequence[str]
) -> StaleBreadth | None:
    """Where breadth must start (the store's rule), counting the days never materialized."""
    from breadth_assets.defs.deployment import store_for_deployment

    tickers = instance.get_dynamic_partitions(tickers_partitions.name)
    return stale_breadth(
        store_for_deployment(),
        tickers,
        [dt.date.fromisoformat(day) for day in days],
        materialized=instance.get_materialized_partitions(BREADTH),
        groups=universe.groups,
    )


def breadth_status(instance: dg.DagsterInstance) -> str:
    """`status`'s line on breadth: up to date, or from which day and why not."""
    try:
        universe = load_universe()
    except UniverseError as error:
        return f"breadth: cannot read the universe file: {error}"
    days = [f"{day}" for day in breadth_days(universe)]
    found = _stale(instance, universe, days)
    if found is None:
        return "breadth: up to date"
    return f"{found.text()}; `breadth-assets run` recomputes it"


def _execute(
    job: str, instance: dg.DagsterInstance, tags: dict[str, str], run_config: dict | None = None
) -> dg.ExecutionResult:
    """Runs the job in this process with its own executor (`execute_in_process` would swap in
    Dagster's, which records no run location and spins while waiting for a pool slot)."""
    recon = ReconstructableRepository.for_module(DEFINITIONS_MODULE, "defs", os.getcwd())
    with dg.execute_job(
        recon.get_reconstructable_job(job),
        instance=instance,
        tags=tags,
        run_config={**QUIET_LOGS, **(run_config or {})},
        raise_on_error=False,
    ) as result:
        if any(_interrupted(event) for event in result.all_events):
            raise Interrupted(f"run {result.run_id[:8]} was interrupted and is marked failed")
        return result


class Interrupted(Exception):
    """SIGTERM or SIGINT ended a run: the main job stops instead of starting the next one."""


def _interrupted(event: dg.DagsterEvent) -> bool:
    data = event.event_specific_data
    return event.event_type == dg.DagsterEventType.RUN_CANCELED or (
        event.event_type == dg.DagsterEventType.RUN_FAILURE
        and getattr(data, "failure_reason", None) == RunFailureReason.UNEXPECTED_TERMINATION
    )


def _run_breadth(instance: dg.DagsterInstance, first: str, last: str, out) -> bool:
    print(f"breadth {first}..{last}: running...", file=out, flush=True)
    started = time.perf_counter()
    with run_report.ProgressFollower(instance, "breadth_job", out):
        result = _execute("breadth_job", instance, range_tags(first, last))
    cause = "" if result.success else f": {_cause(result)}"
    print(
        f"breadth {first}..{last}: {'ok' if result.success else 'FAILED'} in "
        f"{time.perf_counter() - started:.1f} s  run {result.run_id[:8]}{cause}",
        file=out,
    )
    for line in run_report.breadth_notes(result.get_asset_materialization_events()):
        print(f"  {line}", file=out)
    if not result.success:
        _print_failure(result, out, skip_first=True)
    return result.success


def _run_checks(instance: dg.DagsterInstance, out) -> None:
    """The data-quality checks once over the stored tables, so the UI shows them evaluated."""
    started = time.perf_counter()
    result = _execute("quality_checks_job", instance, {})
    lines = run_report.checks_text(result.all_events)
    print(f"{lines[0]} in {time.perf_counter() - started:.1f} s  run {result.run_id[:8]}", file=out)
    for line in lines[1:]:
        print(line, file=out)
    if not result.success:
        _print_failure(result, out)


def _print_failure(result: dg.ExecutionResult, out, skip_first: bool = False) -> None:
    """The failures' lines under the run's line (whose first line already says the cause)."""
    for number, text in enumerate(failure_lines(result.all_events)):
        shown = text.splitlines()[1:] if skip_first and number == 0 else text.splitlines()
        for line in shown:
            print(f"  {line}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="breadth-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="update every ticker, then breadth")
    run.add_argument("--tail", type=int, default=10, help="breadth days to print at the end")
    run.add_argument(
        "--full", action="store_true", help="materialize every breadth day, not only stale ones"
    )
    run.add_argument(
        "--checks", action="store_true", help="run the data-quality checks once at the end"
    )
    run.add_argument(
        "--end-date",
        type=dt.date.fromisoformat,
        help="update prices and breadth up to this day (YYYY-MM-DD) instead of the last closed one",
    )
    run.add_argument(
        "--allow-partial",
        action="store_true",
        help="compute breadth even when tickers with history failed to update (their latest "
        "bars are then missing from it)",
    )
    state = commands.add_parser(
        "status", help="runs in progress, claimed pool slots and who holds them"
    )
    state.add_argument(
        "--repair",
        action="store_true",
        help="mark runs whose process is gone as failed and free the slots of ended runs",
    )
    shown = commands.add_parser("signals", help="the breadth signals of the last days")
    shown.add_argument("--days", type=int, default=10, help="breadth days to look back over")
    args = parser.parse_args(argv)
    if args.command == "signals":
        try:
            run_report.print_signals(args.days)
        except (UniverseError, StoreError) as error:
            print(f"breadth-assets: {error}", file=sys.stderr)
            return 2
        return 0

    if not os.environ.get("DAGSTER_HOME"):
        parser.error("set DAGSTER_HOME to a folder for Dagster's runs and events (see README)")
    try:
        return _command(args)
    except (UniverseError, StoreError) as error:
        print(f"breadth-assets: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"breadth-assets: {stop}; nothing else was started", file=sys.stderr)
        return 130
    except Exception as error:  # Dagster's own storage (a full home, a database that is down)
        print(f"breadth-assets: {crash_line(error)}", file=sys.stderr)
        return 1


def _command(args: argparse.Namespace) -> int:
    instance = open_instance()
    if args.command == "status":
        if args.repair:
            done = repair(instance).lines()
            print("\n".join(f"repaired: {line}" for line in done) or "nothing to repair")
        print(status_text(status(instance)))
        print(breadth_status(instance))
        return 0
    ok = run_main_job(
        instance,
        full=args.full,
        end_date=args.end_date,
        checks=args.checks,
        allow_partial=args.allow_partial,
    )
    if args.tail:
        print(f"\nlast {args.tail} days of breadth:")
        run_report.print_breadth_tail(args.tail)
    run_report.print_where()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
