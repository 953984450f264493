"""The MarketStore contract for breadth per group: its rows keyed by (date, group_name), who made
the events (`breadth_members`), each group's record of its tickers, the count per group.

Runs on every store kind as test_store_contract.py does (DuckDB always, MongoDB on mongomock,
PostgreSQL on the BREADTH_TEST_POSTGRES server).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.analytics.breadth_counts import count_breadth
from breadth_assets.analytics.breadth_events import breadth_members
from breadth_assets.schema import ALL_GROUP
from breadth_assets_tests.support import STORE_KINDS, drop_store, make_prices, make_store


@pytest.fixture(params=STORE_KINDS)
def store(request, tmp_path):
    store = make_store(request.param, tmp_path)
    yield store
    drop_store(store)


_FILLING = {"BIGINT": 1, "DOUBLE": 0.5, "BOOLEAN": False}


def _rows(days: list[str], group: str = ALL_GROUP, **values) -> pd.DataFrame:
    """Breadth rows of one group with every column: counts 1, numbers 0.5, flags False."""
    frame = pd.DataFrame({"date": pd.to_datetime(days)})
    for name, kind in schema.BREADTH_COLUMNS.items():
        if name == "group_name":
            frame[name] = group
        elif name != "date":
            frame[name] = values.get(name, _FILLING[kind])
    return frame[list(schema.BREADTH_COLUMNS)]


def _members(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    """`breadth_members` rows from (day, group, event, ticker)."""
    frame = pd.DataFrame(rows, columns=list(schema.BREADTH_MEMBER_COLUMNS))
    return frame.astype({"date": "datetime64[us]"})


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _keys(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(group, day) of breadth rows, in the order read."""
    return [(g, f"{d:%Y-%m-%d}") for g, d in zip(frame["group_name"], frame["date"], strict=True)]


def _member_keys(frame: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    return [
        (f"{d:%Y-%m-%d}", g, e, t)
        for d, g, e, t in frame[["date", "group_name", "event", "ticker"]].itertuples(index=False)
    ]


# --- reads ---------------------------------------------------------------------------------------


def test_breadth_reads_one_group_by_date_range_or_every_group_sorted_by_group_and_date(store):
    days = [f"2024-01-0{d}" for d in (2, 3, 4, 5, 8)]
    rows = pd.concat([_rows(days[:3], "G1"), _rows(days), _rows(days[1:2], "A1")])
    store.write({schema.BREADTH: rows.sample(frac=1.0, random_state=3)})

    assert _keys(store.read_breadth(_day("2024-01-03"), _day("2024-01-05"))) == [
        ("ALL", "2024-01-03"),
        ("ALL", "2024-01-04"),
        ("ALL", "2024-01-05"),
    ]
    assert _keys(store.read_breadth(group="G1"))[-1] == ("G1", "2024-01-04")
    assert _keys(store.read_breadth(end=_day("2024-01-03"), group=None)) == [
        ("A1", "2024-01-03"),
        ("ALL", "2024-01-02"),
        ("ALL", "2024-01-03"),
        ("G1", "2024-01-02"),
        ("G1", "2024-01-03"),
    ]


def test_breadth_round_trips_counts_as_integers_flags_as_booleans_and_nulls_as_nan(store):
    rows = _rows(["2024-01-02", "2024-01-03"], advancers=[3, 4], trin=[0.8, np.nan])
    rows["partial"] = [True, False]
    rows["zweig_thrust"] = [False, True]
    store.write({schema.BREADTH: rows})

    read = store.read_breadth()

    assert read["advancers"].dtype == np.int64
    assert read["advancers"].tolist() == [3, 4]
    assert read["partial"].dtype == bool
    assert read["partial"].tolist() == [True, False]
    assert read["zweig_thrust"].tolist() == [False, True]
    assert read.loc[0, "trin"] == 0.8
    assert np.isnan(read.loc[1, "trin"])
    assert read["group_name"].tolist() == ["ALL", "ALL"]


def test_the_breadth_row_before_a_day_is_the_groups_latest_stored_one(store):
    store.write(
        {
            schema.BREADTH: pd.concat(
                [_rows(["2024-01-02", "2024-01-03", "2024-01-08"]), _rows(["2024-01-04"], "G1")]
            )
        }
    )

    before = store.read_breadth_before(_day("2024-01-08"))
    assert (before["date"], before["group_name"]) == (pd.Timestamp("2024-01-03"), "ALL")
    in_group = store.read_breadth_before(_day("2024-01-08"), "G1")
    assert (in_group["date"], in_group["group_name"]) == (pd.Timestamp("2024-01-04"), "G1")
    assert store.read_breadth_before(_day("2024-01-02")) is None
    assert store.read_breadth_before(_day("2024-01-04"), "G1") is None


def test_the_breadth_tail_is_each_groups_last_rows_before_a_day(store):
    days = [f"2024-01-{d:02d}" for d in (2, 3, 4, 5, 8, 9)]
    store.write(
        {
            schema.BREADTH: pd.concat(
                [_rows(days), _rows(days[:2], "G1"), _rows(days[3:], "G2"), _rows(days[5:], "G3")]
            )
        }
    )

    tail = store.read_breadth_tail(_day("2024-01-09"), days=3)

    assert list(tail.columns) == list(schema.BREADTH_COLUMNS)
    assert _keys(tail) == [
        ("ALL", "2024-01-04"),
        ("ALL", "2024-01-05"),
        ("ALL", "2024-01-08"),
        ("G1", "2024-01-02"),
        ("G1", "2024-01-03"),
        ("G2", "2024-01-05"),
        ("G2", "2024-01-08"),
    ]


def test_breadth_members_read_by_range_and_group_sorted_by_date_group_event_and_ticker(store):
    members = _members(
        ("2024-01-03", "G1", "up_4pct", "BBB"),
        ("2024-01-02", "ALL", "up_4pct", "BBB"),
        ("2024-01-03", "ALL", "up_4pct", "BBB"),
        ("2024-01-03", "ALL", "new_high_52w", "CCC"),
        ("2024-01-03", "ALL", "up_4pct", "AAA"),
        ("2024-01-04", "ALL", "down_4pct", "AAA"),
    )
    store.write({schema.BREADTH_MEMBERS: members})

    read = store.read_breadth_members(_day("2024-01-03"), _day("2024-01-03"))

    assert list(read.columns) == list(schema.BREADTH_MEMBER_COLUMNS)
    assert _member_keys(read) == [
        ("2024-01-03", "ALL", "new_high_52w", "CCC"),
        ("2024-01-03", "ALL", "up_4pct", "AAA"),
        ("2024-01-03", "ALL", "up_4pct", "BBB"),
        ("2024-01-03", "G1", "up_4pct", "BBB"),
    ]
    assert len(store.read_breadth_members()) == 6
    assert _member_keys(store.read_breadth_members(group="G1")) == [
        ("2024-01-03", "G1", "up_4pct", "BBB")
    ]


# --- writes --------------------------------------------------------------------------------------

_DAYS = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]


