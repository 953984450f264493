"""The embedded default store: one DuckDB file shared by every run on the machine."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import duckdb
import numpy as np
import pandas as pd
from pydantic import Field

from breadth_assets import schema
from breadth_assets.analytics.breadth import HIGH_LOW_DAYS
from breadth_assets.analytics.breadth_counts import TickerDays, count_days
from breadth_assets.analytics.breadth_events import members_of
from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.base import (
    BreadthSteps,
    MarketStore,
    StaleMark,
    StoreError,
)
from breadth_assets.stores.breadth_sql import BREADTH_ROWS_SQL
from breadth_assets.stores.duckdb_tables import (
    STALE_TABLE,
    UNIVERSE_TABLE,
    DuckDBSteps,
    create_sql,
    ensure_tables,
)

_POLL_SECONDS = 0.02
_SCHEMA_CHECKED: set[str] = set()
"""Files this process has opened for writing once, so their tables and columns exist."""
_EMPTY: dict[str, pd.DataFrame] = {}


class DuckDBStore(MarketStore):
    """DuckDB allows one writing process per file, so every access holds a lock file.

    Reads share the lock and open the file read-only; a write takes it alone for one
    transaction. Runs in parallel processes therefore queue for a few milliseconds instead of
    failing on DuckDB's own lock, and a crash mid-write leaves the last committed state.
    """

    kind: ClassVar[str] = "duckdb"

    path: str = Field(description="The DuckDB file; created with its tables on first use.")
    lock_timeout_seconds: float = Field(
        default=600.0, description="How long an access waits for other processes' writes."
    )
    memory_limit: str = Field(
        default="512MB",
        description="DuckDB's buffer pool for the reads that scan the whole file for a small "
        "result (an update's last bars per ticker, breadth's daily counts): DuckDB would keep "
        "every block it read cached, up to 80% of the machine's memory.",
    )

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        lock_path = Path(f"{self.path}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+") as lock_file:
            mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
            deadline = time.monotonic() + self.lock_timeout_seconds
            while True:
                try:
                    fcntl.flock(lock_file, mode)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"the DuckDB store {self.path} stayed locked by another process "
                            f"for {self.lock_timeout_seconds:.0f} s"
                        ) from None
                    time.sleep(_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _connect(self, write: bool, bounded: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """`bounded`: a read whose result is small by design but whose scan touches the whole
        file, run within `memory_limit` (DuckDB would keep every block it read cached)."""
        if not write and (self.path not in _SCHEMA_CHECKED or not os.path.exists(self.path)):
            with self._connect(write=True):
                pass
        with self._locked(exclusive=write):
            try:
                config = {"memory_limit": self.memory_limit} if bounded else {}
                con = duckdb.connect(self.path, read_only=not write, config=config)
            except duckdb.Error as error:
                raise StoreError(f"cannot open the DuckDB store {self.path}: {error}") from error
            try:
                if write:
                    ensure_tables(con)
                    _SCHEMA_CHECKED.add(self.path)
                yield con
            except (duckdb.IOException, OSError) as error:
                # A full disk or a lost file: the store and the reason, in one line.
                reason = str(error).strip().splitlines()[0].removeprefix("IO Error: ")
                raise StoreError(f"DuckDB store {self.path}: {reason}") from error
            finally:
                con.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection inside one transaction: committed whole or rolled back."""
        with self._connect(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _select(self, sql: str, params: list) -> pd.DataFrame:
        with self._connect(write=False) as con:
            return con.execute(sql, params).df()

    def _empty(self, table: str) -> pd.DataFrame:
        """The table's columns with their pandas dtypes and no row, without opening the file."""
        if table not in _EMPTY:
            with duckdb.connect() as con:
                con.execute(create_sql(table))
                _EMPTY[table] = con.execute(f"SELECT * FROM {table}").df()
        return _EMPTY[table].copy()

    def _read_table(
        self, table: str, tickers: Sequence[str] | None, order: str = "ticker, date"
    ) -> pd.DataFrame:
        """The table's rows of these tickers (all with None) in `order`."""
        columns = ", ".join(schema.TABLES[table])
        if tickers is not None and not len(tickers):
            return self._empty(table)
        where = "" if tickers is None else "WHERE ticker IN (SELECT unnest(?)) "
        return self._select(
            f"SELECT {columns} FROM {table} {where}ORDER BY {order}",
            [] if tickers is None else [list(tickers)],
        )

    def location(self) -> str:
        return f"DuckDB file {Path(self.path).resolve()}"

    def read_prices(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._read_table(schema.PRICES, tickers)

    def read_indicators(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._read_table(schema.INDICATORS, tickers)

    def read_tail(self, table: str, tickers: Sequence[str], bars: int) -> pd.DataFrame:
        columns = ", ".join(schema.TABLES[table])
        # Rows after one date bound (a filter DuckDB pushes into the scan, so it decodes the
        # other columns of recent rows only), cut to `bars` per ticker in pandas; the tickers
        # the bound cut short (a long halt, a history that ended earlier) are read again with a
        # window over their rows alone.
        with self._connect(write=False, bounded=True) as con:
            counts = con.execute(
                f"SELECT ticker, count(*) AS n, max(date) AS last FROM {table} "
                "WHERE ticker IN (SELECT unnest(?)) GROUP BY ticker",
                [list(tickers)],
            ).df()
            if counts.empty:
                return self._empty(table)
            bound = counts["last"].max() - pd.Timedelta(days=bars * 7 // 5 + 30)
            recent = con.execute(
                f"SELECT {columns} FROM {table} WHERE ticker IN (SELECT unnest(?)) AND date > ? "
                "ORDER BY ticker, date",
                [list(tickers), bound.date()],
            ).df()
            tail = recent.groupby("ticker", sort=False).tail(bars)
            got = tail["ticker"].value_counts().reindex(counts["ticker"], fill_value=0)
            wanted = counts.set_index("ticker")["n"].clip(upper=bars)
            short = got.index[got < wanted].tolist()
            if not short:
                return tail.reset_index(drop=True)
            again = con.execute(
                f"SELECT {columns} FROM {table} WHERE ticker IN (SELECT unnest(?)) "
                "QUALIFY row_number() OVER (PARTITION BY ticker ORDER BY date DESC) <= ? "
                "ORDER BY ticker, date",
                [short, bars],
            ).df()
        tail = pd.concat([tail[~tail["ticker"].isin(short)], again], ignore_index=True)
        return tail.sort_values(["ticker", "date"], ignore_index=True)

    def read_breadth_inputs(
        self, tickers: Sequence[str], end: dt.date, start: dt.date | None = None
    ) -> pd.DataFrame:
        columns = ", ".join(
            f"p.{name}" if name == "volume" else f"i.{name}"
            for name in schema.BREADTH_INPUT_COLUMNS
        )
        return self._select(
            f"SELECT {columns} FROM indicators i JOIN prices p USING (ticker, date) "
            "WHERE i.ticker IN (SELECT unnest(?)) AND i.date <= ? "
            "AND i.date >= coalesce(?, DATE '0001-01-01') ORDER BY i.ticker, i.date",
            [list(tickers), end, start],
        )

    def read_previous_closes(self, tickers: Sequence[str], before: dt.date) -> pd.DataFrame:
        return self._select(
            "SELECT ticker, max(date) AS date, arg_max(close, date) AS close, "
            "arg_max_null(sma_50, date) AS sma_50, arg_max_null(sma_200, date) AS sma_200 "
            "FROM indicators WHERE ticker IN (SELECT unnest(?)) AND date < ? GROUP BY ticker "
            "ORDER BY ticker",
            [list(tickers), before],
        )

    def count_breadth(
        self,
        tickers: Sequence[str],
        dates: pd.DatetimeIndex,
        members: Mapping[str, Sequence[str]] | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The chunk's ticker-days leave DuckDB as numbers (tickers by position) and are
        counted by `analytics.breadth_counts`: a day x ticker matrix times the groups'."""
        params = {"tickers": list(tickers), "first": dates[0].date(), "last": dates[-1].date()}
        with self._connect(write=False, bounded=True) as con:
            rows = con.execute(BREADTH_ROWS_SQL, params).df()
        position = {ticker: code for code, ticker in enumerate(tickers)}
        groups = {
            name: [position[t] for t in group if t in position]
            for name, group in (members or {}).items()
            if name != ALL_GROUP
        }
        days = TickerDays(rows, dates)
        counts = count_days(days, groups)
        moved = members_of(days, groups)
        codes = np.asarray(moved["ticker"].astype(np.int64))
        moved["ticker"] = pd.Categorical.from_codes(codes, categories=list(tickers))
        return counts, moved

    def read_bar_counts(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> pd.Series:
        counts = self._select(
            "SELECT date, count(*) AS bars FROM indicators WHERE ticker IN (SELECT unnest(?)) "
            "AND date BETWEEN ? AND ? GROUP BY date ORDER BY date",
            [list(tickers), start, end],
        )
        return counts.set_index(pd.to_datetime(counts["date"]))["bars"]

    def read_breadth_before(self, day: dt.date, group: str = ALL_GROUP) -> pd.Series | None:
        columns = ", ".join(schema.BREADTH_COLUMNS)
        rows = self._select(
            f"SELECT {columns} FROM breadth WHERE date < ? AND group_name = ? "
            "ORDER BY date DESC LIMIT 1",
            [day, group],
        )
        return rows.iloc[0] if len(rows) else None

    def read_breadth_tail(self, before: dt.date, days: int = HIGH_LOW_DAYS) -> pd.DataFrame:
        columns = ", ".join(schema.BREADTH_COLUMNS)
        return self._select(
            f"SELECT {columns} FROM breadth WHERE date < ? "
            "QUALIFY row_number() OVER (PARTITION BY group_name ORDER BY date DESC) <= ? "
            "ORDER BY group_name, date",
            [before, days],
        )

    def breadth_stale(self) -> StaleMark:
        with self._connect(write=False) as con:
            stale_from, version = con.execute(
                f"SELECT stale_from, version FROM {STALE_TABLE}"
            ).fetchall()[0]
        return StaleMark(stale_from, version)

    def bar_span(self, tickers: Sequence[str]) -> tuple[dt.date | None, dt.date | None]:
        with self._connect(write=False) as con:
            first, last = con.execute(
                "SELECT min(date), max(date) FROM indicators WHERE ticker IN (SELECT unnest(?))",
                [list(tickers)],
            ).fetchall()[0]
        return first, last

    def read_breadth_groups(self) -> dict[str, list[str]]:
        with self._connect(write=False) as con:
            rows = con.execute(
                f"SELECT group_name, ticker FROM {UNIVERSE_TABLE} ORDER BY group_name, ticker"
            ).fetchall()
        groups: dict[str, list[str]] = {}
        for group, ticker in rows:
            groups.setdefault(group, []).append(ticker)
        return groups

    @contextlib.contextmanager
    def _breadth_steps(self) -> Iterator[BreadthSteps]:
        with self._transaction() as con:
            yield DuckDBSteps(con, DuckDBStore._upsert)

    def read_breadth(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = ALL_GROUP,
    ) -> pd.DataFrame:
        columns = ", ".join(schema.BREADTH_COLUMNS)
        return self._select(
            f"SELECT {columns} FROM breadth WHERE date >= coalesce(?, DATE '0001-01-01') "
            "AND date <= coalesce(?, DATE '9999-12-31') AND (? IS NULL OR group_name = ?) "
            "ORDER BY group_name, date",
            [start, end, group, group],
        )

    def read_breadth_members(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = None,
    ) -> pd.DataFrame:
        columns = ", ".join(schema.BREADTH_MEMBER_COLUMNS)
        return self._select(
            f"SELECT {columns} FROM breadth_members "
            "WHERE date >= coalesce(?, DATE '0001-01-01') "
            "AND date <= coalesce(?, DATE '9999-12-31') AND (? IS NULL OR group_name = ?) "
            "ORDER BY date, group_name, event, ticker",
            [start, end, group, group],
        )

    def read_breadth_signals(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = None,
    ) -> pd.DataFrame:
        columns = ", ".join(schema.BREADTH_SIGNAL_COLUMNS)
        return self._select(
            f"SELECT {columns} FROM breadth_signals "
            "WHERE date >= coalesce(?, DATE '0001-01-01') "
            "AND date <= coalesce(?, DATE '9999-12-31') AND (? IS NULL OR group_name = ?) "
            "ORDER BY date, group_name, signal",
            [start, end, group, group],
        )

    def read_intraday(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._read_table(schema.INTRADAY_PRICES, tickers, "ticker, unit, interval, ts")

    def read_intraday_latest(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._select(
            "SELECT ticker, unit, interval, max(ts) AS ts FROM intraday_prices "
            "WHERE ticker IN (SELECT unnest(?)) GROUP BY ticker, unit, interval "
            "ORDER BY ticker, unit, interval",
            [list(tickers)],
        )

    def read_actions(self, tickers: Sequence[str] | None = None) -> pd.DataFrame:
        return self._read_table(schema.CORPORATE_ACTIONS, tickers, "ticker, ex_date, kind")

    def read_instrument_keys(self, tickers: Sequence[str]) -> pd.DataFrame:
        order = "ticker, first_used, instrument_key"
        return self._read_table(schema.INSTRUMENT_KEYS, tickers, order)

    def _write(
        self,
        frames: Mapping[str, pd.DataFrame],
        replace: Mapping[str, list[str]],
        mark: dt.date | None,
    ) -> dict[str, int]:
        written = {table: 0 for table in frames}
        with self._transaction() as con:
            for table, tickers in replace.items():
                con.execute(f"DELETE FROM {table} WHERE ticker IN (SELECT unnest(?))", [tickers])
            for table, df in frames.items():
                written[table] = self._upsert(con, table, df)
            if mark is not None:
                DuckDBSteps(con, DuckDBStore._upsert).move_mark(mark)
        return written

    @staticmethod
    def _upsert(con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame) -> int:
        columns = schema.TABLES[table]
        keys = schema.KEYS[table]
        missing = [name for name in columns if name not in df.columns]
        if missing:
            raise StoreError(f"rows for {table} lack the columns {missing}")
        selected = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in columns.items())
        con.register("incoming_frame", df)
        try:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT {selected} FROM incoming_frame"
            )
            duplicates = con.execute(
                f"SELECT count(*) - count(DISTINCT ({', '.join(keys)})) FROM incoming"
            ).fetchall()[0][0]
            if duplicates:
                raise StoreError(f"rows for {table} repeat a key {keys} {duplicates} times")
            match = " AND ".join(f"{table}.{key} = incoming.{key}" for key in keys)
            con.execute(f"DELETE FROM {table} USING incoming WHERE {match}")
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
            return len(df)
        finally:
            con.unregister("incoming_frame")
            con.execute("DROP TABLE IF EXISTS incoming")
