"""The 500 x 10 y backfill on the several-machine deployment, with N Celery workers.

Dagster's storage and the market store on PostgreSQL, each run's step sent through Redis to one
of N Celery workers (BREADTH_EXECUTOR=celery, the app of breadth_assets.runtime.celery_worker),
all on this machine: the cost of distribution next to `daemon_backfill.py`'s one-machine figure
(on 2 cores no speed-up is expected). Prints the backfill's time, raw and without the daemon's loop
waits, the steps each worker ran and the peak RSS of the workers' processes.

    bash scripts/postgres.sh start && bash scripts/redis.sh start
    BREADTH_TEST_POSTGRES=postgresql+psycopg2://postgres@127.0.0.1:54329 \\
    BREADTH_TEST_REDIS=redis://127.0.0.1:63799/0 \\
        .venv/bin/python benchmarks/cluster_backfill.py --workers 2 [--tickers 500] [--years 10]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil
from _daemon import (
    BIN,
    MODULE,
    graphql_workspace,
    start_process,
    stop_schedule,
    stop_tree,
    tail,
    wait_for,
)
from _instances import drop_home, new_home
from daemon_backfill import full_backfill

from breadth_assets.runtime.workers import celery_worker_args
from breadth_assets_testing import write_demo_universe
from breadth_assets_testing.servers import create_postgres_database, empty_redis_db

SAMPLE_SECONDS = 0.5


class TreePeak:
    """Peak RSS of a process tree (a worker and its pool children), sampled in a thread."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            for pid in self.pids:
                try:
                    root = psutil.Process(pid)
                    for process in [root, *root.children(recursive=True)]:
                        self.peak = max(self.peak, process.memory_info().rss)
                except psutil.Error:
                    continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    postgres = os.environ.get("BREADTH_TEST_POSTGRES", "").rstrip("/")
    redis = os.environ.get("BREADTH_TEST_REDIS", "")
    if not postgres or not redis:
        raise SystemExit("set BREADTH_TEST_POSTGRES and BREADTH_TEST_REDIS (see the docstring)")

    root = Path(tempfile.mkdtemp(prefix="cluster_backfill_"))
    home_env = new_home("postgres", root / "dagster_home")
    store_url = create_postgres_database(postgres, prefix="breadth_store")
    today = time.gmtime()
    start = f"{today.tm_year - args.years}-{today.tm_mon:02d}-{min(today.tm_mday, 28):02d}"
    symbols = [f"BK{i:04d}" for i in range(1, args.tickers + 1)]
    env = {
        **home_env,
        "BREADTH_UNIVERSE": str(write_demo_universe(root, symbols, start)),
        "BREADTH_STORE": "postgres",
        "BREADTH_POSTGRES_URL": store_url,
        "BREADTH_EXECUTOR": "celery",
        "BREADTH_CELERY_BROKER": empty_redis_db(redis, 6),
        "BREADTH_CELERY_BACKEND": empty_redis_db(redis, 7),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `celery`, for the workers
    }
    os.environ.update(env)
    processes: list[subprocess.Popen] = []
    try:
        import dagster as dg

        from breadth_assets.calendars import last_closed_day
        from breadth_assets.defs.partitions import build_trading_days, tickers_partitions
        from breadth_assets.universe.file import load_universe

        universe = load_universe()
        instance = dg.DagsterInstance.get()
        instance.add_dynamic_partitions(tickers_partitions.name, universe.symbols)
        workers = []
        for n in range(1, args.workers + 1):
            os.environ["BREADTH_WORKER_NAME"] = f"worker{n}"
            command = [str(BIN / "celery"), *celery_worker_args(f"worker{n}")]
            workers.append(start_process(command, root / f"worker{n}.log", root))
        os.environ.pop("BREADTH_WORKER_NAME")
        processes += workers
        for n in range(1, args.workers + 1):
            log = root / f"worker{n}.log"
            wait_for(f"worker{n}", lambda log=log: " ready." in log.read_text(), 120)
        daemon = start_process(
            [str(BIN / "dagster-daemon"), "run", "-m", MODULE], root / "daemon.log", root
        )
        processes.append(daemon)
        print(
            f"workload: {args.tickers} demo tickers x {args.years} years, batch size "
            f"{universe.batch_size}, {args.workers} Celery workers, PostgreSQL storage and store"
        )
        with graphql_workspace() as context, TreePeak([w.pid for w in workers]) as peak:
            time.sleep(5)  # the daemon's code server
            stop_schedule(context)
            day = last_closed_day("DEMO")
            trading = build_trading_days(universe)
            result = full_backfill(context, instance, universe, day, args.timeout)
        steps = collections.Counter(
            record.asset_materialization.metadata["worker"].value
            for record in instance.fetch_materializations(
                dg.AssetKey("raw_prices"), limit=args.tickers
            ).records
        )
        print()
        print(f"cluster backfill, {args.workers} workers ({'ok' if result.ok else 'FAILED'}):")
        print(f"  runs:                                      {len(result.runs):6d}")
        print(f"  launch to backfill complete:               {result.seconds_to_complete:6.1f} s")
        print(
            f"  the same, the daemon's loop waits excluded: {result.seconds_without_waits:6.1f} s"
        )
        print(f"  peak RSS of the workers' processes:        {peak.peak / 2**20:6.0f} MB")
        print(f"  ticker partitions per worker:              {dict(sorted(steps.items()))}")
        print(f"  breadth days: {len(trading.get_partition_keys())} partitions in the calendar")
    except BaseException:
        for log in sorted(root.glob("*.log")):
            print(f"\n--- {log.name} ---\n{tail(log)}")
        raise
    finally:
        for process in reversed(processes):
            stop_tree(process)
        drop_home(home_env)
        drop_home({"DAGSTER_POSTGRES_URL": store_url})
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
