"""Seconds to upsert a million rows into the PostgreSQL store, by three methods.

- `copy-binary`: what `PostgresStore.write` does: numpy builds COPY's binary format, COPY into a
  temporary table, one `INSERT ... SELECT ... ON CONFLICT (keys) DO UPDATE ... WHERE changed`.
- `copy-csv`: the same with the rows formatted by `DataFrame.to_csv` and COPY's CSV format.
- `execute-values`: `psycopg2.extras.execute_values` of `INSERT ... VALUES ... ON CONFLICT`,
  pages of 10,000 rows, the rows as Python tuples (NaN as None).

Each method writes into a fresh database three times, each one transaction: the rows into empty
tables (`new`), the same rows again (`same`), every row changed (`changed`).

    BREADTH_TEST_POSTGRES=postgresql+psycopg2://postgres@127.0.0.1:54329 \\
        .venv/bin/python benchmarks/postgres_upsert.py [--rows 1000000] [--table prices]
"""

from __future__ import annotations

import argparse
import io
import time
import uuid

import numpy as np
import pandas as pd
import psycopg2.extras
import sqlalchemy
from _instances import postgres_server

from breadth_assets import schema
from breadth_assets.stores.postgres import sql
from breadth_assets.stores.postgres.store import PostgresStore

METHODS = ("copy-binary", "copy-csv", "execute-values")


def _rows(table: str, rows: int) -> pd.DataFrame:
    """`rows` ticker-days: 2,000 bars per ticker, every number column a random double."""
    per_ticker = 2000
    tickers = np.repeat([f"T{i:05d}" for i in range(rows // per_ticker + 1)], per_ticker)[:rows]
    days = np.tile(pd.bdate_range("2010-01-01", periods=per_ticker).to_numpy(), len(tickers))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ticker": tickers, "date": days[:rows]})
    for name in list(schema.TABLES[table])[2:]:
        frame[name] = rng.uniform(1, 1000, rows)
    return frame


def _csv_upsert(store: PostgresStore, table: str, df: pd.DataFrame) -> None:
    columns = list(schema.TABLES[table])
    declared = ", ".join(f"{sql.q(n)} {sql.PG_TYPES[k]}" for n, k in schema.TABLES[table].items())
    text = df[columns].to_csv(index=False, header=False, date_format="%Y-%m-%d")
    with store._cursor("csv", write=True) as cursor:
        cursor.execute(f"CREATE TEMP TABLE incoming ({declared}) ON COMMIT DROP")
        cursor.copy_expert("COPY incoming FROM STDIN WITH (FORMAT csv)", io.StringIO(text))
        cursor.execute(sql.upsert_sql(table, "incoming", [sql.q(n) for n in columns]))


def _values_upsert(store: PostgresStore, table: str, df: pd.DataFrame) -> None:
    columns = list(schema.TABLES[table])
    out = df[columns].astype(object)
    out["date"] = df["date"].dt.date
    rows = list(out.where(df[columns].notna(), None).itertuples(index=False, name=None))
    insert = sql.upsert_sql(table, "x", ["x"]).split(" SELECT ")[0]
    conflict = sql.upsert_sql(table, "x", ["x"]).split(' FROM "x" ')[1]
    with store._cursor("values", write=True) as cursor:
        psycopg2.extras.execute_values(
            cursor, f"{insert} VALUES %s {conflict}", rows, page_size=10_000
        )


def _write(method: str, store: PostgresStore, table: str, df: pd.DataFrame) -> float:
    start = time.perf_counter()
    if method == "copy-binary":
        store.write({table: df})
    elif method == "copy-csv":
        _csv_upsert(store, table, df)
    else:
        _values_upsert(store, table, df)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--table", default=schema.PRICES, choices=sorted(schema.TABLES))
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    server = postgres_server()
    if server is None:
        raise SystemExit("set BREADTH_TEST_POSTGRES (bash scripts/postgres.sh start)")
    df = _rows(args.table, args.rows)
    changed = df.assign(**{name: df[name] + 1 for name in df.columns[2:]})
    print(f"{args.rows:,} rows of {args.table}; seconds per write (one transaction each)")
    print(f"{'method':<16}{'new':>9}{'same':>9}{'changed':>9}")
    admin = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    for method in args.methods.split(","):
        name = f"breadth_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        store = PostgresStore(url=f"{server}/{name}")
        store.read_breadth_tickers()  # creates the tables outside the measured writes
        try:
            times = [_write(method, store, args.table, frame) for frame in (df, df, changed)]
            print(f"{method:<16}" + "".join(f"{t:>9.1f}" for t in times), flush=True)
        finally:
            store.close()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


if __name__ == "__main__":
    main()