def _stored_groups(store) -> None:
    """ALL, G1 and G2: a row and a member each day of _DAYS, and their records."""
    rows = pd.concat([_rows(_DAYS, group) for group in ("ALL", "G1", "G2")])
    members = _members(
        *((day, group, "up_4pct", "AAA") for day in _DAYS for group in ("ALL", "G1", "G2"))
    )
    groups = {"ALL": ["AAA", "BBB"], "G1": ["AAA"], "G2": ["AAA", "BBB"]}
    store.write_breadth(
        rows, members, groups, _day(_DAYS[0]), _day(_DAYS[-1]), store.breadth_stale(), None
    )


def test_writing_breadth_records_each_groups_tickers_and_settles_the_stale_mark(store):
    store.write({schema.PRICES: make_prices("AAA", "2024-01-02", [1.0])})
    store.write_breadth_tickers(["ZZZ"])
    seen = store.breadth_stale()

    store.write_breadth(
        _rows(["2024-01-02"]),
        _members(("2024-01-02", "ALL", "up_4pct", "BBB")),
        {"ALL": ["BBB", "AAA"], "G1": ["BBB"]},
        _day("2024-01-02"),
        _day("2024-01-02"),
        seen,
        None,
    )

    assert len(store.read_breadth()) == 1
    assert len(store.read_breadth_members()) == 1
    assert store.read_breadth_groups() == {"ALL": ["AAA", "BBB"], "G1": ["BBB"]}
    assert store.read_breadth_tickers() == ["AAA", "BBB"]
    assert store.breadth_stale().stale_from is None


