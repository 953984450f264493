"""The DuckDB store's tables (created, and migrated from older versions) and breadth's writes
and bookkeeping on them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import duckdb
import pandas as pd

from breadth_assets import schema
from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.base import BreadthSteps, StaleMark
from breadth_assets.stores.breadth_sql import group_pairs

STALE_TABLE = "breadth_stale"
UNIVERSE_TABLE = "breadth_universe"


ADJUSTED_PRICES_VIEW = """
CREATE VIEW IF NOT EXISTS adjusted_prices AS
SELECT p.ticker, p.date, p.open * f.factor AS open, p.high * f.factor AS high,
       p.low * f.factor AS low, p.close * f.factor AS close, p.volume / f.factor AS volume,
       f.factor
FROM prices p, LATERAL (
    SELECT coalesce(product(a.factor), 1.0) AS factor FROM corporate_actions a
    WHERE a.ticker = p.ticker AND a.ex_date > p.date AND a.factor IS NOT NULL
) f
"""
"""docs/design.md "Corporate actions" for people querying the file: each bar times the
product of its ticker's applied factors dated after it (the pipeline computes the same in
`analytics.actions`)."""


def create_sql(table: str) -> str:
    declared = ", ".join(f"{name} {kind}" for name, kind in schema.TABLES[table].items())
    return f"CREATE TABLE IF NOT EXISTS {table} ({declared})"


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Creates the tables, and adds the columns a store made by an older version lacks (their
    rows read NULL there, which the state columns take as "unknown": computed again; breadth
    rows and records from before groups are the whole universe's)."""
    for table, columns in schema.TABLES.items():
        con.execute(create_sql(table))
        present = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
        for name, kind in columns.items():
            if name not in present:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        if table == schema.BREADTH and "group_name" not in present:
            con.execute(f"UPDATE breadth SET group_name = '{ALL_GROUP}'")
    con.execute(ADJUSTED_PRICES_VIEW)
    con.execute(f"CREATE TABLE IF NOT EXISTS {UNIVERSE_TABLE} (group_name VARCHAR, ticker VARCHAR)")
    present = {row[0] for row in con.execute(f"DESCRIBE {UNIVERSE_TABLE}").fetchall()}
    if "group_name" not in present:
        con.execute(f"ALTER TABLE {UNIVERSE_TABLE} ADD COLUMN group_name VARCHAR")
        con.execute(f"UPDATE {UNIVERSE_TABLE} SET group_name = '{ALL_GROUP}'")
    con.execute(f"CREATE TABLE IF NOT EXISTS {STALE_TABLE} (stale_from DATE, version BIGINT)")
    if not con.execute(f"SELECT count(*) FROM {STALE_TABLE}").fetchall()[0][0]:
        con.execute(f"INSERT INTO {STALE_TABLE} VALUES (NULL, 0)")


def group_pairs_lists(members: Mapping[str, Sequence[str]]) -> list[list[str]]:
    pairs = group_pairs({name: list(tickers) for name, tickers in members.items()})
    return [pairs["group_names"], pairs["group_tickers"]]


class DuckDBSteps(BreadthSteps):
    """Breadth's writes and bookkeeping inside the store's transaction `con`; `upsert` writes a
    frame into a table (the store's)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        upsert: Callable[[duckdb.DuckDBPyConnection, str, pd.DataFrame], int],
    ) -> None:
        self.con = con
        self.upsert = upsert

    def replace_rows(
        self,
        first: dt.date,
        last: dt.date,
        groups: Sequence[str],
        frames: Mapping[str, pd.DataFrame],
    ) -> None:
        for table in schema.GROUP_TABLES:
            self.con.execute(
                f"DELETE FROM {table} WHERE date BETWEEN ? AND ? "
                "AND group_name IN (SELECT unnest(?))",
                [first, last, list(groups)],
            )
        for table, df in frames.items():
            if not len(df):
                continue
            if table == schema.BREADTH:
                self.upsert(self.con, table, df)
                continue
            # Keys are unique by construction and the range was just emptied: a plain insert.
            self.con.register("incoming_rows", df)
            try:
                columns = schema.TABLES[table].items()
                selected = ", ".join(f"CAST({name} AS {kind})" for name, kind in columns)
                self.con.execute(f"INSERT INTO {table} SELECT {selected} FROM incoming_rows")
            finally:
                self.con.unregister("incoming_rows")

    def delete(self, days: Sequence[dt.date]) -> None:
        for table in schema.GROUP_TABLES:
            self.con.execute(f"DELETE FROM {table} WHERE date IN (SELECT unnest(?))", [list(days)])

    def replace_universe(self, members: Mapping[str, Sequence[str]]) -> None:
        self.con.execute(
            f"DELETE FROM {UNIVERSE_TABLE} WHERE group_name IN (SELECT unnest(?))",
            [list(members)],
        )
        self.con.execute(
            f"INSERT INTO {UNIVERSE_TABLE} (group_name, ticker) "
            "SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
            group_pairs_lists(members),
        )

    def drop_groups(self, groups: Sequence[str]) -> None:
        for table in (*schema.GROUP_TABLES, UNIVERSE_TABLE):
            self.con.execute(
                f"DELETE FROM {table} WHERE group_name IN (SELECT unnest(?))", [list(groups)]
            )

    def settle(self, seen: StaleMark, stale_from: dt.date | None) -> None:
        self.con.execute(
            f"UPDATE {STALE_TABLE} SET stale_from = ? WHERE version = ?",
            [stale_from, seen.version],
        )

    def move_mark(self, day: dt.date) -> None:
        self.con.execute(
            f"UPDATE {STALE_TABLE} SET stale_from = least(coalesce(stale_from, ?), ?), "
            "version = version + 1",
            [day, day],
        )
