"""Crashes from outside: real `breadth-assets run` and `dagster-daemon` processes, killed with
SIGKILL mid-fetch against the fake Upstox server (a named test fake), and what happens next.

The universe fetches from Upstox under a low rate limit, so a fetch lasts long enough to be
killed in the middle. Nothing but the price server is faked: the SDK, the machine-wide limiter,
DuckDB and Dagster's instance are real.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dagster as dg
import pandas as pd
import psutil
import pytest
from dagster._core.test_utils import create_run_for_test

from breadth_assets.calendars import last_closed_day
from breadth_assets.runtime.instance import open_instance
from breadth_assets.runtime.recovery import PID_TAG, location_tags
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_testing.fake_upstox import FakeUpstox
from breadth_assets_tests.support import expected_bars

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-crash-test-secret"
TICKERS = [f"CRSH{i:02d}" for i in range(8)]
NEW_TICKERS = ["LATE01", "LATE02"]
KEYS = {t: f"NSE_EQ|INE{i:03d}K01011" for i, t in enumerate(TICKERS + NEW_TICKERS)}
PER_SECOND = 1
WAIT_TIMEOUT = 90
POOL = "price_api"


def _write_universe(folder: Path, tickers: list[str], batch_size: int) -> Path:
    start = dt.date.today() - dt.timedelta(days=120)
    lines = [
        "market: NSE",
        f"start_date: {start}",
        f"batch_size: {batch_size}",
        "source:",
        "  kind: upstox",
        f"  rate_limits: {{per_second: {PER_SECOND}}}",
        "tickers:",
    ]
    for ticker in tickers:
        lines += [f"  - symbol: {ticker}", f'    instrument_key: "{KEYS[ticker]}"']
    path = folder / "universe.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def server() -> Iterator[FakeUpstox]:
    with FakeUpstox(token=TOKEN, latency=0.5) as server:
        yield server


@pytest.fixture
def env(tmp_path, server, monkeypatch) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_bytes((PROJECT_ROOT / "dagster_home/dagster.yaml").read_bytes())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BREADTH_UNIVERSE": str(_write_universe(tmp_path, TICKERS, batch_size=50)),
        "BREADTH_DUCKDB_PATH": str(tmp_path / "breadth.duckdb"),
        "UPSTOX_ACCESS_TOKEN": TOKEN,
        "UPSTOX_API_HOST": server.host,
        "BREADTH_UPSTOX_RATE_FILE": str(tmp_path / "upstox-requests.bin"),
    }


def _instance(env: dict[str, str]) -> dg.DagsterInstance:
    return open_instance(env["DAGSTER_HOME"])


def _wait_for(
    what: str,
    probe: Callable[[], object],
    timeout: float = WAIT_TIMEOUT,
    logs: Sequence[Path] = (),
) -> object:
    """The probe's first truthy answer; on timeout, fails showing the ends of `logs`."""
    deadline = time.monotonic() + timeout
    while True:
        state = probe()
        if state:
            return state
        if time.monotonic() > deadline:
            tails = "".join(
                f"\n--- {log.name}:\n" + "\n".join(log.read_text().splitlines()[-15:])
                for log in logs
                if log.exists()
            )
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{tails}", pytrace=False)
        time.sleep(0.5)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _stop(process: subprocess.Popen) -> None:
    _kill_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    _kill_group(process)
    process.wait(timeout=10)


def _fetching_runs(instance: dg.DagsterInstance, count: int) -> list[dg.DagsterRun] | None:
    """`count` ticker runs that record their process and hold a price_api slot."""
    runs = [
        run
        for run in instance.get_runs(dg.RunsFilter(job_name="ticker_job"))
        if run.status == dg.DagsterRunStatus.STARTED and PID_TAG in run.tags
    ]
    holders = {
        slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
    }
    holding = [run for run in runs if run.run_id in holders]
    return holding if len(holding) >= count else None


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return records[-1].dagster_event.message if records else ""


def _log_text(instance: dg.DagsterInstance, run_id: str) -> str:
    return "\n".join(
        f"{record.user_message} {record.dagster_event.message if record.dagster_event else ''}"
        for record in instance.all_logs(run_id)
    )


def _assert_every_bar_stored_once(env: dict[str, str], server: FakeUpstox, tickers) -> None:
    store = DuckDBStore(path=env["BREADTH_DUCKDB_PATH"])
    start = dt.date.today() - dt.timedelta(days=120)
    end = last_closed_day("NSE")
    for ticker in tickers:
        stored = store.read_prices([ticker]).reset_index(drop=True)
        pd.testing.assert_frame_equal(
            stored, expected_bars(server, ticker, KEYS[ticker], start, end), check_dtype=False
        )


