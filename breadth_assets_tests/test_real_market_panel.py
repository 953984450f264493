"""The acceptance test of a real market: a panel on the XNYS calendar, run end to end through
Dagster, whose breadth equals an independent per-date computation of docs/design.md "Breadth".

The panel is built here, one CSV per ticker (`tickers: all`), with bars on XNYS's valid days only
and what real histories have: a day the calendar thinks open but on which no ticker traded (an
exchange closure it does not know), a listing and a delisting mid-history, halts, dirty rows, and
a history that ended two years before today.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pandas_market_calendars as mcal
import pytest

from breadth_assets import schema
from breadth_assets.defs.assets import build_breadth
from breadth_assets.defs.batches import range_tags
from breadth_assets.defs.deployment import price_source_for
from breadth_assets.defs.partitions import build_trading_days
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.stores.duckdb import DuckDBStore
from breadth_assets.universe.file import load_universe
from breadth_assets_tests.support import add_tickers, materialize_tickers, metadata_of

SEED = 20_240_601
TICKERS = ["ACME", "BOLT", "CRUX", "DUSK", "EPIC", "FERN", "GLOW"]
LISTED, DELISTED, HALTED = "EPIC", "DUSK", "FERN"
INDICATOR_INPUTS = [
    *("ema_20", "ema_50", "ema_200", "sma_20", "sma_40", "sma_50", "sma_200", "close_65"),
    *("rsi_14", "high_52w", "low_52w", "macd_stage"),
]


def _xnys_days(start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    return mcal.get_calendar("XNYS").valid_days(start, end).tz_localize(None)


# The history: about 2.5 years of XNYS days, the last one two years before today.
DAYS = _xnys_days(
    dt.date.today() - dt.timedelta(days=730 + 900), dt.date.today() - dt.timedelta(730)
)
START, LAST_BAR = DAYS[0], DAYS[-1]
CLOSURE = DAYS[300]  # open for the calendar, no ticker has a bar
LISTING = DAYS[120]  # LISTED's first bar
DELISTING = DAYS[-150]  # DELISTED's last bar
HALTS = [*DAYS[200:204], DAYS[400]]  # HALTED has no bar
FLAT = DAYS[350]  # every close unchanged: A + D = 0, the smoothed columns carry
HIGH_BELOW_CLOSE, DUPLICATE, NEGATIVE_VOLUME = DAYS[250], DAYS[260], DAYS[270]
BAD_DATE, BAD_DATE_AFTER = f"{LAST_BAR.year - 1}-02-30", DAYS[251]  # ACME: a line after that day


def _ticker_days(ticker: str) -> pd.DatetimeIndex:
    days = DAYS.drop(CLOSURE)
    if ticker == LISTED:
        days = days[days >= LISTING]
    if ticker == DELISTED:
        days = days[days <= DELISTING]
    if ticker == HALTED:
        days = days.drop(HALTS)
    return days


def _bars(ticker: str, days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    """A random walk in cents (so the CSV text is exact), with some unchanged closes."""
    n = len(days)
    close = np.round(5000 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n)))).astype(np.int64)
    for i in np.flatnonzero(rng.random(n) < 0.03):
        close[i] = close[i - 1] if i else close[i]
    close[days == FLAT] = close[np.roll(days == FLAT, -1)]
    previous = np.concatenate([close[:1], close[:-1]])
    open_ = np.round(previous * (1 + rng.normal(0, 0.004, n))).astype(np.int64)
    high = np.maximum(open_, close) + rng.integers(0, 80, n)
    low = np.maximum(np.minimum(open_, close) - rng.integers(0, 80, n), 1)
    volume = rng.integers(10_000, 1_000_000, n).astype(np.float64)
    cents = {"open": open_, "high": high, "low": low, "close": close}
    return pd.DataFrame(
        {"ticker": ticker, "date": days, **{k: v / 100 for k, v in cents.items()}, "volume": volume}
    )


def _line(day: pd.Timestamp, o: float, h: float, lo: float, c: float, v: float) -> str:
    return f"{day:%Y-%m-%d},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.0f}"


def _write_file(folder: Path, bars: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Writes the ticker's CSV with its dirty rows; returns the bars that should be kept and the
    rejections (`file:line: reason`) the source should report."""
    ticker = bars["ticker"].iat[0]
    file = folder / f"{ticker}.csv"
    lines, rejected, kept = ["Date,Open,High,Low,Close,Volume"], [], []
    for bar in bars.itertuples():
        o, h, lo, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume
        if ticker == "ACME" and bar.date == HIGH_BELOW_CLOSE:
            lines.append(_line(bar.date, lo, c - 0.01, lo, c, v))
            rejected.append(f"{file}:{len(lines)}: high {c - 0.01:.2f} is below close {c:.2f}")
            continue
        if ticker == "BOLT" and bar.date == NEGATIVE_VOLUME:
            lines.append(_line(bar.date, o, h, lo, c, -500))
            rejected.append(f"{file}:{len(lines)}: volume is negative: -500")
            continue
        lines.append(_line(bar.date, o, h, lo, c, v))
        kept.append(bar.Index)
        if ticker == "ACME" and bar.date == BAD_DATE_AFTER:
            lines.append(f"{BAD_DATE},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.0f}")
            rejected.append(
                f"{file}:{len(lines)}: unparsable date '{BAD_DATE}' (expected YYYY-MM-DD)"
            )
        if ticker == "BOLT" and bar.date == DUPLICATE:
            lines.append(_line(bar.date, o, h * 1.1, lo, c * 1.05, v))
            first = len(lines) - 1
            rejected.append(
                f"{file}:{len(lines)}: duplicate date {bar.date:%Y-%m-%d} (first on line {first})"
            )
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bars.loc[kept].reset_index(drop=True), rejected


