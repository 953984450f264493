"""The code location: assets, jobs, the daily schedule, sensors and this deployment's resources."""

from __future__ import annotations

import dagster as dg

from breadth_assets.assets import breadth, intraday_prices, ticker_assets
from breadth_assets.checks import all_checks, quality_checks_job
from breadth_assets.deployment import price_source_for, store_for_deployment
from breadth_assets.executor import recording_in_process_executor
from breadth_assets.jobs import breadth_job, ticker_job
from breadth_assets.partitions import UNIVERSE
from breadth_assets.resources.universe_file import UniverseFile
from breadth_assets.schedules import build_daily_update
from breadth_assets.sensors.breadth_sensor import daily_breadth_sensor
from breadth_assets.sensors.quality_sensor import quality_after_breadth_sensor
from breadth_assets.sensors.recovery_sensor import run_recovery_sensor
from breadth_assets.sensors.universe_sensor import universe_sensor

defs = dg.Definitions(
    assets=[ticker_assets, breadth, *([intraday_prices] if UNIVERSE.timeframes else [])],
    asset_checks=all_checks,
    jobs=[ticker_job, breadth_job, quality_checks_job],
    schedules=[build_daily_update(UNIVERSE)],
    sensors=[
        universe_sensor,
        daily_breadth_sensor,
        quality_after_breadth_sensor,
        run_recovery_sensor,
    ],
    # Every run is one step (a batch of tickers, or breadth): a separate step process would only
    # add a process start-up and a few hundred MB to each run.
    executor=recording_in_process_executor,
    resources={
        "store": store_for_deployment(),
        "price_source": price_source_for(UNIVERSE),
        "universe": UniverseFile(path=str(UNIVERSE.path)),
    },
)
