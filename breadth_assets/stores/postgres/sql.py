"""The PostgreSQL store's SQL: the contract's tables, the bookkeeping, the upsert, breadth's count.

Identifiers are always quoted: `interval`, `date` and `close` are key words in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from breadth_assets import schema
from breadth_assets.analytics.breadth_counts import LISTED_DAYS
from breadth_assets.analytics.breadth_events import SMA_CROSS_PERIODS
from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.breadth_sql import COUNT_EXPRESSIONS, EVENT_CONDITIONS

STALE_TABLE = "breadth_stale"
UNIVERSE_TABLE = "breadth_universe"
DATE_INDEXED = (schema.PRICES, schema.INDICATORS)
"""Tables with an index on `date` besides the key: readers that ask for one day of the market
(`breadth` and `breadth_members` have `date` first in their keys)."""

PG_TYPES = {**schema.POSTGRES_TYPES, "VARCHAR": 'TEXT COLLATE "C"'}
"""The contract's column types in PostgreSQL. Text compares byte by byte ("C"), so rows sort by
ticker as in DuckDB and pandas whatever the database's locale."""

TABLE_COLUMNS: dict[str, dict[str, str]] = {
    **schema.TABLES,
    UNIVERSE_TABLE: {"group_name": "VARCHAR", "ticker": "VARCHAR"},
}
"""The contract's tables and the record of the tickers each group's breadth rows were computed
over: what `ensure_tables` creates, or completes in a store an older version made."""
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    **schema.KEYS,
    UNIVERSE_TABLE: ("group_name", "ticker"),
    STALE_TABLE: ("id",),
}
"""Every table's primary key: a store made by an older version with another key gets this one
(breadth was keyed by date alone, the universe record by ticker)."""
ADDED_VALUES: dict[tuple[str, str], str] = {
    (schema.BREADTH, "group_name"): ALL_GROUP,
    (UNIVERSE_TABLE, "group_name"): ALL_GROUP,
}
"""Columns an older store lacks whose rows get a value as the column is added (other columns
read NULL): breadth rows and the universe record from before groups are the whole universe's."""


def q(name: str) -> str:
    """A quoted identifier (names here come from `schema` or a validated schema name)."""
    return '"' + name.replace('"', '""') + '"'


def columns_sql(names: Sequence[str], prefix: str = "") -> str:
    return ", ".join(prefix + q(name) for name in names)


def create_table_sql(table: str) -> str:
    declared = ", ".join(
        f"{q(name)} {PG_TYPES[kind]}" for name, kind in TABLE_COLUMNS[table].items()
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {q(table)} ({declared}, "
        f"PRIMARY KEY ({columns_sql(PRIMARY_KEYS[table])}))"
    )


def add_column_sql(table: str, name: str) -> str:
    """Adds a column an older store lacks: NULL in its rows, or the value `ADDED_VALUES` gives
    them (a constant default, so PostgreSQL rewrites no row)."""
    added = f"ALTER TABLE {q(table)} ADD COLUMN IF NOT EXISTS {q(name)} "
    kind = PG_TYPES[TABLE_COLUMNS[table][name]]
    if (table, name) not in ADDED_VALUES:
        return added + kind
    value = ADDED_VALUES[table, name].replace("'", "''")
    return (
        f"{added}{kind} NOT NULL DEFAULT '{value}'; "
        f"ALTER TABLE {q(table)} ALTER COLUMN {q(name)} DROP DEFAULT"
    )


PRIMARY_KEYS_SQL = """
SELECT c.relname::text, con.conname::text, array_agg(a.attname::text ORDER BY k.i)
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN unnest(con.conkey) WITH ORDINALITY k(num, i)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.num
WHERE con.contype = 'p' AND n.nspname = %s GROUP BY c.relname, con.conname
"""
"""Each table's primary key in a schema: table, constraint name, columns in order."""


def rekey_sql(table: str, constraint: str | None) -> str:
    """Replaces the table's primary key (named `constraint`, if any) with `PRIMARY_KEYS`'s."""
    drop = f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(constraint)}; " if constraint else ""
    return (
        f"{drop}ALTER TABLE {q(table)} ADD CONSTRAINT {q(table + '_pkey')} "
        f"PRIMARY KEY ({columns_sql(PRIMARY_KEYS[table])})"
    )


