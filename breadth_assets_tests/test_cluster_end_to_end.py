"""Several machines on one: PostgreSQL, Redis, `dagster-daemon` and two Celery workers.

Dagster's storage and the market store are PostgreSQL; every run's step goes through Redis to
one of two `dagster-celery` worker processes (BREADTH_EXECUTOR=celery), as on separate machines.
The demo deployment backfills the universe and a day of breadth; its PostgreSQL store then
equals a single-machine DuckDB run row for row. The Upstox deployment fetches from the fake
Upstox with both workers under one rate limit kept in Redis; then both workers are killed with
SIGKILL in the middle of their steps, their runs fail naming them within the heartbeat timeout,
and a replacement worker finishes the work.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.calendars import last_closed_day, trading_days
from breadth_assets.defs.stale_breadth import breadth_days, stale_breadth
from breadth_assets.runtime.recovery import status, status_text
from breadth_assets.runtime.step_workers import HEARTBEAT_TIMEOUT_ENV, StepWorker
from breadth_assets.runtime.workers import VISIBILITY_TIMEOUT_ENV, celery_worker_args
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.stores.postgres.store import PostgresStore
from breadth_assets.universe.file import load_universe
from breadth_assets_testing import write_demo_universe
from breadth_assets_testing.fake_upstox import FakeUpstox, max_in_window, write_instruments_master
from breadth_assets_testing.servers import empty_redis_db
from breadth_assets_tests.support import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server,
)
from breadth_assets_tests.support_deployment import (
    BIN,
    MODULE,
    PROJECT_ROOT,
    Deployment,
    kill_process,
    launch_backfill,
    reexecute,
    start_backfill,
    start_dagster,
    start_process,
    stop_process,
    wait_for_backfill,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning"),
]
WORKERS = ("worker1", "worker2")
REPLACEMENTS = ("worker3",)
TICKERS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]
HISTORY_DAYS = 40
BATCH_SIZE = 2
TOKEN = "tok-cluster-5e1f-upstox-secret"
UPSTOX_TICKERS = [f"U{i:02d}" for i in range(16)]
UPSTOX_LIMITS = {"per_second": 3, "per_minute": 100}
REDIS_DATABASES = {"demo": (10, 11, 12), "upstox": (13, 14, 15)}
TICKER_STEP = "ticker_assets"
HEARTBEAT_TIMEOUT = 30
"""The cluster's BREADTH_WORKER_HEARTBEAT_TIMEOUT (120 s by default), short for the test."""
VISIBILITY_TIMEOUT = 20
"""The cluster's BREADTH_CELERY_VISIBILITY_TIMEOUT (3600 s by default): a dead worker's message
comes back while the test runs (a step that outlasts it is refused by its second worker)."""
FAILED_WITHIN = HEARTBEAT_TIMEOUT + 25
"""From SIGKILL to FAILURE: the timeout, a look of the run's process (5 s), slack for CI."""
REQUEST_LATENCY = 20.0
"""Seconds the fake Upstox holds each request while the workers are to be killed mid-step."""


def redis_server() -> str:
    """`$BREADTH_TEST_REDIS` (`redis://host:port[/db]`); CI starts one (scripts/redis.sh)."""
    url = os.environ.get("BREADTH_TEST_REDIS")
    if not url:
        pytest.skip("BREADTH_TEST_REDIS is not set (bash scripts/redis.sh start)")
    return url


def _start_date() -> dt.date:
    today = dt.datetime.now(dt.UTC).date()
    return trading_days("DEMO", today - dt.timedelta(days=HISTORY_DAYS * 2), today)[
        -HISTORY_DAYS
    ].date()


def _upstox_universe(folder: Path) -> Path:
    """An NSE universe on the fake Upstox, its rate limits low enough for 16 tickers to meet."""
    keys = {ticker: f"NSE_EQ|INE{i:03d}C01011" for i, ticker in enumerate(UPSTOX_TICKERS)}
    write_instruments_master(folder / "NSE.json.gz", {})
    limits = ", ".join(f"{k}: {v}" for k, v in UPSTOX_LIMITS.items())
    lines = [
        "market: NSE",
        "start_date: 2025-01-01",
        f"batch_size: {2 * BATCH_SIZE}",
        "source:",
        "  kind: upstox",
        "  instruments: NSE.json.gz",
        f"  rate_limits: {{{limits}}}",
        "tickers:",
    ]
    for ticker in UPSTOX_TICKERS:
        lines += [f"  - symbol: {ticker}", f'    instrument_key: "{keys[ticker]}"']
    path = folder / "universe.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module", params=list(REDIS_DATABASES))
