"""PostgreSQL as the store: one database that run workers on several machines share."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import dagster as dg
import pandas as pd
import psycopg2
import psycopg2.errors
import sqlalchemy
from pydantic import Field

from breadth_assets import schema
from breadth_assets.analytics.breadth import HIGH_LOW_DAYS
from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.base import (
    PREVIOUS_COLUMNS,
    BreadthSteps,
    MarketStore,
    StaleMark,
    StoreError,
)
from breadth_assets.stores.breadth_sql import group_pairs, split_counts
from breadth_assets.stores.postgres import connection, sql
from breadth_assets.stores.postgres.copy import BadColumn, copy_out_sql, decode, encode

_READY: set[tuple[str, str]] = set()
"""(URL, schema) pairs whose tables, columns and indexes this process has seen exist."""
_INPUT_TYPES = {**schema.PRICE_COLUMNS, **schema.INDICATOR_COLUMNS}
_LATEST_TYPES = {name: schema.INTRADAY_COLUMNS[name] for name in ("ticker", "unit", "interval")}


class PostgresStore(MarketStore):
    """The contract's tables in a PostgreSQL schema, keys as primary keys, one transaction per
    write: run workers on several machines write and read the same store at once.

    Writes COPY the rows in binary into a temporary table and upsert them from it
    (`INSERT ... ON CONFLICT DO UPDATE`, skipping rows that did not change); prices and
    indicators move the breadth stale mark in the same transaction. Each process keeps one
    connection pool per URL.
    """

    kind: ClassVar[str] = "postgres"

    url: str = Field(
        repr=False,
        description="A SQLAlchemy URL, postgresql+psycopg2://user:password@host:5432/database "
        "(a libpq postgresql:// URL is read the same way); pass EnvVar('BREADTH_POSTGRES_URL') "
        "so it never shows.",
    )
    schema_name: str = Field(
        default="public", description="The schema holding the tables; created if missing."
    )
    connect_timeout_seconds: int = Field(
        default=5, description="How long to wait for the server before failing."
    )
    pool_size: int = Field(
        default=2, description="Connections each process keeps open (and as many more at peaks)."
    )
    copy_chunk_rows: int = Field(default=100_000, description="Rows per COPY of a write.")

    def _dsn(self) -> str:
        """The URL. Dagster resolves an EnvVar for a run; a store used outside one (the CLI's
        closing lines) reads the variable here."""
        if not isinstance(self.url, dg.EnvVar):
            return self.url
        value = self.url.get_value()
        if not value:
            raise StoreError(f"PostgreSQL store: ${self.url.env_var_name} is not set")
        return value

    def location(self) -> str:
        try:
            found = connection.address(self._dsn())
        except StoreError as error:
            return str(error)
        if found is None:
            return "PostgreSQL (the configured URL cannot be read)"
        schema_text = "" if self.schema_name == "public" else f", schema {self.schema_name}"
        return f"PostgreSQL database {found[1]} at {found[0]}{schema_text}"

    def close(self) -> None:
        """Closes this process's pool for the URL (the next use opens a new one)."""
        connection.close(self._dsn(), self.schema_name)

    @contextlib.contextmanager
    def _cursor(self, doing: str, write: bool = False) -> Iterator[Any]:
        """A cursor inside one transaction: committed whole when `write`, else rolled back.
        Failures raise a StoreError naming host, port and database, never the URL."""
        url = self._dsn()
        try:
            pool = connection.engine(
                url, self.schema_name, self.pool_size, self.connect_timeout_seconds
            )
            conn = pool.raw_connection()
        except (sqlalchemy.exc.SQLAlchemyError, psycopg2.Error) as error:
            raise connection.failure(url, error, f"connecting for {doing}") from None
        try:
            with conn.cursor() as cursor:
                if (url, self.schema_name) not in _READY:
                    connection.ensure_tables(cursor, self.schema_name)
                    conn.commit()
                    _READY.add((url, self.schema_name))
                yield cursor
            if write:
                conn.commit()
            else:
                conn.rollback()
        except psycopg2.Error as error:
            _rollback(conn)
            raise connection.failure(url, error, doing) from None
        except BaseException:
            _rollback(conn)
            raise
        finally:
            conn.close()

    def _frame(
        self, query: str, params: Mapping[str, Any], columns: Mapping[str, str], doing: str
    ) -> pd.DataFrame:
        """The query's rows through COPY ... TO STDOUT, typed as DuckDB returns them."""
        out = io.BytesIO()
        with self._cursor(doing) as cursor:
            cursor.copy_expert(copy_out_sql(cursor.mogrify(query, params).decode()), out)
        return decode(out.getvalue(), columns)

    def _fetch(self, query: str, params: Mapping[str, Any], doing: str) -> list[tuple]:
        with self._cursor(doing) as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def _records(self, query: str, params: Mapping[str, Any], doing: str) -> pd.DataFrame:
        """A small result as psycopg2 types it (arrays as lists), with the query's column names."""
        with self._cursor(doing) as cursor:
            cursor.execute(query, params)
            names = [column.name for column in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=names)

    # --- reads ------------------------------------------------------------------------------------

    def _read_table(self, table: str, tickers: Sequence[str]) -> pd.DataFrame:
        columns = schema.TABLES[table]
        query = (
            f"SELECT {sql.columns_sql(columns)} FROM {sql.q(table)} "
            "WHERE ticker = ANY(%(tickers)s::text[]) ORDER BY ticker, date"
        )
        return self._frame(query, {"tickers": list(tickers)}, columns, f"reading {table}")

    def read_prices(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._read_table(schema.PRICES, tickers)

    def read_indicators(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._read_table(schema.INDICATORS, tickers)

    def read_tail(self, table: str, tickers: Sequence[str], bars: int) -> pd.DataFrame:
        params = {"tickers": list(tickers), "bars": int(bars)}
        return self._frame(sql.tail_sql(table), params, schema.TABLES[table], f"reading {table}")

    def read_breadth_inputs(
        self, tickers: Sequence[str], end: dt.date, start: dt.date | None = None
    ) -> pd.DataFrame:
        columns = {name: _INPUT_TYPES[name] for name in schema.BREADTH_INPUT_COLUMNS}
        params = {"tickers": list(tickers), "end": end, "start": start}
        return self._frame(sql.BREADTH_INPUTS_SQL, params, columns, "reading breadth inputs")

    def read_previous_closes(self, tickers: Sequence[str], before: dt.date) -> pd.DataFrame:
        columns = {name: schema.INDICATOR_COLUMNS[name] for name in PREVIOUS_COLUMNS}
        params = {"tickers": list(tickers), "before": before}
        return self._frame(sql.PREVIOUS_CLOSES_SQL, params, columns, "reading indicators")

    def read_bar_counts(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> pd.Series:
        params = {"tickers": list(tickers), "start": start, "end": end}
        counts = self._frame(
            sql.BAR_COUNTS_SQL, params, {"date": "DATE", "bars": "BIGINT"}, "reading indicators"
        )
        return counts.set_index(pd.to_datetime(counts["date"]))["bars"]

    def count_breadth(
        self,
        tickers: Sequence[str],
        dates: pd.DatetimeIndex,
        members: Mapping[str, Sequence[str]] | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One query: only a row per group and day leaves the server (as in DuckDB)."""
        groups = {ALL_GROUP: list(tickers)}
        groups.update({n: list(m) for n, m in (members or {}).items() if n != ALL_GROUP})
        params = {
            "tickers": list(tickers),
            "first": dates[0].date(),
            "last": dates[-1].date(),
            "days": [day.date() for day in dates],
            **group_pairs(groups),
        }
        raw = self._records(sql.COUNT_BREADTH_SQL, params, "counting breadth")
        return split_counts(raw, groups, pd.DatetimeIndex(dates))

    def _breadth(self, query: str, params: Mapping[str, Any]) -> pd.DataFrame:
        return self._frame(query, params, schema.BREADTH_COLUMNS, "reading breadth")

    def read_breadth_before(self, day: dt.date, group: str = ALL_GROUP) -> pd.Series | None:
        rows = self._breadth(sql.BREADTH_BEFORE_SQL, {"day": day, "group": group})
        return rows.iloc[0] if len(rows) else None

    def read_breadth_tail(self, before: dt.date, days: int = HIGH_LOW_DAYS) -> pd.DataFrame:
        return self._breadth(sql.BREADTH_TAIL_SQL, {"before": before, "days": int(days)})

    def read_breadth(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = ALL_GROUP,
    ) -> pd.DataFrame:
        return self._breadth(sql.READ_BREADTH_SQL, {"start": start, "end": end, "group": group})

    def read_breadth_members(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = None,
    ) -> pd.DataFrame:
        params = {"start": start, "end": end, "group": group}
        columns = schema.BREADTH_MEMBER_COLUMNS
        return self._frame(sql.READ_MEMBERS_SQL, params, columns, "reading breadth_members")

    def read_breadth_signals(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = None,
    ) -> pd.DataFrame:
        params = {"start": start, "end": end, "group": group}
        columns = schema.BREADTH_SIGNAL_COLUMNS
        return self._frame(sql.READ_SIGNALS_SQL, params, columns, "reading breadth_signals")

    def read_intraday(self, tickers: Sequence[str]) -> pd.DataFrame:
        columns = schema.INTRADAY_COLUMNS
        query = (
            f"SELECT {sql.columns_sql(columns)} FROM intraday_prices "
            'WHERE ticker = ANY(%(tickers)s::text[]) ORDER BY ticker, unit, "interval", ts'
        )
        params = {"tickers": list(tickers)}
        return self._frame(query, params, columns, "reading intraday_prices")

    def read_intraday_latest(self, tickers: Sequence[str]) -> pd.DataFrame:
        query = (
            'SELECT ticker, unit, "interval", max(ts) AS ts FROM intraday_prices '
            'WHERE ticker = ANY(%(tickers)s::text[]) GROUP BY ticker, unit, "interval" '
            'ORDER BY ticker, unit, "interval"'
        )
        columns = {**_LATEST_TYPES, "ts": "TIMESTAMP"}
        params = {"tickers": list(tickers)}
        return self._frame(query, params, columns, "reading intraday_prices")

    # --- breadth's bookkeeping --------------------------------------------------------------------

    def breadth_stale(self) -> StaleMark:
        rows = self._fetch(
            f"SELECT stale_from, version FROM {sql.q(sql.STALE_TABLE)} WHERE id = 1",
            {},
            "reading the breadth stale mark",
        )
        return StaleMark(rows[0][0], int(rows[0][1])) if rows else StaleMark(None, 0)

    def bar_span(self, tickers: Sequence[str]) -> tuple[dt.date | None, dt.date | None]:
        with self._cursor("reading indicators") as cursor:
            cursor.execute(
                "SELECT min(date), max(date) FROM indicators "
                "WHERE ticker = ANY(%(tickers)s::text[])",
                {"tickers": list(tickers)},
            )
            first, last = cursor.fetchone()
        return first, last

    def read_breadth_groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for group, ticker in self._fetch(sql.BREADTH_GROUPS_SQL, {}, "reading breadth groups"):
            groups.setdefault(group, []).append(ticker)
        return groups

    @contextlib.contextmanager
    def _breadth_steps(self) -> Iterator[BreadthSteps]:
        with self._cursor("writing breadth", write=True) as cursor:
            yield _PostgresSteps(self, cursor)

    # --- writes -----------------------------------------------------------------------------------

    def read_actions(self, tickers: Sequence[str] | None = None) -> pd.DataFrame:
        columns = schema.CORPORATE_ACTION_COLUMNS
        params = {"all": tickers is None, "tickers": list(tickers or [])}
        return self._frame(sql.ACTIONS_SQL, params, columns, "reading corporate_actions")

    def read_instrument_keys(self, tickers: Sequence[str]) -> pd.DataFrame:
        columns = schema.INSTRUMENT_KEY_COLUMNS
        params = {"tickers": list(tickers)}
        return self._frame(sql.INSTRUMENT_KEYS_SQL, params, columns, "reading instrument_keys")

    def _write(
        self,
        frames: Mapping[str, pd.DataFrame],
        replace: Mapping[str, list[str]],
        mark: dt.date | None,
    ) -> dict[str, int]:
        written = {table: 0 for table in frames}
        with self._cursor(f"writing {', '.join(frames) or 'actions'}", write=True) as cursor:
            for table, tickers in replace.items():
                cursor.execute(
                    sql.DELETE_TICKERS_SQL.format(table=sql.q(table)), {"tickers": tickers}
                )
            for table, df in frames.items():
                written[table] = self._upsert(cursor, table, df)
            if mark is not None:
                _PostgresSteps(self, cursor).move_mark(mark)
        return written

    def _upsert(self, cursor: Any, table: str, df: pd.DataFrame) -> int:
        """COPY the rows into a temporary table, then one INSERT ... ON CONFLICT from it."""
        columns = schema.TABLES[table]
        missing = [name for name in columns if name not in df.columns]
        if missing:
            raise StoreError(f"rows for {table} lack the columns {missing}")
        keys = schema.KEYS[table]
        if len(keys) == len(columns) and df.duplicated(list(keys)).any():
            # ON CONFLICT DO NOTHING would keep one of them without a word.
            repeats = int(df.duplicated(list(keys)).sum())
            raise StoreError(f"rows for {table} repeat a key {keys} {repeats} times")
        encoded = encode(df, columns, self.copy_chunk_rows)
        incoming = f"incoming_{table}"
        declared = f"{sql.q(incoming)} ({encoded.temp_columns})"
        # One transaction may upsert a table twice (breadth's groups, a span at a time).
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{sql.q(incoming)}")
        cursor.execute(f"CREATE TEMP TABLE {declared} ON COMMIT DROP")
        try:
            for chunk in encoded.chunks:
                copy = f"COPY {sql.q(incoming)} FROM STDIN WITH (FORMAT binary)"
                cursor.copy_expert(copy, io.BytesIO(chunk), size=1 << 20)
        except BadColumn as error:
            raise StoreError(f"rows for {table}: {error}") from None
        try:
            cursor.execute(sql.upsert_sql(table, incoming, encoded.selected), encoded.params)
        except psycopg2.errors.CardinalityViolation:
            repeats = int(df.duplicated(list(keys)).sum())
            raise StoreError(f"rows for {table} repeat a key {keys} {repeats} times") from None
        return len(df)


def _rollback(conn: Any) -> None:
    """Ends the transaction; a connection that cannot is dropped from the pool."""
    try:
        conn.rollback()
    except Exception:
        conn.invalidate()


class _PostgresSteps(BreadthSteps):
    def __init__(self, store: PostgresStore, cursor: Any) -> None:
        self.store, self.cursor = store, cursor

    def replace_rows(
        self,
        first: dt.date,
        last: dt.date,
        groups: Sequence[str],
        frames: Mapping[str, pd.DataFrame],
    ) -> None:
        params = {"first": first, "last": last, "groups": list(groups)}
        self.cursor.execute(sql.REPLACE_BREADTH_SQL, params)
        for table, df in frames.items():
            if len(df):
                self.store._upsert(self.cursor, table, df)

    def delete(self, days: Sequence[dt.date]) -> None:
        self.cursor.execute(sql.DELETE_BREADTH_SQL, {"days": list(days)})

    def replace_universe(self, members: Mapping[str, Sequence[str]]) -> None:
        # Under a table lock (in the SQL), so two breadth runs take turns.
        pairs = group_pairs({name: list(tickers) for name, tickers in members.items()})
        self.cursor.execute(sql.REPLACE_UNIVERSE_SQL, {"groups": list(members), **pairs})

    def drop_groups(self, groups: Sequence[str]) -> None:
        self.cursor.execute(sql.DROP_GROUPS_SQL, {"groups": list(groups)})

    def settle(self, seen: StaleMark, stale_from: dt.date | None) -> None:
        self.cursor.execute(sql.SETTLE_STALE_SQL, {"day": stale_from, "version": seen.version})

    def move_mark(self, day: dt.date) -> None:
        self.cursor.execute(sql.MOVE_STALE_SQL, {"day": day})
