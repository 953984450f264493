"""What the PostgreSQL store adds to the contract: secrets kept out of messages, whole
transactions, idempotent upserts, its schema and keys, threads sharing one pool.

Tests that need a server run against the one BREADTH_TEST_POSTGRES names, a fresh database each
(skipped, saying so, without one); the URL tests need no server.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.stores.base import StoreError
from breadth_assets.stores.postgres import store as postgres_store
from breadth_assets.stores.postgres.store import PostgresStore
from breadth_assets_tests.support import (
    add_tickers,
    make_prices,
    materialize_tickers,
    postgres_server,
    write_universe,
)

PASSWORD = "s3cr3t/Pa55@word"
ENCODED = "s3cr3t%2FPa55%40word"
UNREACHABLE = f"postgresql+psycopg2://alice:{ENCODED}@127.0.0.1:9/markets"


@pytest.fixture
def pg_store(postgres_database):
    store = PostgresStore(url=postgres_database())
    yield store
    store.close()


def _indicators(prices: pd.DataFrame) -> pd.DataFrame:
    return prices[["ticker", "date", "close", "high", "low"]].assign(
        **{name: np.nan for name in schema.INDICATOR_COLUMNS if name not in prices}
    )[list(schema.INDICATOR_COLUMNS)]


def _fetch(store: PostgresStore, query: str) -> list[tuple]:
    with store._cursor("a test's query") as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def _assert_no_secret(text: str) -> None:
    assert PASSWORD not in text
    assert ENCODED not in text


# --- the URL and its password never show ------------------------------------------------------


def test_an_unreachable_server_fails_fast_naming_host_port_and_database_only(caplog):
    store = PostgresStore(url=UNREACHABLE, connect_timeout_seconds=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreError) as raised:
        store.read_prices(["AAA"])
    message = str(raised.value)
    assert message.startswith("PostgreSQL at 127.0.0.1:9, database markets: connecting for ")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    for text in (message, repr(store), str(store), store.location(), caplog.text):
        _assert_no_secret(text)
    assert store.location() == "PostgreSQL database markets at 127.0.0.1:9"


def test_a_url_that_cannot_be_read_is_refused_without_repeating_it():
    for url in (f"alice:{PASSWORD}@nowhere", f"mysql://alice:{PASSWORD}@host/db"):
        with pytest.raises(StoreError) as raised:
            PostgresStore(url=url).read_breadth_tickers()
        _assert_no_secret(str(raised.value))
        assert "postgresql+psycopg2://user:password@host:5432/database" in str(raised.value)


def test_a_server_error_names_the_database_but_never_the_password():
    host = postgres_server().split("@", 1)[1]
    store = PostgresStore(url=f"postgresql+psycopg2://postgres:{ENCODED}@{host}/no_such_db")
    with pytest.raises(StoreError, match='database "no_such_db" does not exist') as raised:
        store.breadth_stale()
    _assert_no_secret(str(raised.value))
    assert f"PostgreSQL at {host}, database no_such_db" in str(raised.value)


def test_outside_dagster_an_envvar_url_is_read_from_the_environment(monkeypatch):
    store = PostgresStore(url=dg.EnvVar("BREADTH_POSTGRES_URL"), connect_timeout_seconds=2)
    monkeypatch.delenv("BREADTH_POSTGRES_URL", raising=False)
    assert store.location() == "PostgreSQL store: $BREADTH_POSTGRES_URL is not set"
    monkeypatch.setenv("BREADTH_POSTGRES_URL", UNREACHABLE)
    assert store.location() == "PostgreSQL database markets at 127.0.0.1:9"
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:9") as raised:
        store.read_breadth()
    _assert_no_secret(str(raised.value))


def test_the_password_appears_nowhere_in_a_failed_runs_events(instance, monkeypatch, tmp_path):
    monkeypatch.setenv("BREADTH_POSTGRES_URL", UNREACHABLE)
    store = PostgresStore(url=dg.EnvVar("BREADTH_POSTGRES_URL"), connect_timeout_seconds=2)
    universe = write_universe(tmp_path, ["AAA"], start="2024-03-01")
    add_tickers(instance, ["AAA"])
    result = materialize_tickers(instance, store, universe, "2024-03-28", tickers=["AAA"])
    assert not result.success
    text = "\n".join(str(record) for record in instance.all_logs(result.run_id))
    assert "127.0.0.1:9" in text
    _assert_no_secret(text)
    _assert_no_secret(str(instance.get_run_by_id(result.run_id)))


# --- transactions and upserts ----------------------------------------------------------------


def test_a_write_failing_in_its_second_table_leaves_every_table_and_the_mark_as_they_were(
    pg_store,
):
    pg_store.write({schema.PRICES: make_prices("AAA", "2024-01-01", [10.0])})
    before = pg_store.breadth_stale()
    bad = _indicators(make_prices("BBB", "2023-06-01", [5.0, 6.0]))
    bad.loc[1, "date"] = pd.NaT  # a NULL key: the server refuses it after prices went in
    with pytest.raises(StoreError, match=r"PostgreSQL at .*writing prices, indicators failed"):
        pg_store.write({schema.PRICES: make_prices("BBB", "2023-06-01", [5.0]), "indicators": bad})
    assert pg_store.read_prices(["AAA", "BBB"])["ticker"].tolist() == ["AAA"]
    assert pg_store.read_indicators(["BBB"]).empty
    assert pg_store.breadth_stale() == before


def test_a_batch_that_repeats_a_key_is_refused_whole(pg_store):
    repeated = pd.concat([make_prices("AAA", "2024-01-01", [1.0])] * 2)
    with pytest.raises(StoreError, match=r"rows for prices repeat a key \('ticker', 'date'\) 1"):
        pg_store.write({schema.BREADTH: _breadth_rows(["2024-01-01"]), schema.PRICES: repeated})
    assert pg_store.read_breadth().empty


def _breadth_rows(days: list[str], group: str = "ALL") -> pd.DataFrame:
    rows = pd.DataFrame({"date": pd.to_datetime(days)})
    filling = {"BIGINT": 1, "DOUBLE": 0.5, "BOOLEAN": False, "VARCHAR": group}
    for name, kind in schema.BREADTH_COLUMNS.items():
        if name != "date":
            rows[name] = filling[kind]
    return rows


def _members(days: list[str], group: str = "ALL") -> pd.DataFrame:
    frame = pd.DataFrame({"date": pd.to_datetime(days), "group_name": group})
    return frame.assign(event="up_4pct", ticker="AAA")


def test_writing_the_same_rows_twice_rewrites_no_row(pg_store):
    prices = make_prices("AAA", "2024-01-01", [10.0, 11.0, 0.1 + 0.2])
    pg_store.write({schema.PRICES: prices, schema.INDICATORS: _indicators(prices)})
    versions = _fetch(pg_store, "SELECT ticker, date, xmin::text FROM prices ORDER BY date")
    written = pg_store.write({schema.PRICES: prices, schema.INDICATORS: _indicators(prices)})
    assert written == {schema.PRICES: 3, schema.INDICATORS: 3}
    assert _fetch(pg_store, "SELECT ticker, date, xmin::text FROM prices ORDER BY date") == versions
    pd.testing.assert_frame_equal(pg_store.read_prices(["AAA"]), prices, check_dtype=False)
    assert pg_store.read_prices(["AAA"])["close"].iloc[2] == 0.1 + 0.2  # every bit of the double
    changed = prices.assign(volume=[1000.0, 7.0, 1000.0])
    pg_store.write({schema.PRICES: changed})
    after = _fetch(pg_store, "SELECT ticker, date, xmin::text FROM prices ORDER BY date")
    assert [a == b for a, b in zip(after, versions, strict=True)] == [True, False, True]


# --- tables, schema, threads ------------------------------------------------------------------


def test_the_tables_have_the_contracts_keys_as_primary_keys_and_postgres_types(pg_store):
    pg_store.read_breadth_tickers()
    keys = _fetch(
        pg_store,
        "SELECT c.relname, array_agg(a.attname::text ORDER BY k.i) FROM pg_index x "
        "JOIN pg_class c ON c.oid = x.indrelid CROSS JOIN unnest(x.indkey) WITH ORDINALITY k(n, i) "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n "
        "WHERE x.indisprimary GROUP BY c.relname",
    )
    assert {table: tuple(columns) for table, columns in keys if table in schema.KEYS} == (
        schema.KEYS
    )
    assert dict(keys)["breadth_universe"] == ["group_name", "ticker"]
    types = dict(
        _fetch(
            pg_store,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'intraday_prices'",
        )
    )
    assert types == {
        **{name: "double precision" for name in ("open", "high", "low", "close", "volume")},
        "ticker": "text",
        "unit": "text",
        "ts": "timestamp without time zone",
        "interval": "bigint",
    }


def test_a_schema_other_than_public_holds_the_tables(postgres_database):
    url = postgres_database()
    store = PostgresStore(url=url, schema_name="markets")
    try:
        store.write({schema.PRICES: make_prices("AAA", "2024-01-01", [1.0])})
        assert store.location().endswith(", schema markets")
        assert store.location().startswith("PostgreSQL database breadth_test_")
        assert len(store.read_prices(["AAA"])) == 1
        tables = _fetch(
            store, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'prices'"
        )
        assert tables == [("markets",)]
    finally:
        store.close()


def test_a_column_an_older_store_lacks_is_added_with_nulls(pg_store):
    prices = make_prices("AAA", "2024-01-01", [1.0])
    pg_store.write({schema.INDICATORS: _indicators(prices).assign(macd_ema_12=3.0)})
    with pg_store._cursor("dropping a column", write=True) as cursor:
        cursor.execute("ALTER TABLE indicators DROP COLUMN macd_ema_12")
    postgres_store._READY.clear()  # as a new process of a newer version would find it
    assert np.isnan(pg_store.read_indicators(["AAA"])["macd_ema_12"].iloc[0])


def test_threads_write_and_read_at_once_through_one_pool(pg_store):
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for batch in range(5):
                ticker = f"W{worker}B{batch}"
                prices = make_prices(ticker, "2020-01-01", list(range(1, 201)))
                pg_store.write({schema.PRICES: prices, schema.INDICATORS: _indicators(prices)})
                assert len(pg_store.read_tail(schema.PRICES, [ticker], 50)) == 50
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    prices = pg_store.read_prices([f"W{w}B{b}" for w in range(6) for b in range(5)])
    assert len(prices) == 6 * 5 * 200
    assert pg_store.breadth_stale().version == 6 * 5


def test_breadth_runs_replacing_the_universe_at_once_leave_one_of_theirs(pg_store):
    failures: list[BaseException] = []
    universes = [[f"T{i}" for i in range(worker, worker + 20)] for worker in range(4)]

    def replace(tickers: list[str]) -> None:
        day = dt.date(2024, 1, 2)
        try:
            for _ in range(10):
                pg_store.write_breadth(
                    _breadth_rows([]),
                    _members([]),
                    {"ALL": tickers, "G1": tickers[:3]},
                    day,
                    day,
                    pg_store.breadth_stale(),
                    None,
                )
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=replace, args=(u,)) for u in universes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    groups = pg_store.read_breadth_groups()
    last = [u for u in universes if sorted(u) == groups["ALL"]]
    assert len(last) == 1
    assert groups["G1"] == sorted(last[0][:3])  # written in the same transaction


# --- a store an older version made ------------------------------------------------------------


def _to_the_layout_before_groups(store: PostgresStore) -> None:
    """The breadth tables as a version before groups made them: breadth keyed by date without
    group_name (nor the columns that came with groups), the universe record keyed by ticker, no
    breadth_members."""
    with store._cursor("making the old layout", write=True) as cursor:
        cursor.execute(
            "ALTER TABLE breadth DROP CONSTRAINT breadth_pkey; "
            "ALTER TABLE breadth DROP COLUMN group_name, DROP COLUMN listed, "
            "DROP COLUMN partial, DROP COLUMN high_low_index, DROP COLUMN zweig_thrust; "
            "ALTER TABLE breadth ADD PRIMARY KEY (date); "
            "DROP TABLE breadth_members; DROP TABLE breadth_universe; "
            'CREATE TABLE breadth_universe (ticker TEXT COLLATE "C" PRIMARY KEY); '
            "INSERT INTO breadth_universe VALUES ('BBB'), ('AAA')"
        )
    postgres_store._READY.clear()  # as a new process of a newer version would find it


def test_a_store_from_before_groups_opens_with_its_rows_and_record_as_the_whole_universe(
    pg_store,
):
    pg_store.write({schema.BREADTH: _breadth_rows(["2024-01-02", "2024-01-03"])})
    _to_the_layout_before_groups(pg_store)

    read = pg_store.read_breadth()

    assert read["group_name"].tolist() == ["ALL", "ALL"]
    assert read["universe"].tolist() == [1, 1]
    assert read["listed"].isna().all() and read["partial"].isna().all()
    assert pg_store.read_breadth_groups() == {"ALL": ["AAA", "BBB"]}
    assert pg_store.read_breadth_members().empty
    keys = dict(
        _fetch(
            pg_store,
            "SELECT c.conrelid::regclass::text, array_agg(a.attname::text ORDER BY k.i) "
            "FROM pg_constraint c CROSS JOIN unnest(c.conkey) WITH ORDINALITY k(n, i) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n "
            "WHERE c.contype = 'p' GROUP BY c.conrelid",
        )
    )
    assert keys["breadth"] == ["date", "group_name"]
    assert keys["breadth_universe"] == ["group_name", "ticker"]


def test_a_store_from_before_groups_takes_other_groups_rows_of_the_same_days(pg_store):
    pg_store.write({schema.BREADTH: _breadth_rows(["2024-01-02"])})
    _to_the_layout_before_groups(pg_store)

    day = dt.date(2024, 1, 2)
    pg_store.write_breadth(
        _breadth_rows(["2024-01-02"], "G1"),
        _members(["2024-01-02"], "G1"),
        {"G1": ["AAA"]},
        day,
        day,
        pg_store.breadth_stale(),
        None,
    )

    assert pg_store.read_breadth(group=None)["group_name"].tolist() == ["ALL", "G1"]
    assert pg_store.read_breadth_groups() == {"ALL": ["AAA", "BBB"], "G1": ["AAA"]}
    assert len(pg_store.read_breadth_members(group="G1")) == 1
