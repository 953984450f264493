"""What the main job (`breadth-assets run`) says and does when something fails: the root cause
in the line of the run that failed, no later batch after the source refused its credentials, no
breadth over tickers that failed to update unless asked, and one line when Dagster's own storage
fails."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import sqlalchemy.exc

from breadth_assets.cli import commands as cli
from breadth_assets.defs.assets.reporting import partial_failure
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets_testing.fake_upstox import FakeUpstox

BIN = Path(sys.executable).parent
TOKEN = "tok-5c1e-upstox-secret"
BARS = "date,open,high,low,close,volume\n" + "".join(
    f"2025-06-{day:02d},10,11,9,{10 + day / 10},1000\n" for day in (2, 3, 4, 5, 6, 9, 10)
)


def _csv_universe(folder: Path, tickers: list[str]) -> Path:
    prices = folder / "prices"
    prices.mkdir(exist_ok=True)
    for ticker in tickers:
        (prices / f"{ticker}.csv").write_text(BARS)
    universe = folder / "universe.yaml"
    universe.write_text(
        "market: DEMO\nstart_date: 2025-06-02\nsource: {kind: csv, path: prices/}\n"
        f"tickers: [{', '.join(tickers)}]\n"
    )
    return universe


def _env(tmp_path: Path, universe: Path, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "BREADTH_UNIVERSE": str(universe),
        "BREADTH_DUCKDB_PATH": str(tmp_path / "breadth.duckdb"),
        **more,
    }


def _main(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "breadth-assets"), "run", "--tail", "0", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_batch_that_fails_on_its_store_says_the_cause_in_its_line(tmp_path, monkeypatch):
    universe = _csv_universe(tmp_path, ["AAA", "BBB"])
    for name, value in _env(tmp_path, universe).items():
        monkeypatch.setenv(name, value)

    def full_disk(*args, **kwargs):
        raise duckdb.IOException('IO Error: Could not write file "x.wal": No space left on device')

    monkeypatch.setattr(DuckDBStore, "_upsert", staticmethod(full_disk))
    out = io.StringIO()
    with dg.instance_for_test() as instance:
        assert not cli.run_main_job(instance, out=out)

    store = tmp_path / "breadth.duckdb"
    [line] = [line for line in out.getvalue().splitlines() if line.startswith("tickers batch")]
    assert line.startswith("tickers batch 1/1 (AAA..BBB, 2 tickers): FAILED in ")
    assert line.endswith(
        f': DuckDB store {store}: Could not write file "x.wal": No space left on device'
    )


@pytest.mark.slow
def test_after_the_source_refuses_the_token_no_later_batch_starts(tmp_path):
    tickers = ["ALFA", "BETA", "GAMA", "DLTA", "EPSI", "ZETA"]
    lines = ["market: NSE", "start_date: 2024-01-01", "batch_size: 2", "source: {kind: upstox}"]
    lines += ["tickers:"] + [
        f'  - {{symbol: {t}, instrument_key: "NSE_EQ|INE{n:03d}B01011"}}'
        for n, t in enumerate(tickers)
    ]
    universe = tmp_path / "universe.yaml"
    universe.write_text("\n".join(lines) + "\n")
    with FakeUpstox(token=TOKEN) as server:
        env = _env(
            tmp_path,
            universe,
            UPSTOX_ACCESS_TOKEN="expired-token",
            UPSTOX_API_HOST=server.host,
            BREADTH_UPSTOX_RATE_FILE=str(tmp_path / "rate.bin"),
        )
        result = _main(env, "--end-date", "2024-03-28")
        sent = len(server.requests)

    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert next(line for line in out if line.startswith("tickers batch")).startswith(
        "tickers batch 1/3 (ALFA..BETA, 2 tickers): FAILED in "
    )
    assert len([line for line in out if line.startswith("tickers batch")]) == 1
    assert (
        "tickers: stopped: the price source refused its credentials; batches 2 to 3 were not "
        "started (no request could succeed)" in out
    )
    assert sent <= 2
    assert "expired-token" not in result.stdout + result.stderr


@pytest.mark.slow
def test_breadth_waits_for_tickers_that_failed_to_update_unless_partial_is_allowed(tmp_path):
    universe = _csv_universe(tmp_path, ["AAA", "BBB", "CCC"])
    env = _env(tmp_path, universe)
    assert _main(env, "--end-date", "2025-06-09").returncode == 0
    (tmp_path / "prices" / "BBB.csv").unlink()

    refused = _main(env, "--end-date", "2025-06-10")

    assert refused.returncode == 1
    assert (
        "breadth: not computed: 1 tickers with history failed to update (BBB), so their latest "
        "bars are missing; run again once they succeed, or `breadth-assets run --allow-partial` "
        "to compute it without them" in refused.stdout.splitlines()
    )
    store = DuckDBStore(path=env["BREADTH_DUCKDB_PATH"])
    assert str(store.read_breadth()["date"].max().date()) == "2025-06-09"

    allowed = _main(env, "--end-date", "2025-06-10", "--allow-partial")

    assert "breadth 2025-06-10..2025-06-10: ok in " in allowed.stdout
    assert store.read_breadth().iloc[-1]["universe"] == 2


def test_a_full_dagster_home_is_one_line_with_the_cause(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    def full(*args, **kwargs):
        cause = sqlite3.OperationalError("database or disk is full")
        raise sqlalchemy.exc.OperationalError("INSERT INTO runs", {}, cause)

    monkeypatch.setattr(cli, "open_instance", full)

    assert cli.main(["status"]) == 1

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "breadth-assets: Dagster's storage: OperationalError: database or disk is full (traceback: "
    )
    log = Path(line.removesuffix(")").rsplit(" ", 1)[-1])
    assert "Traceback" in log.read_text()


@pytest.mark.slow
def test_dagsters_postgresql_down_is_one_line_without_the_password(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "dagster.yaml"
    (home / "dagster.yaml").write_bytes(config.read_bytes())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": "postgresql+psycopg2://breadth:s3cret-pw@127.0.0.1:9/dagster",
    }
    result = subprocess.run(
        [str(BIN / "breadth-assets"), "status"], env=env, capture_output=True, text=True
    )

    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("breadth-assets: Dagster's storage: OperationalError: connection to")
    assert "Connection refused" in last
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_a_batch_where_every_ticker_failed_says_nothing_was_written():
    failure = partial_failure({"AAA": "x", "BBB": "y"}, 2)
    assert failure.description.startswith("2 of 2 tickers failed; nothing was written:")
    assert not failure.metadata["credentials_refused"].value


def test_a_batch_where_some_failed_says_the_others_were_written():
    failure = partial_failure({"AAA": "credentials refused: token expired"}, 3)
    assert failure.description.startswith("1 of 3 tickers failed; the others were written")
    assert failure.metadata["credentials_refused"].value
