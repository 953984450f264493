"""The daemon benchmark's processes and GraphQL: a fresh Dagster home, `dagster-daemon` started and
stopped with everything it started, and the webserver's GraphQL schema run in this process
(launching a backfill or runs like the UI, stopping the schedule), plus waiting for a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from breadth_assets_testing import write_demo_universe

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODULE = "breadth_assets.definitions"
LOCATION = MODULE  # the name `dagster-daemon run -m MODULE` gives the code location
REPOSITORY = "__repository__"  # the repository a `Definitions` object becomes
POLL_SECONDS = 0.25

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


def prepare(root: Path, template: Path, tickers: int, years: int) -> Path:
    """A fresh Dagster home with the template, the universe file and an empty store; returns the
    universe file.

    The variables go into this process's environment too: the code location this process loads
    for GraphQL reads the universe file and the store from them, like the daemon's does.
    """
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(template, home / "dagster.yaml")
    today = dt.date.today()
    start = today.replace(year=today.year - years)
    symbols = [f"BK{i:04d}" for i in range(1, tickers + 1)]
    universe = write_demo_universe(root, symbols, start)
    env = {
        "DAGSTER_HOME": str(home),
        "BREADTH_UNIVERSE": str(universe),
        "BREADTH_DUCKDB_PATH": str(root / "breadth.duckdb"),
    }
    os.environ.update(env)
    return universe


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
