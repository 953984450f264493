"""Keeps the `tickers` partitions in step with the universe file and fetches new tickers."""

import dagster as dg

from breadth_assets.defs.batches import range_tags, ticker_batches
from breadth_assets.defs.jobs import ticker_job
from breadth_assets.defs.partitions import tickers_partitions, universe_changes
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.universe.file import Universe

SKIPPED_SHOWN = 20
"""Skipped names written out in the tick's warning; the count covers them all."""


def _skipped_line(current: Universe) -> str:
    """One line for the names `tickers: all` skipped, so a folder of odd files does not flood
    the log at every tick."""
    shown = "; ".join(f"{name}: {reason}" for name, reason in current.skipped[:SKIPPED_SHOWN])
    more = len(current.skipped) - SKIPPED_SHOWN
    return (
        f"{len(current.skipped)} names skipped by `tickers: all` of {current.path.name}: {shown}"
        + (f"; and {more} more" if more > 0 else "")
    )


@dg.sensor(
    name="universe_sensor",
    job=ticker_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds the universe file's new tickers as partitions and fetches their history "
    "in runs of the batch size; tickers removed from the file leave the partitions (their rows "
    "stay in the store). A file that does not validate fails the tick and changes nothing.",
)
def universe_sensor(
    context: dg.SensorEvaluationContext, universe: UniverseFile
) -> dg.SensorResult | dg.SkipReason:
    """Reads the file at every tick, so its batch size applies without a reload."""
    current = universe.load()
    if current.skipped:
        context.log.warning(_skipped_line(current))
    existing = context.instance.get_dynamic_partitions(tickers_partitions.name)
    added, removed = universe_changes(existing, current.symbols)
    if not added and not removed:
        return dg.SkipReason(f"{len(existing)} tickers, in step with {current.path.name}")
    requests = []
    if added:
        requests.append(tickers_partitions.build_add_request(added))
    if removed:
        requests.append(tickers_partitions.build_delete_request(removed))
    context.log.info(f"tickers added: {added or 'none'}; removed: {removed or 'none'}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(tags=range_tags(batch[0], batch[-1]))
            for batch in ticker_batches(added, added, current.batch_size)
        ],
        dynamic_partitions_requests=requests,
    )