def test_writing_breadth_replaces_only_the_given_groups_rows_and_members_in_its_days(store):
    _stored_groups(store)
    new_rows = pd.concat(
        [_rows(_DAYS[1:3], "ALL", universe=9), _rows(_DAYS[1:2], "G1", universe=9)]
    )
    new_members = _members((_DAYS[1], "ALL", "down_4pct", "BBB"))

    store.write_breadth(
        new_rows,
        new_members,
        {"ALL": ["AAA", "BBB"], "G1": ["AAA"]},
        _day(_DAYS[1]),
        _day(_DAYS[2]),
        store.breadth_stale(),
        None,
    )

    read = store.read_breadth(group=None)
    universe = {key: n for key, n in zip(_keys(read), read["universe"], strict=True)}
    assert universe == {
        **{("G2", day): 1 for day in _DAYS},
        ("ALL", _DAYS[0]): 1,
        ("ALL", _DAYS[1]): 9,
        ("ALL", _DAYS[2]): 9,
        ("ALL", _DAYS[3]): 1,
        ("G1", _DAYS[0]): 1,
        ("G1", _DAYS[1]): 9,
        ("G1", _DAYS[3]): 1,  # G1's row of _DAYS[2] was not computed again: it goes
    }
    assert _member_keys(store.read_breadth_members()) == [
        (_DAYS[0], "ALL", "up_4pct", "AAA"),
        (_DAYS[0], "G1", "up_4pct", "AAA"),
        (_DAYS[0], "G2", "up_4pct", "AAA"),
        (_DAYS[1], "ALL", "down_4pct", "BBB"),
        (_DAYS[1], "G2", "up_4pct", "AAA"),
        (_DAYS[2], "G2", "up_4pct", "AAA"),
        (_DAYS[3], "ALL", "up_4pct", "AAA"),
        (_DAYS[3], "G1", "up_4pct", "AAA"),
        (_DAYS[3], "G2", "up_4pct", "AAA"),
    ]


def test_two_spans_of_groups_are_replaced_in_one_transaction(store):
    with store._breadth_steps() as steps:
        steps.replace_rows(
            _day(_DAYS[0]),
            _day(_DAYS[1]),
            ["G1"],
            {
                schema.BREADTH: _rows(_DAYS[:2], "G1"),
                schema.BREADTH_MEMBERS: _members((_DAYS[0], "G1", "up_4pct", "AAA")),
            },
        )
        steps.replace_rows(
            _day(_DAYS[1]),
            _day(_DAYS[1]),
            ["G2"],
            {
                schema.BREADTH: _rows(_DAYS[1:2], "G2"),
                schema.BREADTH_MEMBERS: _members((_DAYS[1], "G2", "up_4pct", "AAA")),
            },
        )

    assert _keys(store.read_breadth(group=None)) == [
        ("G1", _DAYS[0]),
        ("G1", _DAYS[1]),
        ("G2", _DAYS[1]),
    ]
    assert len(store.read_breadth_members()) == 2


def test_recording_groups_tickers_keeps_the_other_groups_records(store):
    _stored_groups(store)

    seen = store.breadth_stale()
    store.write_breadth(
        _rows([]), _members(), {"G1": ["CCC", "BBB"]}, _day(_DAYS[3]), _day(_DAYS[3]), seen, None
    )
    store.write_breadth_tickers(["DDD"])

    assert store.read_breadth_groups() == {
        "ALL": ["DDD"],
        "G1": ["BBB", "CCC"],
        "G2": ["AAA", "BBB"],
    }
    assert len(store.read_breadth(group="G2")) == len(_DAYS)


def test_dropping_groups_removes_their_rows_members_and_records(store):
    _stored_groups(store)

    store.drop_breadth_groups(["G1", "G9"])

    assert set(store.read_breadth(group=None)["group_name"]) == {"ALL", "G2"}
    assert set(store.read_breadth_members()["group_name"]) == {"ALL", "G2"}
    assert store.read_breadth_groups() == {"ALL": ["AAA", "BBB"], "G2": ["AAA", "BBB"]}
    assert len(store.read_breadth(group="G2")) == len(_DAYS)


def test_deleting_breadth_days_removes_every_groups_rows_and_members_of_them(store):
    _stored_groups(store)

    store.delete_breadth([_day(_DAYS[1]), _day("2024-02-01")])

    kept = [day for day in _DAYS if day != _DAYS[1]]
    assert sorted({day for _, day in _keys(store.read_breadth(group=None))}) == kept
    assert sorted({day for day, *_ in _member_keys(store.read_breadth_members())}) == kept
    assert len(store.read_breadth(group="G1")) == 3


# --- the count -----------------------------------------------------------------------------------


