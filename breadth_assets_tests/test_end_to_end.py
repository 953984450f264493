"""Real Dagster command-line processes on a temporary Dagster home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from breadth_assets.defs.batches import range_tags
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_tests.support import TICKERS, write_universe

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path, monkeypatch) -> dict[str, str]:
    """Environment of a fresh deployment: Dagster home, universe file and DuckDB file."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    universe = write_universe(tmp_path, TICKERS, start="2025-06-02")
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "BREADTH_UNIVERSE": str(universe),
        "BREADTH_DUCKDB_PATH": str(tmp_path / "breadth.duckdb"),
    }


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _instance(env: dict[str, str]) -> dg.DagsterInstance:
    """The deployment's instance; its dagster.yaml reads DAGSTER_HOME, which `home` sets."""
    return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])


def test_dagster_cli_materializes_a_ticker_range_and_a_breadth_partition_range(home):
    with _instance(home) as instance:
        instance.add_dynamic_partitions("tickers", TICKERS)
    module = ["-m", "breadth_assets.definitions"]
    _run(
        [
            str(BIN / "dagster"),
            "job",
            "execute",
            *module,
            "-j",
            "ticker_job",
            "--tags",
            json.dumps(range_tags(TICKERS[0], TICKERS[-1])),
        ],
        home,
    )
    _run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            *module,
            "--select",
            "breadth",
            "--partition-range",
            "2025-06-02...2025-06-30",
        ],
        home,
    )
    store = DuckDBStore(path=home["BREADTH_DUCKDB_PATH"])
    assert set(store.read_indicators(TICKERS)["ticker"]) == set(TICKERS)
    assert len(store.read_breadth()) == 21
    with _instance(home) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("indicators")) == set(TICKERS)
        assert len(instance.get_materialized_partitions(dg.AssetKey("breadth"))) == 21


def test_the_main_job_fills_every_table_and_prints_the_last_days_of_breadth(home):
    result = _run([str(BIN / "breadth-assets"), "run", "--tail", "3"], home)
    store = DuckDBStore(path=home["BREADTH_DUCKDB_PATH"])
    assert set(store.read_prices(TICKERS)["ticker"]) == set(TICKERS)
    assert set(store.read_indicators(TICKERS)["ticker"]) == set(TICKERS)
    breadth = store.read_breadth()
    assert breadth["date"].min().strftime("%Y-%m-%d") == "2025-06-02"
    assert breadth["date"].iloc[-1].strftime("%Y-%m-%d") in result.stdout
    assert "last 3 days of breadth" in result.stdout


def test_a_second_main_job_run_is_incremental_and_leaves_the_store_unchanged(home):
    _run([str(BIN / "breadth-assets"), "run", "--tail", "0"], home)
    store = DuckDBStore(path=home["BREADTH_DUCKDB_PATH"])
    before = store.read_indicators(TICKERS), store.read_breadth()
    result = _run([str(BIN / "breadth-assets"), "run", "--tail", "0"], home)
    assert "breadth: every trading day is up to date" in result.stdout
    pd.testing.assert_frame_equal(store.read_indicators(TICKERS), before[0])
    pd.testing.assert_frame_equal(store.read_breadth(), before[1])


def test_the_main_job_stops_at_the_end_date_and_a_later_run_adds_the_days_after_it(home):
    _run([str(BIN / "breadth-assets"), "run", "--tail", "0", "--end-date", "2025-06-30"], home)
    store = DuckDBStore(path=home["BREADTH_DUCKDB_PATH"])
    assert store.read_prices(TICKERS)["date"].max() == pd.Timestamp("2025-06-30")
    assert store.read_breadth()["date"].max() == pd.Timestamp("2025-06-30")

    _run([str(BIN / "breadth-assets"), "run", "--tail", "0", "--end-date", "2025-07-15"], home)

    whole = DuckDBStore(path=str(Path(home["BREADTH_DUCKDB_PATH"]).with_name("whole.duckdb")))
    _run(
        [str(BIN / "breadth-assets"), "run", "--tail", "0", "--end-date", "2025-07-15"],
        {**home, "BREADTH_DUCKDB_PATH": whole.path, "DAGSTER_HOME": _fresh_home(home)},
    )
    pd.testing.assert_frame_equal(store.read_breadth(), whole.read_breadth())


def _fresh_home(env: dict[str, str]) -> str:
    fresh = Path(env["DAGSTER_HOME"]).with_name("fresh_home")
    fresh.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", fresh / "dagster.yaml")
    return str(fresh)


def test_the_main_job_prints_breadths_progress_and_where_the_data_is(home):
    result = _run([str(BIN / "breadth-assets"), "run", "--tail", "0"], home)
    assert "  breadth: counted " in result.stdout
    assert f"data: DuckDB file {Path(home['BREADTH_DUCKDB_PATH']).resolve()}" in result.stdout
    assert "UI: bash scripts/dev.sh, then open http://127.0.0.1:3000" in result.stdout


