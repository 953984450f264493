"""A full backfill and one new trading day through a real `dagster-daemon`, with their figures.

What a user of the UI and the daily schedule waits for, which the in-process main job
(seed_workload.py) does not show: the backfill daemon's submission loop, the run queue and its
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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from breadth_assets_testing import write_demo_universe

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODULE = "breadth_assets.definitions"
LOCATION = MODULE  # the name `dagster-daemon run -m MODULE` gives the code location
REPOSITORY = "__repository__"  # the repository a `Definitions` object becomes
SAMPLE_SECONDS = 0.5
POLL_SECONDS = 0.25
MB = 2**20

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

SCHEDULE_ID = """
query($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { id }
    ... on Error { message }
  }
}
"""

STOP_SCHEDULE = """
mutation($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on Error { message }
  }
}
"""

LAUNCH_RUNS = """
mutation($params: [ExecutionParams!]!) {
  launchMultipleRuns(executionParamsList: $params) {
    __typename
    ... on LaunchMultipleRunsResult {
      launchMultipleRunsResult {
        __typename
        ... on LaunchRunSuccess { run { runId } }
        ... on Error { message }
      }
    }
    ... on Error { message }
  }
}
"""


# --------------------------------------------------------------------------------------------
# Setup: universe file, Dagster home, processes


def prepare(root: Path, template: Path, tickers: int, years: int) -> None:
    """A fresh Dagster home with the template, the universe file and an empty store.

    The variables go into this process's environment too: the code location reads the universe
    file when it is imported, so they must be set before any `breadth_assets` module is.
    """
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(template, home / "dagster.yaml")
    today = dt.date.today()
    start = today.replace(year=today.year - years)
    symbols = [f"BK{i:04d}" for i in range(1, tickers + 1)]
    env = {
        "DAGSTER_HOME": str(home),
        "BREADTH_UNIVERSE": str(write_demo_universe(root, symbols, start)),
        "BREADTH_DUCKDB_PATH": str(root / "breadth.duckdb"),
    }
    os.environ.update(env)


def start_process(args: Sequence[str], log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            list(args), cwd=cwd, env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT
        )


def stop_tree(process: subprocess.Popen, grace_seconds: float = 15.0) -> None:
    """Terminates the process, then whatever it started (code server, run workers); kills
    whatever is still alive after the grace period."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    alive = [child for child in family if child.is_running()]
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(alive, timeout=grace_seconds)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=5)


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} missing)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# Memory: sampling the daemon's process tree


@dataclass
class ProcessPeak:
    role: str
    cmdline: str
    rss: int = 0
    cpu: float = 0.0  # user + system seconds at the last sample
    cpu_base: float = 0.0  # at the last reset, so a phase counts only its own CPU