def _assert_failed_as_gone(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    for run in runs:
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        message = _failure_message(instance, run.run_id)
        assert f"its process (pid {run.tags[PID_TAG]} on " in message and "is gone" in message


def test_after_two_main_jobs_are_killed_mid_fetch_the_next_one_finishes_by_itself(
    env, server, tmp_path
):
    main_job = [str(BIN / "breadth-assets"), "run", "--tail", "0"]
    logs = [tmp_path / f"killed-{i}.log" for i in range(2)]
    killed = [_start(main_job, env, log) for log in logs]
    try:
        with _instance(env) as instance:
            runs = _wait_for(
                "two main jobs fetching", lambda: _fetching_runs(instance, 2), logs=logs
            )
            _wait_for("requests at the server", lambda: len(server.requests) >= 2)
            for process in killed:
                _kill_group(process)
                process.wait(timeout=10)
            claimed = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
            assert {slot.run_id for slot in claimed} == {run.run_id for run in runs}
            shown = subprocess.run(
                [str(BIN / "breadth-assets"), "status"],
                env=env,
                capture_output=True,
                text=True,
                timeout=WAIT_TIMEOUT,
            ).stdout
            assert "pool price_api: 2 of 2 slots claimed" in shown
            assert shown.count("process gone") == 4  # each run, and each run's slot

            started = time.monotonic()
            after = subprocess.run(
                main_job, env=env, capture_output=True, text=True, timeout=WAIT_TIMEOUT
            )
            seconds = time.monotonic() - started
            assert after.returncode == 0, after.stdout[-3000:] + after.stderr[-3000:]
            assert seconds <= 60
            assert after.stdout.count("recovered: run ") == 2
            _assert_failed_as_gone(instance, runs)
            assert instance.event_log_storage.get_concurrency_info(POOL).claimed_slots == []
        _assert_every_bar_stored_once(env, server, TICKERS)
    finally:
        for process in killed:
            _stop(process)


def test_after_two_daemon_launched_runs_are_killed_mid_step_the_next_run_finishes(
    env, server, tmp_path
):
    _write_universe(tmp_path, TICKERS, batch_size=4)
    # The home's tables exist before the daemon starts: this process and the daemon creating
    # them at once would race (breadth_assets.runtime.instance.open_instance).
    _instance(env).dispose()
    daemon_log = tmp_path / "daemon.log"
    daemon = _start(
        [str(BIN / "dagster-daemon"), "run", "-m", "breadth_assets.definitions"], env, daemon_log
    )
    try:
        with _instance(env) as instance:
            # universe_sensor adds the tickers and launches one run per batch of four.
            runs = _wait_for(
                "two daemon-launched runs fetching",
                lambda: _fetching_runs(instance, 2),
                logs=[daemon_log],
            )
            for run in runs:
                os.kill(int(run.tags[PID_TAG]), signal.SIGKILL)
            _wait_for(
                "the killed runs to be marked failed",
                lambda: all(
                    instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
                    for run in runs
                ),
            )
            # The code server that launched them sees its child die first and says how.
            for run in runs:
                assert "was terminated by signal 9" in _log_text(instance, run.run_id)

            # New tickers: universe_sensor launches a run that needs a price_api slot.
            _write_universe(tmp_path, TICKERS + NEW_TICKERS, batch_size=4)

            def new_run() -> dg.DagsterRun | None:
                for run in instance.get_runs(dg.RunsFilter(job_name="ticker_job")):
                    if run.run_id not in {r.run_id for r in runs} and run.is_finished:
                        return run
                return None

            finished = _wait_for(
                "the run for the new tickers to finish", new_run, logs=[daemon_log]
            )
            assert finished.status == dg.DagsterRunStatus.SUCCESS, daemon_log.read_text()[-3000:]
            record = instance.get_run_record_by_id(finished.run_id)
            assert record.end_time - record.create_timestamp.timestamp() <= 60
        _assert_every_bar_stored_once(env, server, NEW_TICKERS)
        assert DuckDBStore(path=env["BREADTH_DUCKDB_PATH"]).read_prices(TICKERS).empty
    finally:
        _stop(daemon)


def test_a_run_waiting_for_a_pool_slot_idles_says_who_holds_it_and_ends_on_sigterm(env, tmp_path):
    with _instance(env) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        holder = create_run_for_test(
            instance,
            job_name="holder_job",
            status=dg.DagsterRunStatus.STARTED,
            tags=location_tags(),
        )
        instance.event_log_storage.claim_concurrency_slot(POOL, holder.run_id, "ticker_assets")
        waiting = _start([str(BIN / "breadth-assets"), "run"], env, tmp_path / "waiting.log")
        try:

            def blocked_run() -> dg.DagsterRun | None:
                pending = instance.event_log_storage.get_concurrency_info(POOL).pending_steps
                ids = {step.run_id for step in pending if step.assigned_timestamp is None}
                return next((r for r in instance.get_runs() if r.run_id in ids), None)

            run = _wait_for("the run to wait for the slot", blocked_run)
            process = psutil.Process(waiting.pid)
            before, started = process.cpu_times(), time.monotonic()
            time.sleep(5)
            after = process.cpu_times()
            busy = (after.user + after.system - before.user - before.system) / (
                time.monotonic() - started
            )
            assert busy < 0.1

            log = "\n".join(
                record.user_message
                for record in instance.all_logs(run.run_id)
                if record.user_message
            )
            assert (
                "ticker_assets waits for a slot of pool price_api: 1 of 1 slots of pool "
                f"price_api are taken by run {holder.run_id[:8]} (holder_job, STARTED, "
                f"pid {os.getpid()} on "
            ) in log

            waiting.send_signal(signal.SIGTERM)
            waiting.wait(timeout=10)
            assert waiting.returncode == 130
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
            pending = instance.event_log_storage.get_concurrency_info(POOL).pending_steps
            assert run.run_id not in {step.run_id for step in pending}
        finally:
            _stop(waiting)
