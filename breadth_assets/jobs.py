"""The two jobs a day's update is made of: tickers in batches, then breadth in one run."""

from __future__ import annotations

import dagster as dg

from breadth_assets.assets import INDICATORS, RAW_PRICES, breadth
from breadth_assets.partitions import tickers_partitions, trading_days_partitions

ticker_job = dg.define_asset_job(
    "ticker_job",
    selection=dg.AssetSelection.assets(RAW_PRICES, INDICATORS),
    partitions_def=tickers_partitions,
    description="Fetch prices and compute indicators for a range of ticker partitions.",
)

breadth_job = dg.define_asset_job(
    "breadth_job",
    selection=dg.AssetSelection.assets(breadth),
    partitions_def=trading_days_partitions,
    description="Compute breadth for a range of trading days.",
)
