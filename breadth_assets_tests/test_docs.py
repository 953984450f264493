"""The docs, scripts, benchmarks and code speak of the project, not of how it was written.

What a figure was measured on is said in project terms (a commit, a date, a machine); issue
numbers and work-log words ("this session", "the previous stop") mean nothing to a reader.
"""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHECKED = [
    "README.md",
    "docs",
    "benchmarks",
    "scripts",
    "deploy",
    "dagster_home/dagster.yaml",
    "breadth_assets",
    "breadth_assets_tests",
    "breadth_assets_testing",
]
SUFFIXES = {".md", ".py", ".sh", ".yaml", ".yml", ".toml", ".txt"}
HISTORY_WORDS = re.compile(
    r"#1[0-9]\b|this session|previous stop|earlier stops?\b|final code|the seeds", re.IGNORECASE
)


def _files() -> list[Path]:
    files = []
    for name in CHECKED:
        path = PROJECT_ROOT / name
        found = [path] if path.is_file() else sorted(path.rglob("*"))
        files += [f for f in found if f.suffix in SUFFIXES and f.resolve() != Path(__file__)]
    return files


def test_no_word_of_the_projects_own_history():
    hits = [
        f"{file.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for file in _files()
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1)
        if HISTORY_WORDS.search(line)
    ]
    assert hits == [], "\n".join(hits)


def test_the_check_finds_such_words():
    assert len(_files()) > 50
    for line in ("see #13", "measured in this session", "at the previous stop", "The seeds' run"):
        assert HISTORY_WORDS.search(line), line
    for line in ('color="#10b981"', "issue #1", "stopped", "a random seed"):
        assert not HISTORY_WORDS.search(line), line
