"""Dagster's consolidated SQLite event log, with the cost of each event taken out.

Every partition a run materializes is two events (planned, then materialized), and the stock
`ConsolidatedSqliteEventLogStorage` writes each one in two transactions, each on a newly created
SQLAlchemy engine whose only connection checkpoints the WAL when it closes: 10-24 ms an event on
a small machine, which is most of a run that materializes thousands of partitions. This storage
keeps the same file, schema, migrations and queries, and changes only how it connects:

- one engine (a connection pool) per process instead of one per transaction;
- `store_event_batch` writes a whole batch of events (Dagster batches the planned events of a
  run and the materializations of a ranged step) in one transaction;
- the schema questions asked on every event (does a table or column exist) are answered once,
  when the answer is yes (a migration can only add them).

Events are stored exactly as the stock storage stores them, so every query (materialized,
failed and in-progress partitions, asset records, run status) answers the same.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

import sqlalchemy as db

# The consolidated SQLite event log, subclassed to pool its engine and batch events (no public
# storage API). Can go when Dagster's store_event_batch writes one transaction per batch.
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData

BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
BATCH_SIZE = 1000
"""Events Dagster buffers per batch before it hands them to `store_event_batch`."""


class BatchingSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """The consolidated SQLite event log with a pooled engine and one transaction per batch.

    Dagster groups events into batches only when `DAGSTER_EVENT_BATCH_SIZE` is set in the
    process that reports them; this storage sets it (unless it is set already) in every process
    that opens it, since a batch is what it is fast at.
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engine: db.engine.Engine | None = None
        self._engine_pid: int | None = None
        self._engine_lock = threading.Lock()
        self._batch = threading.local()
        self._known_tables: set[str] = set()
        self._has_index_cols = False
        os.environ.setdefault(BATCH_SIZE_ENV, str(BATCH_SIZE))
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(inst_data=inst_data, **config_value)

    def _pooled_engine(self) -> db.engine.Engine:
        """This process's engine; a forked child makes its own instead of sharing the parent's."""
        with self._engine_lock:
            if self._engine is None or self._engine_pid != os.getpid():
                self._engine = create_engine(
                    self._conn_string, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
                )
                self._engine_pid = os.getpid()
            return self._engine

    @contextmanager
    def _connect(self) -> Iterator[db.Connection]:
        batch = getattr(self._batch, "conn", None)
        if batch is not None:
            yield batch
            return
        with self._pooled_engine().connect() as conn, conn.begin():
            yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Every event of the batch in one transaction: the rows in one statement, each asset's
        index row once, with what `store_event` would have left in it after the last event."""
        with self._connect() as conn:
            self._batch.conn = conn
            try:
                if all(is_plain_asset_event(event) for event in events):
                    self._store_asset_events(conn, events)
                else:
                    for event in events:
                        self.store_event(event)
            finally:
                self._batch.conn = None

    def _store_asset_events(self, conn: db.Connection, events: Sequence[EventLogEntry]) -> None:
        conn.execute(SqlEventLogStorageTable.insert(), [self._event_to_row(e) for e in events])
        # The write lock is held from the first insert, so the batch's ids are consecutive.
        last = conn.execute(db.text("SELECT last_insert_rowid()")).scalar_one()
        event_ids = list(range(last - len(events) + 1, last + 1))
        self._store_asset_event_tags(conn, events, event_ids)
        index_cols = self._has_asset_key_index_cols_on_connection(conn)
        for key, values in merged_asset_entries(self, events, event_ids, index_cols).items():
            # `_store_asset_event`'s insert-else-update of the asset's row.
            updated = conn.execute(
                AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == key)
            )
            if updated.rowcount == 0:
                conn.execute(AssetKeyTable.insert().values(asset_key=key, **values))

    def has_table(self, table_name: str) -> bool:
        if table_name not in self._known_tables:
            with self._pooled_engine().connect() as conn:
                if conn.dialect.has_table(conn, table_name):
                    self._known_tables.add(table_name)
        return table_name in self._known_tables

    def _has_asset_key_index_cols_on_connection(self, conn: db.Connection) -> bool:
        if not self._has_index_cols:
            self._has_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._has_index_cols

    def dispose(self) -> None:
        super().dispose()
        if self._engine is not None and self._engine_pid == os.getpid():
            self._engine.dispose()


_PLAIN_ASSET_EVENTS = {
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_OBSERVATION,
}


def is_plain_asset_event(event: EventLogEntry) -> bool:
    """An asset event whose storage is its row, its tags and its asset's index row only."""
    dagster_event = event.dagster_event
    return (
        dagster_event is not None
        and dagster_event.event_type in _PLAIN_ASSET_EVENTS
        and dagster_event.asset_key is not None
    )


def merged_asset_entries(
    storage: SqlEventLogStorage,
    events: Sequence[EventLogEntry],
    event_ids: Sequence[int],
    index_cols: bool,
) -> dict[str, dict[str, Any]]:
    """Per asset, the index-row values that `_store_asset_event` leaves after every event.

    A column's last value comes from the last event of a kind that sets it, so only the last
    event of each kind per asset is serialized, in the order the events came.
    """
    last: dict[tuple[str, DagsterEventType], tuple[int, EventLogEntry, int]] = {}
    for position, (event, event_id) in enumerate(zip(events, event_ids, strict=True)):
        dagster_event = event.get_dagster_event()
        key = dagster_event.asset_key.to_string()
        last[(key, dagster_event.event_type)] = (position, event, event_id)
    entries: dict[str, dict[str, Any]] = {}
    for (key, _), (_, event, event_id) in sorted(last.items(), key=lambda item: item[1][0]):
        values = storage._get_asset_entry_values(event, event_id, index_cols)
        entries[key] = {**entries.get(key, {}), **values}
    return {key: values for key, values in entries.items() if values}
