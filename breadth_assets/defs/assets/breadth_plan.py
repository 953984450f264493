"""Where a breadth run starts for each group, and over which days (docs/design.md "History and
recomputation"): the stored rows carry what the next day needs, so a run computes from the
first day whose inputs or members changed, not from the first trading day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd

from breadth_assets.analytics.breadth import BreadthState, state_after
from breadth_assets.analytics.sessions import found_sessions
from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.base import MarketStore, StaleMark
from breadth_assets.universe.file import Universe


@dataclass(frozen=True)
class Pass:
    """One computation over `days[begin:]` for `groups`, from their `states` on the day before."""

    begin: int
    groups: dict[str, list[str]]
    states: dict[str, BreadthState] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What a run computes: its passes over `days` (trading days and sessions), the asked
    `keys`, the first day written as asked, and how far it carries on past them."""

    days: pd.DatetimeIndex
    passes: list[Pass]
    keys: list[str]
    asked_from: pd.Timestamp
    mark: StaleMark
    carried_to: pd.Timestamp | None
    sessions: pd.DatetimeIndex
    changed: dict[str, dt.date]
    """Groups recomputed because their members changed (or their rows cannot say their state),
    and from which day."""

    @property
    def begin(self) -> int:
        return min(p.begin for p in self.passes)


def plan_breadth(
    context: dg.AssetExecutionContext,
    store: MarketStore,
    universe: Universe,
    groups: Mapping[str, list[str]],
    trading_days: dg.DailyPartitionsDefinition,
    keys: list[str],
) -> Plan:
    """The passes of a run that writes the asked `keys` (sorted), `groups[ALL_GROUP]` being the
    universe's tickers."""
    tickers = groups[ALL_GROUP]
    recorded = store.read_breadth_groups()
    left_or_joined = sorted(set(recorded.get(ALL_GROUP, [])) ^ set(tickers))
    if left_or_joined:
        store.mark_breadth_stale(left_or_joined)
    mark = store.breadth_stale()
    last_asked = pd.Timestamp(keys[-1])
    end = _end(store, mark, last_asked)
    calendar_days, days = _days(store, universe, trading_days, end)
    asked = _asked_from(days, calendar_days, pd.Timestamp(keys[0]))
    begin, states = _starting_point(store, tickers, days, asked, mark)
    found = _sessions(store, tickers, days, calendar_days, begin, end)
    if len(found):
        start = days[begin]
        days = days.union(found)
        begin = int(days.searchsorted(start))
        asked = _asked_from(days, calendar_days, pd.Timestamp(keys[0]))
    changed = _changed_groups(store, groups, recorded, days, begin, states)
    everyone = {name: list(m) for name, m in groups.items() if name not in changed}
    passes = [Pass(begin, everyone, {g: s for g, s in states.items() if g in everyone})]
    if changed:
        again = min(int(days.searchsorted(pd.Timestamp(day))) for day in changed.values())
        tail = store.read_breadth_tail(days[again].date())
        again_states = {
            name: state
            for name, rows in tail.groupby("group_name")
            if name in changed and (state := state_after(rows)) is not None
        }
        passes.append(Pass(again, {g: list(groups[g]) for g in changed}, again_states))
    if days[begin] < days[asked]:
        context.log.info(
            f"breadth: computing from {days[begin]:%Y-%m-%d}, the first day whose row is missing "
            f"or whose inputs changed (stale mark {mark.stale_from})"
        )
    for name, day in changed.items():
        context.log.info(f"breadth: group {name} changed: computing it from {day}")
    carried_to = end if end > last_asked else None
    if carried_to is not None:
        context.log.info(
            f"breadth: carrying on to {carried_to:%Y-%m-%d}, the last stored row: inputs changed "
            f"from {mark.stale_from}, so the rows after {keys[-1]} were stale"
        )
    sessions = days.difference(calendar_days)
    sessions = sessions[sessions >= days[min(p.begin for p in passes)]]
    return Plan(days, passes, keys, days[asked], mark, carried_to, sessions, changed)


def _end(store: MarketStore, mark: StaleMark, last_asked: pd.Timestamp) -> pd.Timestamp:
    """The last asked day, or the last stored row when inputs changed on or before the last
    asked day and later rows are stored (they are stale: the run carries on to them)."""
    latest = store.read_breadth_before(dt.date.max)
    if (
        mark.stale_from is not None
        and pd.Timestamp(mark.stale_from) <= last_asked
        and latest is not None
        and pd.Timestamp(latest["date"]) > last_asked
    ):
        return pd.Timestamp(latest["date"])
    return last_asked


