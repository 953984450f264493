"""Kept import path of `BatchingPostgresEventLogStorage` (see `breadth_assets.runtime.instance`)."""

from breadth_assets.runtime.instance.postgres_event_log import BatchingPostgresEventLogStorage

__all__ = ["BatchingPostgresEventLogStorage"]
