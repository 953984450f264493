"""The seeds' workload (133 tickers x 200 trading days) through our main job, and its pure core.

Prints: the end-to-end seconds of `breadth-assets run` in a fresh process on a fresh Dagster home
(process start-up, Dagster runs and event log included), its peak memory, and the seconds and
peak memory of the pure indicators + breadth computation on the same bars.

    .venv/bin/python benchmarks/seed_workload.py [--tickers 133] [--days 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import pandas as pd

from breadth_assets.analytics import compute_breadth, compute_indicators
from breadth_assets.calendars import trading_days
from breadth_assets.resources.demo_source import demo_bars
from breadth_assets.schema import BREADTH_INPUT_COLUMNS
from breadth_assets_testing import write_demo_universe

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def workload(tickers: int, days: int) -> tuple[list[str], pd.DatetimeIndex]:
    symbols = [f"SEED{i:03d}" for i in range(1, tickers + 1)]
    last = pd.Timestamp.today().normalize() - pd.offsets.BDay(1)
    dates = trading_days("DEMO", (last - pd.offsets.BDay(days - 1)).date(), last.date())
    return symbols, dates


def end_to_end(symbols: list[str], dates: pd.DatetimeIndex) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of the main job in a new process on a new Dagster home."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        home = root / "dagster_home"
        home.mkdir()
        shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "BREADTH_UNIVERSE": str(write_demo_universe(root, symbols, dates[0])),
            "BREADTH_DUCKDB_PATH": str(root / "breadth.duckdb"),
        }
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
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mb


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
    args = parser.parse_args()
    symbols, dates = workload(args.tickers, args.days)

    compute_seconds, compute_mb = computation(symbols, dates, args.repeat)
    e2e_seconds, e2e_mb = end_to_end(symbols, dates)
    print()
    print(f"workload: {args.tickers} demo tickers x {args.days} trading days, batch size 50")
    print(f"end to end, main job through Dagster: {e2e_seconds:6.2f} s   (target <= 15 s)")
    print(f"  peak memory of that process:        {e2e_mb:6.0f} MB")
    print(f"pure indicators + breadth:            {compute_seconds:6.3f} s   (target <= 0.5 s)")
    print(f"  peak memory traced in computation:  {compute_mb:6.0f} MB")


if __name__ == "__main__":
    main()
