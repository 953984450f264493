"""A full backfill and one new trading day through a real `dagster-daemon`, with their figures.

What a user of the UI and the daily schedule waits for, which the in-process main job
(main_job_133x200.py) does not show: the backfill daemon's submission loop, the run queue and its
limits from the Dagster home template, one process per run, and the sensor that starts breadth.

1. A full backfill of `raw_prices`+`indicators` (every ticker, runs of the batch size) and
   `breadth` (every trading day up to the last closed one, one run), launched through GraphQL
   like the UI's *Backfill* button. Prints the number of runs, the seconds from launch to the
   backfill's completion, and the peak RSS of any single run process (the process tree of the
   daemon is sampled every 0.5 s).
2. One new trading day: the last closed day D is deleted from the store, the `daily_update`
   schedule is evaluated for D and its run requests are submitted to the daemon's queue; prints
   the seconds until D's breadth row is in the store, raw and without the sensor's tick wait.

    .venv/bin/python benchmarks/daemon_backfill.py [--tickers 500] [--years 10]
        [--dagster-yaml dagster_home/dagster.yaml] [--keep]

The processes and GraphQL are in _daemon.py, the run timings in _timings.py, the memory sampling
in _memory.py; this script runs the two measurements and prints their figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _daemon import (
    BIN,
    MODULE,
    PROJECT_ROOT,
    graphql_workspace,
    launch_backfill,
    launch_runs,
    prepare,
    start_process,
    stop_schedule,
    stop_tree,
    tail,
    wait_for,
)
from _memory import MemorySampler, memory_figures, print_memory
from _timings import RunTiming, describe_runs, phase, timings

# --------------------------------------------------------------------------------------------
# The two measurements


@dataclass
class BackfillResult:
    runs: list[RunTiming]
    seconds_to_complete: float
    seconds_to_last_run: float
    seconds_without_waits: float
    ok: bool


def full_backfill(
    context: Any,
    instance: Any,
    universe: Any,
    last_day: dt.date,
    timeout: float,
) -> BackfillResult:
    from dagster._core.execution.backfill import BulkActionStatus

    from breadth_assets.defs.partitions import build_trading_days

    symbols: Sequence[str] = universe.symbols
    days = (build_trading_days(universe).get_first_partition_key(), last_day.isoformat())
    launched = time.time()
    backfill_id = launch_backfill(context, days)
    print(f"backfill {backfill_id} launched: {len(symbols)} tickers, breadth {days[0]}..{days[1]}")

    def finished() -> Any:
        backfill = instance.get_backfill(backfill_id)
        waiting = {BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING, BulkActionStatus.FAILING}
        return backfill if backfill.status not in waiting else None

    backfill = wait_for("the backfill to complete", finished, timeout, poll=0.5)
    completed = time.time()
    runs = timings(instance, tags={"dagster/backfill": backfill_id})
    ok = backfill.status == BulkActionStatus.COMPLETED_SUCCESS and all(
        r.status == "SUCCESS" for r in runs
    )
    print(f"backfill {backfill.status.value} after {completed - launched:.1f} s")

    tickers = [r for r in runs if not r.breadth]
    breadth = [r for r in runs if r.breadth]
    last_end = max(r.ended or completed for r in runs)
    print("\nwhere the backfill's time goes (wall clock from launch):")
    phase("launch -> first run created (backfill daemon tick)", runs[0].created - launched)
    ticker_end = max((r.ended or completed for r in tickers), default=launched)
    if tickers:
        phase("first ticker run created -> last ticker run ended", ticker_end - tickers[0].created)
    if breadth:
        phase(
            "last ticker run ended -> breadth run created (daemon)", breadth[0].created - ticker_end
        )
        phase("breadth run created -> ended", (breadth[0].ended or completed) - breadth[0].created)
    phase("last run ended -> backfill marked complete (daemon)", completed - last_end)
    describe_runs("ticker runs", tickers)
    describe_runs("breadth run", breadth)
    if tickers:
        print(
            f"  ticker steps took {sum(r.step for r in tickers):.1f} s summed over the runs, "
            f"the data work in them {sum(r.data_seconds for r in tickers):.1f} s"
        )
    # The loop waits: launch to the first run, the ticker runs' end to breadth's run, the last
    # run's end to the backfill marked complete.
    waits = (runs[0].created - launched) + (completed - last_end)
    if tickers and breadth:
        waits += max(0.0, breadth[0].created - ticker_end)
    return BackfillResult(
        runs, completed - launched, last_end - launched, completed - launched - waits, ok
    )


@dataclass
class DailyResult:
    runs: list[RunTiming]
    seconds_raw: float
    seconds_without_tick: float
    ok: bool


def delete_day(path: str, day: dt.date) -> dict[str, int]:
    """Removes the day's rows, as if the backfill had run the evening before."""
    import duckdb

    deleted = {}
    con = duckdb.connect(path)
    try:
        for table in ("prices", "indicators", "breadth"):
            count = con.execute(f"SELECT count(*) FROM {table} WHERE date = ?", [day]).fetchone()
            con.execute(f"DELETE FROM {table} WHERE date = ?", [day])
            deleted[table] = count[0]
    finally:
        con.close()
    return deleted


