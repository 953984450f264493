"""Fresh places on the PostgreSQL and Redis servers that tests and benchmarks run against
(`scripts/postgres.sh`, `scripts/redis.sh`), so that no two runs share state."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy


def create_postgres_database(server: str, prefix: str = "breadth_test") -> str:
    """A new empty database on `server` (a URL without a database); its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{server}/{name}"


def drop_postgres_database(url: str) -> None:
    """Drops the database of `url`, ending its sessions."""
    server, name = url.rsplit("/", 1)
    engine = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def empty_redis_db(server: str, db: int) -> str:
    """The URL of database `db` on the Redis `server`, emptied first."""
    import redis

    parts = urlsplit(server)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))
    redis.Redis.from_url(url).flushdb()
    return url
