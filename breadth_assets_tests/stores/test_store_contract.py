"""The MarketStore contract: every store behaves the same, whatever holds the data.

Runs on DuckDB always; on MongoDB against mongomock (a mock: no MongoDB server can be installed
on the CI machine), and against a real server whenever MONGODB_URI is set; on PostgreSQL against
the server BREADTH_TEST_POSTGRES names (skipped, saying so, without one), a fresh database each.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pymongo.errors import BulkWriteError

from breadth_assets import schema
from breadth_assets.stores.base import PREVIOUS_COLUMNS, StoreError
from breadth_assets_tests.support import STORE_KINDS, drop_store, make_prices, make_store


@pytest.fixture(params=STORE_KINDS)
def store(request, tmp_path):
    store = make_store(request.param, tmp_path)
    yield store
    drop_store(store)


def test_a_new_store_reads_empty_tables_with_the_contract_columns(store):
    assert list(store.read_prices(["AAA"]).columns) == list(schema.PRICE_COLUMNS)
    assert list(store.read_indicators(["AAA"]).columns) == list(schema.INDICATOR_COLUMNS)
    assert list(store.read_breadth().columns) == list(schema.BREADTH_COLUMNS)
    assert list(store.read_breadth_members().columns) == list(schema.BREADTH_MEMBER_COLUMNS)
    assert store.read_breadth_groups() == {}


def test_prices_round_trip_with_dates_and_nulls(store):
    prices = make_prices("AAA", "2024-01-01", [10.0, 11.0, 12.0])
    prices.loc[1, "volume"] = np.nan
    store.write({schema.PRICES: prices})
    read = store.read_prices(["AAA"])
    pd.testing.assert_frame_equal(read, prices, check_dtype=False)
    assert np.isnan(read.loc[1, "volume"])
    assert read["date"].dt.date.tolist() == [dt.date(2024, 1, d) for d in (1, 2, 3)]


def test_reads_return_only_the_asked_tickers_sorted_by_ticker_and_date(store):
    both = pd.concat(
        [make_prices("BBB", "2024-01-01", [5, 6]), make_prices("AAA", "2024-01-01", [1, 2])]
    )
    store.write({schema.PRICES: both.sample(frac=1.0, random_state=1)})
    assert store.read_prices(["AAA"])["ticker"].unique().tolist() == ["AAA"]
    read = store.read_prices(["AAA", "BBB"])
    assert read[["ticker", "date"]].equals(
        read[["ticker", "date"]].sort_values(["ticker", "date"], ignore_index=True)
    )


def test_writing_the_same_rows_twice_changes_nothing(store):
    prices = make_prices("AAA", "2024-01-01", [10.0, 11.0])
    store.write({schema.PRICES: prices})
    store.write({schema.PRICES: prices})
    pd.testing.assert_frame_equal(store.read_prices(["AAA"]), prices, check_dtype=False)


def test_writing_an_existing_key_replaces_its_row(store):
    store.write({schema.PRICES: make_prices("AAA", "2024-01-01", [10.0, 11.0])})
    store.write({schema.PRICES: make_prices("AAA", "2024-01-02", [99.0])})
    assert store.read_prices(["AAA"])["close"].tolist() == [10.0, 99.0]


def test_breadth_inputs_join_prices_and_indicators_up_to_the_end_date(store):
    prices = make_prices("AAA", "2024-01-01", [10.0, 11.0, 12.0])
    indicators = prices[["ticker", "date", "close", "high", "low"]].assign(
        **{name: 1.0 for name in schema.INDICATOR_COLUMNS if name not in prices}
    )
    store.write({schema.PRICES: prices, schema.INDICATORS: indicators})
    rows = store.read_breadth_inputs(["AAA"], dt.date(2024, 1, 2))
    assert list(rows.columns) == list(schema.BREADTH_INPUT_COLUMNS)
    assert len(rows) == 2
    assert rows["high"].tolist() == pytest.approx([10.1, 11.11])


def test_breadth_inputs_can_start_at_a_date(store):
    prices = make_prices("AAA", "2024-01-01", [10.0, 11.0, 12.0])
    indicators = prices[["ticker", "date", "close", "high", "low"]].assign(
        **{name: 1.0 for name in schema.INDICATOR_COLUMNS if name not in prices}
    )
    store.write({schema.PRICES: prices, schema.INDICATORS: indicators})
    rows = store.read_breadth_inputs(["AAA"], dt.date(2024, 1, 3), start=dt.date(2024, 1, 2))
    assert rows["date"].dt.day.tolist() == [2, 3]


def _indicator_rows(prices: pd.DataFrame) -> pd.DataFrame:
    return prices[["ticker", "date", "close", "high", "low"]].assign(
        **{name: np.nan for name in schema.INDICATOR_COLUMNS if name not in prices}
    )[list(schema.INDICATOR_COLUMNS)]


def test_indicators_round_trip_with_nulls(store):
    indicators = _indicator_rows(make_prices("AAA", "2024-01-01", [10.0, 11.0]))
    indicators.loc[1, "ema_10"] = 10.5
    store.write({schema.INDICATORS: indicators})
    pd.testing.assert_frame_equal(store.read_indicators(["AAA"]), indicators, check_dtype=False)


def test_write_reports_the_rows_written_per_table(store):
    prices = make_prices("AAA", "2024-01-01", [1.0, 2.0, 3.0])
    written = store.write({schema.PRICES: prices, schema.INDICATORS: _indicator_rows(prices)})
    assert written == {schema.PRICES: 3, schema.INDICATORS: 3}


def test_unknown_tickers_read_as_empty_frames(store):
    store.write({schema.PRICES: make_prices("AAA", "2024-01-01", [1.0])})
    assert store.read_prices(["ZZZ"]).empty
    assert store.read_breadth_inputs(["ZZZ"], dt.date(2024, 12, 31)).empty


def test_a_partly_failed_mongodb_bulk_write_names_the_lost_keys_and_a_rerun_completes_it(
    tmp_path, monkeypatch
):
    store = make_store("mongodb-mongomock", tmp_path)
    prices = make_prices("AAA", "2024-01-01", [1.0, 2.0, 3.0])
    collection_type = type(store._db()["prices"])
    real_bulk_write = collection_type.bulk_write

    def lose_the_second(self, operations, ordered=True, **kwargs):
        # Stands in for a server that rejects one document of the batch.
        real_bulk_write(self, [op for i, op in enumerate(operations) if i != 1], ordered=ordered)
        raise BulkWriteError({"writeErrors": [{"index": 1, "code": 11000, "errmsg": "lost"}]})

    monkeypatch.setattr(collection_type, "bulk_write", lose_the_second)
    with pytest.raises(StoreError, match=r"1 rows were not written \(prices AAA 2024-01-02\)"):
        store.write({schema.PRICES: prices})
    monkeypatch.setattr(collection_type, "bulk_write", real_bulk_write)
    store.write({schema.PRICES: prices})
    pd.testing.assert_frame_equal(store.read_prices(["AAA"]), prices, check_dtype=False)


# --- incremental reads and the breadth stale mark ------------------------------------------------


def test_read_tail_returns_each_tickers_last_bars_in_date_order(store):
    store.write(
        {
            schema.PRICES: pd.concat(
                [
                    make_prices("AAA", "2024-01-01", [1.0, 2.0, 3.0, 4.0, 5.0]),
                    make_prices("BBB", "2024-01-01", [7.0, 8.0]),
                ]
            )
        }
    )

    tail = store.read_tail(schema.PRICES, ["AAA", "BBB"], 3)

    assert tail["ticker"].tolist() == ["AAA", "AAA", "AAA", "BBB", "BBB"]
    assert tail["close"].tolist() == [3.0, 4.0, 5.0, 7.0, 8.0]


def test_read_tail_counts_bars_not_calendar_days_across_a_long_halt(store):
    before = make_prices("AAA", "2020-01-01", [1.0, 2.0, 3.0])
    after = make_prices("AAA", "2024-01-01", [4.0])
    store.write({schema.PRICES: pd.concat([before, after])})

    assert store.read_tail(schema.PRICES, ["AAA"], 3)["close"].tolist() == [2.0, 3.0, 4.0]


def test_previous_closes_are_each_tickers_last_indicators_row_before_the_day(store):
    aaa = _indicator_days("AAA", "2024-01-01", 4).assign(sma_50=[1.0, 2.0, 3.0, 4.0])
    aaa.loc[0, "sma_200"] = 7.0  # the last row before the day has none: NULL, not 7
    store.write({schema.INDICATORS: pd.concat([aaa, _indicator_days("BBB", "2024-01-03", 1)])})

    previous = store.read_previous_closes(["AAA", "BBB"], dt.date(2024, 1, 3))

    assert list(previous.columns) == list(PREVIOUS_COLUMNS)
    assert previous["ticker"].tolist() == ["AAA"]
    assert previous["date"].dt.date.tolist() == [dt.date(2024, 1, 2)]
    assert previous[["close", "sma_50"]].values.tolist() == [[11.0, 2.0]]
    assert np.isnan(previous.loc[0, "sma_200"])


def test_a_new_store_has_no_stale_breadth(store):
    assert store.breadth_stale().stale_from is None


def test_writing_prices_or_indicators_marks_breadth_stale_from_the_earliest_day_written(store):
    store.write({schema.PRICES: make_prices("AAA", "2024-01-03", [1.0])})
    store.write({schema.INDICATORS: _indicator_days("BBB", "2024-01-02", 2)})
    store.write({schema.PRICES: make_prices("AAA", "2024-01-08", [1.0])})

    assert store.breadth_stale().stale_from == dt.date(2024, 1, 2)


def test_settling_the_stale_mark_clears_it_unless_a_write_came_in_between(store):
    store.write({schema.PRICES: make_prices("AAA", "2024-01-03", [1.0])})
    seen = store.breadth_stale()
    store.settle_breadth_stale(seen, None)
    assert store.breadth_stale().stale_from is None

    store.write({schema.PRICES: make_prices("AAA", "2024-01-05", [1.0])})
    seen = store.breadth_stale()
    store.write({schema.PRICES: make_prices("AAA", "2024-01-04", [1.0])})
    store.settle_breadth_stale(seen, None)
    assert store.breadth_stale().stale_from == dt.date(2024, 1, 4)


def test_marking_tickers_stale_starts_at_their_first_indicators_row(store):
    store.write({schema.INDICATORS: _indicator_days("AAA", "2024-01-02", 3)})
    store.settle_breadth_stale(store.breadth_stale(), None)

    assert store.mark_breadth_stale(["AAA", "ZZZ"]) == dt.date(2024, 1, 2)
    assert store.breadth_stale().stale_from == dt.date(2024, 1, 2)
    assert store.mark_breadth_stale(["ZZZ"]) is None


def test_the_bar_span_is_the_first_and_last_indicators_date_of_the_tickers(store):
    store.write(
        {
            schema.INDICATORS: pd.concat(
                [_indicator_days("AAA", "2024-01-02", 3), _indicator_days("BBB", "2024-01-03", 4)]
            )
        }
    )

    assert store.bar_span(["AAA"]) == (dt.date(2024, 1, 2), dt.date(2024, 1, 4))
    assert store.bar_span(["AAA", "BBB", "ZZZ"]) == (dt.date(2024, 1, 2), dt.date(2024, 1, 8))
    assert store.bar_span(["ZZZ"]) == (None, None)


def _indicator_days(ticker: str, start: str, days: int) -> pd.DataFrame:
    return _indicator_rows(make_prices(ticker, start, [10.0 + i for i in range(days)]))


# --- corporate actions -------------------------------------------------------------------------


def _actions(ticker: str, *rows: tuple[str, str, str, float]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            (ticker, pd.Timestamp(day), kind, value, factor, "a.csv line 2")
            for day, kind, value, factor in rows
        ],
        columns=list(schema.CORPORATE_ACTION_COLUMNS),
    )
    return frame.astype({"ex_date": "datetime64[us]", "factor": "float64"})


def test_actions_round_trip_sorted_with_a_null_factor_for_one_not_applied(store):
    actions = _actions(
        "AAA", ("2024-01-03", "split", "1:2", 0.5), ("2024-02-01", "bonus", "1:1", np.nan)
    )
    store.write({schema.CORPORATE_ACTIONS: actions.iloc[::-1]})
    read = store.read_actions(["AAA"])
    pd.testing.assert_frame_equal(read, actions, check_dtype=False)
    assert np.isnan(read.loc[1, "factor"])
    assert store.read_actions(["BBB"]).empty
    assert len(store.read_actions()) == 2


def test_replacing_a_tickers_actions_removes_the_ones_no_longer_written(store):
    store.write(
        {
            schema.CORPORATE_ACTIONS: pd.concat(
                [
                    _actions("AAA", ("2024-01-03", "split", "1:2", 0.5)),
                    _actions("BBB", ("2024-01-04", "split", "1:5", 0.2)),
                ]
            )
        }
    )
    kept = _actions("AAA", ("2024-01-05", "bonus", "1:1", 0.5))
    store.write({schema.CORPORATE_ACTIONS: kept}, replace={schema.CORPORATE_ACTIONS: ["AAA"]})
    assert store.read_actions(["AAA"])["kind"].tolist() == ["bonus"]
    assert store.read_actions(["BBB"])["kind"].tolist() == ["split"]
    store.write({}, replace={schema.CORPORATE_ACTIONS: ["AAA"]})
    assert store.read_actions(["AAA"]).empty


def test_a_write_can_move_the_stale_mark_to_a_given_day_or_leave_it(store):
    prices = make_prices("AAA", "2024-01-01", [10.0, 11.0, 12.0])
    store.write({schema.PRICES: prices}, stale_from=None)
    assert store.breadth_stale().stale_from is None
    store.write({schema.PRICES: prices.assign(close=20.0)}, stale_from=dt.date(2024, 1, 2))
    assert store.breadth_stale().stale_from == dt.date(2024, 1, 2)


def test_adjusted_prices_scale_the_bars_before_each_applied_ex_date(store):
    store.write(
        {
            schema.PRICES: make_prices("AAA", "2024-01-01", [10.0, 10.0, 5.0]),
            schema.CORPORATE_ACTIONS: _actions(
                "AAA", ("2024-01-03", "split", "1:2", 0.5), ("2024-05-01", "bonus", "1:1", np.nan)
            ),
        }
    )
    adjusted = store.read_adjusted_prices(["AAA"])
    assert adjusted["close"].tolist() == [5.0, 5.0, 5.0]
    raw = store.read_prices(["AAA"])
    assert (adjusted["volume"] == raw["volume"] * [2, 2, 1]).all()


# --- instrument keys ---------------------------------------------------------------------------


def _keys(*rows: tuple[str, str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(ticker, key, pd.Timestamp(day)) for ticker, key, day in rows],
        columns=list(schema.INSTRUMENT_KEY_COLUMNS),
    )
    return frame.astype({"first_used": "datetime64[us]"})


def test_instrument_keys_read_back_by_ticker_in_the_order_they_were_first_used(store):
    old = ("AAA", "NSE_EQ|INE001A01011", "2020-01-01")
    new = ("AAA", "NSE_EQ|INE001A01029", "2024-07-01")
    other = ("BBB", "NSE_EQ|INE002A01019", "2021-03-01")
    store.write({schema.INSTRUMENT_KEYS: _keys(new, other, old)})
    read = store.read_instrument_keys(["AAA"])
    pd.testing.assert_frame_equal(read, _keys(old, new), check_dtype=False)
    assert store.read_instrument_keys(["AAA", "BBB"])["ticker"].tolist() == ["AAA", "AAA", "BBB"]


def test_a_store_without_instrument_keys_reads_none_with_the_contract_columns(store):
    read = store.read_instrument_keys(["AAA"])
    assert read.empty
    assert list(read.columns) == list(schema.INSTRUMENT_KEY_COLUMNS)


def test_recording_a_tickers_key_again_replaces_its_first_use(store):
    store.write({schema.INSTRUMENT_KEYS: _keys(("AAA", "NSE_EQ|INE001A01011", "2020-01-01"))})
    store.write({schema.INSTRUMENT_KEYS: _keys(("AAA", "NSE_EQ|INE001A01011", "2025-02-03"))})
    read = store.read_instrument_keys(["AAA"])
    assert read["first_used"].tolist() == [pd.Timestamp("2025-02-03")]


def test_instrument_keys_are_written_in_one_write_with_prices(store):
    prices = make_prices("AAA", "2024-01-03", [10.0, 11.0])
    keys = _keys(("AAA", "NSE_EQ|INE001A01011", "2024-01-03"))
    written = store.write({schema.PRICES: prices, schema.INSTRUMENT_KEYS: keys})
    assert written == {schema.PRICES: 2, schema.INSTRUMENT_KEYS: 1}
    assert len(store.read_prices(["AAA"])) == 2
    assert len(store.read_instrument_keys(["AAA"])) == 1


def test_writing_instrument_keys_alone_leaves_breadths_stale_mark_where_it_is(store):
    store.write({schema.INSTRUMENT_KEYS: _keys(("AAA", "NSE_EQ|INE001A01011", "2024-01-03"))})
    assert store.breadth_stale().stale_from is None
