"""Candle sizes, whatever the source."""

from __future__ import annotations

import pytest

from breadth_assets.sources.timeframes import Timeframe


def test_parse_reads_unit_slash_interval_ignoring_case_and_spaces():
    assert Timeframe.parse(" Minutes / 15 ") == Timeframe("minutes", 15)


def test_a_timeframe_prints_as_it_is_written():
    assert str(Timeframe("hours", 1)) == "hours/1"


@pytest.mark.parametrize("text", ["seconds/1", "junk", "", "minutes", "minutes/", "5/minutes"])
def test_parse_refuses_what_is_not_unit_slash_interval(text):
    with pytest.raises(ValueError, match="is not a timeframe such as minutes/5 or hours/1"):
        Timeframe.parse(text)


def test_an_interval_below_one_is_refused():
    with pytest.raises(ValueError, match="minutes interval 0 is not at least 1"):
        Timeframe("minutes", 0)


@pytest.mark.parametrize(
    ("unit", "intraday"), [("minutes", True), ("hours", True), ("days", False)]
)
def test_only_minutes_and_hours_are_intraday(unit, intraday):
    assert Timeframe(unit, 1).intraday is intraday
