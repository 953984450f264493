"""The PostgreSQL store's connections: its URL (never shown), one pool per process, its tables."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy

from breadth_assets.stores.base import StoreError
from breadth_assets.stores.postgres import sql

URL_FORM = "postgresql+psycopg2://user:password@host:5432/database"
_DRIVERS = ("postgresql", "postgres", "postgresql+psycopg2")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_engines: dict[tuple[int, str, str], sqlalchemy.Engine] = {}
_engines_lock = threading.Lock()


def address(url: str) -> tuple[str, str] | None:
    """`(host:port, database)` of the URL, or None when it cannot be read."""
    try:
        parsed = sqlalchemy.make_url(url)
    except Exception:
        return None
    host = parsed.host or parsed.query.get("host") or "localhost"  # libpq's ?host=...&port=...
    port = parsed.port or parsed.query.get("port") or 5432
    return f"{host}:{port}", parsed.database or "(default)"


def where(url: str) -> str:
    """`host:port, database name`: what messages say of the URL."""
    found = address(url)
    return f"{found[0]}, database {found[1]}" if found else "the configured server"


def failure(url: str, error: BaseException, doing: str) -> StoreError:
    """A StoreError naming host, port and database, never the URL or its password."""
    cause = getattr(error, "orig", None) or error
    message = " ".join(str(cause).split())
    for secret in _secrets(url):
        message = message.replace(secret, "***")
    return StoreError(
        f"PostgreSQL at {where(url)}: {doing} failed: {type(cause).__name__}: {message[:500]}"
    )


def _secrets(url: str) -> list[str]:
    """The URL and its password, as written and decoded: what a message must never show."""
    found = [url]
    with contextlib.suppress(Exception):
        found.append(urlsplit(url).password or "")
    with contextlib.suppress(Exception):
        found.append(sqlalchemy.make_url(url).password or "")
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def _parsed(url: str, schema_name: str) -> sqlalchemy.URL:
    """The URL for psycopg2 (a bare postgresql:// too: SQLAlchemy would pick psycopg 3)."""
    try:
        parsed = sqlalchemy.make_url(url)
    except Exception:
        raise StoreError(
            f"PostgreSQL store: the configured URL cannot be read; it should look like {URL_FORM}"
        ) from None
    if parsed.drivername not in _DRIVERS:
        raise StoreError(
            f"PostgreSQL store: the configured URL names the driver {parsed.drivername!r}; use "
            f"{URL_FORM}"
        )
    if not _SCHEMA_NAME.fullmatch(schema_name):
        raise StoreError(
            f"PostgreSQL store: schema_name {schema_name!r} must be lowercase letters, digits "
            "and underscores"
        )
    return parsed.set(drivername="postgresql+psycopg2")


def engine(url: str, schema_name: str, pool_size: int, timeout: int) -> sqlalchemy.Engine:
    """This process's pool for the URL and schema (store objects come and go with each run; a
    forked child opens its own pool). Sessions read dates ISO and floats with every digit."""
    key = (os.getpid(), url, schema_name)
    with _engines_lock:
        if key not in _engines:
            options = f"-c search_path={schema_name} -c DateStyle=ISO,YMD -c extra_float_digits=3"
            _engines[key] = sqlalchemy.create_engine(
                _parsed(url, schema_name),
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                hide_parameters=True,
                connect_args={
                    "connect_timeout": timeout,
                    "options": options,
                    "application_name": "breadth_assets",
                },
            )
        return _engines[key]


def close(url: str, schema_name: str) -> None:
    with _engines_lock:
        found = _engines.pop((os.getpid(), url, schema_name), None)
    if found is not None:
        found.dispose()


_PRESENT_COLUMNS = (
    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s"
)


def _primary_keys(cursor: Any, schema_name: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each table's primary key constraint: its name and columns."""
    cursor.execute(sql.PRIMARY_KEYS_SQL, [schema_name])
    return {table: (name, tuple(columns)) for table, name, columns in cursor.fetchall()}


def _rekeyed(cursor: Any, schema_name: str) -> list[str]:
    """Tables whose primary key is not the one `sql.PRIMARY_KEYS` names (a store made by an
    older version: breadth keyed by date alone, the universe record by ticker)."""
    found = _primary_keys(cursor, schema_name)
    return [
        table
        for table, (_, columns) in found.items()
        if table in sql.PRIMARY_KEYS and columns != sql.PRIMARY_KEYS[table]
    ]


def _missing(cursor: Any, schema_name: str) -> bool:
    cursor.execute(_PRESENT_COLUMNS, [schema_name])
    present = set(cursor.fetchall())
    wanted = {(table, name) for table, columns in sql.TABLE_COLUMNS.items() for name in columns}
    cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", [schema_name])
    indexes = {row[0] for row in cursor.fetchall()}
    return (
        bool(wanted - present)
        or bool(sql.EXPECTED_INDEXES - indexes)
        or bool(_rekeyed(cursor, schema_name))
    )


def ensure_tables(cursor: Any, schema_name: str) -> None:
    """Creates what is missing (the schema, tables, columns an older version lacked, indexes,
    the bookkeeping) and gives a table made with another primary key the contract's, under an
    advisory lock; a store that has it all takes no lock, runs no DDL (which would wait for,
    and then block, other workers' writes)."""
    if not _missing(cursor, schema_name):
        return
    lock = f"breadth_assets {schema_name}"  # one creator at a time per schema
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [lock])
    cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema_name])
    if not cursor.fetchall():  # IF NOT EXISTS alone would need CREATE on the database
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {sql.q(schema_name)}")
    cursor.execute(_PRESENT_COLUMNS, [schema_name])
    present = set(cursor.fetchall())
    existing = {table for table, _ in present}
    for table, columns in sql.TABLE_COLUMNS.items():
        if table not in existing:
            cursor.execute(sql.create_table_sql(table))
            continue
        for name in columns:
            if (table, name) not in present:
                cursor.execute(sql.add_column_sql(table, name))
    keys = _primary_keys(cursor, schema_name)
    for table in sql.TABLE_COLUMNS:
        constraint, columns = keys.get(table, (None, None))
        if columns != sql.PRIMARY_KEYS[table]:
            cursor.execute(sql.rekey_sql(table, constraint))
    for table in sql.DATE_INDEXED:
        cursor.execute(sql.date_index_sql(table))
    for statement in sql.BOOKKEEPING_SQL:
        cursor.execute(statement)