@dataclass
class MemorySampler:
    """Peak RSS per process under the daemon, and per run (run worker plus its children).

    On 1.13 the daemon's code server starts each run as a `multiprocessing` spawn child (the
    run worker), and the multiprocess executor starts each step as a spawn child of that: both
    are "run processes". Roles are told apart by parentage, since the command lines are alike.
    """

    root_pid: int
    peaks: dict[int, ProcessPeak] = field(default_factory=dict)
    run_tree_peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            with contextlib.suppress(psutil.Error):
                self.sample()

    def sample(self) -> None:
        root = psutil.Process(self.root_pid)
        rss: dict[int, int] = {}
        parents: dict[int, int] = {}
        for proc in [root, *root.children(recursive=True)]:
            try:
                rss[proc.pid] = proc.memory_info().rss
                parents[proc.pid] = proc.ppid()
                if proc.pid not in self.peaks:
                    self.peaks[proc.pid] = ProcessPeak("other", " ".join(proc.cmdline()))
                times = proc.cpu_times()
                self.peaks[proc.pid].cpu = times.user + times.system
            except psutil.Error:
                continue
        for pid in rss:  # a child may be listed before its parent: classify until known
            peak = self.peaks[pid]
            if peak.role == "other":
                peak.role = self._role(peak.cmdline, self.peaks.get(parents[pid]))
        tree_rss: dict[int, int] = {}
        for pid, value in rss.items():
            self.peaks[pid].rss = max(self.peaks[pid].rss, value)
            worker = pid
            while worker in parents and self.peaks[worker].role != "run worker":
                worker = parents[worker]
            if worker in self.peaks and self.peaks[worker].role == "run worker":
                tree_rss[worker] = tree_rss.get(worker, 0) + value
        self.run_tree_peak = max([self.run_tree_peak, *tree_rss.values()])

    @staticmethod
    def _role(cmdline: str, parent: ProcessPeak | None) -> str:
        parent_role = parent.role if parent else ""
        if "dagster-daemon" in cmdline:
            return "daemon"
        if " api grpc" in cmdline or "code-server" in cmdline:
            return "code server"
        if "resource_tracker" in cmdline:
            return "other"
        if "execute_run" in cmdline or (
            parent_role == "code server" and "multiprocessing" in cmdline
        ):
            return "run worker"
        if parent_role == "run worker" and "multiprocessing" in cmdline:
            return "run child (step)"
        if parent_role.startswith("run"):
            return "run child (other)"  # e.g. the `tail -F` that captures a step's logs
        return "other"

    def reset(self) -> None:
        """Peaks from now on (the roles learnt so far are kept)."""
        self.sample()
        for peak in self.peaks.values():
            peak.rss = 0
            peak.cpu_base = peak.cpu
        self.run_tree_peak = 0

    def peak(self, *roles: str) -> int:
        return max([0, *(p.rss for p in self.peaks.values() if p.role in roles)])

    def count(self, role: str) -> int:
        return sum(p.role == role and p.cpu > p.cpu_base for p in self.peaks.values())

    def cpu(self, *roles: str) -> float:
        """CPU seconds used since the last reset by the processes of these roles."""
        return sum(p.cpu - p.cpu_base for p in self.peaks.values() if p.role in roles)


# --------------------------------------------------------------------------------------------
# GraphQL against the same code location the daemon loads


@contextlib.contextmanager
def graphql_workspace() -> Iterator[Any]:
    """The webserver's GraphQL schema in this process (its own code server, no HTTP server)."""
    from dagster import DagsterInstance
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget

    target = ModuleTarget(MODULE, None, str(PROJECT_ROOT), LOCATION)
    with WorkspaceProcessContext(DagsterInstance.get(), target) as context:
        yield context


def graphql(context: Any, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    """Executes like the webserver does: inside an entered request context, which is what lets
    resolvers load dynamic partitions (`dagster_graphql.cli.execute_query` does not enter it,
    and a backfill of `tickers` partitions then fails with "The instance is not available to
    load partitions")."""
    from dagster_graphql.schema import create_schema

    with context.create_request_context() as request:
        result = asyncio.run(
            create_schema().execute_async(query, context_value=request, variable_values=variables)
        )
    if result.errors:
        raise RuntimeError(f"GraphQL errors: {result.errors}")
    return result.data


def stop_schedule(context: Any) -> None:
    """Takes daily_update off the clock: the measured day is submitted by hand, and a real
    18:00 UTC tick during the benchmark would compete with it."""
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": REPOSITORY,
        "scheduleName": "daily_update",
    }
    schedule = graphql(context, SCHEDULE_ID, {"selector": selector})["scheduleOrError"]
    if schedule["__typename"] != "Schedule":
        raise RuntimeError(f"daily_update not found: {schedule}")
    stopped = graphql(context, STOP_SCHEDULE, {"id": schedule["id"]})["stopRunningSchedule"]
    if stopped.get("scheduleState", {}).get("status") != "STOPPED":
        raise RuntimeError(f"daily_update not stopped: {stopped}")


