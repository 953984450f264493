"""Where breadth must be computed again: the one rule of docs/design.md "History and
recomputation", shared by the breadth asset's range, `daily_breadth_sensor`, the main job,
`breadth-assets status` and the `breadth_up_to_date` check.

The store is the source of truth: its stale mark (prices or indicators written since breadth was
computed over them), the universe the stored rows were computed over, and how far the bars reach
beyond the last stored row. Dagster's record of materialized days adds the days never asked for.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.base import MarketStore
from breadth_assets.universe.file import Universe
from breadth_assets.universe.groups import Group, members_in

NAMES_SHOWN = 5


@dataclass(frozen=True)
class StaleBreadth:
    """Breadth must be computed from `first_day` through `last_day` (trading days); `reason`
    says why in one line."""

    first_day: dt.date
    last_day: dt.date
    reason: str
    version: int
    """The stale mark's version this was found at: a run key for this state."""

    def text(self) -> str:
        return f"breadth stale from {self.first_day}: {self.reason}"


def breadth_days(universe: Universe, end: dt.date | None = None) -> list[dt.date]:
    """The universe's trading days from its start up to `end` (default: the last closed day)."""
    last = universe.last_day() if end is None else min(end, universe.last_day())
    return [day.date() for day in universe.calendar.trading_days(universe.start_date, last)]


def stale_breadth(
    store: MarketStore,
    tickers: Sequence[str],
    days: Sequence[dt.date],
    materialized: Collection[str] | None = None,
    groups: Iterable[Group] = (),
) -> StaleBreadth | None:
    """The first of `days` (the trading days up to the last one wanted, sorted) whose breadth
    row is missing or older than its inputs, and the last day the computation must reach; None
    when breadth is up to date.

    `materialized` (Dagster's materialized `breadth` partitions) adds the days never
    materialized; without it only what the store knows counts. A group of `groups` (the
    universe file's) whose members changed since its rows were computed makes the last stored
    day stale: a run for it recomputes that group from the first day the change affects.
    """
    if not days:
        return None
    found: list[tuple[dt.date, str]] = []
    latest_row = store.read_breadth_before(dt.date.max)
    latest = None if latest_row is None else latest_row["date"].date()
    computed_over = set(store.read_breadth_tickers())
    joined = sorted(set(tickers) - computed_over)
    left = sorted(computed_over - set(tickers))
    if latest is not None and (joined or left):
        first_bar, _ = store.bar_span([*joined, *left])
        if first_bar is not None:
            found.append((first_bar, _universe_text(joined, left, first_bar)))
    if latest is not None:
        changed = _changed_groups(store, members_in(groups, tickers))
        if changed:
            found.append((latest, changed))
    mark = store.breadth_stale()
    if mark.stale_from is not None and latest is not None and mark.stale_from <= latest:
        found.append(
            (mark.stale_from, f"prices or indicators were written from {mark.stale_from} on")
        )
    _, last_bar = store.bar_span(tickers)
    last_bar = None if last_bar is None else min(last_bar, days[-1])
    if last_bar is not None and (latest is None or last_bar > latest):
        after = days[0] if latest is None else latest + dt.timedelta(days=1)
        rows = "no breadth row yet" if latest is None else f"breadth rows end on {latest}"
        found.append((after, f"{rows}, bars reach {last_bar}"))
    if materialized is not None:
        never = next((day for day in days if day.isoformat() not in materialized), None)
        if never is not None and (last_bar is None or never <= last_bar):
            found.append((never, f"{never} was never materialized"))
    if not found:
        return None
    # The earliest day; on a tie the first reason found, the most telling (a ticker that joined
    # also moved the stale mark to its first bar).
    day, reason = min(found, key=lambda item: item[0])
    first = _trading_day_on_or_after(days, day)
    ends = [end for end in (latest, last_bar) if end is not None]
    last = _trading_day_on_or_before(days, max(ends)) if ends else None
    if first is None or last is None or first > last:
        return None
    return StaleBreadth(first, last, reason, mark.version)


def _changed_groups(store: MarketStore, groups: dict[str, list[str]]) -> str | None:
    """Why some groups' stored rows are out of date with the universe file, or None."""
    recorded = store.read_breadth_groups()
    changed = [
        name
        for name, members in groups.items()
        if members and set(recorded.get(name, ())) != set(members)
    ]
    gone = sorted(set(recorded) - {name for name, m in groups.items() if m} - {ALL_GROUP})
    parts = []
    if changed:
        parts.append(f"groups {listed_names(changed)} were added or changed")
    if gone:
        parts.append(f"groups {listed_names(gone)} were removed")
    if not parts:
        return None
    return f"{' and '.join(parts)} in the universe file since breadth was computed"


def _universe_text(joined: Sequence[str], left: Sequence[str], first_bar: dt.date) -> str:
    parts = []
    if joined:
        parts.append(f"{listed_names(joined)} joined")
    if left:
        parts.append(f"{listed_names(left)} left")
    return f"{' and '.join(parts)} the universe since breadth was computed (first bar {first_bar})"


def listed_names(tickers: Sequence[str]) -> str:
    """The first `NAMES_SHOWN` tickers, and how many more."""
    shown = ", ".join(tickers[:NAMES_SHOWN])
    more = len(tickers) - NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _trading_day_on_or_after(days: Sequence[dt.date], day: dt.date) -> dt.date | None:
    at = bisect.bisect_left(days, day)
    return days[at] if at < len(days) else None


def _trading_day_on_or_before(days: Sequence[dt.date], day: dt.date) -> dt.date | None:
    at = bisect.bisect_right(days, day)
    return days[at - 1] if at else None
