"""A real deployment in tests: `dagster-daemon`, `dagster-webserver` (and Celery workers) as
processes on a temporary Dagster home, driven through GraphQL like the UI."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from breadth_assets.stores.duckdb import DuckDBStore

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODULE = "breadth_assets.definitions"


STARTUP_TIMEOUT = 90
BACKFILL_TIMEOUT = 180
RUN_TIMEOUT = 120
STOP_TIMEOUT = 20
POLL_SECONDS = 1.0
ACTIVE_STATUSES = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId jobName status tags { key value } } }
    ... on Error { message }
  }
}
"""
RUN_ERRORS_QUERY = """
query RunErrors($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message level } } }
  }
}
"""
WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
  }
}
"""
INSTIGATORS_QUERY = """
query Instigators($schedule: ScheduleSelector!, $repository: RepositorySelector!) {
  scheduleOrError(scheduleSelector: $schedule) {
    __typename
    ... on Schedule { id scheduleState { status } }
    ... on Error { message }
  }
  sensorsOrError(repositorySelector: $repository) {
    __typename
    ... on Sensors { results { name sensorState { status } } }
    ... on Error { message }
  }
}
"""
STOP_SCHEDULE_MUTATION = """
mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on Error { message }
  }
}
"""
LAUNCH_BACKFILL_MUTATION = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""
BACKFILL_QUERY = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      status
      error { message }
      runs { runId jobName status tags { key value } }
    }
    ... on Error { message }
  }
}
"""
REEXECUTE_MUTATION = """
mutation Reexecute($params: ReexecutionParams!) {
  launchRunReexecution(reexecutionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""
SCHEDULE_DRY_RUN_MUTATION = """
mutation DryRun($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick {
      evaluationResult {
        skipReason
        error { message stack }
        runRequests { runKey jobName runConfigYaml tags { key value } }
      }
    }
    ... on Error { message }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, chars: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return text[-chars:] or "(empty)"


def run_tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def kill_process(process: subprocess.Popen) -> None:
    """SIGKILL to the process's group, as the OOM killer or a lost machine ends it: nothing of
    it runs any cleanup."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM to the process's group (its code servers and runs too), SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@dataclass
class Deployment:
    env: dict[str, str]
    folder: Path
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    client: DagsterGraphQLClient | None = None
    location: str = ""
    repository: str = ""

    @property
    def universe_path(self) -> Path:
        return Path(self.env["BREADTH_UNIVERSE"])

    @property
    def store(self) -> DuckDBStore:
        return DuckDBStore(path=self.env["BREADTH_DUCKDB_PATH"])

    def open_instance(self) -> dg.DagsterInstance:
        """The deployment's instance in this process; its dagster.yaml reads DAGSTER_HOME."""
        return dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"])

    def fail(self, message: str) -> NoReturn:
        tails = "\n".join(
            f"----- last lines of {name} ({path}) -----\n{tail(path)}"
            for name, path in self.logs.items()
        )
        pytest.fail(f"{message}\n{tails}", pytrace=False)

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict:
        assert self.client is not None
        try:
            return self.client._execute(query, variables)
        except DagsterGraphQLClientError as error:
            self.fail(f"GraphQL request failed: {error}\ncaused by: {error.__cause__!r}")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                self.fail(f"{name} exited with code {process.returncode}")

    def wait_for(self, what: str, probe: Callable[[], tuple[bool, Any]], timeout: float) -> Any:
        """Polls `probe` -> (done, state) until done; fails with the last state and log tails."""
        deadline = time.monotonic() + timeout
        state: Any = None
        while True:
            self.check_alive()
            done, state = probe()
            if done:
                return state
            if time.monotonic() > deadline:
                self.fail(
                    f"timed out after {timeout:.0f} s waiting for {what}; last state: {state}"
                )
            time.sleep(POLL_SECONDS)

    def selector(self, **extra: str) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": self.repository, **extra}

    def runs(self, job: str | None = None, tags: dict[str, str] | None = None) -> list[dict]:
        run_filter: dict[str, Any] = {}
        if job:
            run_filter["pipelineName"] = job
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        result = self.gql(RUNS_QUERY, {"filter": run_filter})["runsOrError"]
        if result["__typename"] != "Runs":
            self.fail(f"runsOrError: {result}")
        return result["results"]

    def run_errors(self, runs: list[dict]) -> str:
        """The ERROR-level messages of the runs that did not succeed, for failure messages."""
        lines = []
        for run in runs:
            if run["status"] in ("SUCCESS", *ACTIVE_STATUSES):
                continue
            logs = self.gql(RUN_ERRORS_QUERY, {"runId": run["runId"]})["logsForRun"]
            for event in logs.get("events", []):
                if event.get("level") == "ERROR":
                    lines.append(f"{run['runId'][:8]} {run['jobName']}: {event['message']}")
        return "\n".join(lines[-20:])

    def wait_for_runs(self, what: str, list_runs: Callable[[], list[dict]]) -> list[dict]:
        """Waits until `list_runs` returns at least one run and all of them succeeded."""

        def probe() -> tuple[bool, list[dict]]:
            runs = list_runs()
            if any(run["status"] in ("FAILURE", "CANCELED") for run in runs):
                self.fail(f"a run of {what} failed: {runs}\n{self.run_errors(runs)}")
            return bool(runs) and all(run["status"] == "SUCCESS" for run in runs), runs

        return self.wait_for(what, probe, RUN_TIMEOUT)

    def wait_until_idle(self) -> None:
        def probe() -> tuple[bool, list[dict]]:
            active = [run for run in self.runs() if run["status"] in ACTIVE_STATUSES]
            return not active, active

        self.wait_for("no run to be queued or in progress", probe, RUN_TIMEOUT)


def start_process(deployment: Deployment, name: str, args: list[str]) -> None:
    log = open(deployment.logs[name], "w")  # noqa: SIM115 - the child writes it until stopped
    try:
        deployment.processes[name] = subprocess.Popen(
            args,
            env=deployment.env,
            cwd=deployment.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def start_dagster(deployment: Deployment) -> None:
    """`dagster-daemon` and `dagster-webserver` on the deployment's home, the GraphQL client on
    the webserver, back once the code location has loaded. The home's storage must exist first
    (open the instance once): Dagster's processes create it without a lock."""
    start_process(deployment, "dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-m", MODULE])
    port = free_port()
    start_process(
        deployment,
        "dagster-webserver",
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-m", MODULE],
    )
    deployment.client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
    wait_for_code_location(deployment)


def wait_for_code_location(deployment: Deployment) -> None:
    def probe() -> tuple[bool, Any]:
        try:
            result = deployment.client._execute(WORKSPACE_QUERY)
        except DagsterGraphQLClientError as error:
            return False, f"webserver not answering yet: {error.__cause__!r}"
        entries = result["workspaceOrError"].get("locationEntries") or []
        for entry in entries:
            loaded = entry.get("locationOrLoadError") or {}
            if loaded.get("__typename") == "PythonError":
                deployment.fail(f"the code location failed to load: {loaded['message']}")
            if entry["loadStatus"] == "LOADED" and loaded.get("__typename") == "RepositoryLocation":
                deployment.location = loaded["name"]
                deployment.repository = loaded["repositories"][0]["name"]
                return True, entry
        return False, result

    deployment.wait_for("the webserver to load the code location", probe, STARTUP_TIMEOUT)


def start_backfill(deployment: Deployment, breadth_days: dict[str, Any]) -> str:
    """Every ticker partition of raw_prices and indicators and the breadth days, as the UI's
    *Backfill* button does; returns the backfill's id."""
    launched = deployment.gql(
        LAUNCH_BACKFILL_MUTATION,
        {
            "params": {
                "partitionsByAssets": [
                    {"assetKey": {"path": ["raw_prices"]}},
                    {"assetKey": {"path": ["indicators"]}},
                    {"assetKey": {"path": ["breadth"]}, "partitions": breadth_days},
                ],
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def wait_for_backfill(
    deployment: Deployment, backfill_id: str, ends: tuple[str, ...] = ("COMPLETED_SUCCESS",)
) -> dict:
    """Waits until the backfill ends with one of `ends` (fails the test on any other end)."""
    finished = ("FAILED", "COMPLETED_FAILED", "CANCELED", "COMPLETED_SUCCESS", "COMPLETED")

    def probe() -> tuple[bool, Any]:
        backfill = deployment.gql(BACKFILL_QUERY, {"backfillId": backfill_id})
        backfill = backfill["partitionBackfillOrError"]
        status = backfill.get("status")
        if status in ("CANCELING", "FAILING") or (status in finished and status not in ends):
            runs = backfill.get("runs") or []
            deployment.fail(
                f"backfill {backfill_id} ended {status}: {backfill}\n{deployment.run_errors(runs)}"
            )
        return status in ends, backfill

    return deployment.wait_for(f"backfill {backfill_id}", probe, BACKFILL_TIMEOUT)


def launch_backfill(
    deployment: Deployment,
    breadth_days: dict[str, Any],
    before_waiting: Callable[[], None] | None = None,
) -> dict:
    """`start_backfill`, then `before_waiting`, then waits until the backfill completes and
    returns it."""
    backfill_id = start_backfill(deployment, breadth_days)
    if before_waiting is not None:
        before_waiting()
    return wait_for_backfill(deployment, backfill_id, ("COMPLETED_SUCCESS", "COMPLETED"))


def reexecute(deployment: Deployment, run_id: str, strategy: str = "FROM_FAILURE") -> str:
    """The UI's *Re-execute* of a run (its parent's tags included, as the UI does); returns the
    new run's id."""
    result = deployment.gql(
        REEXECUTE_MUTATION, {"params": {"parentRunId": run_id, "strategy": strategy}}
    )["launchRunReexecution"]
    if result["__typename"] != "LaunchRunSuccess":
        deployment.fail(f"re-execution of {run_id} refused: {result}")
    return result["run"]["runId"]
