"""The daily update: after the market's close, every ticker in batches (breadth follows)."""

from zoneinfo import ZoneInfo

import dagster as dg

from breadth_assets.defs.assets import RAW_PRICES
from breadth_assets.defs.batches import BATCHES_TAG, DAY_TAG, range_tags, update_batches
from breadth_assets.defs.jobs import ticker_job
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.runtime.recovery import repair
from breadth_assets.universe.file import Universe


def build_daily_update(universe: Universe) -> dg.ScheduleDefinition:
    """Fires on the market's trading weekdays at its update time and skips its holidays.

    The market fixes the cron and time zone when the code location loads; the batch size,
    closures and `end_date` are read from the universe file at each tick.
    """
    market = universe.calendar
    timezone, at = market.timezone, market.update_time
    weekdays = ",".join(sorted(str((day + 1) % 7) for day in market.weekdays))
    weekdays = "1-5" if weekdays == "1,2,3,4,5" else weekdays

    @dg.schedule(
        name="daily_update",
        job=ticker_job,
        cron_schedule=f"{at.minute} {at.hour} * * {weekdays}",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every {universe.market} trading day at {at:%H:%M} {timezone}: prices and "
        "indicators of every ticker in runs of the update batch size; daily_breadth_sensor then "
        "materializes that day's breadth.",
    )
    def daily_update(context: dg.ScheduleEvaluationContext, universe: UniverseFile):
        repair(context.instance, context.log.warning)
        current = universe.load()
        day = context.scheduled_execution_time.astimezone(ZoneInfo(timezone)).date()
        if current.end_date is not None and day > current.end_date:
            return dg.SkipReason(
                f"the history ends on {current.end_date} (end_date in {current.path.name}); "
                "remove end_date to update it again"
            )
        if not current.calendar.is_trading_day(day):
            return dg.SkipReason(f"{day} is not a trading day on {current.market}")
        keys = context.instance.get_dynamic_partitions(tickers_partitions.name)
        with_history = context.instance.get_materialized_partitions(RAW_PRICES)
        batches = update_batches(
            keys, keys, with_history, current.batch_size, current.update_batch_size
        )
        if not batches:
            return dg.SkipReason("the universe has no tickers yet")
        day_tags = {DAY_TAG: day.isoformat(), BATCHES_TAG: str(len(batches))}
        return [
            dg.RunRequest(
                run_key=f"{day}:{batch[0]}..{batch[-1]}",
                tags={**range_tags(batch[0], batch[-1]), **day_tags},
                run_config={"ops": {"ticker_assets": {"config": {"end_date": day.isoformat()}}}},
            )
            for batch in batches
        ]

    return daily_update
