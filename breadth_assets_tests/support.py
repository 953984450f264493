"""The helpers tests share: universe files, prices, materializing the assets, stores, Upstox bars.

Test modules import helpers from here only (never from one another or from a conftest); the
fixtures are in conftest.py. What the benchmarks share with the tests (FakeUpstox,
`write_demo_universe`) is in `breadth_assets_testing`.
"""

from __future__ import annotations

import math
import os
import textwrap
import uuid
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import mongomock
import numpy as np
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.defs.assets import build_breadth, build_ticker_assets
from breadth_assets.defs.batches import range_tags
from breadth_assets.defs.partitions import build_trading_days, tickers_partitions
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.sources.base import PriceSource
from breadth_assets.sources.demo.source import DemoSource
from breadth_assets.stores.base import MarketStore
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.stores.mongo import MongoStore
from breadth_assets.stores.postgres.store import PostgresStore
from breadth_assets.universe.file import UniverseError, load_universe
from breadth_assets_testing import write_demo_universe
from breadth_assets_testing.fake_upstox import FakeUpstox
from breadth_assets_testing.servers import create_postgres_database, drop_postgres_database

# --- the demo universe and the assets over it --------------------------------------------------

TICKERS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"]
ticker_assets = build_ticker_assets(batch_size=50, store_kind="duckdb")
# Breadth over the project's own universe file (DEMO from 2015): its calendar, its market.
PROJECT_UNIVERSE = Path(__file__).resolve().parents[1] / "universe.yaml"
breadth = build_breadth(build_trading_days(load_universe(PROJECT_UNIVERSE)), store_kind="duckdb")


def add_tickers(instance: dg.DagsterInstance, tickers: Sequence[str]) -> dg.DagsterInstance:
    """The instance with `tickers` added to the ticker partitions."""
    instance.add_dynamic_partitions(tickers_partitions.name, list(tickers))
    return instance


def write_universe(folder: Path, tickers: Sequence[str], start: str = "2023-01-02") -> Path:
    return write_demo_universe(folder, tickers, start)


def write_universe_text(tmp_path: Path, text: str) -> Path:
    """`text` (dedented) as the folder's universe.yaml."""
    path = tmp_path / "universe.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def universe_refusal(tmp_path: Path, text: str) -> tuple[Path, str]:
    """The file written and the message `load_universe` refuses it with."""
    path = write_universe_text(tmp_path, text)
    with pytest.raises(UniverseError) as error:
        load_universe(path)
    return path, str(error.value)


