"""A real deployment: `dagster-daemon run` and `dagster-webserver`, driven through GraphQL.

The three tests share one deployment (a temporary Dagster home, universe file and DuckDB file)
and run in file order, each building on the store the previous one left:

1. a backfill of every ticker and every breadth partition fills the store;
2. tickers appended to the universe file are picked up by the running universe_sensor;
3. the daily_update schedule's runs for the last closed day are followed by that day's breadth,
   launched by the running daily_breadth_sensor.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import dagster as dg
import pandas as pd
import pytest
import yaml
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

# How Dagster reads run config YAML: dates stay strings (yaml.safe_load makes them dates).
from dagster_shared.yaml_utils import load_run_config_yaml

from breadth_assets.batches import BATCHES_TAG, DAY_TAG
from breadth_assets.calendars import last_closed_day, trading_days
from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets_tests.support import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server,
    write_universe,
)

pytestmark = [
    pytest.mark.slow,
    # dagster_graphql's client still calls gql's execute with variable_values.
    pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning"),
]
BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODULE = "breadth_assets.definitions"

TICKERS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]
NEW_TICKERS = ["INDIA", "JULIET", "KILO"]
HISTORY_DAYS = 60

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return text[-chars:] or "(empty)"


def _tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def _stop(process: subprocess.Popen) -> None:
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
            f"----- last lines of {name} ({path}) -----\n{_tail(path)}"
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


def _start(deployment: Deployment, name: str, args: list[str]) -> None:
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


def _wait_for_code_location(deployment: Deployment) -> None:
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


INSTANCE_CONFIGS = {
    "sqlite": PROJECT_ROOT / "dagster_home" / "dagster.yaml",
    "postgres": PROJECT_ROOT / "deploy" / "postgres" / "dagster.yaml",
}


@pytest.fixture(scope="module", params=list(INSTANCE_CONFIGS))
def deployment(request, tmp_path_factory) -> Iterator[Deployment]:
    """The project's Dagster home (SQLite) and the PostgreSQL one, each a deployment."""
    postgres_url = None
    if request.param == "postgres":
        postgres_url = create_postgres_database(postgres_server())
        request.addfinalizer(lambda: drop_postgres_database(postgres_url))
    folder = tmp_path_factory.mktemp(f"daemon_e2e_{request.param}")
    dagster_home = folder / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_bytes(INSTANCE_CONFIGS[request.param].read_bytes())
    today = dt.datetime.now(dt.UTC).date()  # DEMO trades on UTC weekdays
    start = trading_days("DEMO", today - dt.timedelta(days=HISTORY_DAYS * 2), today)[
        -HISTORY_DAYS
    ].date()
    universe = write_universe(folder, TICKERS, start=start.isoformat())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "BREADTH_UNIVERSE": str(universe),
        "BREADTH_DUCKDB_PATH": str(folder / "breadth.duckdb"),
        **({"DAGSTER_POSTGRES_URL": postgres_url} if postgres_url else {}),
    }
    logs = {"dagster-daemon": folder / "daemon.log", "dagster-webserver": folder / "webserver.log"}
    deployment = Deployment(env=env, folder=folder, logs=logs)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        if postgres_url:
            monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url)
        # The tickers are partitions before the daemon starts, so universe_sensor finds the
        # file in step and launches nothing: the backfill below is the only writer of phase 1.
        with deployment.open_instance() as instance:
            instance.add_dynamic_partitions("tickers", TICKERS)

        port = _free_port()
        try:
            _start(deployment, "dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-m", MODULE])
            _start(
                deployment,
                "dagster-webserver",
                [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-m", MODULE],
            )
            deployment.client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
            _wait_for_code_location(deployment)
            _take_the_schedule_off_the_clock(deployment)
            yield deployment
        finally:
            for process in deployment.processes.values():
                _stop(process)


def _take_the_schedule_off_the_clock(deployment: Deployment) -> None:
    """Checks that the schedule and sensors start running, then stops the schedule.

    Phase 3 evaluates the schedule for a chosen day instead; a real 18:00 UTC tick during the
    module would launch a second daily update that competes with it.
    """
    result = deployment.gql(
        INSTIGATORS_QUERY,
        {
            "schedule": deployment.selector(scheduleName="daily_update"),
            "repository": deployment.selector(),
        },
    )
    schedule, sensors = result["scheduleOrError"], result["sensorsOrError"]
    assert schedule["__typename"] == "Schedule", schedule
    assert schedule["scheduleState"]["status"] == "RUNNING", schedule
    assert {s["name"]: s["sensorState"]["status"] for s in sensors["results"]} == {
        "universe_sensor": "RUNNING",
        "daily_breadth_sensor": "RUNNING",
        "quality_after_backfill_sensor": "RUNNING",
        "quality_after_breadth_sensor": "RUNNING",
        "run_recovery_sensor": "RUNNING",
    }
    stopped = deployment.gql(STOP_SCHEDULE_MUTATION, {"id": schedule["id"]})
    assert stopped["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED", stopped


def test_a_backfill_of_every_ticker_and_breadth_partition_fills_the_store(deployment):
    # One asset backfill covers both partitionings: the daemon runs the ticker partitions in
    # batches (BackfillPolicy.multi_run), and breadth (AllPartitionMapping on indicators) in one
    # run once every ticker partition of indicators is materialized. Breadth days run to the
    # last closed day: after a weekend the next day's partition exists before its close, and
    # the breadth asset refuses it until its update time.
    start = yaml.safe_load(deployment.universe_path.read_text())["start_date"]
    closed = last_closed_day("DEMO")
    days = {
        "range": {"start": f"{trading_days('DEMO', start, closed)[0]:%Y-%m-%d}", "end": f"{closed}"}
    }
    launched = deployment.gql(
        LAUNCH_BACKFILL_MUTATION,
        {
            "params": {
                "partitionsByAssets": [
                    {"assetKey": {"path": ["raw_prices"]}},
                    {"assetKey": {"path": ["indicators"]}},
                    {"assetKey": {"path": ["breadth"]}, "partitions": days},
                ],
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def probe() -> tuple[bool, Any]:
        backfill = deployment.gql(BACKFILL_QUERY, {"backfillId": backfill_id})
        backfill = backfill["partitionBackfillOrError"]
        status = backfill.get("status")
        if status in ("FAILED", "COMPLETED_FAILED", "CANCELED", "CANCELING", "FAILING"):
            runs = backfill.get("runs") or []
            deployment.fail(
                f"backfill {backfill_id} ended {status}: {backfill}\n{deployment.run_errors(runs)}"
            )
        return status in ("COMPLETED_SUCCESS", "COMPLETED"), backfill

    backfill = deployment.wait_for(f"backfill {backfill_id}", probe, BACKFILL_TIMEOUT)
    # One run for the 8 tickers (fewer than batch_size) and one for every breadth day.
    assert len(backfill["runs"]) == 2, backfill["runs"]

    store = deployment.store
    assert set(store.read_prices(TICKERS)["ticker"]) == set(TICKERS)
    indicators = store.read_indicators(TICKERS)
    assert set(indicators["ticker"]) == set(TICKERS)
    assert indicators["date"].max() == pd.Timestamp(closed)
    breadth = store.read_breadth().set_index("date")
    assert list(breadth.index) == list(trading_days("DEMO", start, closed))
    # The demo source leaves out a few ticker-days at random, so a day's universe is the
    # number of tickers with a bar that day, not always all of them.
    per_day = indicators.groupby("date")["ticker"].nunique()
    pd.testing.assert_series_equal(
        breadth["universe"], per_day.reindex(breadth.index), check_names=False
    )


def test_tickers_appended_to_the_universe_file_are_fetched_by_the_universe_sensor(deployment):
    # Written beside the file and renamed over it: the sensor reads it every 15 s, and a
    # half-written file could look like a universe without some of its tickers.
    staging = deployment.folder / "staging"
    staging.mkdir()
    start = yaml.safe_load(deployment.universe_path.read_text())["start_date"]
    staged = write_universe(staging, TICKERS + NEW_TICKERS, start=start.isoformat())
    os.replace(staged, deployment.universe_path)

    runs = deployment.wait_for_runs(
        "the universe_sensor's run for the new tickers",
        lambda: deployment.runs(job="ticker_job", tags={"dagster/sensor_name": "universe_sensor"}),
    )
    assert [
        (
            _tags(run)["dagster/asset_partition_range_start"],
            _tags(run)["dagster/asset_partition_range_end"],
        )
        for run in runs
    ] == [(NEW_TICKERS[0], NEW_TICKERS[-1])]

    store = deployment.store
    assert set(store.read_prices(NEW_TICKERS)["ticker"]) == set(NEW_TICKERS)
    assert set(store.read_indicators(NEW_TICKERS)["ticker"]) == set(NEW_TICKERS)
    with deployment.open_instance() as instance:
        assert instance.get_dynamic_partitions("tickers") == TICKERS + NEW_TICKERS


def test_the_daily_update_for_a_new_day_is_followed_by_that_days_breadth(deployment):
    day = last_closed_day("DEMO")
    with deployment.open_instance() as instance:
        tickers = instance.get_dynamic_partitions("tickers")

    # Make `day` genuinely new: no run may be writing while its rows are deleted, and the
    # store's own write lock is held as every writer does.
    deployment.wait_until_idle()
    store = deployment.store
    before = _rows_of(store, tickers, day)
    assert len(before[0]) > 0, "the earlier phases left no bars for the day"
    with store._connect(write=True) as con:
        for table in ("prices", "indicators", "breadth"):
            con.execute(f"DELETE FROM {table} WHERE date = ?", [day])
    assert store.read_breadth(start=day, end=day).empty
    assert all(frame.empty for frame in _rows_of(store, tickers, day))

    # What the scheduler would do at the day's update time (18:00 UTC on DEMO): evaluate the
    # schedule for that tick, then launch its run requests with their tags and run config.
    update_time = dt.datetime.combine(day, dt.time(18, 0), tzinfo=dt.UTC)
    tick = deployment.gql(
        SCHEDULE_DRY_RUN_MUTATION,
        {
            "selector": deployment.selector(scheduleName="daily_update"),
            "timestamp": update_time.timestamp(),
        },
    )["scheduleDryRun"]
    assert tick["__typename"] == "DryRunInstigationTick", tick
    evaluation = tick["evaluationResult"]
    assert not evaluation["error"] and not evaluation["skipReason"], evaluation
    requests = evaluation["runRequests"]
    assert requests, evaluation
    run_ids = [
        deployment.client.submit_job_execution(
            "ticker_job",
            repository_location_name=deployment.location,
            repository_name=deployment.repository,
            run_config=load_run_config_yaml(request["runConfigYaml"]),
            tags=_tags(request),
        )
        for request in requests
    ]

    ticker_runs = deployment.wait_for_runs(
        f"the daily update's ticker runs for {day}",
        lambda: [run for run in deployment.runs(job="ticker_job") if run["runId"] in run_ids],
    )
    assert len(ticker_runs) == len(requests)
    for run in ticker_runs:
        assert _tags(run)[DAY_TAG] == day.isoformat()
        assert _tags(run)[BATCHES_TAG] == str(len(requests))

    breadth_runs = deployment.wait_for_runs(
        f"daily_breadth_sensor's breadth run for {day}",
        lambda: deployment.runs(
            job="breadth_job",
            tags={
                "dagster/sensor_name": "daily_breadth_sensor",
                "dagster/partition": day.isoformat(),
            },
        ),
    )
    assert len(breadth_runs) == 1

    # The day's bars came back as they were, and breadth counts every ticker that has one.
    after = _rows_of(store, tickers, day)
    for was, now in zip(before, after, strict=True):
        pd.testing.assert_frame_equal(now, was)
    row = store.read_breadth(start=day, end=day)
    assert len(row) == 1, row
    assert row["universe"].iloc[0] == after[1]["ticker"].nunique()


def _rows_of(store: DuckDBStore, tickers: list[str], day: dt.date) -> list[pd.DataFrame]:
    """The day's rows of prices and of indicators."""
    frames = store.read_prices(tickers), store.read_indicators(tickers)
    return [frame[frame["date"] == pd.Timestamp(day)].reset_index(drop=True) for frame in frames]