def _days(
    store: MarketStore,
    universe: Universe,
    trading_days: dg.DailyPartitionsDefinition,
    end: pd.Timestamp,
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """The calendar's trading days up to `end`, and the breadth days: those, the days of stored
    rows (sessions found before) and the universe's `extra_sessions`."""
    calendar_days = pd.DatetimeIndex(
        pd.to_datetime(
            trading_days.get_partition_keys_in_range(
                dg.PartitionKeyRange(trading_days.get_first_partition_key(), f"{end:%Y-%m-%d}")
            )
        )
    )
    stored = pd.DatetimeIndex(store.read_breadth(end=end.date())["date"])
    extra = pd.DatetimeIndex(pd.to_datetime(list(universe.extra_sessions)))
    extra = extra[(extra >= calendar_days[0]) & (extra <= end)]
    return calendar_days, calendar_days.union(stored).union(extra)


def _asked_from(
    days: pd.DatetimeIndex, calendar_days: pd.DatetimeIndex, first_key: pd.Timestamp
) -> int:
    """The first day a run asked for `first_key` writes: the key, or the sessions just before
    it (a session has no partition of its own; the next trading day's run writes it)."""
    at = calendar_days.get_loc(first_key)
    previous = calendar_days[at - 1] if at else None
    index = days.get_loc(first_key)
    while index > 0 and (previous is None or days[index - 1] > previous):
        index -= 1
    return index


def _sessions(
    store: MarketStore,
    tickers: Sequence[str],
    days: pd.DatetimeIndex,
    calendar_days: pd.DatetimeIndex,
    begin: int,
    end: pd.Timestamp,
) -> pd.DatetimeIndex:
    """Sessions found in the bars of the computed days (and the trading day before them)."""
    start = days[max(begin - 1, 0)]
    counts = store.read_bar_counts(tickers, start.date(), end.date())
    found = found_sessions(counts, calendar_days)
    return found[(found > start) & (found <= end)].difference(days)


def _starting_point(
    store: MarketStore,
    tickers: Sequence[str],
    days: pd.DatetimeIndex,
    begin: int,
    mark: StaleMark,
) -> tuple[int, dict[str, BreadthState]]:
    """The first day to compute and the state each group goes on from.

    The stored rows before `days[begin]` serve when the stale mark is after them and the whole
    universe's row carries the state columns; else the start moves back to the mark (or to the
    day after the latest stored row), and ultimately to the first trading day. Without any row
    before it, a day before which no ticker has a bar starts afresh.
    """
    while begin > 0:
        row = store.read_breadth_before(days[begin].date())
        if row is None:
            if store.read_previous_closes(tickers, days[begin].date()).empty:
                return begin, {}
            break
        base = pd.Timestamp(row["date"])
        if base not in days:
            break
        if state_after(row) is None:
            break
        if mark.stale_from is not None and pd.Timestamp(mark.stale_from) <= base:
            begin = int(days.searchsorted(pd.Timestamp(mark.stale_from)))
            continue
        start = days.get_loc(base) + 1
        tail = store.read_breadth_tail(days[start].date())
        states = {str(name): state_after(rows) for name, rows in tail.groupby("group_name")}
        return start, {name: state for name, state in states.items() if state is not None}
    return 0, {}


def _changed_groups(
    store: MarketStore,
    groups: Mapping[str, list[str]],
    recorded: Mapping[str, list[str]],
    days: pd.DatetimeIndex,
    begin: int,
    states: Mapping[str, BreadthState],
) -> dict[str, dt.date]:
    """Groups whose stored rows before `days[begin]` cannot be gone on from: their members
    changed since (from the first bar of a ticker that joined or left), or they have no state
    there though their members have bars before it (from their first bar)."""
    changed: dict[str, dt.date] = {}
    for name, tickers in groups.items():
        if name == ALL_GROUP or not tickers:
            continue
        before = recorded.get(name)
        if before is not None and set(before) != set(tickers):
            first, _ = store.bar_span(sorted(set(before) ^ set(tickers)))
        elif before is None or (begin > 0 and name not in states):
            first, _ = store.bar_span(tickers)
        else:
            continue
        if first is not None and first < days[begin].date():
            changed[name] = first
    return changed