def launch_backfill(context: Any, days: tuple[str, str]) -> str:
    """One asset backfill: all partitions of raw_prices+indicators, and the breadth days."""
    by_asset = [
        {"assetKey": {"path": ["raw_prices"]}},
        {"assetKey": {"path": ["indicators"]}},
        {
            "assetKey": {"path": ["breadth"]},
            "partitions": {"range": {"start": days[0], "end": days[1]}},
        },
    ]
    params = {"partitionsByAssets": by_asset}
    data = graphql(context, LAUNCH_BACKFILL, {"params": params})
    answer = data["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {answer}")
    return answer["backfillId"]


def launch_runs(context: Any, job: str, requests: Sequence[Any]) -> list[str]:
    """Submits run requests to the queue as the scheduler would: their tags and run config."""
    params = [
        {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": job,
            },
            "runConfigData": request.run_config,
            "executionMetadata": {
                "tags": [
                    {"key": key, "value": value}
                    for key, value in {
                        **request.tags,
                        "dagster/schedule_name": "daily_update",
                    }.items()
                ]
            },
        }
        for request in requests
    ]
    data = graphql(context, LAUNCH_RUNS, {"params": params})["launchMultipleRuns"]
    results = data.get("launchMultipleRunsResult") or []
    failed = [r for r in results if r["__typename"] != "LaunchRunSuccess"]
    if data["__typename"] != "LaunchMultipleRunsResult" or failed:
        raise RuntimeError(f"runs not launched: {data}")
    return [r["run"]["runId"] for r in results]


# --------------------------------------------------------------------------------------------
# Timings from the instance's run records and events


@dataclass
class RunTiming:
    """One run's life: queued, process start-up, step, with the asset's own data seconds."""

    run_id: str
    job: str
    status: str
    created: float
    dequeued: float | None
    started: float | None  # RUN_START: the run worker has loaded the code
    step_started: float | None
    step_ended: float | None
    ended: float | None
    data_seconds: float  # the asset's own `seconds` metadata: reads, fetch, compute, write
    materializations: int
    pids: set[int]  # of the run worker and the step process, from the run's events
    breadth: bool  # materializes breadth (the other runs are ticker batches)

    @property
    def queued(self) -> float:
        return (self.dequeued or self.created) - self.created

    @property
    def startup(self) -> float:
        return _span(self.dequeued, self.started)

    @property
    def step_launch(self) -> float:
        return _span(self.started, self.step_started)

    @property
    def step(self) -> float:
        return _span(self.step_started, self.step_ended)

    @property
    def teardown(self) -> float:
        return _span(self.step_ended, self.ended)


def _span(start: float | None, end: float | None) -> float:
    return end - start if start is not None and end is not None else float("nan")


def run_timing(instance: Any, record: Any) -> RunTiming:
    from dagster import DagsterEventType as E

    first: dict[Any, float] = {}
    last: dict[Any, float] = {}
    data_seconds, materializations = 0.0, 0
    pids: set[int] = set()
    kinds = {
        E.RUN_DEQUEUED,
        E.RUN_STARTING,
        E.RUN_START,
        E.STEP_START,
        E.STEP_SUCCESS,
        E.STEP_FAILURE,
        E.RUN_SUCCESS,
        E.RUN_FAILURE,
        E.ASSET_MATERIALIZATION,
    }
    for entry in instance.all_logs(record.dagster_run.run_id, of_type=kinds):
        kind = entry.dagster_event.event_type
        first.setdefault(kind, entry.timestamp)
        if kind in (E.RUN_START, E.STEP_START) and entry.dagster_event.pid:
            pids.add(entry.dagster_event.pid)
        last[kind] = entry.timestamp
        if kind == E.ASSET_MATERIALIZATION:
            materializations += 1
            metadata = entry.asset_materialization.metadata
            if "seconds" in metadata:
                data_seconds = max(data_seconds, float(metadata["seconds"].value))
    run = record.dagster_run
    return RunTiming(
        run_id=run.run_id,
        job=run.job_name,
        status=run.status.value,
        created=record.create_timestamp.timestamp(),
        dequeued=first.get(E.RUN_DEQUEUED) or first.get(E.RUN_STARTING),
        started=first.get(E.RUN_START),
        step_started=first.get(E.STEP_START),
        step_ended=last.get(E.STEP_SUCCESS) or last.get(E.STEP_FAILURE),
        ended=record.end_time,
        pids=pids,
        data_seconds=data_seconds,
        materializations=materializations,
        breadth=run.job_name == "breadth_job"
        or any(key.path == ["breadth"] for key in run.asset_selection or ()),
    )


