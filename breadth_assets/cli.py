"""`breadth-assets run`: the main job, the whole universe end to end through Dagster.

Tickers go in runs of the universe's batch size (the same batches a UI backfill makes), then
breadth in one run over every trading day. Runs execute in this process against the Dagster
instance of `$DAGSTER_HOME`, so they show in the UI like any other run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import dagster as dg
import pandas as pd
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
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


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run carry a range of partitions (no public helper in 1.13)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def ticker_batches(keys: Sequence[str], wanted: Sequence[str], size: int) -> list[list[str]]:
    """Contiguous stretches of the partition order, at most `size` long: one ranged run each."""
    wanted_set = set(wanted)
    batches: list[list[str]] = []
    current: list[str] = []
    for key in keys:
        if key in wanted_set:
            current.append(key)
        if current and (key not in wanted_set or len(current) == size):
            batches.append(current)
            current = []
    if current:
        batches.append(current)
    return batches


def run_main_job(instance: dg.DagsterInstance, out=sys.stdout) -> bool:
    """Every ticker partition in batches, then every breadth partition; True when all succeed."""
    from breadth_assets.definitions import defs
    from breadth_assets.partitions import (
        UNIVERSE,
        sync_ticker_partitions,
        tickers_partitions,
        trading_days_partitions,
    )

    started = time.perf_counter()
    symbols = UNIVERSE.symbols
    added, removed = sync_ticker_partitions(instance, symbols)
    print(
        f"universe {UNIVERSE.path.name}: {len(symbols)} tickers on {UNIVERSE.market} "
        f"({len(added)} added, {len(removed)} removed), history from {UNIVERSE.start_date}",
        file=out,
    )
    ticker_job = defs.resolve_job_def("ticker_job")
    all_ok = True
    keys = instance.get_dynamic_partitions(tickers_partitions.name)
    batches = ticker_batches(keys, symbols, UNIVERSE.batch_size)
    for number, batch in enumerate(batches, start=1):
        batch_started = time.perf_counter()
        result = ticker_job.execute_in_process(
            instance=instance,
            tags=range_tags(batch[0], batch[-1]),
            run_config=QUIET_LOGS,
            raise_on_error=False,
        )
        status = "ok" if result.success else "FAILED (see the run in the UI)"
        print(
            f"tickers batch {number}/{len(batches)} "
            f"({batch[0]}..{batch[-1]}, {len(batch)} tickers): "
            f"{status} in {time.perf_counter() - batch_started:.1f} s  run {result.run_id[:8]}",
            file=out,
        )
        if not result.success:
            all_ok = False
            _print_failure(result, out)

    first = trading_days_partitions.get_first_partition_key()
    last = trading_days_partitions.get_last_partition_key()
    breadth_started = time.perf_counter()
    result = defs.resolve_job_def("breadth_job").execute_in_process(
        instance=instance, tags=range_tags(first, last), run_config=QUIET_LOGS, raise_on_error=False
    )
    print(
        f"breadth {first}..{last}: {'ok' if result.success else 'FAILED'} in "
        f"{time.perf_counter() - breadth_started:.1f} s  run {result.run_id[:8]}",
        file=out,
    )
    if not result.success:
        all_ok = False
        _print_failure(result, out)
    print(f"main job finished in {time.perf_counter() - started:.1f} s", file=out)
    return all_ok


def _print_failure(result: dg.ExecuteInProcessResult, out) -> None:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            print(f"  {event.step_failure_data.error.message.strip()}", file=out)


def print_breadth_tail(days: int, out=sys.stdout) -> None:
    from breadth_assets.deployment import store_for_deployment

    tail = store_for_deployment().read_breadth().tail(days)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(
            tail[TAIL_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.2f}"), file=out
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="breadth-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="materialize every partition of every asset")
    run.add_argument("--tail", type=int, default=10, help="breadth days to print at the end")
    args = parser.parse_args(argv)

    if not os.environ.get("DAGSTER_HOME"):
        parser.error("set DAGSTER_HOME to a folder for Dagster's runs and events (see README)")
    instance = dg.DagsterInstance.get()
    ok = run_main_job(instance)
    if args.tail:
        print(f"\nlast {args.tail} days of breadth:")
        print_breadth_tail(args.tail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
