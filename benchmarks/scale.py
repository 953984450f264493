"""A demo universe of N tickers x Y years through Dagster: the history, one new day, then
corporate actions declared late.

The universe has an actions file in which a share of the tickers (`--actions-share`, 1 %) carry
one split or bonus at a random ex-date among their bars (a fixed seed), on top of the demo
market's own 1:2 splits. Each phase runs `breadth-assets run` in a new process on one fresh
Dagster home and DuckDB store (`history` up to the day before the last closed one, `new_day` the
last closed one, `new_actions` the same day again after 20 more tickers got an action in the
file with an ex-date in the past, anywhere in their history or among the last
`--new-actions-days` trading days) and prints one line: wall seconds, the data work (the
`seconds` each step reports: read, fetch, compute, write; Dagster's bookkeeping excluded), the
ticker and breadth parts of it, the events written and the peak RSS of the process. `floor` does
the history's data work without Dagster and without actions: the demo bars, one bulk write,
TA-Lib over every ticker, one write, one query and the breadth count.

`--groups N` adds N overlapping groups of 50 to 500 tickers (a fixed seed) to the universe file:
breadth is then computed for each of them besides the whole universe, and a last phase,
`group_change`, runs the same day again after five tickers of one group were swapped (that
group is recomputed alone).

    .venv/bin/python benchmarks/scale.py --tickers 2000 --years 20 [--batch-size 50]
        [--update-batch-size 2000] [--instance sqlite|postgres] [--no-floor]
        [--actions-share 0.01] [--new-actions 20] [--new-actions-days N] [--seed 7]
        [--profile DIR] [--groups N]

`--profile DIR` runs the new_actions phase under cProfile (`DIR/new_actions.prof`; its seconds
include cProfile's overhead) and writes its runs' log lines with their times
(`DIR/new_actions.log`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
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


ACTION_VALUES = (
    ("split", "1:2"),
    ("split", "1:5"),
    ("split", "1:10"),
    ("bonus", "1:1"),
    ("bonus", "1:2"),
)
"""What a benchmark action is: a split or a bonus, one of these ratios."""


def _actions_for(
    symbols: list[str],
    rng: random.Random,
    first: pd.Timestamp,
    last: pd.Timestamp,
    recent_days: int | None = None,
) -> list[tuple[str, pd.Timestamp, str, str]]:
    """One split or bonus for each of `symbols`, its ex-date a random bar of the ticker after its
    first one within [first, last] (within the last `recent_days` of them when given)."""
    from breadth_assets.sources.demo.source import demo_bars

    actions = []
    for symbol in symbols:
        dates = demo_bars(symbol)["date"]
        dates = dates[dates.between(first, last)].iloc[1:]
        if recent_days is not None:
            dates = dates.iloc[-recent_days:]
        if dates.empty:
            continue
        kind, value = rng.choice(ACTION_VALUES)
        actions.append((symbol, pd.Timestamp(rng.choice(dates.tolist())), kind, value))
    return actions


def _write_actions(path: Path, actions: list[tuple[str, pd.Timestamp, str, str]]) -> None:
    lines = ["ticker,ex_date,kind,value"]
    lines += [f"{t},{day:%Y-%m-%d},{kind},{value}" for t, day, kind, value in actions]
    path.write_text("\n".join(lines) + "\n")


def _ex_dates(actions: list[tuple[str, pd.Timestamp, str, str]]) -> str:
    days = sorted(day for _, day, _, _ in actions)
    return f"{days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d}" if days else "none"


def _write_logs(env: dict[str, str], after: float, path: Path) -> None:
    """The log lines of the runs created after `after`, with their time from the run's start
    (materialization events counted, not shown)."""
    code = f"""
import datetime as clock, dagster as dg
instance = dg.DagsterInstance.get()
after = clock.datetime.fromtimestamp({after}, clock.UTC)
records = instance.get_run_records(dg.RunsFilter(created_after=after))
for record in sorted(records, key=lambda r: r.create_timestamp):
    run = record.dagster_run
    entries = instance.all_logs(run.run_id)
    start = entries[0].timestamp if entries else 0.0
    print(f"== run {{run.run_id[:8]}} {{run.job_name}}")
    skipped = 0
    for entry in entries:
        kind = entry.dagster_event.event_type_value if entry.dagster_event else "LOG"
        if kind.startswith("ASSET_MATERIALIZATION"):
            skipped += 1
            continue
        message = (entry.user_message or "").replace(chr(10), " ")[:240]
        print(f"{{entry.timestamp - start:8.2f}} {{kind:28}} {{message}}")
    print(f"({{skipped}} materialization events not shown)")
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    path.write_text(out.stdout + out.stderr)