def cluster(request, tmp_path_factory) -> Iterator[tuple[Deployment, FakeUpstox | None]]:
    """PostgreSQL for Dagster and the store, Redis for Celery and the limiter, the daemon and
    the webserver (for GraphQL), each its own process group; the backfill starts the workers."""
    kind = request.param
    server, redis = postgres_server(), redis_server()
    dagster_db, store_db = (create_postgres_database(server) for _ in range(2))
    request.addfinalizer(lambda: [drop_postgres_database(db) for db in (dagster_db, store_db)])
    broker, backend, limiter = (empty_redis_db(redis, db) for db in REDIS_DATABASES[kind])
    folder = tmp_path_factory.mktemp(f"cluster_{kind}")
    dagster_home = folder / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_bytes(
        (PROJECT_ROOT / "deploy" / "postgres" / "dagster.yaml").read_bytes()
    )
    fake = FakeUpstox(token=TOKEN).start() if kind == "upstox" else None
    if fake is not None:
        request.addfinalizer(fake.stop)
        universe = _upstox_universe(folder)
    else:
        universe = write_demo_universe(folder, TICKERS, _start_date(), batch_size=BATCH_SIZE)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_POSTGRES_URL": dagster_db,
        "BREADTH_UNIVERSE": str(universe),
        "BREADTH_STORE": "postgres",
        "BREADTH_POSTGRES_URL": store_db,
        "BREADTH_EXECUTOR": "celery",
        "BREADTH_CELERY_BROKER": broker,
        "BREADTH_CELERY_BACKEND": backend,
        "BREADTH_UPSTOX_LIMITER_URL": limiter,
        HEARTBEAT_TIMEOUT_ENV: str(HEARTBEAT_TIMEOUT),
        VISIBILITY_TIMEOUT_ENV: str(VISIBILITY_TIMEOUT),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **({"UPSTOX_ACCESS_TOKEN": TOKEN, "UPSTOX_API_HOST": fake.host} if fake else {}),
    }
    names = ["dagster-daemon", "dagster-webserver", *WORKERS, *REPLACEMENTS]
    deployment = Deployment(env=env, folder=folder, logs={n: folder / f"{n}.log" for n in names})
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_db)
        with deployment.open_instance() as instance:
            instance.add_dynamic_partitions("tickers", UPSTOX_TICKERS if fake else TICKERS)
        try:
            start_dagster(deployment)
            yield deployment, fake
        finally:
            for process in deployment.processes.values():
                stop_process(process)


def _start_workers(deployment: Deployment) -> None:
    """The two Celery workers, once the first steps wait in the broker: with steps of a second
    or two, whichever worker is free first would otherwise take every step of a small backfill.
    Started together on a queue, each takes one (prefetch 1, concurrency 1)."""
    if all(worker in deployment.processes for worker in WORKERS):
        return
    import redis

    broker = redis.Redis.from_url(deployment.env["BREADTH_CELERY_BROKER"])

    def waiting() -> int:
        # Kombu keeps a queue as one list per priority: "dagster", "dagster\x06\x163", ...
        return sum(broker.llen(key) for key in broker.scan_iter(match="dagster*"))

    deployment.wait_for(
        "two steps waiting in the broker", lambda: (waiting() >= len(WORKERS), waiting()), 120
    )
    for worker in WORKERS:
        _start_worker(deployment, worker)


def _start_worker(deployment: Deployment, name: str) -> None:
    env = deployment.env
    deployment.env = {**env, "BREADTH_WORKER_NAME": name}
    try:
        start_process(deployment, name, _worker_command(name))
    finally:
        deployment.env = env


def _worker_command(name: str) -> list[str]:
    return [str(BIN / "celery"), *celery_worker_args(name)]


