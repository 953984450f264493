"""Runs read the universe file when they start: its settings apply without a reload."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from breadth_assets.defs.assets import build_ticker_assets
from breadth_assets.defs.batches import range_tags
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.sources.base import PriceRequest, SourceChangedError
from breadth_assets.sources.demo.source import DemoSource
from breadth_assets.sources.upstox.source import UpstoxSource
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.universe.file import load_universe
from breadth_assets_testing import write_demo_universe
from breadth_assets_tests.support import add_tickers

TICKERS = ["ALPHA", "BRAVO"]
END = "2024-06-28"


def _set_seed(path, seed: int) -> None:
    path.write_text(path.read_text().replace("  kind: demo", f"  kind: demo\n  seed: {seed}"))


def _materialize(instance, store, path, source) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_ticker_assets(batch_size=50, store_kind="duckdb")],
        instance=instance,
        resources={
            "store": store,
            "price_source": source,
            "universe": UniverseFile(path=str(path)),
        },
        tags=range_tags(TICKERS[0], TICKERS[-1]),
        run_config={"ops": {"ticker_assets": {"config": {"end_date": END, "full_refresh": True}}}},
        raise_on_error=False,
    )


def test_a_source_setting_edited_in_the_file_applies_to_the_next_run(instance, tmp_path):
    add_tickers(instance, TICKERS)
    path = write_demo_universe(tmp_path, TICKERS, "2024-01-01")
    before, after = (DuckDBStore(path=str(tmp_path / f"{n}.duckdb")) for n in ("before", "after"))
    loaded = DemoSource()  # as the code location built it, from the file's seed 0
    assert _materialize(instance, before, path, loaded).success
    _set_seed(path, 7)
    assert _materialize(instance, after, path, loaded).success
    request = PriceRequest("ALPHA", pd.Timestamp("2024-01-01").date(), pd.Timestamp(END).date())
    for store, seed in [(before, 0), (after, 7)]:
        expected = DemoSource(seed=seed).fetch(request).bars
        stored = store.read_prices(["ALPHA"])
        pd.testing.assert_frame_equal(stored, expected, check_dtype=False)


def test_upstox_takes_workers_and_rate_limits_from_the_file_and_keeps_the_deployments_token(
    tmp_path,
):
    path = tmp_path / "universe.yaml"
    path.write_text(
        "market: NSE\nstart_date: 2024-01-01\nsource:\n  kind: upstox\n  workers: 3\n"
        "  rate_limits: {per_second: 5}\n"
        'tickers:\n  - symbol: SBIN\n    instrument_key: "NSE_EQ|INE062A01020"\n'
    )
    loaded = UpstoxSource(access_token="tok", host="http://127.0.0.1:1", workers=9, per_minute=7)
    current = loaded.with_settings(load_universe(path).source_settings)
    assert (current.workers, current.per_second) == (3, 5)
    assert current.per_minute == UpstoxSource(access_token="x").per_minute  # no longer set
    assert (current.access_token, current.host) == ("tok", "http://127.0.0.1:1")


def test_a_run_whose_file_names_another_kind_of_source_fails_asking_for_a_reload(tmp_path):
    path = write_demo_universe(tmp_path, TICKERS, "2024-01-01")
    loaded = UpstoxSource(access_token="tok")
    with pytest.raises(SourceChangedError, match=r"names the demo source.*reload the code"):
        loaded.with_settings(load_universe(path).source_settings)


def test_a_finished_history_fetches_nothing_after_its_end_date(instance, tmp_path):
    add_tickers(instance, TICKERS)
    path = write_demo_universe(tmp_path, TICKERS, "2024-01-01")
    path.write_text(path.read_text() + "end_date: 2024-03-29\n")
    store = DuckDBStore(path=str(tmp_path / "ended.duckdb"))

    assert _materialize(instance, store, path, DemoSource()).success

    assert store.read_prices(TICKERS)["date"].max() == pd.Timestamp("2024-03-29")
