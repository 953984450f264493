"""Several machines on one: PostgreSQL, Redis, `dagster-daemon` and two Celery workers.

Dagster's storage and the market store are PostgreSQL; every run's step goes through Redis to
one of two `dagster-celery` worker processes (BREADTH_EXECUTOR=celery), as on separate machines.
The demo deployment backfills the universe and a day of breadth; its PostgreSQL store then
equals a single-machine DuckDB run row for row. The Upstox deployment fetches from the fake
Upstox with both workers under one rate limit kept in Redis.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.calendars import last_closed_day, trading_days
from breadth_assets.defs.deployment import celery_worker_args
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.stores.postgres.store import PostgresStore
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
    launch_backfill,
    start_dagster,
    start_process,
    stop_process,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning"),
]
WORKERS = ("worker1", "worker2")
TICKERS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]
HISTORY_DAYS = 40
BATCH_SIZE = 2
TOKEN = "tok-cluster-5e1f-upstox-secret"
UPSTOX_TICKERS = [f"U{i:02d}" for i in range(16)]
UPSTOX_LIMITS = {"per_second": 3, "per_minute": 100}
REDIS_DATABASES = {"demo": (10, 11, 12), "upstox": (13, 14, 15)}


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
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **({"UPSTOX_ACCESS_TOKEN": TOKEN, "UPSTOX_API_HOST": fake.host} if fake else {}),
    }
    names = ["dagster-daemon", "dagster-webserver", *WORKERS]
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
    env = deployment.env
    for worker in WORKERS:
        deployment.env = {**env, "BREADTH_WORKER_NAME": worker}
        start_process(deployment, worker, _worker_command(worker))
    deployment.env = env


def _worker_command(name: str) -> list[str]:
    return [str(BIN / "celery"), *celery_worker_args(name)]


def _workers_of(deployment: Deployment, asset: str) -> set[str]:
    with deployment.open_instance() as instance:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
    return {r.asset_materialization.metadata["worker"].value for r in records}


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
