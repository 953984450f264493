"""The code location: assets, jobs and the resources of this deployment."""

from __future__ import annotations

import dagster as dg

from breadth_assets.assets import breadth, ticker_assets
from breadth_assets.deployment import price_source_for, store_for_deployment
from breadth_assets.jobs import breadth_job, ticker_job
from breadth_assets.partitions import UNIVERSE
from breadth_assets.resources.universe_file import UniverseFile

defs = dg.Definitions(
    assets=[ticker_assets, breadth],
    jobs=[ticker_job, breadth_job],
    resources={
        "store": store_for_deployment(),
        "price_source": price_source_for(UNIVERSE),
        "universe": UniverseFile(path=str(UNIVERSE.path)),
    },
)