def timings(instance: Any, run_ids: Sequence[str] | None = None, **filters: Any) -> list[RunTiming]:
    from dagster import RunsFilter

    run_filter = RunsFilter(run_ids=list(run_ids)) if run_ids is not None else RunsFilter(**filters)
    records = instance.get_run_records(filters=run_filter)
    return sorted((run_timing(instance, r) for r in records), key=lambda t: t.created)


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, poll: float = POLL_SECONDS
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def phase(label: str, seconds: float) -> None:
    print(f"  {label:<56}{seconds:6.1f} s")


def describe_runs(label: str, runs: Sequence[RunTiming]) -> None:
    """Mean per-run phases: where one run of the phase spends its time."""
    print(
        f"  {label}: {len(runs)} run(s), per run on average: "
        f"queued {mean([r.queued for r in runs]):.1f} s, "
        f"process start-up {mean([r.startup for r in runs]):.1f} s, "
        f"step launch {mean([r.step_launch for r in runs]):.1f} s, "
        f"step {mean([r.step for r in runs]):.1f} s "
        f"(data work {mean([r.data_seconds for r in runs]):.1f} s, "
        f"{mean([r.materializations for r in runs]):.0f} materializations), "
        f"teardown {mean([r.teardown for r in runs]):.1f} s"
    )
    events = sum(r.materializations for r in runs)
    if events:
        rest = sum(r.step - r.data_seconds for r in runs) / events
        print(f"    step time beyond the data work: {rest * 1000:.0f} ms per materialization")


# --------------------------------------------------------------------------------------------
# The two measurements


@dataclass
class BackfillResult:
    runs: list[RunTiming]
    seconds_to_complete: float
    seconds_to_last_run: float
    ok: bool


def full_backfill(
    context: Any,
    instance: Any,
    symbols: Sequence[str],
    last_day: dt.date,
    timeout: float,
) -> BackfillResult:
    from dagster._core.execution.backfill import BulkActionStatus

    from breadth_assets.partitions import trading_days_partitions

    days = (trading_days_partitions.get_first_partition_key(), last_day.isoformat())
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
    return BackfillResult(runs, completed - launched, last_end - launched, ok)


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


def new_trading_day(context: Any, instance: Any, day: dt.date, timeout: float) -> DailyResult:
    import dagster as dg

    from breadth_assets.batches import DAY_TAG
    from breadth_assets.partitions import UNIVERSE
    from breadth_assets.resources.duckdb_store import DuckDBStore
    from breadth_assets.schedules import build_daily_update

    path = os.environ["BREADTH_DUCKDB_PATH"]
    deleted = delete_day(path, day)
    print(f"\nnew trading day {day}: deleted {deleted} from the store")

    schedule = build_daily_update(UNIVERSE)
    at = dt.datetime.combine(day, dt.time(18, 0), tzinfo=dt.UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=at) as tick:
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


