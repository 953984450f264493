"""`breadth-assets signals`: the breadth signals of the last days, from the store."""

from __future__ import annotations

import io

import pandas as pd

from breadth_assets import schema
from breadth_assets.cli import run_report
from breadth_assets.cli.commands import main
from breadth_assets.stores.duckdb import DuckDBStore

DAYS = pd.bdate_range("2024-06-03", periods=5)


def _rows() -> pd.DataFrame:
    values = {"DATE": DAYS, "VARCHAR": "ALL", "BIGINT": 0, "BOOLEAN": False, "DOUBLE": 0.5}
    return pd.DataFrame(
        {name: values[kind] for name, kind in schema.BREADTH_COLUMNS.items()}, index=range(5)
    )


def _store(tmp_path, monkeypatch, signals: list[tuple]) -> None:
    path = tmp_path / "breadth.duckdb"
    monkeypatch.setenv("BREADTH_DUCKDB_PATH", str(path))
    monkeypatch.delenv("BREADTH_STORE", raising=False)
    store = DuckDBStore(path=str(path))
    fired = pd.DataFrame(signals, columns=list(schema.BREADTH_SIGNAL_COLUMNS))
    fired["date"] = pd.to_datetime(fired["date"])
    members = pd.DataFrame(columns=list(schema.BREADTH_MEMBER_COLUMNS))
    first, last = DAYS[0].date(), DAYS[-1].date()
    store.write_breadth(
        _rows(), members, {"ALL": ["AAA"]}, first, last, store.breadth_stale(), None, fired
    )


def test_signals_prints_the_signals_of_the_last_days(tmp_path, monkeypatch, capsys):
    _store(
        tmp_path,
        monkeypatch,
        [
            ("2024-06-03", "ALL", "mcclellan_cross_up", "mcclellan_osc -2.0 -> 3.1"),
            ("2024-06-06", "ALL", "zweig_thrust", "zweig_ema 0.620"),
        ],
    )

    assert main(["signals", "--days", "2"]) == 0

    out = capsys.readouterr().out
    assert "zweig_thrust" in out and "zweig_ema 0.620" in out
    assert "mcclellan_cross_up" not in out  # before the last two days


def test_signals_says_when_none_fired(tmp_path, monkeypatch, capsys):
    _store(tmp_path, monkeypatch, [])

    assert main(["signals"]) == 0

    assert capsys.readouterr().out.strip() == "no breadth signal since 2024-06-03"


def test_the_main_jobs_tail_lists_the_last_days_signals(tmp_path, monkeypatch):
    _store(
        tmp_path,
        monkeypatch,
        [
            ("2024-06-06", "ALL", "mcclellan_cross_up", "mcclellan_osc -2.0 -> 3.1"),
            ("2024-06-07", "ALL", "zweig_thrust", "zweig_ema 0.620"),
        ],
    )
    out = io.StringIO()

    run_report.print_breadth_tail(2, out)

    assert out.getvalue().splitlines()[-2:] == [
        "signals on 2024-06-07:",
        "  ALL zweig_thrust: zweig_ema 0.620",
    ]


def test_the_main_jobs_tail_says_when_the_last_day_had_no_signal(tmp_path, monkeypatch):
    _store(
        tmp_path,
        monkeypatch,
        [("2024-06-06", "ALL", "mcclellan_cross_up", "mcclellan_osc -2.0 -> 3.1")],
    )
    out = io.StringIO()

    run_report.print_breadth_tail(2, out)

    assert out.getvalue().splitlines()[-1].startswith("signals on 2024-06-07: none")


def test_a_long_list_of_the_last_days_signals_is_cut_with_how_many_more():
    day = pd.Timestamp("2024-06-07")
    fired = pd.DataFrame(
        [(day, f"G{i:02d}", "zweig_thrust", "zweig_ema 0.620") for i in range(13)],
        columns=list(schema.BREADTH_SIGNAL_COLUMNS),
    )

    lines = run_report.signals_of_day(fired, day.date(), shown=10).splitlines()

    assert len(lines) == 12
    assert lines[-1] == "  ... and 3 more (`breadth-assets signals`)"
