"""The PostgreSQL store's SQL: the contract's tables, the bookkeeping, the upsert, breadth's count.

Identifiers are always quoted: `interval`, `date` and `close` are key words in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from breadth_assets import schema
from breadth_assets.stores.breadth_sql import COUNT_EXPRESSIONS

STALE_TABLE = "breadth_stale"
UNIVERSE_TABLE = "breadth_universe"
DATE_INDEXED = (schema.PRICES, schema.INDICATORS)
"""Tables with an index on `date` besides the key: readers that ask for one day of the market."""

PG_TYPES = {**schema.POSTGRES_TYPES, "VARCHAR": 'TEXT COLLATE "C"'}
"""The contract's column types in PostgreSQL. Text compares byte by byte ("C"), so rows sort by
ticker as in DuckDB and pandas whatever the database's locale."""


def q(name: str) -> str:
    """A quoted identifier (names here come from `schema` or a validated schema name)."""
    return '"' + name.replace('"', '""') + '"'


def columns_sql(names: Sequence[str], prefix: str = "") -> str:
    return ", ".join(prefix + q(name) for name in names)


def create_table_sql(table: str) -> str:
    declared = ", ".join(
        f"{q(name)} {PG_TYPES[kind]}" for name, kind in schema.TABLES[table].items()
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {q(table)} ({declared}, "
        f"PRIMARY KEY ({columns_sql(schema.KEYS[table])}))"
    )


def date_index_sql(table: str) -> str:
    return f"CREATE INDEX IF NOT EXISTS {q(table + '_date')} ON {q(table)} ({q('date')})"


BOOKKEEPING_SQL = (
    f'CREATE TABLE IF NOT EXISTS {q(UNIVERSE_TABLE)} (ticker TEXT COLLATE "C" PRIMARY KEY)',
    f"CREATE TABLE IF NOT EXISTS {q(STALE_TABLE)} "
    "(id INTEGER PRIMARY KEY CHECK (id = 1), stale_from DATE, version BIGINT NOT NULL)",
    f"INSERT INTO {q(STALE_TABLE)} VALUES (1, NULL, 0) ON CONFLICT DO NOTHING",
    """CREATE OR REPLACE VIEW adjusted_prices AS
SELECT p.ticker, p.date, p.open * f.factor AS open, p.high * f.factor AS high,
       p.low * f.factor AS low, p.close * f.factor AS close, p.volume / f.factor AS volume,
       f.factor
FROM prices p CROSS JOIN LATERAL (
    SELECT coalesce(exp(sum(ln(a.factor))), 1.0) AS factor FROM corporate_actions a
    WHERE a.ticker = p.ticker AND a.ex_date > p.date AND a.factor IS NOT NULL
) f""",
)
"""One stale mark row (id 1) and the universe of the stored breadth rows, as DuckDB keeps them;
the `adjusted_prices` view (docs/design.md "Corporate actions"; the product as exp(sum(ln)),
PostgreSQL having no product aggregate)."""

ACTIONS_SQL = (
    f"SELECT {columns_sql(schema.CORPORATE_ACTION_COLUMNS)} FROM corporate_actions "
    "WHERE %(all)s OR ticker = ANY(%(tickers)s::text[]) ORDER BY ticker, ex_date, kind"
)
INSTRUMENT_KEYS_SQL = (
    f"SELECT {columns_sql(schema.INSTRUMENT_KEY_COLUMNS)} FROM instrument_keys "
    "WHERE ticker = ANY(%(tickers)s::text[]) ORDER BY ticker, first_used, instrument_key"
)
DELETE_TICKERS_SQL = "DELETE FROM {table} WHERE ticker = ANY(%(tickers)s::text[])"

EXPECTED_INDEXES = {
    *(f"{table}_pkey" for table in schema.TABLES),
    *(f"{table}_date" for table in DATE_INDEXED),
    f"{UNIVERSE_TABLE}_pkey",
    f"{STALE_TABLE}_pkey",
}


def upsert_sql(table: str, incoming: str, selected: Sequence[str]) -> str:
    """INSERT the temporary table's rows (each column read through `selected`); a row whose key
    exists is updated, unless it is the same (so writing the same rows again writes nothing)."""
    names = list(schema.TABLES[table])
    keys = schema.KEYS[table]
    values = [name for name in names if name not in keys]
    changed = (
        f"({columns_sql(values, f'{q(table)}.')}) IS DISTINCT FROM "
        f"({columns_sql(values, 'EXCLUDED.')})"
    )
    updates = ", ".join(f"{q(name)} = EXCLUDED.{q(name)}" for name in values)
    return (
        f"INSERT INTO {q(table)} ({columns_sql(names)}) SELECT {', '.join(selected)} "
        f"FROM {q(incoming)} ON CONFLICT ({columns_sql(keys)}) DO UPDATE SET {updates} "
        f"WHERE {changed}"
    )


def tail_sql(table: str) -> str:
    """The last `%(bars)s` rows of each ticker: one backward scan of the key index per ticker."""
    names = list(schema.TABLES[table])
    return (
        f"SELECT {columns_sql(names, 't.')} FROM "
        "(SELECT DISTINCT unnest(%(tickers)s::text[]) AS ticker) k CROSS JOIN LATERAL "
        f"(SELECT {columns_sql(names)} FROM {q(table)} WHERE ticker = k.ticker "
        "ORDER BY date DESC LIMIT %(bars)s) t ORDER BY t.ticker, t.date"
    )


PREVIOUS_CLOSES_SQL = (
    "SELECT l.ticker, l.date, l.close FROM "
    "(SELECT DISTINCT unnest(%(tickers)s::text[]) AS ticker) k CROSS JOIN LATERAL "
    "(SELECT ticker, date, close FROM indicators WHERE ticker = k.ticker AND date < %(before)s "
    "ORDER BY date DESC LIMIT 1) l ORDER BY l.ticker"
)
"""Each ticker's last indicators row before a day: one index probe per ticker."""

_PRICE_ONLY = ("volume",)
_INPUTS = ", ".join(
    f"p.{q(name)}" if name in _PRICE_ONLY else f"i.{q(name)}"
    for name in schema.BREADTH_INPUT_COLUMNS
)

BREADTH_INPUTS_SQL = (
    f"SELECT {_INPUTS} FROM indicators i JOIN prices p ON p.ticker = i.ticker "
    "AND p.date = i.date WHERE i.ticker = ANY(%(tickers)s::text[]) AND i.date <= %(end)s "
    "AND i.date >= coalesce(%(start)s, DATE '0001-01-01') ORDER BY i.ticker, i.date"
)


def _count_breadth_sql() -> str:
    """DuckDB's COUNT_BREADTH_SQL (duckdb_sql.py) in PostgreSQL: the same aggregates, the
    previous bar of each ticker by one index probe instead of arg_max."""
    later = [name for name in schema.BREADTH_INPUT_COLUMNS if name not in ("ticker", "date")]
    nulls = ", ".join("NULL" for name in later if name != "close")
    return f"""
WITH inputs AS (
    SELECT {_INPUTS}, TRUE AS counted
    FROM indicators i JOIN prices p ON p.ticker = i.ticker AND p.date = i.date
    WHERE i.ticker = ANY(%(tickers)s::text[]) AND i.date BETWEEN %(first)s AND %(last)s
      AND p.ticker = ANY(%(tickers)s::text[]) AND p.date BETWEEN %(first)s AND %(last)s
), previous AS (
    SELECT l.ticker, l.date, l.close
    FROM (SELECT DISTINCT unnest(%(tickers)s::text[]) AS ticker) k CROSS JOIN LATERAL
        (SELECT ticker, date, close FROM indicators WHERE ticker = k.ticker AND date < %(first)s
         ORDER BY date DESC LIMIT 1) l
), bars AS (
    SELECT *, lag(close) OVER (PARTITION BY ticker ORDER BY date) AS prev_close
    FROM (
        SELECT * FROM inputs
        UNION ALL SELECT ticker, date, close, {nulls}, FALSE FROM previous
    ) u
)
SELECT date, {", ".join(COUNT_EXPRESSIONS)}
FROM bars WHERE counted AND date = ANY(%(days)s::date[]) GROUP BY date ORDER BY date
"""


COUNT_BREADTH_SQL = _count_breadth_sql()
"""Parameters `tickers`, `first`, `last`, `days`; one row per asked day with ticker-days."""

MOVE_STALE_SQL = (
    f"UPDATE {q(STALE_TABLE)} SET stale_from = least(coalesce(stale_from, %(day)s), %(day)s), "
    "version = version + 1"
)
SETTLE_STALE_SQL = f"UPDATE {q(STALE_TABLE)} SET stale_from = %(day)s WHERE version = %(version)s"
DELETE_BREADTH_SQL = "DELETE FROM breadth WHERE date = ANY(%(days)s::date[])"
REPLACE_UNIVERSE_SQL = (
    f"LOCK TABLE {q(UNIVERSE_TABLE)} IN SHARE ROW EXCLUSIVE MODE; "
    f"DELETE FROM {q(UNIVERSE_TABLE)}; INSERT INTO {q(UNIVERSE_TABLE)} "
    "SELECT DISTINCT unnest(%(tickers)s::text[])"
)
"""The lock (readers pass) makes replacements wait for each other: a DELETE running beside
another's uncommitted one would miss the rows it inserts, and the INSERT would then repeat them."""
