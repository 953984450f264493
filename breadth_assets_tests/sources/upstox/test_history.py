"""Upstox history planning and parsing: timeframes, request chunks, candles as frames."""

from __future__ import annotations

import itertools
import random
from datetime import date, timedelta

import pandas as pd
import pytest
from dateutil.relativedelta import relativedelta

from breadth_assets.sources.timeframes import Timeframe
from breadth_assets.sources.upstox.history import (
    DAILY,
    CandleError,
    UpstoxTimeframe,
    candles_frame,
    chunk_ranges,
    merge_chunks,
)

COLUMNS = ["ts", "open", "high", "low", "close", "volume"]
MINUTES_5 = Timeframe("minutes", 5)
MINUTES_15 = Timeframe("minutes", 15)
MINUTES_16 = Timeframe("minutes", 16)
MINUTES_30 = Timeframe("minutes", 30)
HOURS_1 = Timeframe("hours", 1)


def candle(ts: str, close: float, volume: float = 1000) -> list:
    """An Upstox candle row [ts, open, high, low, close, volume, oi] around `close`."""
    return [ts, close - 1, close + 2, close - 2, close, volume, 0]


# --- Timeframe.parse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "unit", "interval"),
    [
        ("minutes/5", "minutes", 5),
        ("hours/1", "hours", 1),
        ("days/1", "days", 1),
        ("minutes/300", "minutes", 300),
        ("hours/5", "hours", 5),
        (" Minutes / 15 ", "minutes", 15),
    ],
)
def test_parse_accepts_upstox_unit_and_interval(text, unit, interval):
    timeframe = UpstoxTimeframe.parse(text)
    assert (timeframe.unit, timeframe.interval) == (unit, interval)


def test_parsed_timeframe_prints_as_upstox_writes_it():
    assert str(UpstoxTimeframe.parse("minutes/5")) == "minutes/5"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("minutes/0", r"minutes interval 0 is outside Upstox's 1\.\.300"),
        ("minutes/301", r"minutes interval 301 is outside Upstox's 1\.\.300"),
        ("hours/6", r"hours interval 6 is outside Upstox's 1\.\.5"),
        ("days/2", r"days interval 2 is outside Upstox's 1\.\.1"),
    ],
)
def test_parse_rejects_intervals_upstox_does_not_serve(text, message):
    with pytest.raises(ValueError, match=message):
        UpstoxTimeframe.parse(text)


@pytest.mark.parametrize("text", ["seconds/1", "junk", "", "minutes", "minutes/", "5/minutes"])
def test_parse_rejects_what_is_not_unit_slash_interval(text):
    with pytest.raises(ValueError, match="is not a timeframe such as minutes/5 or hours/1"):
        UpstoxTimeframe.parse(text)


def test_unknown_unit_is_refused_naming_the_units():
    with pytest.raises(ValueError, match="unknown unit 'seconds'; Upstox units are minutes,"):
        UpstoxTimeframe("seconds", 1)


def test_an_upstox_timeframe_equals_the_generic_timeframe_of_the_same_size():
    assert UpstoxTimeframe("minutes", 5) == Timeframe("minutes", 5)
    assert len({UpstoxTimeframe("minutes", 5), Timeframe("minutes", 5)}) == 1


def test_chunking_a_timeframe_upstox_does_not_serve_is_refused():
    with pytest.raises(ValueError, match=r"outside Upstox's 1\.\.300"):
        chunk_ranges(date(2024, 1, 1), date(2024, 2, 1), Timeframe("minutes", 400))


# --- chunk_ranges --------------------------------------------------------------------------------


def test_daily_ranges_are_five_year_chunks_inclusive_and_contiguous():
    assert chunk_ranges(date(2016, 1, 1), date(2026, 11, 20), DAILY) == [
        (date(2016, 1, 1), date(2020, 12, 31)),
        (date(2021, 1, 1), date(2025, 12, 31)),
        (date(2026, 1, 1), date(2026, 11, 20)),
    ]


def test_five_minute_ranges_are_one_calendar_month_each():
    assert chunk_ranges(date(2024, 1, 1), date(2024, 4, 15), MINUTES_5) == [
        (date(2024, 1, 1), date(2024, 1, 31)),
        (date(2024, 2, 1), date(2024, 2, 29)),
        (date(2024, 3, 1), date(2024, 3, 31)),
        (date(2024, 4, 1), date(2024, 4, 15)),
    ]


def test_month_chunks_starting_mid_month_end_the_day_before_the_same_day_next_month():
    assert chunk_ranges(date(2024, 1, 15), date(2024, 3, 20), MINUTES_5) == [
        (date(2024, 1, 15), date(2024, 2, 14)),
        (date(2024, 2, 15), date(2024, 3, 14)),
        (date(2024, 3, 15), date(2024, 3, 20)),
    ]