def _universe_text(end_date: pd.Timestamp | None = None) -> str:
    end = f"end_date: {end_date:%Y-%m-%d}\n" if end_date is not None else ""
    return (
        f"market: XNYS\nstart_date: {START:%Y-%m-%d}\n{end}"
        "source:\n  kind: csv\n  path: prices\ntickers: all\n"
    )


@dataclass
class Panel:
    folder: Path
    bars: pd.DataFrame
    """The bars the source should keep: the test's own, without the refused rows."""
    rejected: list[str]
    store: DuckDBStore
    tickers_run: dg.ExecuteInProcessResult
    breadth_run: dg.ExecuteInProcessResult
    last_day: dt.date


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> Iterator[Panel]:
    """The panel written, its tickers and breadth (up to the last closed day) materialized once."""
    folder = tmp_path_factory.mktemp("xnys")
    (folder / "prices").mkdir()
    kept, rejected = [], []
    for number, ticker in enumerate(TICKERS):
        rng = np.random.default_rng([SEED, number])
        bars, refused = _write_file(folder / "prices", _bars(ticker, _ticker_days(ticker), rng))
        kept.append(bars)
        rejected += refused
    universe_path = folder / "universe.yaml"
    universe_path.write_text(_universe_text(), encoding="utf-8")
    universe = load_universe(universe_path)
    assert universe.symbols == TICKERS  # tickers: all, one per file
    store = DuckDBStore(path=str(folder / "breadth.duckdb"))
    last = universe.last_day()
    # The project's event log (dagster_home/dagster.yaml): a ranged breadth run over ~1,100 days
    # is ~2,200 events, which the stock SQLite event log writes one transaction at a time.
    events = {"module": "breadth_assets.runtime.instance.sqlite_event_log"}
    events |= {"class": "BatchingSqliteEventLogStorage", "config": {"base_dir": str(folder)}}
    overrides = {"event_log_storage": events}
    with dg.instance_for_test(temp_dir=str(folder), overrides=overrides) as instance:
        add_tickers(instance, TICKERS)
        tickers_run = materialize_tickers(
            instance, store, universe_path, last.isoformat(), TICKERS, price_source_for(universe)
        )
        assert tickers_run.success
        breadth_run = dg.materialize(
            [build_breadth(build_trading_days(universe), store_kind="duckdb")],
            instance=instance,
            resources={"store": store, "universe": UniverseFile(path=str(universe_path))},
            tags=range_tags(f"{START:%Y-%m-%d}", last.isoformat()),
        )
        bars = pd.concat(kept, ignore_index=True)
        yield Panel(folder, bars, rejected, store, tickers_run, breadth_run, last)