def _workers_of(deployment: Deployment, asset: str) -> set[str]:
    with deployment.open_instance() as instance:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
    # A breadth run names its worker on its last day's materialization only.
    metadata = [r.asset_materialization.metadata for r in records]
    return {m["worker"].value for m in metadata if "worker" in m}


def _backfill_everything(deployment: Deployment, market: str) -> dt.date:
    start = _start_date() if market == "DEMO" else dt.date(2025, 1, 1)
    closed = last_closed_day(market)
    first = trading_days(market, start, closed)[0]
    days = {"range": {"start": f"{first:%Y-%m-%d}", "end": f"{closed}"}}
    launch_backfill(deployment, days, before_waiting=lambda: _start_workers(deployment))
    return closed


def test_both_workers_run_ticker_batches_of_a_backfill(cluster):
    deployment, fake = cluster
    if fake is not None:
        pytest.skip("the demo deployment shows the workers; the Upstox one its rate limit")
    _backfill_everything(deployment, "DEMO")
    assert _workers_of(deployment, "raw_prices") == set(WORKERS)
    assert _workers_of(deployment, "breadth") <= set(WORKERS)


def test_a_day_of_breadth_runs_on_a_worker(cluster):
    deployment, fake = cluster
    if fake is not None:
        pytest.skip("the demo deployment runs breadth")
    day = last_closed_day("DEMO").isoformat()
    with deployment.open_instance() as instance:
        before = len(instance.fetch_materializations(dg.AssetKey("breadth"), limit=1000).records)
    result = subprocess.run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            MODULE,
            "--select",
            "breadth",
            "--partition",
            day,
        ],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with deployment.open_instance() as instance:
        records = instance.fetch_materializations(dg.AssetKey("breadth"), limit=1000).records
    assert len(records) == before + 1
    assert records[0].asset_materialization.partition == day
    assert records[0].asset_materialization.metadata["worker"].value in WORKERS