def _random_ticker_days(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prices and indicators with listings, gaps (a ticker listed without a bar), ties, moves of
    4% and more, closes crossing their averages and NULL indicators."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-01", periods=60)
    frames = []
    for t in range(6):
        first, last = sorted(rng.integers(0, days.size, size=2))
        span = days[first : last + 1]
        span = span[rng.random(span.size) > 0.2]
        n = span.size
        close = np.round(100 + np.cumsum(rng.normal(0, 3, n)))
        frame = pd.DataFrame({"ticker": f"T{t}", "date": span, "close": close})
        frame["open"] = close
        frame["high"] = close + rng.integers(0, 3, n)
        frame["low"] = close - rng.integers(0, 3, n)
        frame["volume"] = np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 1000, n))
        averages = ("ema_20", "ema_50", "ema_200", "sma_20", "sma_40", "sma_50", "sma_200")
        for name in (*averages, "close_65", "high_52w", "low_52w", "rsi_14"):
            values = close + rng.normal(0, 2, n) if name != "rsi_14" else rng.uniform(0, 100, n)
            if name == "close_65":
                values = close * rng.uniform(0.7, 1.3, n)
            values[rng.random(n) < 0.2] = np.nan
            frame[name] = values
        frame["macd_stage"] = np.where(rng.random(n) < 0.2, np.nan, rng.integers(1, 7, n))
        frames.append(frame)
    # T6 crosses both SMAs on the first counted day: its previous bar is before the days.
    crossing = {"close": [100.0, 105.0], "sma_50": [101.0, 102.0], "sma_200": [99.0, 106.0]}
    frames.append(
        pd.DataFrame({"ticker": "T6", "date": pd.to_datetime(["2024-01-12", "2024-01-15"])}).assign(
            **crossing, open=100.0, high=105.0, low=100.0, volume=10.0
        )
    )
    rows = pd.concat(frames, ignore_index=True)
    indicators = rows.reindex(columns=list(schema.INDICATOR_COLUMNS))
    return rows[list(schema.PRICE_COLUMNS)], indicators


@pytest.mark.parametrize("seed", range(3))
def test_breadth_counts_and_members_per_group_equal_the_analytics_over_the_same_rows(store, seed):
    prices, indicators = _random_ticker_days(seed)
    store.write({schema.PRICES: prices, schema.INDICATORS: indicators})
    closures = {pd.Timestamp("2024-01-17"), pd.Timestamp("2024-02-05")}
    dates = pd.DatetimeIndex(
        [d for d in pd.bdate_range("2024-01-15", "2024-03-01") if d not in closures]
    )
    tickers = ["T0", "T1", "T2", "T3", "T5", "T6"]  # T4 is not in the universe
    groups = {"G1": ["T0", "T1", "T2"], "G2": ["T2", "T3", "T5", "T6"]}  # T2 is in both

    counts, events = store.count_breadth(tickers, dates, groups)

    rows = prices[["ticker", "date", "volume"]].merge(indicators, on=["ticker", "date"])
    rows = rows[rows["ticker"].isin(tickers) & (rows["date"] <= dates[-1])]
    rows = rows.sort_values(["ticker", "date"], ignore_index=True)
    expected = count_breadth(rows, dates, groups)
    assert (expected["listed"] > expected["universe"]).any()  # gaps are in the rows
    pd.testing.assert_frame_equal(counts, expected, check_dtype=False, rtol=1e-12)
    expected_events = breadth_members(rows, dates, groups)
    first_day = expected_events[expected_events["date"] == dates[0]]
    assert {"cross_above_sma_50", "cross_below_sma_200"} <= set(first_day["event"])
    assert set(expected_events["group_name"]) == {"ALL", "G1", "G2"}
    pd.testing.assert_frame_equal(_sorted(events), _sorted(expected_events), check_dtype=False)


def _sorted(members: pd.DataFrame) -> pd.DataFrame:
    """Members as plain strings in key order (stores and analytics give them in any order)."""
    out = members.astype({name: str for name in ("group_name", "event", "ticker")})
    return out.sort_values(["date", "group_name", "event", "ticker"], ignore_index=True)


def test_days_without_bars_count_zero_in_every_group_and_no_members(store):
    prices, indicators = _random_ticker_days(0)
    store.write({schema.PRICES: prices, schema.INDICATORS: indicators})
    dates = pd.bdate_range("2024-05-06", periods=3)  # weeks after the last bar

    counts, events = store.count_breadth(["T0", "T1"], dates, {"G1": ["T1"]})

    assert _keys(counts) == [(g, f"{d:%Y-%m-%d}") for g in ("ALL", "G1") for d in dates]
    assert (counts.drop(columns=["date", "group_name"]) == 0).all().all()
    assert events.empty
    assert list(events.columns) == list(schema.BREADTH_MEMBER_COLUMNS)


def test_bar_counts_are_the_tickers_with_an_indicators_row_per_date(store):
    prices, indicators = _random_ticker_days(1)
    store.write({schema.PRICES: prices, schema.INDICATORS: indicators})
    tickers = ["T0", "T2", "T3"]

    counts = store.read_bar_counts(tickers, dt.date(2024, 1, 10), dt.date(2024, 2, 20))

    chosen = indicators[indicators["ticker"].isin(tickers)]
    chosen = chosen[chosen["date"].between("2024-01-10", "2024-02-20")]
    expected = chosen.groupby("date").size()
    assert counts.index.tolist() == expected.index.tolist()
    assert counts.tolist() == expected.tolist()
