"""The interface of the store that holds `prices`, `indicators`, `breadth`, `intraday_prices`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import ClassVar

import dagster as dg
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics.actions import adjust_prices
from breadth_assets.analytics.breadth import HIGH_LOW_DAYS
from breadth_assets.analytics.breadth_counts import TickerDays, count_days
from breadth_assets.analytics.breadth_events import members_of
from breadth_assets.schema import ALL_GROUP


@dataclass(frozen=True)
class StaleMark:
    """The earliest day whose breadth inputs changed since breadth was computed over it.

    `version` counts the writes that moved it, so breadth clears only what it has seen.
    """

    stale_from: dt.date | None
    version: int


class BreadthSteps:
    """Breadth's writes and bookkeeping, each store's own, inside one of its transactions:
    `MarketStore.write_breadth` and the stale-mark methods are written once over these."""

    def replace_rows(
        self,
        first: dt.date,
        last: dt.date,
        groups: Sequence[str],
        frames: Mapping[str, pd.DataFrame],
    ) -> None:
        """The rows of these groups dated first..last in each of `schema.GROUP_TABLES` become
        `frames[table]` (none: no row; rows stored there and not given go)."""
        raise NotImplementedError

    def delete(self, days: Sequence[dt.date]) -> None:
        """Removes the breadth rows (and their members) of these days, every group."""
        raise NotImplementedError

    def replace_universe(self, members: Mapping[str, Sequence[str]]) -> None:
        """Records the tickers each of these groups' rows were computed over (other groups'
        records stay)."""
        raise NotImplementedError

    def drop_groups(self, groups: Sequence[str]) -> None:
        """Removes every row and record of these groups: they left the universe file."""
        raise NotImplementedError

    def settle(self, seen: StaleMark, stale_from: dt.date | None) -> None:
        """Sets the stale mark to `stale_from`, unless its version moved since `seen`."""
        raise NotImplementedError

    def move_mark(self, day: dt.date) -> None:
        """Moves the stale mark back to `day` (never forward) and counts a new version."""
        raise NotImplementedError


INPUT_TABLES = (schema.PRICES, schema.INDICATORS)
PREVIOUS_COLUMNS = ("ticker", "date", "close", "sma_50", "sma_200")
"""What `read_previous_closes` gives of each ticker's last bar: what its next bar compares to."""
FROM_ROWS = "rows"
"""`MarketStore.write`'s default mark: from the earliest day of the `prices` and `indicators`
rows written."""


class StoreError(Exception):
    """The store cannot be used; the message says which store and why, never a secret."""