def test_the_main_job_with_checks_runs_them_once_and_prints_their_verdicts(home):
    result = _run([str(BIN / "breadth-assets"), "run", "--tail", "0", "--checks"], home)
    [line] = [line for line in result.stdout.splitlines() if line.startswith("checks: ")]
    assert " passed" in line
    with _instance(home) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="quality_checks_job"))
    assert len(runs) == 1


def test_the_main_job_totals_the_rows_the_source_refused_per_ticker(home, tmp_path):
    prices = tmp_path / "prices"
    prices.mkdir()
    days = pd.bdate_range("2025-06-02", "2025-06-13")
    for ticker, bad in (("AAA", 2), ("BBB", 0), ("CCC", 1)):
        lines = ["date,open,high,low,close,volume"]
        lines += [f"{day:%Y-%m-%d},10,11,9,10.5,100" for day in days]
        lines += [f"2025-06-{16 + n:02d},10,9,9,10.5,100" for n in range(bad)]  # high < close
        (prices / f"{ticker}.csv").write_text("\n".join(lines) + "\n")
    universe = tmp_path / "csv_universe.yaml"
    universe.write_text(
        "market: DEMO\nstart_date: 2025-06-02\nsource: {kind: csv, path: prices}\ntickers: all\n"
    )
    env = {**home, "BREADTH_UNIVERSE": str(universe)}
    result = _run(
        [str(BIN / "breadth-assets"), "run", "--tail", "0", "--end-date", "2025-06-20"], env
    )
    assert "; 3 rows refused" in result.stdout
    assert "tickers: 3 rows refused in 2 tickers (AAA 2, CCC 1)" in result.stdout


def test_a_ticker_fetched_outside_the_main_job_makes_status_and_the_next_run_see_stale_breadth(
    home, tmp_path
):
    _run([str(BIN / "breadth-assets"), "run", "--tail", "0"], home)
    # What universe_sensor does for a ticker appended to the file: a partition, then its run.
    write_universe(tmp_path, [*TICKERS, "ZULU"], start="2025-06-02")
    with _instance(home) as instance:
        instance.add_dynamic_partitions("tickers", ["ZULU"])
    tags = json.dumps(range_tags("ZULU", "ZULU"))
    module = ["-m", "breadth_assets.definitions"]
    _run(
        [str(BIN / "dagster"), "job", "execute", *module, "-j", "ticker_job", "--tags", tags], home
    )

    status = _run([str(BIN / "breadth-assets"), "status"], home)
    assert (
        "breadth stale from 2025-06-02: ZULU joined the universe since breadth was computed"
        in status.stdout
    )
    result = _run([str(BIN / "breadth-assets"), "run", "--tail", "0"], home)
    assert "breadth stale from 2025-06-02: ZULU joined" in result.stdout

    store = DuckDBStore(path=home["BREADTH_DUCKDB_PATH"])
    whole = DuckDBStore(path=str(Path(home["BREADTH_DUCKDB_PATH"]).with_name("whole.duckdb")))
    fresh = {**home, "BREADTH_DUCKDB_PATH": whole.path, "DAGSTER_HOME": _fresh_home(home)}
    _run([str(BIN / "breadth-assets"), "run", "--tail", "0"], fresh)
    pd.testing.assert_frame_equal(store.read_breadth(), whole.read_breadth())
    assert "breadth: up to date" in _run([str(BIN / "breadth-assets"), "status"], home).stdout


def test_the_quick_start_applies_the_demo_splits_computes_its_groups_and_explains_every_move(
    home,
):
    quick_start = {**home, "BREADTH_UNIVERSE": str(PROJECT_ROOT / "universe.yaml")}
    result = _run([str(BIN / "breadth-assets"), "run", "--tail", "1", "--checks"], quick_start)
    assert "  5 actions applied: FRNZ split 1:2 on 2015-07-22, DLVN split 1:2 on " in result.stdout
    store = DuckDBStore(path=home["BREADTH_DUCKDB_PATH"])
    last = store.read_breadth()["date"].max()
    on_last = store.read_breadth(start=last.date(), end=last.date(), group=None)
    assert set(on_last["group_name"]) == {"ALL", "DEMO15", "Industrials"}
    assert f"top groups on {last:%Y-%m-%d} by % above SMA 50:" in result.stdout
    assert f"signals on {last:%Y-%m-%d}:" in result.stdout
    assert set(store.read_breadth_members()["group_name"]) == {"ALL", "DEMO15", "Industrials"}
    [line] = [line for line in result.stdout.splitlines() if line.startswith("checks: ")]
    assert " passed" in line
    assert "unexplained_moves" not in result.stdout  # a failing check is printed by name
