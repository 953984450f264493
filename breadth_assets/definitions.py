"""The code location: assets, jobs, the daily schedule, sensors and this deployment's resources.

Dagster calls `defs` when it loads the code location (`@dg.definitions`), so importing this
module reads no file. The universe file read then fixes what the definitions need (the market's
calendar, whether intraday candles exist, the batch size of UI backfills); everything else
(tickers, batch size of the schedule, sensor and main job, source settings) is read from the file
again at each run and tick through the `universe` resource.
"""

from __future__ import annotations

import os
import sys

import dagster as dg

from breadth_assets.defs.alert_target import ALERT_URLS_VARIABLE, AlertTarget
from breadth_assets.defs.assets import build_breadth, build_intraday_prices, build_ticker_assets
from breadth_assets.defs.checks import build_checks
from breadth_assets.defs.deployment import (
    executor_for_deployment,
    price_source_for,
    store_for_deployment,
)
from breadth_assets.defs.jobs import breadth_job, quality_checks_job, ticker_job
from breadth_assets.defs.partitions import build_trading_days
from breadth_assets.defs.schedules import build_daily_update
from breadth_assets.defs.sensors.alert_sensor import build_alert_sensor
from breadth_assets.defs.sensors.breadth_sensor import daily_breadth_sensor
from breadth_assets.defs.sensors.quality_sensor import (
    quality_after_backfill_sensor,
    quality_after_breadth_sensor,
)
from breadth_assets.defs.sensors.recovery_sensor import run_recovery_sensor
from breadth_assets.defs.sensors.universe_sensor import universe_sensor
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.runtime.console import console_logger
from breadth_assets.sources.base import PriceSource
from breadth_assets.stores.base import MarketStore
from breadth_assets.universe.file import Universe, UniverseError, load_universe


def build_definitions(
    universe: Universe,
    store: MarketStore | None = None,
    price_source: PriceSource | None = None,
) -> dg.Definitions:
    """The definitions for one universe; the store and source default to the deployment's."""
    store = store if store is not None else store_for_deployment()
    source = price_source if price_source is not None else price_source_for(universe)
    kind = type(store).kind
    alerting = bool(os.environ.get(ALERT_URLS_VARIABLE, "").strip())
    assets = [
        build_ticker_assets(universe.batch_size, kind),
        build_breadth(build_trading_days(universe), kind),
    ]
    if universe.timeframes:
        assets.append(build_intraday_prices(universe.batch_size, kind))
    return dg.Definitions(
        assets=assets,
        asset_checks=build_checks(),
        jobs=[ticker_job, breadth_job, quality_checks_job],
        schedules=[build_daily_update(universe)],
        sensors=[
            universe_sensor,
            daily_breadth_sensor,
            quality_after_breadth_sensor,
            quality_after_backfill_sensor,
            run_recovery_sensor,
            build_alert_sensor(configured=alerting),
        ],
        # Every run is one step (a batch of tickers, or breadth): a separate step process would
        # only add a process start-up and a few hundred MB to each run. Several machines send
        # that step to Celery workers instead (BREADTH_EXECUTOR=celery).
        executor=executor_for_deployment(),
        loggers={"console": console_logger},
        resources={
            "store": store,
            "price_source": source,
            "universe": UniverseFile(path=str(universe.path)),
            "alerts": alert_target() if alerting else AlertTarget(),
        },
    )


def alert_target() -> AlertTarget:
    """The targets of $BREADTH_ALERT_URLS (read by Dagster at run time, never shown), the first
    retry after $BREADTH_ALERT_RETRY_SECONDS (default 60)."""
    first_retry = int(os.environ.get("BREADTH_ALERT_RETRY_SECONDS", "60"))
    return AlertTarget(urls=dg.EnvVar(ALERT_URLS_VARIABLE), first_retry_seconds=first_retry)


def load_for_code_location() -> Universe:
    """The universe file, or its one-line reason on stderr before Dagster's long traceback."""
    try:
        return load_universe()
    except UniverseError as error:
        print(f"breadth_assets: cannot load the universe file: {error}", file=sys.stderr)
        sys.stderr.flush()
        raise


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_for_code_location())