class MarketStore(dg.ConfigurableResource):
    """Reads by ticker or by date, writes whole batches atomically.

    Writing rows whose keys exist replaces them, so writing a partition twice changes nothing.
    Frames carry `date` as timezone-naive datetime64 at midnight and `ts` as exchange time.
    """

    kind: ClassVar[str] = "store"
    """The asset `kinds` tag that names this store in the UI."""

    def location(self) -> str:
        """Where the tables are, for people (never a credential)."""
        raise NotImplementedError

    def read_prices(self, tickers: Sequence[str]) -> pd.DataFrame:
        """All stored bars of these tickers, sorted by ticker and date."""
        raise NotImplementedError

    def read_indicators(self, tickers: Sequence[str]) -> pd.DataFrame:
        """All stored indicator rows of these tickers, sorted by ticker and date."""
        raise NotImplementedError

    def read_tail(self, table: str, tickers: Sequence[str], bars: int) -> pd.DataFrame:
        """The last `bars` rows of each ticker in `prices` or `indicators`, sorted by ticker and
        date: what an incremental update reads instead of the whole history."""
        raise NotImplementedError

    def read_breadth_inputs(
        self, tickers: Sequence[str], end: dt.date, start: dt.date | None = None
    ) -> pd.DataFrame:
        """Ticker-days in [start, end] that have indicators: `schema.BREADTH_INPUT_COLUMNS`,
        sorted by ticker and date."""
        raise NotImplementedError

    def read_previous_closes(self, tickers: Sequence[str], before: dt.date) -> pd.DataFrame:
        """Each ticker's last indicators row dated before `before`: `PREVIOUS_COLUMNS`."""
        raise NotImplementedError

    def count_breadth(
        self,
        tickers: Sequence[str],
        dates: pd.DatetimeIndex,
        members: Mapping[str, Sequence[str]] | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The daily counts of breadth per group (`analytics.breadth.count_breadth`: `ALL_GROUP`
        over `tickers`, then `members`) over these trading days, each ticker's last bar before
        them serving as its previous bar; and who made the events (`breadth_members` rows).

        This default reads the days' ticker-days into pandas; a store may count in its own
        query instead, with the same result.
        """
        first, last = dates[0].date(), dates[-1].date()
        rows = self.read_breadth_inputs(tickers, last, start=first)
        previous = self.read_previous_closes(tickers, first)
        if len(previous):
            rows = pd.concat([previous.reindex(columns=rows.columns), rows], ignore_index=True)
        groups = {name: list(m) for name, m in (members or {}).items() if name != ALL_GROUP}
        days = TickerDays(rows, dates)
        return count_days(days, groups), members_of(days, groups)

    def read_bar_counts(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> pd.Series:
        """Tickers with an indicators row per date in [start, end] (dates with any), indexed by
        date: where the sessions a calendar does not know are found."""
        rows = self.read_breadth_inputs(tickers, end, start=start)
        return rows.groupby(pd.to_datetime(rows["date"])).size()

    def read_breadth_before(self, day: dt.date, group: str = ALL_GROUP) -> pd.Series | None:
        """The group's latest stored breadth row dated before `day`, or None."""
        raise NotImplementedError

    def read_breadth_tail(self, before: dt.date, days: int = HIGH_LOW_DAYS) -> pd.DataFrame:
        """Each group's last `days` stored rows dated before `before`, sorted by group and date:
        what the next day's row goes on from (`analytics.breadth.state_after`)."""
        raise NotImplementedError

    def breadth_stale(self) -> StaleMark:
        """Where breadth must be recomputed from. Every write of `prices` or `indicators` rows
        moves it back to the earliest day written, in the same transaction where there is one.
        """
        raise NotImplementedError

    def bar_span(self, tickers: Sequence[str]) -> tuple[dt.date | None, dt.date | None]:
        """The first and the last date of these tickers' `indicators` rows (None, None without
        any): where a ticker joining or leaving the universe changes breadth, and how far the
        bars reach."""
        raise NotImplementedError

    def mark_breadth_stale(self, tickers: Sequence[str]) -> dt.date | None:
        """Marks breadth stale from these tickers' first bar (they joined or left the universe);
        returns that day, or None when they have no rows."""
        first, _ = self.bar_span(tickers)
        if first is not None:
            with self._breadth_steps() as steps:
                steps.move_mark(first)
        return first

    def write_breadth(
        self,
        rows: pd.DataFrame,
        members: pd.DataFrame,
        groups: Mapping[str, Sequence[str]],
        first: dt.date | Mapping[str, dt.date],
        last: dt.date,
        seen: StaleMark,
        stale_from: dt.date | None,
        signals: pd.DataFrame | None = None,
    ) -> None:
        """Writes breadth rows with their bookkeeping, in one transaction where the store has
        them (a crash leaves all of it as it was): the rows and `breadth_members` of the
        `groups` dated first..last (`first` per group, or one for all) become `rows`, `members`
        and `signals` (a day computed without a row loses the one stored), each group's record of
        the tickers it was computed over, and the stale mark moved to `stale_from` (unless a
        write moved it since `seen`)."""
        firsts = first if isinstance(first, Mapping) else dict.fromkeys(groups, first)
        spans: dict[dt.date, list[str]] = {}
        for group in groups:
            spans.setdefault(firsts[group], []).append(group)
        with self._breadth_steps() as steps:
            tables = {schema.BREADTH: rows, schema.BREADTH_MEMBERS: members}
            if signals is not None:
                tables[schema.BREADTH_SIGNALS] = signals
            for day, names in spans.items():
                frames = {t: df[df["group_name"].isin(names)] for t, df in tables.items()}
                steps.replace_rows(day, last, names, frames)
            steps.replace_universe(groups)
            steps.settle(seen, stale_from)

    def delete_breadth(self, days: Sequence[dt.date]) -> None:
        """Removes the breadth rows of these days, if any."""
        with self._breadth_steps() as steps:
            steps.delete(days)

    def drop_breadth_groups(self, groups: Sequence[str]) -> None:
        """Removes the rows and records of groups the universe file no longer has."""
        with self._breadth_steps() as steps:
            steps.drop_groups(groups)

    def read_breadth_groups(self) -> dict[str, list[str]]:
        """Each group's tickers its stored rows were last computed over (`ALL_GROUP` too)."""
        raise NotImplementedError

    def read_breadth_tickers(self) -> list[str]:
        """The universe the stored breadth rows were last computed over, sorted."""
        return sorted(self.read_breadth_groups().get(ALL_GROUP, []))

    def write_breadth_tickers(self, tickers: Sequence[str]) -> None:
        """Records the universe the breadth rows just written were computed over."""
        with self._breadth_steps() as steps:
            steps.replace_universe({ALL_GROUP: list(tickers)})

    def settle_breadth_stale(self, seen: StaleMark, stale_from: dt.date | None) -> None:
        """After breadth was computed up to a day: the mark becomes `stale_from`, unless a write
        moved it since `seen` (then it stays, to be recomputed again)."""
        with self._breadth_steps() as steps:
            steps.settle(seen, stale_from)

    def _breadth_steps(self) -> AbstractContextManager[BreadthSteps]:
        """The store's `BreadthSteps` inside one transaction (where it has them)."""
        raise NotImplementedError

    def read_breadth(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = ALL_GROUP,
    ) -> pd.DataFrame:
        """The group's stored breadth rows in [start, end], sorted by date; every group's with
        None, sorted by group and date."""
        raise NotImplementedError

    def read_breadth_members(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = None,
    ) -> pd.DataFrame:
        """Stored `breadth_members` rows in [start, end] (of one group, or all with None),
        sorted by date, group, event and ticker."""
        raise NotImplementedError

    def read_breadth_signals(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = None,
    ) -> pd.DataFrame:
        """Stored `breadth_signals` rows in [start, end] (of one group, or all with None),
        sorted by date, group and signal."""
        raise NotImplementedError

    def read_intraday(self, tickers: Sequence[str]) -> pd.DataFrame:
        """All stored intraday candles of these tickers, sorted by ticker, unit, interval, ts."""
        raise NotImplementedError

    def read_intraday_latest(self, tickers: Sequence[str]) -> pd.DataFrame:
        """The last stored candle time per series: `ticker, unit, interval, ts`."""
        raise NotImplementedError

    def read_actions(self, tickers: Sequence[str] | None = None) -> pd.DataFrame:
        """The stored `corporate_actions` of these tickers (all with None), sorted by ticker,
        ex_date and kind."""
        raise NotImplementedError

    def read_instrument_keys(self, tickers: Sequence[str]) -> pd.DataFrame:
        """The recorded `instrument_keys` of these tickers, sorted by ticker, first_used and
        instrument_key: each ticker's last row is the key its bars were last fetched under."""
        raise NotImplementedError

    def read_adjusted_prices(self, tickers: Sequence[str]) -> pd.DataFrame:
        """`prices` of these tickers back-adjusted by their stored actions (docs/design.md
        "Corporate actions"): the `adjusted_prices` view of the SQL stores, for every store."""
        return adjust_prices(self.read_prices(tickers), self.read_actions(tickers))

    def write(
        self,
        frames: Mapping[str, pd.DataFrame],
        replace: Mapping[str, Sequence[str]] | None = None,
        stale_from: dt.date | str | None = FROM_ROWS,
    ) -> dict[str, int]:
        """Upsert each table's rows in one transaction; returns rows written per table.

        `replace` names tables whose rows of these tickers go first, so the frame's rows are
        all that is left of them. `stale_from` is where breadth's stale mark moves (never
        forward): by default the earliest day of the `prices` and `indicators` rows; None
        leaves it where it is (rows that changed in no way breadth can see).
        """
        replace = {table: list(t) for table, t in (replace or {}).items() if len(t)}
        frames = {table: df for table, df in frames.items() if len(df)}
        if not frames and not replace:
            return {}
        return self._write(frames, replace, _mark_day(frames, stale_from))

    def _write(
        self,
        frames: Mapping[str, pd.DataFrame],
        replace: Mapping[str, list[str]],
        mark: dt.date | None,
    ) -> dict[str, int]:
        """`write` with empty frames and replacements left out and the stale mark's day worked
        out (None: it stays): the store's own transaction."""
        raise NotImplementedError


def _mark_day(
    frames: Mapping[str, pd.DataFrame], stale_from: dt.date | str | None
) -> dt.date | None:
    """The day a write moves the stale mark to, or None (`write`'s `stale_from`)."""
    if stale_from != FROM_ROWS:
        return stale_from
    firsts = [
        frames[table]["date"].min()
        for table in INPUT_TABLES
        if table in frames and len(frames[table])
    ]
    return pd.Timestamp(min(firsts)).date() if firsts else None