def date_index_sql(table: str) -> str:
    return f"CREATE INDEX IF NOT EXISTS {q(table + '_date')} ON {q(table)} ({q('date')})"


BOOKKEEPING_SQL = (
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
"""One stale mark row (id 1), as DuckDB keeps it; the `adjusted_prices` view (docs/design.md
"Corporate actions"; the product as exp(sum(ln)), PostgreSQL having no product aggregate)."""

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
    exists is updated, unless it is the same (so writing the same rows again writes nothing).
    A table that is all key (`breadth_members`) keeps the row it has."""
    names = list(schema.TABLES[table])
    keys = schema.KEYS[table]
    values = [name for name in names if name not in keys]
    inserted = (
        f"INSERT INTO {q(table)} ({columns_sql(names)}) SELECT {', '.join(selected)} "
        f"FROM {q(incoming)} ON CONFLICT ({columns_sql(keys)}) DO "
    )
    if not values:
        return inserted + "NOTHING"
    changed = (
        f"({columns_sql(values, f'{q(table)}.')}) IS DISTINCT FROM "
        f"({columns_sql(values, 'EXCLUDED.')})"
    )
    updates = ", ".join(f"{q(name)} = EXCLUDED.{q(name)}" for name in values)
    return f"{inserted}UPDATE SET {updates} WHERE {changed}"


def tail_sql(table: str) -> str:
    """The last `%(bars)s` rows of each ticker: one backward scan of the key index per ticker."""
    names = list(schema.TABLES[table])
    return (
        f"SELECT {columns_sql(names, 't.')} FROM "
        "(SELECT DISTINCT unnest(%(tickers)s::text[]) AS ticker) k CROSS JOIN LATERAL "
        f"(SELECT {columns_sql(names)} FROM {q(table)} WHERE ticker = k.ticker "
        "ORDER BY date DESC LIMIT %(bars)s) t ORDER BY t.ticker, t.date"
    )


_PREVIOUS = ("ticker", "date", "close", *(f"sma_{n}" for n in SMA_CROSS_PERIODS))
"""What a ticker's last bar before the counted days gives its next bar (base.PREVIOUS_COLUMNS)."""


def _previous_sql(before: str) -> str:
    """Each ticker's last indicators row dated before `before`: one index probe per ticker."""
    return (
        f"SELECT {columns_sql(_PREVIOUS, 'l.')} FROM "
        "(SELECT DISTINCT unnest(%(tickers)s::text[]) AS ticker) k CROSS JOIN LATERAL "
        f"(SELECT {columns_sql(_PREVIOUS)} FROM indicators WHERE ticker = k.ticker "
        f"AND date < {before} ORDER BY date DESC LIMIT 1) l"
    )


PREVIOUS_CLOSES_SQL = _previous_sql("%(before)s") + " ORDER BY l.ticker"
"""Parameters `tickers`, `before`: `base.PREVIOUS_COLUMNS` of each ticker's last bar before."""
BAR_COUNTS_SQL = (
    "SELECT date, count(*) AS bars FROM indicators WHERE ticker = ANY(%(tickers)s::text[]) "
    "AND date BETWEEN %(start)s AND %(end)s GROUP BY date ORDER BY date"
)

_PRICE_ONLY = ("volume",)
_INPUT_TYPES = {**schema.INDICATOR_COLUMNS, **schema.PRICE_COLUMNS}
_INPUTS = ", ".join(
    f"p.{q(name)}" if name in _PRICE_ONLY else f"i.{q(name)}"
    for name in schema.BREADTH_INPUT_COLUMNS
)

BREADTH_INPUTS_SQL = (
    f"SELECT {_INPUTS} FROM indicators i JOIN prices p ON p.ticker = i.ticker "
    "AND p.date = i.date WHERE i.ticker = ANY(%(tickers)s::text[]) AND i.date <= %(end)s "
    "AND i.date >= coalesce(%(start)s, DATE '0001-01-01') ORDER BY i.ticker, i.date"
)


def _alias(expression: str) -> str:
    return expression.rsplit(" AS ", 1)[1]


EVENT_EXPRESSIONS = tuple(
    f"array_agg(b.ticker ORDER BY b.ticker) FILTER (WHERE {condition}) AS {event}_tickers"
    for event, condition in EVENT_CONDITIONS.items()
)
"""Who made each event, per group and day, as an array."""


def _count_breadth_sql() -> str:
    """Breadth's counts per group and day in one PostgreSQL query over the members of every
    group: the shared aggregates and event conditions (breadth_sql.py), each ticker's previous
    bar by one index probe, the tickers missing on a day by joining the few bars followed by a
    gap with the days, who made each event as arrays."""
    previous = ", ".join(
        f"l.{q(name)}" if name in _PREVIOUS else f"CAST(NULL AS {PG_TYPES[_INPUT_TYPES[name]]})"
        for name in schema.BREADTH_INPUT_COLUMNS
    )
    lags = ", ".join(f"lag(sma_{n}) OVER w AS prev_sma_{n}" for n in SMA_CROSS_PERIODS)
    counted = ", ".join(f"c.{_alias(e)}" for e in (*COUNT_EXPRESSIONS, *EVENT_EXPRESSIONS))
    return f"""
WITH members AS (
    SELECT * FROM unnest(%(group_names)s::text[], %(group_tickers)s::text[])
        AS m(group_name, ticker)
), days AS (
    SELECT day, lead(day) OVER (ORDER BY day) AS next_day FROM unnest(%(days)s::date[]) AS d(day)
), inputs AS (
    SELECT {_INPUTS}, TRUE AS counted
    FROM indicators i JOIN prices p ON p.ticker = i.ticker AND p.date = i.date
    WHERE i.ticker = ANY(%(tickers)s::text[]) AND i.date BETWEEN %(first)s AND %(last)s
      AND p.ticker = ANY(%(tickers)s::text[]) AND p.date BETWEEN %(first)s AND %(last)s
), previous AS (
    SELECT {previous}, FALSE AS counted FROM ({_previous_sql("%(first)s")}) l
), bars AS (
    SELECT *, lag(close) OVER w AS prev_close, lead(date) OVER w AS next_date, {lags}
    FROM (SELECT * FROM inputs UNION ALL SELECT * FROM previous) u
    WINDOW w AS (PARTITION BY ticker ORDER BY date)
), counts AS (
    SELECT m.group_name, b.date, {", ".join(COUNT_EXPRESSIONS)}, {", ".join(EVENT_EXPRESSIONS)}
    FROM bars b JOIN members m ON m.ticker = b.ticker
    WHERE counted AND b.date IN (SELECT day FROM days) GROUP BY m.group_name, b.date
), gaps AS (
    SELECT b.ticker, b.date, b.next_date FROM bars b LEFT JOIN days d ON d.day = b.date
    WHERE d.day IS NULL OR b.next_date IS NULL OR b.next_date > d.next_day
), missing AS (
    SELECT m.group_name, d.day AS date, count(*) AS missing
    FROM gaps g JOIN days d ON d.day > g.date
        AND d.day < least(coalesce(g.next_date, DATE '9999-12-31'), g.date + {LISTED_DAYS})
    JOIN members m ON m.ticker = g.ticker
    GROUP BY m.group_name, d.day
)
SELECT coalesce(c.group_name, x.group_name) AS group_name, coalesce(c.date, x.date) AS date,
    {counted}, coalesce(x.missing, 0) AS missing
FROM counts c FULL OUTER JOIN missing x ON c.group_name = x.group_name AND c.date = x.date
"""


COUNT_BREADTH_SQL = _count_breadth_sql()
"""Parameters `tickers`, `first`, `last`, `days`, `group_names` and `group_tickers` (the members,
pair by pair, `breadth_sql.group_pairs`); one row per group and asked day with ticker-days or
missing ones, as `breadth_sql.split_counts` takes them."""

MOVE_STALE_SQL = (
    f"UPDATE {q(STALE_TABLE)} SET stale_from = least(coalesce(stale_from, %(day)s), %(day)s), "
    "version = version + 1"
)
SETTLE_STALE_SQL = f"UPDATE {q(STALE_TABLE)} SET stale_from = %(day)s WHERE version = %(version)s"
_BREADTH_TABLES = schema.GROUP_TABLES
REPLACE_BREADTH_SQL = "; ".join(
    f"DELETE FROM {q(table)} WHERE date BETWEEN %(first)s AND %(last)s "
    "AND group_name = ANY(%(groups)s::text[])"
    for table in _BREADTH_TABLES
)
"""Clears the groups' rows and members of first..last for the ones written next."""
DELETE_BREADTH_SQL = "; ".join(
    f"DELETE FROM {q(table)} WHERE date = ANY(%(days)s::date[])" for table in _BREADTH_TABLES
)
_LOCK_UNIVERSE = f"LOCK TABLE {q(UNIVERSE_TABLE)} IN SHARE ROW EXCLUSIVE MODE"
REPLACE_UNIVERSE_SQL = (
    f"{_LOCK_UNIVERSE}; "
    f"DELETE FROM {q(UNIVERSE_TABLE)} WHERE group_name = ANY(%(groups)s::text[]); "
    f"INSERT INTO {q(UNIVERSE_TABLE)} (group_name, ticker) SELECT DISTINCT * FROM "
    "unnest(%(group_names)s::text[], %(group_tickers)s::text[])"
)
"""The lock (readers pass) makes replacements wait for each other: a DELETE running beside
another's uncommitted one would miss the rows it inserts, and the INSERT would then repeat them."""
DROP_GROUPS_SQL = f"{_LOCK_UNIVERSE}; " + "; ".join(
    f"DELETE FROM {q(table)} WHERE group_name = ANY(%(groups)s::text[])"
    for table in (*_BREADTH_TABLES, UNIVERSE_TABLE)
)

_BREADTH = columns_sql(schema.BREADTH_COLUMNS)
BREADTH_BEFORE_SQL = (
    f"SELECT {_BREADTH} FROM breadth WHERE date < %(day)s AND group_name = %(group)s "
    "ORDER BY date DESC LIMIT 1"
)
BREADTH_TAIL_SQL = (
    f"SELECT {_BREADTH} FROM (SELECT *, row_number() OVER "
    "(PARTITION BY group_name ORDER BY date DESC) AS recent FROM breadth "
    "WHERE date < %(before)s) t WHERE recent <= %(days)s ORDER BY group_name, date"
)
_IN_RANGE = (
    "WHERE date >= coalesce(%(start)s, DATE '0001-01-01') "
    "AND date <= coalesce(%(end)s, DATE '9999-12-31') "
    "AND (%(group)s::text IS NULL OR group_name = %(group)s::text)"
)
READ_BREADTH_SQL = f"SELECT {_BREADTH} FROM breadth {_IN_RANGE} ORDER BY group_name, date"
READ_MEMBERS_SQL = (
    f"SELECT {columns_sql(schema.BREADTH_MEMBER_COLUMNS)} FROM breadth_members {_IN_RANGE} "
    "ORDER BY date, group_name, event, ticker"
)
READ_SIGNALS_SQL = (
    f"SELECT {columns_sql(schema.BREADTH_SIGNAL_COLUMNS)} FROM breadth_signals {_IN_RANGE} "
    "ORDER BY date, group_name, signal"
)
BREADTH_GROUPS_SQL = (
    f"SELECT group_name, ticker FROM {q(UNIVERSE_TABLE)} ORDER BY group_name, ticker"
)
