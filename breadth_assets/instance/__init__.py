"""Dagster instance storage for the project's Dagster home (configured in `dagster.yaml`)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import dagster as dg

LOCK_FILE = ".instance-init.lock"


def open_instance(home: str | None = None) -> dg.DagsterInstance:
    """The instance of `home` (default `$DAGSTER_HOME`), opened by one process at a time.

    Opening an instance creates a fresh home's SQLite tables, and two processes doing that at
    once fail ("table instigators already exists", "UNIQUE constraint failed:
    alembic_version"): two main jobs started together on a new home did.
    """

    def _open() -> dg.DagsterInstance:
        return dg.DagsterInstance.get() if home is None else dg.DagsterInstance.from_config(home)

    folder = Path(os.path.expanduser(home or os.environ.get("DAGSTER_HOME", "")))
    if not (folder.is_absolute() and folder.is_dir()):
        return _open()
    with open(folder / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _open()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
