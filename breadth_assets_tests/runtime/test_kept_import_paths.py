"""Import paths that users' own files name keep working: `dagster.yaml` files written for the
flat package (`breadth_assets.instance.*`) and worker commands (`breadth_assets.celery_worker`)."""

from __future__ import annotations

import importlib

import dagster as dg

from breadth_assets.runtime.instance.sqlite_event_log import BatchingSqliteEventLogStorage

OLD_HOME_SETTINGS = """\
event_log_storage:
  module: breadth_assets.instance.sqlite_event_log
  class: BatchingSqliteEventLogStorage
  config:
    base_dir:
      env: DAGSTER_HOME
"""


def test_a_dagster_yaml_naming_the_old_event_log_path_opens_the_same_storage(tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text(OLD_HOME_SETTINGS)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.event_log_storage) is BatchingSqliteEventLogStorage


def test_the_old_postgres_event_log_path_names_the_same_class():
    old = importlib.import_module("breadth_assets.instance.postgres_event_log")
    new = importlib.import_module("breadth_assets.runtime.instance.postgres_event_log")
    assert old.BatchingPostgresEventLogStorage is new.BatchingPostgresEventLogStorage


def test_workers_started_on_the_old_app_path_get_the_same_celery_app(monkeypatch):
    # The app reads its broker and backend when imported; nothing connects to them here.
    monkeypatch.setenv("BREADTH_CELERY_BROKER", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("BREADTH_CELERY_BACKEND", "redis://127.0.0.1:1/1")
    old = importlib.import_module("breadth_assets.celery_worker")
    new = importlib.import_module("breadth_assets.runtime.celery_worker")
    assert old.app is new.app
    assert old.execute_plan is new.execute_plan
