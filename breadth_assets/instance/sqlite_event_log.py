"""Kept import path of `BatchingSqliteEventLogStorage` (see `breadth_assets.runtime.instance`)."""

from breadth_assets.runtime.instance.sqlite_event_log import BatchingSqliteEventLogStorage

__all__ = ["BatchingSqliteEventLogStorage"]
