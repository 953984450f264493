"""dagster-postgres's event log, with a pooled connection and a batch of asset events per
round trip, for the PostgreSQL Dagster home (`deploy/postgres/dagster.yaml`).

The stock class opens a connection per statement and writes a batch of planned events one by
one (its batch path covers materializations only). This class stores exactly the same rows:
the batch's event rows in one INSERT, their tags in one more, and each asset's index row once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as db

# dagster-postgres's event log, subclassed to batch asset events (no public storage API). Can go
# when its store_event_batch writes asset index rows and tags in one round trip.
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import AssetKeyTable, SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)
from sqlalchemy.dialects import postgresql

from breadth_assets.runtime.instance.sqlite_event_log import (
    BATCH_SIZE,
    BATCH_SIZE_ENV,
    is_plain_asset_event,
    merged_asset_entries,
)

POOL_SIZE = 2
"""Connections a process keeps open; more are opened (and closed) when threads need them."""


class BatchingPostgresEventLogStorage(PostgresEventLogStorage):
    """Dagster's PostgreSQL event log with a small connection pool and whole-batch writes."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        **kwargs: Any,
    ) -> None:
        os.environ.setdefault(BATCH_SIZE_ENV, str(BATCH_SIZE))
        self._pool_lock = threading.Lock()
        self._pool_pid: int | None = None
        self._has_index_cols = False
        super().__init__(postgres_url, should_autocreate_tables, inst_data, **kwargs)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchingPostgresEventLogStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    def _pooled_engine(self) -> db.engine.Engine:
        return create_pg_engine(
            self.postgres_url,
            self._token_provider,
            isolation_level="AUTOCOMMIT",
            pool_size=POOL_SIZE,
            max_overflow=8,
            pool_recycle=3600,
        )

    def _connect(self):
        with self._pool_lock:
            # The stock engine opens a connection per use; a forked child opens its own pool.
            if self._pool_pid != os.getpid():
                self._engine = self._pooled_engine()
                self._pool_pid = os.getpid()
        return super()._connect()

    def dispose(self) -> None:
        super().dispose()
        if self._pool_pid == os.getpid():
            self._engine.dispose()

    def _has_asset_key_index_cols_on_connection(self, conn: db.Connection) -> bool:
        if not self._has_index_cols:  # a migration can add the columns, never remove them
            self._has_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._has_index_cols

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not events or not all(is_plain_asset_event(event) for event in events):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]
        with self._connect() as conn:
            result = conn.execute(
                SqlEventLogStorageTable.insert()
                .values(rows)
                .returning(SqlEventLogStorageTable.c.id)
            )
            event_ids = [int(row[0]) for row in result.fetchall()]
        with self.index_transaction() as conn:
            self._store_asset_event_tags(conn, events, event_ids)
            index_cols = self._has_asset_key_index_cols_on_connection(conn)
            for key, values in merged_asset_entries(self, events, event_ids, index_cols).items():
                conn.execute(
                    postgresql.insert(AssetKeyTable)
                    .values(asset_key=key, **values)
                    .on_conflict_do_update(index_elements=[AssetKeyTable.c.asset_key], set_=values)
                )
