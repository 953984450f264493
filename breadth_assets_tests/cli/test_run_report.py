"""The main job's own lines: refused rows, what breadth found, the checks' verdicts."""

from __future__ import annotations

from collections import Counter

import dagster as dg

from breadth_assets.cli import run_report


def _materialization(asset: str, partition: str | None, **metadata):
    """What the main job reads of a run's materialization event: its `materialization`."""

    class Event:
        pass

    event = Event()
    event.materialization = dg.AssetMaterialization(asset, partition=partition, metadata=metadata)
    return event


def test_refused_rows_are_counted_per_ticker_from_raw_prices_only():
    events = [
        _materialization("raw_prices", "AAA", rows_rejected=2),
        _materialization("raw_prices", "BBB", rows_rejected=0),
        _materialization("indicators", "AAA", rows_rejected=5),
        _materialization("raw_prices", "CCC"),
    ]
    assert run_report.refused_rows(events) == Counter({"AAA": 2})


def test_refused_text_names_the_tickers_with_most_refused_rows_first():
    text = run_report.refused_text(Counter({"AAA": 1, "BBB": 12, "CCC": 3}), shown=2)
    assert text == "16 rows refused in 3 tickers (BBB 12, CCC 3, ...)"


def test_breadth_notes_name_closures_and_the_end_of_the_data():
    event = _materialization(
        "breadth",
        "2024-07-03",
        closures_found=1,
        closures_found_days="2024-06-26",
        no_bars_after="2024-06-28",
    )
    assert run_report.breadth_notes([event]) == [
        "1 closures found in the data (no ticker has a bar; no row): 2024-06-26",
        "no ticker has a bar after 2024-06-28: breadth ends there",
    ]


def test_breadth_notes_are_empty_when_every_day_has_bars():
    event = _materialization("breadth", "2024-07-03", closures_found=0)
    assert run_report.breadth_notes([event]) == []
