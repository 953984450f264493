"""Which resources this deployment uses: chosen from the environment and the universe file."""

from __future__ import annotations

import os
from pathlib import Path

from breadth_assets.resources.csv_source import CsvSource
from breadth_assets.resources.demo_source import DemoSource
from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets.resources.market_store import MarketStore
from breadth_assets.resources.price_source import PriceSource
from breadth_assets.universe import Universe

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def duckdb_path() -> str:
    """`$BREADTH_DUCKDB_PATH`, else `data/breadth.duckdb` under the project root."""
    return os.environ.get("BREADTH_DUCKDB_PATH") or str(PROJECT_ROOT / "data" / "breadth.duckdb")


def price_source_for(universe: Universe) -> PriceSource:
    """The source the universe file names, configured from its settings."""
    if universe.source == "csv":
        return CsvSource(**universe.source_options)
    return DemoSource(**universe.source_options)


def store_for_deployment() -> MarketStore:
    return DuckDBStore(path=duckdb_path())
