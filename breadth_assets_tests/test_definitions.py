from __future__ import annotations

import subprocess
import sys

import dagster as dg

from breadth_assets.definitions import defs


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_the_code_location_has_the_three_assets_of_the_design():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"raw_prices", "indicators", "breadth"}


def test_breadth_depends_on_every_ticker_partition_of_indicators():
    graph = defs.resolve_asset_graph()
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
