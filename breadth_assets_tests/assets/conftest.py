from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pytest

from breadth_assets.assets import build_breadth, build_ticker_assets
from breadth_assets.batches import range_tags
from breadth_assets.partitions import build_trading_days, tickers_partitions
from breadth_assets.resources.demo_source import DemoSource
from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets.resources.price_source import PriceSource
from breadth_assets.resources.universe_file import UniverseFile
from breadth_assets.universe import load_universe, write_demo_universe

TICKERS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"]
ticker_assets = build_ticker_assets(batch_size=50, store_kind="duckdb")
# Breadth over the project's own universe file (DEMO from 2015): its calendar, its market.
PROJECT_UNIVERSE = Path(__file__).resolve().parents[2] / "universe.yaml"
breadth = build_breadth(build_trading_days(load_universe(PROJECT_UNIVERSE)), store_kind="duckdb")


def write_universe(folder: Path, tickers: Sequence[str], start: str = "2023-01-02") -> Path:
    return write_demo_universe(folder, tickers, start)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(tickers_partitions.name, TICKERS)
        yield instance


@pytest.fixture
def universe_path(tmp_path) -> Path:
    return write_universe(tmp_path, TICKERS)


def materialize_tickers(
    instance: dg.DagsterInstance,
    store: DuckDBStore,
    universe_path: Path,
    end_date: str,
    tickers: Sequence[str] = TICKERS,
    source: PriceSource | None = None,
    selection: Sequence[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """One ranged run over `tickers`, which must be contiguous in the partition order."""
    return dg.materialize(
        [ticker_assets],
        selection=selection,
        instance=instance,
        resources={
            "store": store,
            "price_source": source or DemoSource(),
            "universe": UniverseFile(path=str(universe_path)),
        },
        tags=range_tags(tickers[0], tickers[-1]),
        run_config={"ops": {"ticker_assets": {"config": {"end_date": end_date}}}},
        raise_on_error=False,
    )


def materialize_breadth(
    instance: dg.DagsterInstance,
    store: DuckDBStore,
    first: str,
    last: str,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [breadth],
        instance=instance,
        resources={"store": store, "universe": UniverseFile(path=str(PROJECT_UNIVERSE))},
        tags=range_tags(first, last),
        raise_on_error=raise_on_error,
    )


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]
    return {k: v.value for k, v in events[0].materialization.metadata.items()}
