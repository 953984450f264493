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
import pandas as pd
from pydantic import Field

from breadth_assets import schema
from breadth_assets.resources.market_store import MarketStore, StoreError

_POLL_SECONDS = 0.02


def _create_table_sql(table: str) -> str:
    columns = ", ".join(f"{name} {kind}" for name, kind in schema.TABLES[table].items())
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns})"


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
    def _connect(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        if not write and not os.path.exists(self.path):
            with self._connect(write=True):
                pass
        with self._locked(exclusive=write):
            try:
                con = duckdb.connect(self.path, read_only=not write)
            except duckdb.Error as error:
                raise StoreError(f"cannot open the DuckDB store {self.path}: {error}") from error
            try:
                if write:
                    for table in schema.TABLES:
                        con.execute(_create_table_sql(table))
                yield con
            finally:
                con.close()

    def _select(self, sql: str, params: list) -> pd.DataFrame:
        with self._connect(write=False) as con:
            return con.execute(sql, params).df()

    def _read_table(self, table: str, tickers: Sequence[str]) -> pd.DataFrame:
        columns = ", ".join(schema.TABLES[table])
        return self._select(
            f"SELECT {columns} FROM {table} WHERE ticker IN (SELECT unnest(?)) "
            "ORDER BY ticker, date",
            [list(tickers)],
        )

    def read_prices(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._read_table(schema.PRICES, tickers)

    def read_indicators(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._read_table(schema.INDICATORS, tickers)

    def read_breadth_inputs(
        self, tickers: Sequence[str], end: dt.date, start: dt.date | None = None
    ) -> pd.DataFrame:
        price_only = {"high", "low", "volume"}
        columns = ", ".join(
            f"p.{name}" if name in price_only else f"i.{name}"
            for name in schema.BREADTH_INPUT_COLUMNS
        )
        return self._select(
            f"SELECT {columns} FROM indicators i JOIN prices p USING (ticker, date) "
            "WHERE i.ticker IN (SELECT unnest(?)) AND i.date <= ? "
            "AND i.date >= coalesce(?, DATE '0001-01-01') ORDER BY i.ticker, i.date",
            [list(tickers), end, start],
        )

    def read_breadth(
        self, start: dt.date | None = None, end: dt.date | None = None
    ) -> pd.DataFrame:
        columns = ", ".join(schema.BREADTH_COLUMNS)
        return self._select(
            f"SELECT {columns} FROM breadth WHERE date >= coalesce(?, DATE '0001-01-01') "
            "AND date <= coalesce(?, DATE '9999-12-31') ORDER BY date",
            [start, end],
        )

    def read_intraday(self, tickers: Sequence[str]) -> pd.DataFrame:
        columns = ", ".join(schema.INTRADAY_COLUMNS)
        return self._select(
            f"SELECT {columns} FROM intraday_prices WHERE ticker IN (SELECT unnest(?)) "
            "ORDER BY ticker, unit, interval, ts",
            [list(tickers)],
        )

    def read_intraday_latest(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._select(
            "SELECT ticker, unit, interval, max(ts) AS ts FROM intraday_prices "
            "WHERE ticker IN (SELECT unnest(?)) GROUP BY ticker, unit, interval "
            "ORDER BY ticker, unit, interval",
            [list(tickers)],
        )

    def write(self, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        frames = {table: df for table, df in frames.items() if len(df)}
        written = {table: 0 for table in frames}
        if not frames:
            return written
        with self._connect(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for table, df in frames.items():
                    written[table] = self._upsert(con, table, df)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
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
            con.execute(f"INSERT INTO {table} SELECT * FROM incoming")
            return len(df)
        finally:
            con.unregister("incoming_frame")
            con.execute("DROP TABLE IF EXISTS incoming")
