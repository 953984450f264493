"""A real deployment: `dagster-daemon run` and `dagster-webserver`, driven through GraphQL.

The three tests share one deployment (a temporary Dagster home, universe file and DuckDB file)
and run in file order, each building on the store the previous one left:

1. a backfill of every ticker and every breadth partition fills the store;
2. tickers appended to the universe file are picked up by the running universe_sensor, and
   daily_breadth_sensor recomputes breadth from their first bar by itself; so it does when a
   ticker leaves the file;
3. the daily_update schedule's runs for the last closed day are followed by that day's breadth,
   launched by the running daily_breadth_sensor.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pandas as pd
import pytest
import yaml

# How Dagster reads run config YAML: dates stay strings (yaml.safe_load makes them dates).
from dagster_shared.yaml_utils import load_run_config_yaml

from breadth_assets.analytics.breadth import compute_breadth
from breadth_assets.calendars import last_closed_day, trading_days
from breadth_assets.defs.batches import BATCHES_TAG, DAY_TAG
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_tests.support import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server,
    write_universe,
)
from breadth_assets_tests.support_deployment import (
    INSTIGATORS_QUERY,
    PROJECT_ROOT,
    SCHEDULE_DRY_RUN_MUTATION,
    STOP_SCHEDULE_MUTATION,
    Deployment,
    launch_backfill,
    run_tags,
    start_dagster,
    stop_process,
)

pytestmark = [
    pytest.mark.slow,
    # dagster_graphql's client still calls gql's execute with variable_values.
    pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning"),
]
TICKERS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]
NEW_TICKERS = ["INDIA", "JULIET", "KILO"]
REMOVED = "CHARLIE"
HISTORY_DAYS = 60


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

        try:
            start_dagster(deployment)
            _take_the_schedule_off_the_clock(deployment)
            yield deployment
        finally:
            for process in deployment.processes.values():
                stop_process(process)


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
        "alert_sensor": "STOPPED",  # no BREADTH_ALERT_URLS in this deployment
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
    backfill = launch_backfill(deployment, days)
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
            run_tags(run)["dagster/asset_partition_range_start"],
            run_tags(run)["dagster/asset_partition_range_end"],
        )
        for run in runs
    ] == [(NEW_TICKERS[0], NEW_TICKERS[-1])]

    store = deployment.store
    assert set(store.read_prices(NEW_TICKERS)["ticker"]) == set(NEW_TICKERS)
    assert set(store.read_indicators(NEW_TICKERS)["ticker"]) == set(NEW_TICKERS)
    with deployment.open_instance() as instance:
        assert instance.get_dynamic_partitions("tickers") == TICKERS + NEW_TICKERS

    # Nobody runs anything: daily_breadth_sensor finds breadth stale from the new tickers'
    # first bar once their run has finished, and recomputes it.
    first_bar = store.read_indicators(NEW_TICKERS)["date"].min()
    [run] = _stale_breadth_runs(deployment, "after the new tickers' history", seen=set())
    assert run_tags(run)["dagster/asset_partition_range_start"] == f"{first_bar:%Y-%m-%d}"
    _assert_breadth_equals_a_full_recomputation(store, TICKERS + NEW_TICKERS)


def test_a_ticker_removed_from_the_universe_file_is_followed_by_breadth_without_it(deployment):
    seen = {run["runId"] for run in _breadth_sensor_ranges(deployment)}
    start = yaml.safe_load(deployment.universe_path.read_text())["start_date"]
    kept = [ticker for ticker in TICKERS + NEW_TICKERS if ticker != REMOVED]
    staging = deployment.folder / "staging_removed"
    staging.mkdir()
    os.replace(write_universe(staging, kept, start=start.isoformat()), deployment.universe_path)

    [run] = _stale_breadth_runs(deployment, f"after {REMOVED} left the universe", seen)

    store = deployment.store
    first_bar = store.read_indicators([REMOVED])["date"].min()
    assert run_tags(run)["dagster/asset_partition_range_start"] == f"{first_bar:%Y-%m-%d}"
    with deployment.open_instance() as instance:
        assert instance.get_dynamic_partitions("tickers") == kept
    _assert_breadth_equals_a_full_recomputation(store, kept)


def _breadth_sensor_ranges(deployment: Deployment) -> list[dict]:
    """daily_breadth_sensor's ranged breadth runs (its runs for stale rows)."""
    runs = deployment.runs(job="breadth_job", tags={"dagster/sensor_name": "daily_breadth_sensor"})
    return [run for run in runs if "dagster/asset_partition_range_start" in run_tags(run)]


def _stale_breadth_runs(deployment: Deployment, what: str, seen: set[str]) -> list[dict]:
    return deployment.wait_for_runs(
        f"daily_breadth_sensor's breadth run {what}",
        lambda: [run for run in _breadth_sensor_ranges(deployment) if run["runId"] not in seen],
    )


def _assert_breadth_equals_a_full_recomputation(store: DuckDBStore, tickers: list[str]) -> None:
    """Every stored row equals one computation over every trading day from the first."""
    stored = store.read_breadth()
    days = pd.DatetimeIndex(stored["date"])
    inputs = store.read_breadth_inputs(tickers, days[-1].date())
    days = pd.DatetimeIndex(trading_days("DEMO", days[0].date(), days[-1].date()))
    expected = compute_breadth(inputs, days)
    pd.testing.assert_frame_equal(
        stored.reset_index(drop=True), expected, check_dtype=False, rtol=1e-9
    )


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
            tags=run_tags(request),
        )
        for request in requests
    ]

    ticker_runs = deployment.wait_for_runs(
        f"the daily update's ticker runs for {day}",
        lambda: [run for run in deployment.runs(job="ticker_job") if run["runId"] in run_ids],
    )
    assert len(ticker_runs) == len(requests)
    for run in ticker_runs:
        assert run_tags(run)[DAY_TAG] == day.isoformat()
        assert run_tags(run)[BATCHES_TAG] == str(len(requests))

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