def phase(
    name: str,
    env: dict[str, str],
    end: pd.Timestamp,
    extra: str,
    profile: Path | None = None,
) -> None:
    started_at = time.time()
    events_before = events_written(env)
    command = [str(BIN / "breadth-assets"), "run", "--tail", "0", "--end-date", f"{end:%Y-%m-%d}"]
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "cProfile", "-o", str(profile / f"{name}.prof"), *command]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *command], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{name}: the main job failed:\n{result.stdout}\n{result.stderr}")
    peak_text = f"{int(result.stderr.strip().splitlines()[-1]) / 1024:.0f}"
    for line in result.stdout.splitlines():
        if line.startswith("breadth") or (name == "new_actions" and "applied" in line):
            print(f"#   {name}: {line.strip()[:200]}", flush=True)
    work = _step_seconds(env, started_at)
    if profile is not None:
        _write_logs(env, started_at, profile / f"{name}.log")
    tickers, breadth = work.get("ticker_job", 0.0), work.get("breadth_job", 0.0)
    print(
        f"phase={name} {extra} wall_seconds={seconds:.1f} data_seconds={tickers + breadth:.2f} "
        f"ticker_seconds={tickers:.2f} breadth_seconds={breadth:.2f} "
        f"events={events_written(env) - events_before} peak_rss_mb={peak_text}",
        flush=True,
    )


def _groups(symbols: list[str], count: int, rng: random.Random) -> dict[str, list[str]]:
    """`count` groups of 50 to 500 tickers drawn at random: they overlap."""
    sizes = [rng.randint(50, min(500, len(symbols))) for _ in range(count)]
    return {f"G{i:02d}": sorted(rng.sample(symbols, size)) for i, size in enumerate(sizes)}


def _groups_yaml(groups: dict[str, list[str]]) -> str:
    lines = ["groups:"] + [f"  {name}: [{', '.join(m)}]" for name, m in groups.items()]
    return "\n".join(lines) + "\n" if groups else ""


def _swap_members(
    universe: Path, groups: dict[str, list[str]], symbols: list[str], rng: random.Random
) -> None:
    """Five members of the first group swapped for five other tickers, in the file."""
    name = next(iter(groups))
    members = groups[name]
    out = set(rng.sample(members, 5))
    new = rng.sample(sorted(set(symbols) - set(members)), 5)
    groups[name] = sorted((set(members) - out) | set(new))
    text = universe.read_text()
    universe.write_text(text[: text.index("groups:\n")] + _groups_yaml(groups))


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
    parser.add_argument(
        "--actions-share",
        type=float,
        default=0.01,
        help="share of the tickers with one split or bonus in the actions file",
    )
    parser.add_argument(
        "--new-actions", type=int, default=20, help="actions added before the new_actions phase"
    )
    parser.add_argument(
        "--new-actions-days",
        type=int,
        default=None,
        help="the new actions' ex-dates among the last N trading days (default: any of the "
        "ticker's days)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the actions drawn")
    parser.add_argument(
        "--profile", type=Path, default=None, help="profile the new_actions phase into DIR"
    )
    parser.add_argument(
        "--groups", type=int, default=0, help="overlapping groups of 50-500 tickers to add"
    )
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
        rng = random.Random(args.seed)
        drawn = rng.sample(symbols, round(args.actions_share * len(symbols)))
        actions = _actions_for(sorted(drawn), rng, first, previous)
        others = sorted(set(symbols) - set(drawn))
        later = sorted(rng.sample(others, min(args.new_actions, len(others))))
        late_actions = _actions_for(later, rng, first, new_day, args.new_actions_days)
        actions_file = root / "actions.csv"
        _write_actions(actions_file, actions)
        universe = write_demo_universe(
            root,
            symbols,
            first.date(),
            batch_size=args.batch_size,
            update_batch_size=args.update_batch_size,
        )
        groups = _groups(symbols, args.groups, rng)
        with universe.open("a") as out:
            out.write(f"actions: {actions_file.name}\n")
            out.write(_groups_yaml(groups))
        home_env = new_home(args.instance, root / "dagster_home")
        env = {
            **os.environ,
            **home_env,
            "BREADTH_UNIVERSE": str(universe),
            "BREADTH_DUCKDB_PATH": str(root / "breadth.duckdb"),
        }
        print(
            f"# {args.tickers} demo tickers from {first:%Y-%m-%d}, batch size {args.batch_size} "
            f"(updates {args.update_batch_size}), "
            f"Dagster home {args.instance}; history to {previous:%Y-%m-%d}, new day "
            f"{new_day:%Y-%m-%d}",
            flush=True,
        )
        print(
            f"# actions file: {len(actions)} actions ({args.actions_share:g} of the tickers, "
            f"ex-dates {_ex_dates(actions)}) besides the demo's own splits; new_actions adds "
            f"{len(late_actions)} (ex-dates {_ex_dates(late_actions)})",
            flush=True,
        )
        if groups:
            sizes = sorted(len(members) for members in groups.values())
            print(
                f"# {len(groups)} groups of {sizes[0]} to {sizes[-1]} tickers, "
                f"{sum(sizes)} memberships",
                flush=True,
            )
        try:
            phase("history", env, previous, extra)
            phase("new_day", env, new_day, extra)
            _write_actions(actions_file, sorted(actions + late_actions))
            phase("new_actions", env, new_day, extra, args.profile)
            if groups:
                _swap_members(universe, groups, symbols, rng)
                phase("group_change", env, new_day, extra)
        finally:
            drop_home(home_env)
    if not args.no_floor:
        subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--floor-only"], check=True, env=os.environ
        )


if __name__ == "__main__":
    main()
