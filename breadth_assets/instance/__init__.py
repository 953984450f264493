"""The import path `dagster.yaml` files written for earlier versions name
(`breadth_assets.instance.sqlite_event_log`, `.postgres_event_log`); the storages live in
`breadth_assets.runtime.instance`."""

from breadth_assets.runtime.instance import open_instance

__all__ = ["open_instance"]
