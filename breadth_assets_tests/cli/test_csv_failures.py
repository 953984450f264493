"""A csv universe whose ticker file is missing: that ticker fails alone, on one line that names the
file and why, and no stack trace reaches the console."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from breadth_assets.definitions import build_definitions
from breadth_assets.defs.batches import range_tags
from breadth_assets.runtime.console import console_logger, failure_lines
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.universe.file import load_universe
from breadth_assets_tests.support import add_tickers

BIN = Path(sys.executable).parent
PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""The console logger's settings of `breadth-assets run` (cli.py)."""
STACK_WORDS = ("Traceback", "Stack Trace", 'File "')


def _csv_universe(tmp_path: Path) -> tuple[Path, Path]:
    """A universe of AAA (its file present) and BBB (no file); returns it and BBB's path."""
    folder = tmp_path / "prices"
    folder.mkdir()
    (folder / "AAA.csv").write_text(
        "date,open,high,low,close,volume\n"
        "2025-06-02,10,11,9,10.5,1000\n"
        "2025-06-03,10.5,12,10,11.5,2000\n"
        "2025-06-04,11.5,12,11,11.8,1500\n"
    )
    universe = tmp_path / "universe.yaml"
    universe.write_text(
        textwrap.dedent(
            """\
            market: DEMO
            start_date: 2025-06-02
            end_date: 2025-06-06
            source:
              kind: csv
              path: prices/
            tickers: [AAA, BBB]
            """
        )
    )
    return universe, folder / "BBB.csv"


def _assert_no_stack(text: str) -> None:
    for word in STACK_WORDS:
        assert word not in text, text


def test_the_ticker_job_fails_bbb_alone_and_its_console_shows_no_stack_trace(
    tmp_path, capfd, monkeypatch
):
    universe_path, missing = _csv_universe(tmp_path)
    monkeypatch.setenv("BREADTH_UNIVERSE", str(universe_path))
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    defs = dg.Definitions.merge(
        build_definitions(load_universe(universe_path), store=store),
        dg.Definitions(loggers={"console": console_logger}),
    )
    with dg.instance_for_test() as instance:
        add_tickers(instance, ["AAA", "BBB"])
        result = defs.resolve_job_def("ticker_job").execute_in_process(
            instance=instance,
            tags=range_tags("AAA", "BBB"),
            run_config={
                **QUIET_LOGS,
                "ops": {"ticker_assets": {"config": {"end_date": "2025-06-06"}}},
            },
            raise_on_error=False,
        )
        assert not result.success
        assert instance.get_materialized_partitions(dg.AssetKey("raw_prices")) == {"AAA"}
    assert store.read_prices(["AAA"])["close"].tolist() == [10.5, 11.5, 11.8]

    lines = failure_lines(result.all_events)
    assert len(lines) == 1
    assert lines[0].splitlines()[0].startswith("1 of 2 tickers failed")
    assert f"- BBB: {missing}: file not found" in lines[0].splitlines()
    console = capfd.readouterr().err
    assert f"BBB: {missing}: file not found" in console
    _assert_no_stack(console)


def test_a_bug_keeps_its_stack_trace_and_its_type_on_the_line(capfd):
    @dg.op
    def divide() -> float:
        return 1 / 0

    @dg.job(logger_defs={"console": console_logger})
    def buggy():
        divide()

    with dg.instance_for_test() as instance:
        result = buggy.execute_in_process(
            instance=instance, run_config=QUIET_LOGS, raise_on_error=False
        )
    assert failure_lines(result.all_events) == ["ZeroDivisionError: division by zero"]
    assert "Stack Trace" in capfd.readouterr().err


def _main_job(tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """`breadth-assets run` on the universe of AAA and BBB (whose file is missing)."""
    universe, missing = _csv_universe(tmp_path)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "BREADTH_UNIVERSE": str(universe),
        "BREADTH_DUCKDB_PATH": str(tmp_path / "breadth.duckdb"),
    }
    result = subprocess.run(
        [str(BIN / "breadth-assets"), "run", "--tail", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, missing


@pytest.mark.slow
def test_the_main_job_names_the_missing_file_on_one_line_and_goes_on(tmp_path):
    result, missing = _main_job(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert f"  - BBB: {missing}: file not found" in out
    assert any(line.startswith("breadth ") and ": ok in " in line for line in out)
    assert "Traceback" not in result.stdout + result.stderr
    _assert_no_stack(result.stdout)


@pytest.mark.slow
def test_the_main_job_prints_no_stack_trace_and_no_exception_class(tmp_path):
    result, _ = _main_job(tmp_path)
    _assert_no_stack(result.stderr)
    assert "dagster._core" not in result.stdout