def test_the_postgres_store_equals_a_single_machine_duckdb_run_row_for_row(cluster, tmp_path):
    deployment, fake = cluster
    if fake is not None:
        pytest.skip("the demo deployment is compared with DuckDB")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_bytes(
        (PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_bytes()
    )
    single = {
        key: value
        for key, value in deployment.env.items()
        if not key.startswith(("BREADTH_", "DAGSTER_POSTGRES"))
    }
    single.update(
        DAGSTER_HOME=str(home),
        BREADTH_UNIVERSE=deployment.env["BREADTH_UNIVERSE"],
        BREADTH_DUCKDB_PATH=str(tmp_path / "single.duckdb"),
    )
    run = subprocess.run(
        [str(BIN / "breadth-assets"), "run", "--tail", "0"],
        env=single,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    shared = PostgresStore(url=deployment.env["BREADTH_POSTGRES_URL"])
    alone = DuckDBStore(path=single["BREADTH_DUCKDB_PATH"])
    pd.testing.assert_frame_equal(shared.read_prices(TICKERS), alone.read_prices(TICKERS))
    pd.testing.assert_frame_equal(shared.read_indicators(TICKERS), alone.read_indicators(TICKERS))
    pd.testing.assert_frame_equal(shared.read_breadth(), alone.read_breadth())
    assert list(alone.read_breadth().columns) == list(schema.BREADTH_COLUMNS)


def test_two_workers_fetching_from_upstox_stay_under_one_rate_limit(cluster):
    deployment, fake = cluster
    if fake is None:
        pytest.skip("the Upstox deployment fetches from the fake Upstox")
    _backfill_everything(deployment, "NSE")
    assert _workers_of(deployment, "raw_prices") == set(WORKERS)
    times = [r.time for r in fake.requests]
    assert len(times) > 2 * UPSTOX_LIMITS["per_second"]
    assert max_in_window(times, 1.0) <= UPSTOX_LIMITS["per_second"]
    assert max_in_window(times, 60.0) <= UPSTOX_LIMITS["per_minute"]


def _steps_on_workers(deployment: Deployment, names: tuple[str, ...]) -> tuple[bool, dict]:
    """{worker: run id} of the ticker runs whose step a worker of `names` has started."""
    with deployment.open_instance() as instance:
        taken = {}
        for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            worker = StepWorker.of(run, TICKER_STEP)
            started = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
            if worker and worker.ended is None and worker.name in names and started:
                taken[worker.name] = run.run_id
    return set(taken) == set(names), taken


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return "\n".join(record.dagster_event.message or "" for record in records)


def test_killed_workers_fail_their_runs_naming_them_and_a_replacement_finishes_the_work(cluster):
    deployment, fake = cluster
    if fake is None:
        pytest.skip("the fake Upstox can hold a step in the middle while its worker is killed")
    fake.latency = REQUEST_LATENCY
    closed = last_closed_day("NSE")
    days = {
        "range": {
            "start": f"{trading_days('NSE', dt.date(2025, 1, 1), closed)[0]:%Y-%m-%d}",
            "end": f"{closed}",
        }
    }
    backfill_id = start_backfill(deployment, days)
    _start_workers(deployment)
    taken = deployment.wait_for(
        "both workers to start a step", lambda: _steps_on_workers(deployment, WORKERS), 120
    )
    with deployment.open_instance() as instance:
        shown = status_text(status(instance))
    for name in WORKERS:
        assert f"{TICKER_STEP} on worker {name} on {socket.gethostname()}" in shown, shown

    killed_at = time.time()
    for name in WORKERS:
        kill_process(deployment.processes.pop(name))
    fake.latency = 0.0

    def failed() -> tuple[bool, dict]:
        with deployment.open_instance() as instance:
            records = instance.get_run_records(dg.RunsFilter(run_ids=list(taken.values())))
        ended = {r.dagster_run.run_id: r for r in records if r.dagster_run.is_finished}
        return len(ended) == len(taken), ended

    ended = deployment.wait_for("the killed workers' runs to end", failed, FAILED_WITHIN + 60)
    host = socket.gethostname()
    with deployment.open_instance() as instance:
        claimed = instance.event_log_storage.get_concurrency_info("price_api").claimed_slots
        messages = {run_id: _failure_message(instance, run_id) for run_id in taken.values()}
    seconds = {}
    for name, run_id in taken.items():
        record = ended[run_id]
        assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
        assert f"worker {name} on {host} stopped answering" in messages[run_id], messages
        seconds[name] = record.end_time - killed_at
    print(f"from SIGKILL to FAILURE: {seconds}")
    assert max(seconds.values()) <= FAILED_WITHIN, seconds
    assert not {slot.run_id for slot in claimed} & set(taken.values()), claimed

    # The replacement starts after the visibility timeout: at its start it takes the dead
    # workers' messages back from Redis, and drops them.
    time.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT - time.time()))
    for name in REPLACEMENTS:
        _start_worker(deployment, name)
    log = deployment.logs[REPLACEMENTS[0]]

    def dropped() -> tuple[bool, list[str]]:
        text = log.read_text() if log.exists() else ""
        found = [r for r in taken.values() if f"of run {r}: run {r[:8]} is FAILURE" in text]
        return len(found) == len(taken), found

    deployment.wait_for("the replacement to drop the dead workers' messages", dropped, 60)
    wait_for_backfill(deployment, backfill_id, ("COMPLETED_FAILED", "COMPLETED_SUCCESS"))
    retries = [reexecute(deployment, run_id) for run_id in taken.values()]
    deployment.wait_for_runs(
        "the re-executions", lambda: [run for run in deployment.runs() if run["runId"] in retries]
    )
    store = PostgresStore(url=deployment.env["BREADTH_POSTGRES_URL"])
    prices = store.read_prices(UPSTOX_TICKERS)
    assert not prices.duplicated(["ticker", "date"]).any()
    assert set(prices["ticker"]) == set(UPSTOX_TICKERS)
    assert prices.groupby("ticker")["date"].max().nunique() == 1
    # Breadth, left out by the failed backfill, follows from daily_breadth_sensor.
    days = breadth_days(load_universe(deployment.universe_path))

    def breadth_done() -> tuple[bool, object]:
        stale = stale_breadth(store, UPSTOX_TICKERS, days)
        return stale is None, stale and stale.text()

    deployment.wait_for("breadth over every ticker", breadth_done, 180)