def new_trading_day(
    context: Any, instance: Any, universe: Any, day: dt.date, timeout: float
) -> DailyResult:
    import dagster as dg

    from breadth_assets.defs.batches import DAY_TAG
    from breadth_assets.defs.schedules import build_daily_update
    from breadth_assets.defs.universe_file import UniverseFile
    from breadth_assets.stores.duckdb import DuckDBStore

    path = os.environ["BREADTH_DUCKDB_PATH"]
    deleted = delete_day(path, day)
    print(f"\nnew trading day {day}: deleted {deleted} from the store")

    schedule = build_daily_update(universe)
    at = dt.datetime.combine(day, dt.time(18, 0), tzinfo=dt.UTC)
    resources = {"universe": UniverseFile(path=os.environ["BREADTH_UNIVERSE"])}
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=at, resources=resources
    ) as tick:
        data = schedule.evaluate_tick(tick)
    requests = list(data.run_requests or [])
    if not requests:
        raise RuntimeError(f"the schedule asked for no runs: {data.skip_message}")

    store = DuckDBStore(path=path)
    submitted = time.time()
    ticker_ids = launch_runs(context, "ticker_job", requests)
    returned = time.time()
    print(f"{len(ticker_ids)} ticker runs submitted in {returned - submitted:.2f} s")

    wait_for(f"breadth row of {day}", lambda: len(store.read_breadth(day, day)) > 0, timeout)
    row_seen = time.time()

    def breadth_run() -> list[RunTiming]:
        runs = timings(
            instance, job_name="breadth_job", tags={"dagster/partition": day.isoformat()}
        )
        return [r for r in runs if r.ended is not None]

    breadth = wait_for("the breadth run to end", breadth_run, timeout)[-1]
    tickers = timings(instance, ticker_ids)
    ok = all(r.status == "SUCCESS" for r in [*tickers, breadth])
    ticker_end = max(r.ended or row_seen for r in tickers)
    tick_wait = breadth.created - ticker_end
    raw = row_seen - submitted
    if instance.get_run_by_id(ticker_ids[0]).tags.get(DAY_TAG) != day.isoformat():
        raise RuntimeError(f"the ticker runs lack the {DAY_TAG} tag the breadth sensor needs")

    print("\nwhere the new day's time goes (wall clock from submission):")
    phase("submission -> last ticker run ended", ticker_end - submitted)
    phase("last ticker run ended -> breadth run created (sensor)", tick_wait)
    phase("breadth run created -> row in the store", row_seen - breadth.created)
    describe_runs("ticker runs", tickers)
    describe_runs("breadth run", [breadth])
    queued = max(r.queued + r.created - submitted for r in tickers)
    print(f"  last ticker run left the queue {queued:.1f} s after submission")
    return DailyResult([*tickers, breadth], raw, raw - tick_wait, ok)


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument(
        "--dagster-yaml",
        type=Path,
        default=PROJECT_ROOT / "dagster_home" / "dagster.yaml",
        help="the Dagster home template to copy (to compare concurrency settings)",
    )
    parser.add_argument("--backfill-timeout", type=float, default=900)
    parser.add_argument("--day-timeout", type=float, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="daemon_backfill_"))
    universe_path = prepare(root, args.dagster_yaml, args.tickers, args.years)
    daemon: subprocess.Popen | None = None
    try:
        import dagster as dg

        from breadth_assets.calendars import last_closed_day
        from breadth_assets.defs.partitions import tickers_partitions
        from breadth_assets.universe.file import load_universe

        universe = load_universe(universe_path)
        instance = dg.DagsterInstance.get()
        instance.add_dynamic_partitions(tickers_partitions.name, universe.symbols)
        day = last_closed_day("DEMO")
        print(
            f"workload: {args.tickers} demo tickers x {args.years} years "
            f"({universe.start_date}..{day}), batch size {universe.batch_size}, "
            f"Dagster home template {args.dagster_yaml}"
        )

        daemon = start_process(
            [str(BIN / "dagster-daemon"), "run", "-m", MODULE], root / "daemon.log", root
        )
        with graphql_workspace() as context, MemorySampler(daemon.pid) as memory:
            # The daemon is ready once its code server answers; GraphQL loading ours takes as long.
            wait_for(
                "the daemon's code server",
                lambda: memory.count("code server") > 0 or daemon.poll() is not None,
                120,
            )
            if daemon.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited:\n{tail(root / 'daemon.log')}")
            stop_schedule(context)
            backfill = full_backfill(context, instance, universe, day, args.backfill_timeout)
            memory.sample()
            backfill_mem = memory_figures(memory, backfill.runs)
            memory.reset()
            daily = new_trading_day(context, instance, universe, day, args.day_timeout)
            memory.sample()
            daily_mem = memory_figures(memory, daily.runs)

        print()
        print(f"workload: {args.tickers} demo tickers x {args.years} years, batch size 50")
        print(f"Dagster home template: {args.dagster_yaml}")
        print(f"1. full backfill through dagster-daemon ({'ok' if backfill.ok else 'FAILED'}):")
        print(f"  runs:                                    {len(backfill.runs):6d}")
        print(
            f"  launch to backfill complete:             {backfill.seconds_to_complete:6.1f} s"
            "   (target <= 90 s)"
        )
        print(
            f"  the same, the daemon's loop waits excluded: {backfill.seconds_without_waits:6.1f} s"
            "   (target <= 60 s)"
        )
        print(f"  launch to its last run finished:         {backfill.seconds_to_last_run:6.1f} s")
        print_memory(backfill_mem)
        print(f"2. one new trading day, {day} ({'ok' if daily.ok else 'FAILED'}):")
        print(f"  submission to breadth row, raw:          {daily.seconds_raw:6.1f} s")
        print(
            f"  same, sensor tick wait excluded:         {daily.seconds_without_tick:6.1f} s"
            "   (target <= 10 s; 2,000 tickers <= 20 s)"
        )
        print_memory(daily_mem)
    except BaseException:
        print(f"\nfailed; daemon log tail ({root / 'daemon.log'}):\n{tail(root / 'daemon.log')}")
        raise
    finally:
        if daemon is not None:
            stop_tree(daemon)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
