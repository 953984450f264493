"""A demo universe of N tickers x Y years through Dagster: the history, then one new day.

Each phase runs `breadth-assets run` in a new process on one fresh Dagster home and DuckDB store
(`history` up to the day before the last closed one, `new_day` the last closed one) and prints
one line: wall seconds, the data work (the `seconds` each step reports: read, fetch, compute,
write; Dagster's bookkeeping excluded), the ticker and breadth parts of it, the events written
and the peak RSS of the process. `floor` does the history's data work without Dagster: the demo
bars, one bulk write, TA-Lib over every ticker, one write, one query and the breadth count.

    .venv/bin/python benchmarks/scale.py --tickers 2000 --years 20 [--batch-size 50]
        [--update-batch-size 2000] [--instance sqlite|postgres] [--no-floor]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _instances import drop_home, events_written, new_home

BIN = Path(sys.executable).parent
_PEAK_OF_CHILD = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(code)"
)
"""Runs a command and prints the peak RSS (KB) of its largest process: a phase's own peak."""


def _trading_days(years: int) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """The history's first day, its last day and the new day (the last closed one)."""
    from breadth_assets.calendars import last_closed_day

    new_day = pd.Timestamp(last_closed_day("DEMO"))
    previous = new_day - pd.offsets.BDay(1)
    return new_day - pd.DateOffset(years=years), previous, new_day


def _step_seconds(env: dict[str, str], after: float) -> dict[str, float]:
    """Seconds our steps report for the runs created after `after`, by job."""
    code = f"""
import datetime as clock, json, dagster as dg
instance = dg.DagsterInstance.get()
totals = {{}}
after = clock.datetime.fromtimestamp({after}, clock.UTC)
for record in instance.get_run_records(dg.RunsFilter(created_after=after)):
    run = record.dagster_run
    seconds = 0.0
    for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        value = event.asset_materialization.metadata.get("seconds")
        if value is not None:
            seconds = max(seconds, float(value.value))
    totals[run.job_name] = totals.get(run.job_name, 0.0) + seconds
print(json.dumps(totals))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"reading the runs' step seconds failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def phase(name: str, env: dict[str, str], end: pd.Timestamp, extra: str) -> None:
    started_at = time.time()
    events_before = events_written(env)
    command = [str(BIN / "breadth-assets"), "run", "--tail", "0", "--end-date", f"{end:%Y-%m-%d}"]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *command], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{name}: the main job failed:\n{result.stdout}\n{result.stderr}")
    peak_text = f"{int(result.stderr.strip().splitlines()[-1]) / 1024:.0f}"
    work = _step_seconds(env, started_at)
    tickers, breadth = work.get("ticker_job", 0.0), work.get("breadth_job", 0.0)
    print(
        f"phase={name} {extra} wall_seconds={seconds:.1f} data_seconds={tickers + breadth:.2f} "
        f"ticker_seconds={tickers:.2f} breadth_seconds={breadth:.2f} "
        f"events={events_written(env) - events_before} peak_rss_mb={peak_text}",
        flush=True,
    )


def floor(symbols: list[str], first: pd.Timestamp, last: pd.Timestamp, path: Path) -> None:
    """The history's data work without Dagster, in this process."""
    from breadth_assets import schema
    from breadth_assets.analytics import compute_breadth, compute_indicators
    from breadth_assets.calendars import trading_days
    from breadth_assets.sources.demo.source import demo_bars
    from breadth_assets.stores.duckdb import DuckDBStore

    started = time.perf_counter()
    store = DuckDBStore(path=str(path))
    prices = pd.concat([demo_bars(s) for s in symbols], ignore_index=True)
    prices = prices[prices["date"].between(first, last)].reset_index(drop=True)
    store.write({schema.PRICES: prices})
    store.write({schema.INDICATORS: compute_indicators(prices)})
    del prices
    dates = trading_days("DEMO", first.date(), last.date())
    rows = store.read_breadth_inputs(symbols, last.date())
    store.write({schema.BREADTH: compute_breadth(rows, dates)})
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"phase=floor seconds={seconds:.1f} peak_rss_mb={peak:.0f}", flush=True)


def main() -> None:
    from breadth_assets_testing import write_demo_universe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--update-batch-size", type=int, default=2000)
    parser.add_argument("--instance", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--no-floor", action="store_true", help="skip the plain floor")
    parser.add_argument("--floor-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    symbols = [f"S{i:04d}" for i in range(args.tickers)]
    first, previous, new_day = _trading_days(args.years)
    extra = f"tickers={args.tickers} years={args.years}"

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if args.floor_only:
            floor(symbols, first, previous, root / "floor.duckdb")
            return
        home_env = new_home(args.instance, root / "dagster_home")
        env = {
            **os.environ,
            **home_env,
            "BREADTH_UNIVERSE": str(
                write_demo_universe(
                    root,
                    symbols,
                    first.date(),
                    batch_size=args.batch_size,
                    update_batch_size=args.update_batch_size,
                )
            ),
            "BREADTH_DUCKDB_PATH": str(root / "breadth.duckdb"),
        }
        print(
            f"# {args.tickers} demo tickers from {first:%Y-%m-%d}, batch size {args.batch_size} "
            f"(updates {args.update_batch_size}), "
            f"Dagster home {args.instance}; history to {previous:%Y-%m-%d}, new day "
            f"{new_day:%Y-%m-%d}",
            flush=True,
        )
        try:
            phase("history", env, previous, extra)
            phase("new_day", env, new_day, extra)
        finally:
            drop_home(home_env)
    if not args.no_floor:
        subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--floor-only"], check=True, env=os.environ
        )


if __name__ == "__main__":
    main()
