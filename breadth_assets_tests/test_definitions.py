from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from breadth_assets.definitions import build_definitions, defs
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.universe.file import load_universe

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs())


def test_the_code_location_has_the_three_assets_of_the_design():
    keys = {key.to_user_string() for key in defs().resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"raw_prices", "indicators", "breadth"}


def test_breadth_depends_on_every_ticker_partition_of_indicators():
    graph = defs().resolve_asset_graph()
    assert graph.get(dg.AssetKey("breadth")).parent_keys == {dg.AssetKey("indicators")}


def test_loading_the_code_location_emits_no_warning():
    loaded = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import breadth_assets.definitions"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "Warning" not in loaded.stderr, loaded.stderr


def test_importing_the_module_reads_no_universe_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    loaded = subprocess.run(
        [sys.executable, "-c", "import breadth_assets.definitions"],
        env={**os.environ, "BREADTH_UNIVERSE": str(missing)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr


def test_a_broken_universe_file_fails_the_load_with_its_one_line_reason_first(tmp_path):
    path = tmp_path / "universe.yaml"
    path.write_text("market: MARS\nstart_date: 2020-01-01\nsource: demo\ntickers: [A]\n")
    command = ["dagster", "definitions", "validate", "-m", "breadth_assets.definitions"]
    loaded = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", *command],
        env={**os.environ, "BREADTH_UNIVERSE": str(path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode != 0
    assert loaded.stderr.splitlines()[0] == (
        f"breadth_assets: cannot load the universe file: {path} line 1: market: unknown market "
        "'MARS': DEMO, HOSE or a calendar of pandas_market_calendars (such as NSE, XNYS, XLON, "
        "XBOM, XPHS; its get_calendar_names() lists all)"
    )


def test_the_store_in_use_names_the_assets_kind(tmp_path):
    from breadth_assets.stores.mongo import MongoStore
    from breadth_assets.stores.postgres.store import PostgresStore

    universe = load_universe(PROJECT_ROOT / "universe.yaml")
    for store, kind in [
        (DuckDBStore(path=str(tmp_path / "b.duckdb")), "duckdb"),
        (MongoStore(uri="mongodb://localhost:1/"), "mongodb"),
        (PostgresStore(url="postgresql+psycopg2://localhost:1/breadth"), "postgres"),
    ]:
        graph = build_definitions(universe, store=store).resolve_asset_graph()
        assert {graph.get(key).kinds == {kind} for key in graph.get_all_asset_keys()} == {True}