@pytest.mark.parametrize("timeframe", [MINUTES_30, HOURS_1], ids=str)
def test_thirty_minute_and_hourly_ranges_are_one_quarter_each(timeframe):
    assert chunk_ranges(date(2024, 1, 1), date(2024, 12, 31), timeframe) == [
        (date(2024, 1, 1), date(2024, 3, 31)),
        (date(2024, 4, 1), date(2024, 6, 30)),
        (date(2024, 7, 1), date(2024, 9, 30)),
        (date(2024, 10, 1), date(2024, 12, 31)),
    ]


def test_fifteen_minutes_is_the_longest_interval_with_month_chunks():
    start, end = date(2024, 1, 1), date(2024, 3, 31)
    assert len(chunk_ranges(start, end, MINUTES_15)) == 3
    assert chunk_ranges(start, end, MINUTES_16) == [(start, end)]


def test_intraday_start_before_2022_is_moved_to_the_history_start():
    assert chunk_ranges(date(2021, 6, 1), date(2022, 2, 15), MINUTES_5) == [
        (date(2022, 1, 1), date(2022, 1, 31)),
        (date(2022, 2, 1), date(2022, 2, 15)),
    ]


def test_daily_start_before_2000_is_moved_to_the_history_start():
    assert chunk_ranges(date(1995, 3, 1), date(2006, 6, 30), DAILY) == [
        (date(2000, 1, 1), date(2004, 12, 31)),
        (date(2005, 1, 1), date(2006, 6, 30)),
    ]


def test_start_after_end_plans_no_request():
    assert chunk_ranges(date(2025, 1, 2), date(2025, 1, 1), DAILY) == []


def test_range_ending_before_the_history_start_plans_no_request():
    assert chunk_ranges(date(2021, 1, 1), date(2021, 12, 31), MINUTES_5) == []


def test_single_day_is_one_request():
    assert chunk_ranges(date(2025, 1, 3), date(2025, 1, 3), MINUTES_5) == [
        (date(2025, 1, 3), date(2025, 1, 3))
    ]


# The longest range Upstox answers per request, as (unit, interval) -> span (upstox-notes.md);
# daily is held to the safe 5 years rather than the reported decade.
_LIMITS = [
    (DAILY, relativedelta(years=5)),
    (Timeframe("minutes", 1), relativedelta(months=1)),
    (MINUTES_5, relativedelta(months=1)),
    (MINUTES_15, relativedelta(months=1)),
    (MINUTES_16, relativedelta(months=3)),
    (MINUTES_30, relativedelta(months=3)),
    (Timeframe("minutes", 300), relativedelta(months=3)),
    (HOURS_1, relativedelta(months=3)),
    (Timeframe("hours", 5), relativedelta(months=3)),
]


@pytest.mark.parametrize(("timeframe", "limit"), _LIMITS, ids=[str(t) for t, _ in _LIMITS])
def test_chunks_cover_the_range_exactly_and_none_is_longer_than_upstox_allows(timeframe, limit):
    rng = random.Random(f"chunks {timeframe}")
    history_start = date(2022, 1, 1) if timeframe.intraday else date(2000, 1, 1)
    for _ in range(300):
        start = date(1998, 1, 1) + timedelta(days=rng.randrange(30 * 365))
        end = start + timedelta(days=rng.randrange(-40, 12 * 365))
        ranges = chunk_ranges(start, end, timeframe)
        first = max(start, history_start)
        if first > end:
            assert ranges == []
            continue
        assert ranges[0][0] == first
        assert ranges[-1][1] == end
        for (_, b), (next_a, _) in itertools.pairwise(ranges):
            assert next_a == b + timedelta(days=1), (start, end, ranges)
        for a, b in ranges:
            assert a <= b
            # Upstox refuses (UDAPI1148) when from_date < to_date - limit.
            assert a >= b - limit, (timeframe, a, b)


@pytest.mark.parametrize("timeframe", [Timeframe("weeks", 1), Timeframe("months", 1)], ids=str)
def test_weekly_and_monthly_ranges_are_one_request_however_long(timeframe):
    assert chunk_ranges(date(2001, 1, 1), date(2025, 12, 31), timeframe) == [
        (date(2001, 1, 1), date(2025, 12, 31))
    ]


# --- candles_frame -------------------------------------------------------------------------------


def test_frame_has_time_and_ohlcv_columns_without_open_interest():
    frame = candles_frame([candle("2025-01-03T00:00:00+05:30", 100)])
    assert list(frame.columns) == COLUMNS


def test_daily_ist_midnight_becomes_the_naive_trading_date():
    frame = candles_frame([candle("2025-01-03T00:00:00+05:30", 100)], DAILY)
    assert frame["ts"].dt.tz is None
    assert frame["ts"].tolist() == [pd.Timestamp(2025, 1, 3)]


def test_daily_stamp_given_in_utc_is_dated_by_the_ist_day():
    # 2025-01-02 18:30 UTC is 2025-01-03 00:00 IST.
    frame = candles_frame([candle("2025-01-02T18:30:00Z", 100)], DAILY)
    assert frame["ts"].tolist() == [pd.Timestamp(2025, 1, 3)]


