"""The jobs: tickers in batches, breadth in one run, and the data-quality checks.

The ticker and breadth jobs do not run the asset checks (`breadth_assets.defs.checks`): they read
whole tables, which a batch of 50 tickers should not; `quality_checks_job` runs them.
"""

from __future__ import annotations

import dagster as dg

from breadth_assets.defs.assets import BREADTH, TICKER_TAG

# By tag, so that intraday_prices joins the job in the deployments that define it.
[(_TAG_KEY, _TAG_VALUE)] = TICKER_TAG.items()
ticker_job = dg.define_asset_job(
    "ticker_job",
    selection=dg.AssetSelection.tag(_TAG_KEY, _TAG_VALUE).without_checks(),
    description="Fetch prices (and intraday candles, when the universe lists timeframes) and "
    "compute indicators for a range of ticker partitions.",
)

breadth_job = dg.define_asset_job(
    "breadth_job",
    selection=dg.AssetSelection.assets(BREADTH).without_checks(),
    description="Compute breadth for a range of trading days.",
)

quality_checks_job = dg.define_asset_job(
    "quality_checks_job",
    selection=dg.AssetSelection.all_asset_checks(),
    description="Run every data-quality check over the whole stored tables (no asset is "
    "materialized).",
)