def materialize_tickers(
    instance: dg.DagsterInstance,
    store: DuckDBStore,
    universe_path: Path,
    end_date: str,
    tickers: Sequence[str] = TICKERS,
    source: PriceSource | None = None,
    selection: Sequence[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """One ranged run over `tickers`, which must be contiguous in the partition order."""
    return dg.materialize(
        [ticker_assets],
        selection=selection,
        instance=instance,
        resources={
            "store": store,
            "price_source": source or DemoSource(),
            "universe": UniverseFile(path=str(universe_path)),
        },
        tags=range_tags(tickers[0], tickers[-1]),
        run_config={"ops": {"ticker_assets": {"config": {"end_date": end_date}}}},
        raise_on_error=False,
    )


def materialize_breadth(
    instance: dg.DagsterInstance,
    store: DuckDBStore,
    first: str,
    last: str,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [breadth],
        instance=instance,
        resources={"store": store, "universe": UniverseFile(path=str(PROJECT_UNIVERSE))},
        tags=range_tags(first, last),
        raise_on_error=raise_on_error,
    )


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


# --- prices --------------------------------------------------------------------------------------


def make_prices(ticker: str, start: str, closes: list[float]) -> pd.DataFrame:
    """Weekday bars with the given closes and consistent OHLC."""
    closes_arr = np.asarray(closes, dtype=float)
    return pd.DataFrame(
        {
            "ticker": ticker,
            "date": pd.bdate_range(start, periods=len(closes_arr)),
            "open": closes_arr,
            "high": closes_arr * 1.01,
            "low": closes_arr * 0.99,
            "close": closes_arr,
            "volume": 1000.0,
        }
    )


def expected_bars(server: FakeUpstox, ticker: str, instrument_key: str, start, end) -> pd.DataFrame:
    """The daily bars the fake serves for the key, as the price source returns them."""
    candles = server.expected(instrument_key, "days", 1, start, end)
    return pd.DataFrame(
        {
            "ticker": ticker,
            "date": [pd.Timestamp(c[0][:10]) for c in candles],
            "open": [float(c[1]) for c in candles],
            "high": [float(c[2]) for c in candles],
            "low": [float(c[3]) for c in candles],
            "close": [float(c[4]) for c in candles],
            "volume": [float(c[5]) for c in candles],
        }
    )


# --- a panel with the life of a real market, for the checks ------------------------------------
# Hand-checkable: 40 weekdays (the DEMO calendar), 2024-01-01 to 2024-02-23, and one of them,
# PANEL_CLOSURE (2024-01-15), a holiday the calendar does not know: no ticker has a bar on it.

PANEL_DAYS = pd.bdate_range("2024-01-01", periods=40)
PANEL_CLOSURE = PANEL_DAYS[10]
PANEL_OPEN = PANEL_DAYS.delete(10)
PANEL_LIVES = {
    **{f"STEADY{i}": PANEL_OPEN for i in range(8)},
    "LATE": PANEL_DAYS[15:],  # listed mid-history
    "GONE": PANEL_DAYS[:13].drop(PANEL_CLOSURE),  # delisted mid-history
    "HALT": PANEL_OPEN.drop(PANEL_DAYS[20:26]),  # a real gap: 6 open days
    "SHORT": PANEL_OPEN.drop(PANEL_DAYS[5:10]),  # 5 days, then the closure: 5 open days
}
"""Each ticker's bar days. Every open day, more than 90% of the tickers listed on it have a bar."""
PANEL_TICKERS = sorted(PANEL_LIVES)


def panel_prices(lives: dict[str, pd.DatetimeIndex] = PANEL_LIVES) -> pd.DataFrame:
    """Consistent bars on each ticker's days, closes moving 1% a day (never a suspected split)."""
    frames = []
    for ticker, days in lives.items():
        closes = 100 * 1.01 ** np.arange(len(days))
        frame = make_prices(ticker, "2024-01-01", list(closes))
        frames.append(frame.assign(date=days))
    return pd.concat(frames, ignore_index=True)


def panel_breadth(prices: pd.DataFrame) -> pd.DataFrame:
    """Breadth rows as the breadth asset writes them: one per day with a bar, none on a closure
    found in the data; `universe` counts the bars, the rest is filler within its ranges."""
    counts = prices.groupby("date").size()
    rows = pd.DataFrame({"date": counts.index, "universe": counts.to_numpy()})
    for column in schema.BREADTH_COLUMNS:
        if column not in rows.columns:
            rows[column] = 50.0 if column.startswith(("pct_", "macd_stage_")) else 0
    return rows


# --- the stores the contract runs on -------------------------------------------------------------
# A MongoDB server cannot be installed on the CI machine; tests that need one use a mock, named as
# such: MongoStore's own code against mongomock's in-memory MongoDB. The store contract also runs
# against a real server whenever MONGODB_URI is set, and on PostgreSQL whenever
# BREADTH_TEST_POSTGRES names a server (a fresh database per store).

_MOCK_SERVERS: dict[str, mongomock.MongoClient] = {}


def _accept_sort(method):
    """mongomock 4.3 predates the `sort` argument pymongo 4.11+ passes for each bulk operation."""

    def wrapper(self, *args, sort=None, **kwargs):
        return method(self, *args, **kwargs)

    return wrapper


for _name in ("add_replace", "add_update"):
    _method = getattr(mongomock.collection.BulkOperationBuilder, _name)
    setattr(mongomock.collection.BulkOperationBuilder, _name, _accept_sort(_method))


class MongomockStore(MongoStore):
    """MongoStore's own code, with mongomock's in-memory client in place of a server (a mock)."""

    def _client(self) -> mongomock.MongoClient:
        return _MOCK_SERVERS.setdefault(self.uri, mongomock.MongoClient())


def make_store(kind: str, tmp_path) -> MarketStore:
    """A new empty store of the kind; `drop_store` removes what a server holds of it. `postgres`
    is a fresh database on the `BREADTH_TEST_POSTGRES` server (skipped, saying so, without one)."""
    if kind == "duckdb":
        return DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    if kind == "postgres":
        return PostgresStore(url=create_postgres_database(postgres_server()))
    database = f"breadth_test_{uuid.uuid4().hex[:12]}"
    if kind == "mongodb-mongomock":
        return MongomockStore(uri=f"mongodb://mock-{uuid.uuid4().hex}/", database=database)
    return MongoStore(uri=os.environ["MONGODB_URI"], database=database)


def drop_store(store: MarketStore) -> None:
    """Drops the database a test store made on a real server (PostgreSQL, MongoDB)."""
    if isinstance(store, PostgresStore):
        store.close()
        drop_postgres_database(store.url)
    elif isinstance(store, MongoStore) and not isinstance(store, MongomockStore):
        store._client().drop_database(store.database)


STORE_KINDS = [
    "duckdb",
    "mongodb-mongomock",
    pytest.param(
        "mongodb-real",
        marks=pytest.mark.skipif("MONGODB_URI" not in os.environ, reason="MONGODB_URI is not set"),
    ),
    "postgres",
]


# --- PostgreSQL test databases --------------------------------------------------------------------

POSTGRES_ENV = "BREADTH_TEST_POSTGRES"


def postgres_server() -> str:
    """The test PostgreSQL server's URL without a database (`BREADTH_TEST_POSTGRES`, as
    `scripts/postgres.sh start` serves it); skips without one, except on CI, where it fails."""
    server = os.environ.get(POSTGRES_ENV, "").rstrip("/")
    if not server:
        if os.environ.get("CI"):
            pytest.fail(f"CI must set {POSTGRES_ENV} (bash scripts/postgres.sh start)")
        pytest.skip(f"{POSTGRES_ENV} is not set (bash scripts/postgres.sh start)")
    return server


# --- breadth in plain Python, the reference of every breadth test -----------------------------


def reference_mcclellan_and_zweig(
    a_and_d: list[tuple[int, int]], skipped: Sequence[bool] | None = None
):
    """The recursion of docs/design.md "Breadth", written out day by day: the oscillator, the
    summation, the Zweig EMA and the two EMAs the oscillator is made of. A `skipped` (partial)
    day moves nothing: no oscillator, the rest as the day before."""
    osc, total, zweig, fast, slow = [], [], [], [], []
    e19 = e39 = z = None
    running = 0.0
    skipped = skipped or [False] * len(a_and_d)
    for (a, d), skip in zip(a_and_d, skipped, strict=True):
        if a + d and not skip:
            x, share = 1000 * (a - d) / (a + d), a / (a + d)
            if e19 is None:
                e19, e39, z = x, x, share
            else:
                e19, e39 = e19 + 0.1 * (x - e19), e39 + 0.05 * (x - e39)
                z = z + 2 / 11 * (share - z)
        if e19 is None:
            for series in (osc, total, zweig, fast, slow):
                series.append(np.nan)
        else:
            if not skip:
                running += e19 - e39
            osc.append(np.nan if skip else e19 - e39)
            total.append(running)
            zweig.append(z)
            fast.append(e19)
            slow.append(e39)
    return osc, total, zweig, fast, slow


def _is_above(close: float, average: float) -> bool:
    """Above by more than a billionth of the average: a tie in the last bits is not above."""
    return not math.isnan(average) and close - average > abs(average) * 1e-9


def _is_below(close: float, average: float) -> bool:
    return not math.isnan(average) and average - close > abs(average) * 1e-9


def reference_breadth(
    rows: pd.DataFrame,
    dates: list[pd.Timestamp],
    groups: dict[str, list[str]] | None = None,
    min_coverage: float = 0.8,
) -> pd.DataFrame:
    """docs/design.md "Breadth" in plain Python, one ticker-day at a time, for the whole
    universe (ALL) and each of `groups`: a date without any bar is no breadth day; a group has a
    row on a breadth day when one of its tickers has a bar in the 14 days up to it, partial
    (percentages NULL, recursions still) when fewer than `min_coverage` of those have one that
    day."""
    records = sorted(rows.to_dict("records"), key=lambda r: (r["ticker"], r["date"]))
    previous = {}
    for before, bar in zip([None, *records], records, strict=False):
        same = before is not None and before["ticker"] == bar["ticker"]
        previous[bar["ticker"], bar["date"]] = before["close"] if same else None
    bar_days: dict[str, set] = {}
    on_day: dict = {}
    for r in records:
        bar_days.setdefault(r["ticker"], set()).add(r["date"])
        on_day.setdefault(r["date"], []).append(r)
    everyone = sorted(bar_days)
    all_groups = {"ALL": everyone, **(groups or {})}
    days = [day for day in dates if day in on_day]
    frames = []
    for name, members in all_groups.items():
        out, kept = [], []
        for day in days:
            window = [day - pd.Timedelta(days=k) for k in range(14)]
            listed = sum(any(b in bar_days.get(t, ()) for b in window) for t in members)
            if not listed:
                continue
            today = [r for r in on_day[day] if r["ticker"] in members]
            partial = len(today) < min_coverage * listed
            out.append(_reference_day(today, previous, day, listed, partial))
            kept.append(day)
        frames.append(_reference_group(out, kept, name))
    return pd.concat(frames, ignore_index=True)


def _reference_day(today, previous, day, listed, partial) -> dict:
    nan = np.nan
    prev = [previous[r["ticker"], day] for r in today]
    up = [r for r, p in zip(today, prev, strict=True) if p is not None and r["close"] > p]
    down = [r for r, p in zip(today, prev, strict=True) if p is not None and r["close"] < p]
    flat = [r for r, p in zip(today, prev, strict=True) if p is not None and r["close"] == p]
    a, d = len(up), len(down)
    up_volume, down_volume = sum(r["volume"] for r in up), sum(r["volume"] for r in down)
    row = {
        "universe": len(today),
        "listed": listed,
        "partial": partial,
        "advancers": a,
        "decliners": d,
        "unchanged": len(flat),
        "net_advances": a - d,
        "ad_ratio": a / d if d and not partial else nan,
        "new_highs_52w": sum(r["high"] > r["high_52w"] for r in today),
        "new_lows_52w": sum(r["low"] < r["low_52w"] for r in today),
        "up_volume": up_volume,
        "down_volume": down_volume,
        "trin": (a / d) / (up_volume / down_volume)
        if a and d and up_volume and down_volume and not partial
        else nan,
        "rsi_overbought": sum(r["rsi_14"] > 70 for r in today),
        "rsi_oversold": sum(r["rsi_14"] < 30 for r in today),
    }
    highs, lows = row["new_highs_52w"], row["new_lows_52w"]
    row["net_new_highs"] = highs - lows
    row["record_high_pct"] = 100 * highs / (highs + lows) if highs + lows and not partial else nan
    both = up_volume + down_volume
    row["up_volume_pct"] = 100 * up_volume / both if both and not partial else nan
    moves = [r["close"] / p for r, p in zip(today, prev, strict=True) if p is not None]
    row["up_4pct"] = sum(move >= 1.04 for move in moves)
    row["down_4pct"] = sum(move <= 0.96 for move in moves)
    quarters = [r["close"] / r.get("close_65", nan) for r in today]
    row["up_25pct_quarter"] = sum(move >= 1.25 for move in quarters)
    row["down_25pct_quarter"] = sum(move <= 0.75 for move in quarters)
    for kind, periods in (("sma", (20, 40, 50, 200)), ("ema", (20, 50, 200))):
        for n in periods:
            having = [r for r in today if not math.isnan(r.get(f"{kind}_{n}", nan))]
            above = sum(_is_above(r["close"], r[f"{kind}_{n}"]) for r in having)
            share = 100 * above / len(having) if having and not partial else nan
            row[f"pct_above_{kind}_{n}"] = share
    staged = [r["macd_stage"] for r in today if not math.isnan(r["macd_stage"])]
    for k in range(1, 7):
        share = 100 * staged.count(k) / len(staged) if staged and not partial else nan
        row[f"macd_stage_{k}"] = share
    return row


def _reference_group(out: list[dict], days: list, name: str) -> pd.DataFrame:
    """The cumulative columns and the 10-day windows over one group's rows."""
    ad_line = net_line = 0
    for row in out:
        ad_line += row["net_advances"]
        net_line += row["net_new_highs"]
        row["ad_line"], row["net_new_highs_line"] = ad_line, net_line
    osc, total, zweig, fast, slow = reference_mcclellan_and_zweig(
        [(r["advancers"], r["decliners"]) for r in out], [r["partial"] for r in out]
    )
    for i, row in enumerate(out):
        window = [r["record_high_pct"] for r in out[max(0, i - 9) : i + 1]]
        window = [v for v in window if not math.isnan(v)]
        index = sum(window) / len(window) if window and not row["partial"] else np.nan
        row["high_low_index"] = index
        recent = zweig[max(0, i - 9) : i + 1]
        yesterday = zweig[i - 1] if i else np.nan
        row["zweig_thrust"] = bool(
            zweig[i] > 0.615
            and not yesterday > 0.615
            and any(z < 0.40 for z in recent if not math.isnan(z))
        )
    columns = [c for c in schema.BREADTH_COLUMNS if c not in ("date", "group_name")]
    frame = pd.DataFrame(
        out,
        columns=[
            c
            for c in columns
            if c
            not in (
                "mcclellan_osc",
                "mcclellan_sum",
                "zweig_ema",
                "mcclellan_ema_19",
                "mcclellan_ema_39",
            )
        ],
    ).assign(
        date=pd.DatetimeIndex(days),
        group_name=name,
        mcclellan_osc=osc,
        mcclellan_sum=total,
        zweig_ema=zweig,
        mcclellan_ema_19=fast,
        mcclellan_ema_39=slow,
    )
    frame = frame[list(schema.BREADTH_COLUMNS)]
    return frame.astype({"partial": bool, "zweig_thrust": bool})


def reference_members(
    rows: pd.DataFrame, dates: list[pd.Timestamp], groups: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """docs/design.md "breadth_members" in plain Python: who made each event, per group."""
    records = sorted(rows.to_dict("records"), key=lambda r: (r["ticker"], r["date"]))
    out = []
    everyone = sorted({r["ticker"] for r in records})
    all_groups = {"ALL": everyone, **(groups or {})}
    for before, bar in zip([None, *records], records, strict=False):
        if bar["date"] not in dates:
            continue
        prev = before if before is not None and before["ticker"] == bar["ticker"] else None
        events = []
        if bar["high"] > bar["high_52w"]:
            events.append("new_high_52w")
        if bar["low"] < bar["low_52w"]:
            events.append("new_low_52w")
        if prev is not None and bar["close"] / prev["close"] >= 1.04:
            events.append("up_4pct")
        if prev is not None and bar["close"] / prev["close"] <= 0.96:
            events.append("down_4pct")
        for n in (50, 200):
            now, was = bar[f"sma_{n}"], np.nan if prev is None else prev[f"sma_{n}"]
            if prev is not None and not math.isnan(was):
                if _is_above(bar["close"], now) and not _is_above(prev["close"], was):
                    events.append(f"cross_above_sma_{n}")
                if _is_below(bar["close"], now) and not _is_below(prev["close"], was):
                    events.append(f"cross_below_sma_{n}")
        for name, members in all_groups.items():
            if bar["ticker"] in members:
                out.extend((bar["date"], name, event, bar["ticker"]) for event in events)
    frame = pd.DataFrame(out, columns=["date", "group_name", "event", "ticker"])
    return frame.sort_values(["date", "group_name", "event", "ticker"], ignore_index=True)