def test_intraday_stamp_keeps_its_ist_clock_time_naive():
    frame = candles_frame([candle("2025-01-03T09:15:00+05:30", 100)], MINUTES_5)
    assert frame["ts"].dt.tz is None
    assert frame["ts"].tolist() == [pd.Timestamp(2025, 1, 3, 9, 15)]


def test_newest_first_candles_come_out_oldest_first():
    frame = candles_frame(
        [
            candle("2025-01-06T00:00:00+05:30", 103),
            candle("2025-01-03T00:00:00+05:30", 102),
            candle("2025-01-02T00:00:00+05:30", 101),
        ]
    )
    assert frame["ts"].tolist() == [
        pd.Timestamp(2025, 1, 2),
        pd.Timestamp(2025, 1, 3),
        pd.Timestamp(2025, 1, 6),
    ]
    assert frame["close"].tolist() == [101.0, 102.0, 103.0]


def test_json_integers_become_floats():
    frame = candles_frame([["2025-01-03T00:00:00+05:30", 812, 820, 805, 815, 123456, 0]])
    for name in COLUMNS[1:]:
        assert frame[name].dtype == "float64", name
    assert frame.iloc[0, 1:].tolist() == [812.0, 820.0, 805.0, 815.0, 123456.0]


def test_fractional_prices_are_kept_exactly():
    frame = candles_frame([["2025-01-03T00:00:00+05:30", 812.05, 820.1, 805.95, 815.5, 7, 0]])
    assert frame.iloc[0, 1:].tolist() == [812.05, 820.1, 805.95, 815.5, 7.0]


@pytest.mark.parametrize("candles", [{"candles": []}, None, "[]", 3])
def test_candles_that_are_not_a_list_raise_naming_the_type(candles):
    with pytest.raises(CandleError, match=f"candles is {type(candles).__name__}, not a list"):
        candles_frame(candles)


@pytest.mark.parametrize(
    "bad", [["2025-01-06T00:00:00+05:30", 1, 2, 0, 1], "2025-01-06", None, {"ts": 1}]
)
def test_short_or_non_list_candle_raises_naming_its_position(bad):
    with pytest.raises(CandleError, match=r"candle 1 is not \[ts, open, high, low, close"):
        candles_frame([candle("2025-01-03T00:00:00+05:30", 100), bad])


@pytest.mark.parametrize(
    ("position", "name"), [(1, "open"), (2, "high"), (3, "low"), (4, "close"), (5, "volume")]
)
@pytest.mark.parametrize("value", ["n/a", None, ""])
def test_non_numeric_price_or_volume_raises_naming_the_candle_and_field(position, name, value):
    bad = candle("2025-01-06T00:00:00+05:30", 100)
    bad[position] = value
    with pytest.raises(CandleError, match=f"candle of 2025-01-06.* has a {name} that is not a"):
        candles_frame([candle("2025-01-03T00:00:00+05:30", 100), bad])


def test_unreadable_time_raises():
    with pytest.raises(CandleError, match="a candle time is not ISO-8601"):
        candles_frame([candle("03/01/2025", 100)])


def test_candle_without_a_time_raises():
    with pytest.raises(CandleError):
        candles_frame([candle("2025-01-03T00:00:00+05:30", 100), candle(None, 101)])


def test_no_candles_is_an_empty_frame_with_the_same_columns_and_types():
    empty = candles_frame([])
    full = candles_frame([candle("2025-01-03T00:00:00+05:30", 100)])
    assert len(empty) == 0
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()


# --- merge_chunks --------------------------------------------------------------------------------


def test_candles_repeated_across_chunks_are_kept_once_and_sorted():
    later = candles_frame(
        [candle("2025-01-07T00:00:00+05:30", 104), candle("2025-01-06T00:00:00+05:30", 103)]
    )
    earlier = candles_frame(
        [candle("2025-01-06T00:00:00+05:30", 103), candle("2025-01-03T00:00:00+05:30", 102)]
    )
    merged = merge_chunks([later, earlier])
    assert merged["ts"].tolist() == [
        pd.Timestamp(2025, 1, 3),
        pd.Timestamp(2025, 1, 6),
        pd.Timestamp(2025, 1, 7),
    ]
    assert merged["close"].tolist() == [102.0, 103.0, 104.0]
    assert merged.index.tolist() == [0, 1, 2]


def test_a_later_chunk_answer_wins_for_the_same_time():
    first = candles_frame([candle("2025-01-03T00:00:00+05:30", 100)])
    second = candles_frame([candle("2025-01-03T00:00:00+05:30", 200)])
    assert merge_chunks([first, second])["close"].tolist() == [200.0]


def test_empty_chunks_among_others_add_nothing():
    data = candles_frame([candle("2025-01-03T00:00:00+05:30", 100)])
    merged = merge_chunks([candles_frame([]), data, candles_frame([])])
    pd.testing.assert_frame_equal(merged, data)


def test_no_chunks_is_an_empty_frame_shaped_like_candles():
    merged = merge_chunks([])
    full = candles_frame([candle("2025-01-03T00:00:00+05:30", 100)])
    assert len(merged) == 0
    assert merged.dtypes.to_dict() == full.dtypes.to_dict()
