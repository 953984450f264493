"""The two partitionings of docs/design.md "Partitioning": tickers (dynamic) and trading days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import dagster as dg
from sqlalchemy.exc import IntegrityError

from breadth_assets.universe.file import Universe

# Holidays are listed this far ahead so that the partition set stays right for a long-lived server.
HOLIDAY_HORIZON_YEARS = 2

tickers_partitions = dg.DynamicPartitionsDefinition(name="tickers")


def build_trading_days(
    universe: Universe, today: dt.date | None = None
) -> dg.DailyPartitionsDefinition:
    """Daily partitions in the market's time zone, on its trading days only.

    A day's partition starts at the market's update time (a while after the close), and
    `end_offset=1` makes it exist from then on: the update after today's close can materialize
    it, and before the close the last partition is the previous trading day. (On weekends and
    holidays Dagster already shows the next trading day; the breadth asset refuses a day whose
    update time has not come.) A universe with an `end_date` has no partition after it.
    """
    market = universe.calendar
    today = today or dt.date.today()
    horizon = dt.date(today.year + HOLIDAY_HORIZON_YEARS, 12, 31)
    if universe.end_date is not None:
        horizon = min(horizon, universe.end_date)
    closed = market.closures(universe.start_date, horizon)
    at = market.update_time
    weekend = [str((day + 1) % 7) for day in range(7) if day not in market.weekdays]
    end = None
    if universe.end_date is not None:
        # Dagster's end is exclusive of any day whose window (update time to update time) ends
        # after it: the window of end_date ends the next day at the update time.
        end = dt.datetime.combine(universe.end_date + dt.timedelta(days=1), at)
    return dg.DailyPartitionsDefinition(
        start_date=universe.start_date.isoformat(),
        end_date=end,
        timezone=market.timezone,
        hour_offset=at.hour,
        minute_offset=at.minute,
        end_offset=1,
        exclusions=[
            *([f"{at.minute} {at.hour} * * {','.join(weekend)}"] if weekend else []),
            *(dt.datetime.combine(day, at) for day in closed),
        ],
    )


def universe_changes(
    existing: Sequence[str], symbols: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(added, removed): the universe's symbols not yet partitions, and partitions it dropped."""
    present, wanted = set(existing), set(symbols)
    added = [symbol for symbol in dict.fromkeys(symbols) if symbol not in present]
    return added, [key for key in existing if key not in wanted]


def sync_ticker_partitions(
    instance: dg.DagsterInstance, symbols: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Makes the `tickers` partitions the universe's symbols; returns (added, removed).

    Removing a partition keeps the ticker's rows in the store; it only leaves the universe.
    """
    existing = instance.get_dynamic_partitions(tickers_partitions.name)
    added, removed = universe_changes(existing, symbols)
    _add_partitions(instance, added)
    for key in removed:
        instance.delete_dynamic_partition(tickers_partitions.name, key)
    return added, removed


ADD_ATTEMPTS = 5


def _add_partitions(instance: dg.DagsterInstance, keys: Sequence[str]) -> None:
    """Adds the keys that are not partitions yet, also when another process adds some at once.

    Two main jobs started together (or a main job and `universe_sensor`) read the same missing
    keys; the second insert then breaks the storage's unique index. Reading again and adding
    what is still missing makes the sync idempotent.
    """
    for attempt in range(ADD_ATTEMPTS):
        present = set(instance.get_dynamic_partitions(tickers_partitions.name)) if attempt else ()
        missing = [key for key in keys if key not in present]
        if not missing:
            return
        try:
            instance.add_dynamic_partitions(tickers_partitions.name, missing)
            return
        except IntegrityError:
            if attempt == ADD_ATTEMPTS - 1:
                raise
