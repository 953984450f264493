"""Opening the Dagster home from several processes at once, as two main jobs started together do.

Dagster's own `DagsterInstance.from_config` failed in 5 of 5 such trials on a fresh home
("table instigators already exists", "UNIQUE constraint failed: alembic_version").
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parents[3]
OPENERS = 4


def _open_at_once(home: Path, code: str) -> list[subprocess.CompletedProcess]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(home)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(OPENERS)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    return [
        subprocess.CompletedProcess(p.args, p.returncode, out, err)
        for p, (out, err) in zip(processes, outputs, strict=True)
    ]


def _fresh_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home/dagster.yaml", home)
    return home


def test_processes_opening_a_fresh_home_at_once_all_get_a_working_instance(tmp_path, monkeypatch):
    home = _fresh_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    code = (
        "import sys; from breadth_assets.runtime.instance import open_instance; "
        "open_instance(sys.argv[1]).dispose()"
    )
    results = _open_at_once(home, code)
    assert [r.returncode for r in results] == [0] * OPENERS, [r.stderr[-2000:] for r in results]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []
