"""The reference workload (133 tickers x 200 trading days) through our main job, and its pure core.

Prints: the end-to-end seconds of `breadth-assets run` in a fresh process on a fresh Dagster home
(process start-up, Dagster runs and event log included), its peak memory and the events it wrote,
and the seconds and peak memory of the pure indicators + breadth computation on the same bars.

    .venv/bin/python benchmarks/main_job_133x200.py [--tickers 133] [--days 200] [--repeat 5]
        [--instance sqlite|postgres] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import pandas as pd
from _instances import drop_home, events_written, new_home

from breadth_assets.analytics import compute_breadth, compute_indicators
from breadth_assets.calendars import trading_days
from breadth_assets.schema import BREADTH_INPUT_COLUMNS
from breadth_assets.sources.demo.source import demo_bars
from breadth_assets_testing import write_demo_universe

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def workload(tickers: int, days: int) -> tuple[list[str], pd.DatetimeIndex]:
    symbols = [f"SEED{i:03d}" for i in range(1, tickers + 1)]
    last = pd.Timestamp.today().normalize() - pd.offsets.BDay(1)
    dates = trading_days("DEMO", (last - pd.offsets.BDay(days - 1)).date(), last.date())
    return symbols, dates


def end_to_end(
    symbols: list[str], dates: pd.DatetimeIndex, instance: str
) -> tuple[float, float, int]:
    """Seconds, peak RSS (MB) and events written by the main job in a new process on a new
    Dagster home of kind `instance`."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        home_env = new_home(instance, root / "dagster_home")
        env = {
            **os.environ,
            **home_env,
            "BREADTH_UNIVERSE": str(write_demo_universe(root, symbols, dates[0])),
            "BREADTH_DUCKDB_PATH": str(root / "breadth.duckdb"),
        }
        try:
            started = time.perf_counter()
            result = subprocess.run(
                [str(BIN / "breadth-assets"), "run", "--tail", "0"],
                env=env,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - started
            if result.returncode != 0:
                sys.exit(f"the main job failed:\n{result.stdout}\n{result.stderr}")
            print(result.stdout.rstrip())
            events = events_written(home_env)
        finally:
            drop_home(home_env)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mb, events


def computation(symbols: list[str], dates: pd.DatetimeIndex, repeat: int) -> tuple[float, float]:
    """Best seconds of indicators + breadth over `repeat` tries, and the peak traced MB."""
    prices = pd.concat([demo_bars(s) for s in symbols], ignore_index=True)
    prices = prices[prices["date"].between(dates[0], dates[-1])].reset_index(drop=True)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        indicators = compute_indicators(prices)
        rows = indicators.merge(prices[["ticker", "date", "high", "low", "volume"]])
        compute_breadth(rows[list(BREADTH_INPUT_COLUMNS)], dates)
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    indicators = compute_indicators(prices)
    rows = indicators.merge(prices[["ticker", "date", "high", "low", "volume"]])
    compute_breadth(rows[list(BREADTH_INPUT_COLUMNS)], dates)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"bars: {len(prices):,} ({len(symbols)} tickers x {len(dates)} trading days)")
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=133)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--instance", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=1, help="end-to-end runs, each on a new home")
    args = parser.parse_args()
    symbols, dates = workload(args.tickers, args.days)

    compute_seconds, compute_mb = computation(symbols, dates, args.repeat)
    runs = [end_to_end(symbols, dates, args.instance) for _ in range(args.runs)]
    seconds = sorted(run[0] for run in runs)
    print()
    print(f"workload: {args.tickers} demo tickers x {args.days} trading days, batch size 50")
    print(f"Dagster home: {args.instance}")
    print(
        f"end to end, main job through Dagster: {seconds[0]:6.2f} s   (target <= 8 s)"
        if len(seconds) == 1
        else f"end to end, main job through Dagster: {seconds[0]:.2f}-{seconds[-1]:.2f} s, "
        f"median {statistics.median(seconds):.2f} s over {len(seconds)} runs   (target <= 8 s)"
    )
    print(f"  peak memory of that process:        {max(run[1] for run in runs):6.0f} MB")
    print(f"  events written to the event log:    {runs[0][2]:6d}")
    print(f"pure indicators + breadth:            {compute_seconds:6.3f} s   (target <= 0.5 s)")
    print(f"  peak memory traced in computation:  {compute_mb:6.0f} MB")


if __name__ == "__main__":
    main()