def memory_figures(memory: MemorySampler, runs: Sequence[RunTiming]) -> dict[str, float]:
    def peak_of(kind_is_breadth: bool) -> int:
        pids = {pid for run in runs if run.breadth == kind_is_breadth for pid in run.pids}
        return max([0, *(memory.peaks[pid].rss for pid in pids if pid in memory.peaks)])

    return {
        "breadth": peak_of(True),
        "tickers": peak_of(False),
        "cpu worker": memory.cpu("run worker"),
        "cpu step": memory.cpu("run child (step)"),
        "cpu daemon": memory.cpu("daemon", "code server", "other"),
        "steps": memory.count("run child (step)"),
        "run": memory.peak("run worker", "run child (step)"),
        "worker": memory.peak("run worker"),
        "step": memory.peak("run child (step)"),
        "tree": memory.run_tree_peak,
        "daemon": memory.peak("daemon"),
        "code server": memory.peak("code server"),
        "workers": memory.count("run worker"),
    }


def print_memory(figures: Mapping[str, float]) -> None:
    print(
        f"  peak RSS of a single run process:        {figures['run'] / MB:6.0f} MB"
        "   (target <= 1024 MB)"
    )
    print(
        f"    by run: breadth {figures['breadth'] / MB:.0f} MB, ticker batches "
        f"{figures['tickers'] / MB:.0f} MB; by process: run worker "
        f"{figures['worker'] / MB:.0f} MB, step process {figures['step'] / MB:.0f} MB; "
        "a run's processes together "
        f"{figures['tree'] / MB:.0f} MB"
    )
    print(
        f"    (not run processes: daemon {figures['daemon'] / MB:.0f} MB, its code server "
        f"{figures['code server'] / MB:.0f} MB)"
    )
    workers, steps = max(1, int(figures["workers"])), max(1, int(figures["steps"]))
    worker_cpu, step_cpu = figures["cpu worker"], figures["cpu step"]
    print(
        f"  CPU seconds: run workers {worker_cpu:.0f} ({worker_cpu / workers:.1f} per run), "
        f"step processes {step_cpu:.0f} ({step_cpu / steps:.1f} each), daemon and its code "
        f"servers {figures['cpu daemon']:.0f}"
    )


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
    prepare(root, args.dagster_yaml, args.tickers, args.years)
    daemon: subprocess.Popen | None = None
    try:
        import dagster as dg

        from breadth_assets.calendars import last_closed_day
        from breadth_assets.partitions import UNIVERSE, tickers_partitions

        instance = dg.DagsterInstance.get()
        instance.add_dynamic_partitions(tickers_partitions.name, UNIVERSE.symbols)
        day = last_closed_day("DEMO")
        print(
            f"workload: {args.tickers} demo tickers x {args.years} years "
            f"({UNIVERSE.start_date}..{day}), batch size {UNIVERSE.batch_size}, "
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
            backfill = full_backfill(
                context, instance, UNIVERSE.symbols, day, args.backfill_timeout
            )
            memory.sample()
            backfill_mem = memory_figures(memory, backfill.runs)
            memory.reset()
            daily = new_trading_day(context, instance, day, args.day_timeout)
            memory.sample()
            daily_mem = memory_figures(memory, daily.runs)

        print()
        print(f"workload: {args.tickers} demo tickers x {args.years} years, batch size 50")
        print(f"Dagster home template: {args.dagster_yaml}")
        print(f"1. full backfill through dagster-daemon ({'ok' if backfill.ok else 'FAILED'}):")
        print(f"  runs:                                    {len(backfill.runs):6d}")
        print(
            f"  launch to backfill complete:             {backfill.seconds_to_complete:6.1f} s"
            "   (target <= 120 s)"
        )
        print(f"  launch to its last run finished:         {backfill.seconds_to_last_run:6.1f} s")
        print_memory(backfill_mem)
        print(f"2. one new trading day, {day} ({'ok' if daily.ok else 'FAILED'}):")
        print(f"  submission to breadth row, raw:          {daily.seconds_raw:6.1f} s")
        print(
            f"  same, sensor tick wait excluded:         {daily.seconds_without_tick:6.1f} s"
            "   (target <= 20 s)"
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
