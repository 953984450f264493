"""Dagster instance storage for the project's Dagster home (configured in `dagster.yaml`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import dagster as dg

LOCK_FILE = ".instance-init.lock"
SETTINGS_FILE = "dagster.yaml"
PROJECT_SETTINGS = Path(__file__).resolve().parents[3] / "dagster_home" / SETTINGS_FILE
"""The project's instance settings in a source checkout (the package installed editable)."""
PACKAGED_SETTINGS = Path(__file__).resolve().with_name(SETTINGS_FILE)
"""The same file shipped inside the package, for an install without the checkout (a wheel)."""
STORAGE_FOLDERS = ("history", "storage", "schedules")
"""Where Dagster keeps a home's runs, events and schedules in SQLite files."""


def project_settings() -> Path:
    """The project's `dagster.yaml`: the checkout's `dagster_home/dagster.yaml`, else the copy
    shipped with the package."""
    return PROJECT_SETTINGS if PROJECT_SETTINGS.is_file() else PACKAGED_SETTINGS


def open_instance(home: str | None = None) -> dg.DagsterInstance:
    """The instance of `home` (default `$DAGSTER_HOME`), opened by one process at a time.

    Opening an instance creates a fresh home's SQLite tables, and two processes doing that at
    once fail ("table instigators already exists", "UNIQUE constraint failed:
    alembic_version"): two main jobs started together on a new home did. A missing home is
    created and a home without a `dagster.yaml` gets the project's (`prepare_home`), so a new
    folder stores runs and events as fast as the project's own home does.
    """

    def _open() -> dg.DagsterInstance:
        return dg.DagsterInstance.get() if home is None else dg.DagsterInstance.from_config(home)

    folder = _folder(home)
    if folder is None:
        return _open()
    created = _make(folder)
    with _locked(folder):
        prepare_home(folder, created=created)
        return _open()


def prepare(home: str | None = None, out: TextIO | None = None) -> Path | None:
    """`prepare_home` for `home` (default `$DAGSTER_HOME`) under the lock `open_instance` takes;
    None when the path is not absolute (Dagster refuses such a home when it opens it)."""
    folder = _folder(home)
    if folder is None:
        return None
    created = _make(folder)
    with _locked(folder):
        prepare_home(folder, out, created=created)
    return folder


def prepare_home(folder: Path, out: TextIO | None = None, created: bool = False) -> str | None:
    """Copies the project's `dagster.yaml` into the home `folder` (`created` by the caller, or
    found) when it has none; returns, and prints to `out` (default stderr), the one line saying
    so, else None.

    A home with its own `dagster.yaml` is left as it is. So is one that already holds Dagster's
    default storage without a `dagster.yaml`: the project's settings would move its event log to
    another file and hide its earlier runs' events, so it is only told how to switch.
    """
    target = folder / SETTINGS_FILE
    if target.exists():
        return None
    if any((folder / name).exists() for name in STORAGE_FOLDERS):
        line = (
            f"Dagster home {folder}: no {SETTINGS_FILE}, it holds Dagster's default storage; "
            f"used as it is (copy {project_settings()} into a new home for the project's faster "
            "storage)"
        )
    else:
        partial = target.with_name(f".{SETTINGS_FILE}.{os.getpid()}")
        partial.write_bytes(project_settings().read_bytes())
        partial.replace(target)
        done = "created with" if created else f"had no {SETTINGS_FILE}; now has"
        line = f"Dagster home {folder}: {done} the project's instance settings ({SETTINGS_FILE})"
    print(line, file=out or sys.stderr, flush=True)
    return line


def _folder(home: str | None) -> Path | None:
    folder = Path(os.path.expanduser(home or os.environ.get("DAGSTER_HOME", "")))
    return folder if folder.is_absolute() else None


def _make(folder: Path) -> bool:
    """Creates the home folder; True when it was missing."""
    if folder.is_dir():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return True


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