# --- the independent computation --------------------------------------------------------------


def _pct(count: int, of: int) -> float:
    return 100.0 * count / of if of else np.nan


def _above(close: float, average: float) -> bool:
    """docs/design.md: above by more than a billionth of the average."""
    return not np.isnan(average) and close - average > abs(average) * 1e-9


def _expected_breadth(ticker_days: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """docs/design.md "Groups", "Breadth columns", "McClellan oscillator and summation" and
    "Zweig breadth thrust EMA" for the whole universe, one date at a time; a date without any bar
    gets no row and moves nothing."""
    by_day = {day: rows for day, rows in ticker_days.groupby("date")}
    bar_days = {t: set(rows["date"]) for t, rows in ticker_days.groupby("ticker")}
    last_close: dict[str, float] = {}
    ad_line = net_line = 0
    seeded, e19, e39, summation, zweig = False, np.nan, np.nan, np.nan, np.nan
    out: list[dict] = []
    for day in dates:
        if day not in by_day:
            continue
        today = by_day[day]
        window = {day - pd.Timedelta(days=k) for k in range(14)}
        listed = sum(bool(window & days) for days in bar_days.values())
        partial = len(today) < 0.8 * listed
        a = d = u = up4 = down4 = 0
        up = down = 0.0
        for bar in today.itertuples():
            previous = last_close.get(bar.ticker)
            if previous is not None:
                a += bar.close > previous
                d += bar.close < previous
                u += bar.close == previous
                up += bar.volume if bar.close > previous else 0.0
                down += bar.volume if bar.close < previous else 0.0
                up4 += bar.close / previous >= 1.04
                down4 += bar.close / previous <= 0.96
            last_close[bar.ticker] = bar.close
        ad_line += a - d
        if a + d > 0 and not partial:
            x, share = 1000.0 * (a - d) / (a + d), a / (a + d)
            if seeded:
                e19, e39 = e19 + 0.10 * (x - e19), e39 + 0.05 * (x - e39)
                zweig = zweig + 2.0 / 11.0 * (share - zweig)
            else:
                e19 = e39 = x
                zweig, summation, seeded = share, 0.0, True
        if seeded and not partial:
            summation += e19 - e39
        highs = int((today["high"] > today["high_52w"]).sum())
        lows = int((today["low"] < today["low_52w"]).sum())
        net_line += highs - lows
        quarter = today["close"] / today["close_65"]
        stages = today["macd_stage"].dropna()
        row = {
            "date": day,
            "group_name": "ALL",
            "universe": len(today),
            "listed": listed,
            "partial": partial,
            "advancers": a,
            "decliners": d,
            "unchanged": u,
            "net_advances": a - d,
            "ad_line": ad_line,
            "ad_ratio": a / d if d else np.nan,
            "mcclellan_osc": e19 - e39 if seeded and not partial else np.nan,
            "mcclellan_sum": summation if seeded else np.nan,
            "new_highs_52w": highs,
            "new_lows_52w": lows,
            "net_new_highs": highs - lows,
            "net_new_highs_line": net_line,
            "record_high_pct": _pct(highs, highs + lows),
            "up_4pct": up4,
            "down_4pct": down4,
            "up_25pct_quarter": int((quarter >= 1.25).sum()),
            "down_25pct_quarter": int((quarter <= 0.75).sum()),
            "up_volume": up,
            "down_volume": down,
            "trin": (a / d) / (up / down) if a and d and up and down else np.nan,
            "up_volume_pct": 100.0 * up / (up + down) if up + down else np.nan,
            "rsi_overbought": int((today["rsi_14"] > 70).sum()),
            "rsi_oversold": int((today["rsi_14"] < 30).sum()),
            "zweig_ema": zweig if seeded else np.nan,
            "mcclellan_ema_19": e19 if seeded else np.nan,
            "mcclellan_ema_39": e39 if seeded else np.nan,
        }
        for kind, periods in (("ema", (20, 50, 200)), ("sma", (20, 40, 50, 200))):
            for n in periods:
                values = today[f"{kind}_{n}"]
                above = sum(_above(c, v) for c, v in zip(today["close"], values, strict=True))
                row[f"pct_above_{kind}_{n}"] = _pct(above, values.notna().sum())
        for k in range(1, 7):
            row[f"macd_stage_{k}"] = _pct(int((stages == k).sum()), len(stages))
        if partial:
            for name in row:
                if name.startswith(("pct_", "macd_stage_")) or name in (
                    "ad_ratio",
                    "record_high_pct",
                    "trin",
                    "up_volume_pct",
                ):
                    row[name] = np.nan
        recent = [r["record_high_pct"] for r in [*out[-9:], row]]
        defined = [v for v in recent if not np.isnan(v)]
        row["high_low_index"] = np.mean(defined) if defined and not partial else np.nan
        zweigs = [r["zweig_ema"] for r in [*out[-9:], row]]
        yesterday = out[-1]["zweig_ema"] if out else np.nan
        row["zweig_thrust"] = bool(
            zweig > 0.615 and not yesterday > 0.615 and any(z < 0.40 for z in zweigs)
        )
        out.append(row)
    return pd.DataFrame(out, columns=list(schema.BREADTH_COLUMNS))


def _ticker_days_of(panel: Panel) -> pd.DataFrame:
    """The panel's own bars with the indicators the project stored for them (one row each)."""
    stored = panel.store.read_indicators(TICKERS)[["ticker", "date", *INDICATOR_INPUTS]]
    rows = panel.bars.merge(stored, on=["ticker", "date"], how="outer", indicator=True)
    assert (rows.pop("_merge") == "both").all()
    return rows


# --- the tests ----------------------------------------------------------------------------------


def test_breadth_equals_an_independent_per_date_computation(panel):
    dates = _xnys_days(START, panel.last_day)
    expected = _expected_breadth(_ticker_days_of(panel), dates)
    flat = expected[expected["date"] == FLAT].iloc[0]
    assert flat["advancers"] + flat["decliners"] == 0 < flat["universe"]  # the panel has one
    got = panel.store.read_breadth()
    assert got["date"].tolist() == expected["date"].tolist()
    for column, sql_type in schema.BREADTH_COLUMNS.items():
        if column in ("date", "group_name"):
            continue
        if sql_type in ("BIGINT", "BOOLEAN"):
            assert got[column].tolist() == expected[column].astype(np.int64).tolist(), column
        else:
            np.testing.assert_allclose(
                got[column].to_numpy(float),
                expected[column].to_numpy(float),
                rtol=0,
                atol=1e-9,
                err_msg=column,
            )


def test_a_closure_the_calendar_does_not_know_has_no_row_and_is_reported(panel):
    rows = panel.store.read_breadth().set_index("date")
    assert CLOSURE not in rows.index
    metadata = metadata_of(panel.breadth_run, "breadth")
    assert metadata["closures_found"] == 1
    assert metadata["closures_found_days"] == f"{CLOSURE:%Y-%m-%d}"
    before, after = rows.loc[:CLOSURE].iloc[-1], rows.loc[CLOSURE:].iloc[0]
    # The day after the closure goes on from the day before it, one step and no more.
    a, d = after["advancers"], after["decliners"]
    x = 1000.0 * (a - d) / (a + d)
    assert after["ad_line"] == before["ad_line"] + after["net_advances"]
    e19 = before["mcclellan_ema_19"] + 0.10 * (x - before["mcclellan_ema_19"])
    e39 = before["mcclellan_ema_39"] + 0.05 * (x - before["mcclellan_ema_39"])
    assert after["mcclellan_ema_19"] == pytest.approx(e19, abs=1e-9)
    assert after["mcclellan_ema_39"] == pytest.approx(e39, abs=1e-9)
    assert after["mcclellan_sum"] == pytest.approx(before["mcclellan_sum"] + e19 - e39, abs=1e-9)
    zweig = before["zweig_ema"] + 2 / 11 * (a / (a + d) - before["zweig_ema"])
    assert after["zweig_ema"] == pytest.approx(zweig, abs=1e-9)


def test_breadth_ends_at_the_last_bar_and_reports_the_days_after_it(panel):
    rows = panel.store.read_breadth()
    assert panel.last_day > (LAST_BAR + pd.Timedelta(days=700)).date()
    assert rows["date"].max() == LAST_BAR
    metadata = metadata_of(panel.breadth_run, "breadth")
    assert metadata["no_bars_after"] == f"{LAST_BAR:%Y-%m-%d}"
    assert metadata["rows_written"] == len(DAYS) - 1  # every day but the closure


def test_a_ticker_counts_only_between_its_listing_and_its_delisting(panel):
    rows = panel.store.read_breadth().set_index("date")
    everyone = len(TICKERS)
    assert (rows.loc[: LISTING - pd.Timedelta(days=1), "universe"] == everyone - 1).all()
    assert (rows.loc[DELISTING + pd.Timedelta(days=1) :, "universe"] == everyone - 1).all()
    listing_day = rows.loc[LISTING]
    assert listing_day["universe"] == everyone  # on its first bar: in the universe only
    assert listing_day[["advancers", "decliners", "unchanged"]].sum() == everyone - 1
    assert rows.loc[DELISTING, "universe"] == everyone


def test_refused_dirty_rows_are_reported_and_the_other_rows_are_stored(panel):
    metadata = metadata_of(panel.tickers_run, "raw_prices")
    assert metadata["rows_rejected_in_run"] == len(panel.rejected) == 4
    by_partition = {
        e.materialization.partition: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in panel.tickers_run.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "raw_prices"
    }
    listed = [
        line
        for ticker in ("ACME", "BOLT")
        for line in by_partition[ticker]["rejected"].splitlines()
    ]
    assert sorted(listed) == sorted(f"- {line}" for line in panel.rejected)
    assert by_partition["ACME"]["rows_rejected"] == by_partition["BOLT"]["rows_rejected"] == 2
    for ticker in ("ACME", "BOLT"):
        stored = panel.store.read_prices([ticker])
        expected = panel.bars[panel.bars["ticker"] == ticker].reset_index(drop=True)
        pd.testing.assert_frame_equal(stored, expected, check_dtype=False)


@pytest.mark.parametrize("end_day", ["open", "holiday"])
def test_an_end_date_ends_the_trading_day_partitions_there(panel, end_day):
    last_open = DAYS[450]
    end = last_open
    if end_day == "holiday":  # the next weekday XNYS is closed on
        weekdays = pd.bdate_range(last_open, LAST_BAR)
        end = weekdays.difference(DAYS)[0]
        last_open = DAYS[DAYS.searchsorted(end) - 1]
    path = panel.folder / f"universe_{end_day}.yaml"
    path.write_text(_universe_text(end), encoding="utf-8")
    universe = load_universe(path)
    keys = build_trading_days(universe).get_partition_keys()
    assert keys[0] == f"{START:%Y-%m-%d}"
    assert keys[-1] == f"{last_open:%Y-%m-%d}"
    assert universe.last_day() == last_open.date()
