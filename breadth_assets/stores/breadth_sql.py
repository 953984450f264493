"""Breadth's SQL: the ticker-days the DuckDB store hands over to be counted, and the aggregates
and event conditions (docs/design.md "Breadth columns") with which the PostgreSQL store counts
in its own query."""

from __future__ import annotations

import numpy as np
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics.breadth_counts import (
    ABOVE_MARGIN,
    COUNT_COLUMNS,
    EMA_PERIODS_ABOVE,
    MACD_STAGES,
    MOVER_DOWN,
    MOVER_UP,
    QUARTER_DOWN,
    QUARTER_UP,
    RSI_OVERBOUGHT,
    RSI_OVERSOLD,
    SMA_PERIODS_ABOVE,
    VOLUME_COLUMNS,
)
from breadth_assets.analytics.breadth_events import EVENTS, SMA_CROSS_PERIODS


def above_sql(close: str, average: str) -> str:
    """analytics.breadth.above in SQL: NULL (not counted) where either is NULL."""
    return f"{close} - {average} > abs({average}) * {ABOVE_MARGIN!r}"


def below_sql(close: str, average: str) -> str:
    return f"{average} - {close} > abs({average}) * {ABOVE_MARGIN!r}"


def _count_expressions() -> tuple[str, ...]:
    """The aggregates over `bars` (a ticker-day with its `prev_close`) per day: the same SQL in
    DuckDB and PostgreSQL, so the PostgreSQL store's count (stores/postgres/sql.py) shares them."""
    rising, falling = "close > prev_close", "close < prev_close"
    return (
        "count(*) AS universe",
        f"count(*) FILTER (WHERE {rising}) AS advancers",
        f"count(*) FILTER (WHERE {falling}) AS decliners",
        "count(*) FILTER (WHERE close = prev_close) AS unchanged",
        *(
            f"count(*) FILTER (WHERE {above_sql('close', f'ema_{n}')}) AS above_ema_{n}"
            for n in EMA_PERIODS_ABOVE
        ),
        *(f"count(ema_{n}) AS with_ema_{n}" for n in EMA_PERIODS_ABOVE),
        *(
            f"count(*) FILTER (WHERE {above_sql('close', f'sma_{n}')}) AS above_sma_{n}"
            for n in SMA_PERIODS_ABOVE
        ),
        *(f"count(sma_{n}) AS with_sma_{n}" for n in SMA_PERIODS_ABOVE),
        f"count(*) FILTER (WHERE close / prev_close >= {MOVER_UP!r}) AS up_4pct",
        f"count(*) FILTER (WHERE close / prev_close <= {MOVER_DOWN!r}) AS down_4pct",
        f"count(*) FILTER (WHERE close / close_65 >= {QUARTER_UP!r}) AS up_25pct_quarter",
        f"count(*) FILTER (WHERE close / close_65 <= {QUARTER_DOWN!r}) AS down_25pct_quarter",
        "count(*) FILTER (WHERE high > high_52w) AS new_highs_52w",
        "count(*) FILTER (WHERE low < low_52w) AS new_lows_52w",
        f"count(*) FILTER (WHERE rsi_14 > {RSI_OVERBOUGHT}) AS rsi_overbought",
        f"count(*) FILTER (WHERE rsi_14 < {RSI_OVERSOLD}) AS rsi_oversold",
        "count(macd_stage) AS staged",
        *(f"count(*) FILTER (WHERE macd_stage = {k}) AS stage_{k}" for k in MACD_STAGES),
        f"coalesce(sum(volume) FILTER (WHERE {rising}), 0) AS up_volume",
        f"coalesce(sum(volume) FILTER (WHERE {falling}), 0) AS down_volume",
    )


COUNT_EXPRESSIONS = _count_expressions()


def event_conditions() -> dict[str, str]:
    """analytics.breadth.EVENTS as conditions over a bar with its previous bar's `prev_close`
    and `prev_sma_<n>`: the same SQL in DuckDB and PostgreSQL."""
    conditions = {
        "new_high_52w": "high > high_52w",
        "new_low_52w": "low < low_52w",
        "up_4pct": f"close / prev_close >= {MOVER_UP!r}",
        "down_4pct": f"close / prev_close <= {MOVER_DOWN!r}",
    }
    for n in SMA_CROSS_PERIODS:
        now_above, was_above = (
            above_sql("close", f"sma_{n}"),
            above_sql("prev_close", f"prev_sma_{n}"),
        )
        now_below, was_below = (
            below_sql("close", f"sma_{n}"),
            below_sql("prev_close", f"prev_sma_{n}"),
        )
        had = f"prev_sma_{n} IS NOT NULL AND prev_close IS NOT NULL"
        conditions[f"cross_above_sma_{n}"] = f"{now_above} AND {had} AND NOT ({was_above})"
        conditions[f"cross_below_sma_{n}"] = f"{now_below} AND {had} AND NOT ({was_below})"
    return conditions


EVENT_CONDITIONS = event_conditions()


def group_pairs(members: dict[str, list[str]]) -> dict[str, list[str]]:
    """The query's `group_names` and `group_tickers` parameters: the members pair by pair."""
    names = [name for name, tickers in members.items() for _ in tickers]
    tickers = [ticker for group in members.values() for ticker in group]
    return {"group_names": names, "group_tickers": tickers}


def split_counts(
    raw: pd.DataFrame, members: dict[str, list[str]], dates: pd.DatetimeIndex
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The query's rows as `count_breadth`'s counts (every group and date, zero where none) and
    the `breadth_members` rows its event lists hold."""
    raw = raw.copy()
    raw["date"] = pd.to_datetime(raw["date"])
    index = pd.MultiIndex.from_product([list(members), dates], names=["group_name", "date"])
    numbers = [*COUNT_COLUMNS, *VOLUME_COLUMNS]
    numbers.remove("listed")
    indexed = raw.set_index(["group_name", "date"])
    counts = indexed[[*numbers, "missing"]].reindex(index).fillna(0)
    for name in numbers:
        if name not in VOLUME_COLUMNS:
            counts[name] = counts[name].astype(np.int64)
    counts["listed"] = (counts["universe"] + counts["missing"]).astype(np.int64)
    counts = counts.reset_index()[["date", "group_name", *COUNT_COLUMNS, *VOLUME_COLUMNS]]
    parts = []
    for event in EVENTS:
        tickers = f"{event}_tickers"
        lists = raw[["date", "group_name", tickers]].dropna(subset=[tickers])
        exploded = lists.explode(tickers).dropna(subset=[tickers])
        parts.append(
            pd.DataFrame(
                {
                    "date": exploded["date"].to_numpy(),
                    "group_name": exploded["group_name"].to_numpy(),
                    "event": event,
                    "ticker": exploded[tickers].to_numpy(),
                }
            )
        )
    events = pd.concat(parts, ignore_index=True)
    events = events.sort_values(["date", "group_name", "event", "ticker"], ignore_index=True)
    return counts, events


def _breadth_rows_sql() -> str:
    """The ticker-days of a chunk and each ticker's last bar before it, for
        `analytics.breadth_counts.count_breadth`: tickers as their position in `$tickers` (numbers
        leave DuckDB many times faster than strings), in no order: numpy sorts numbers faster than
    DuckDB's ORDER BY hands them over."""
    later = [name for name in schema.BREADTH_INPUT_COLUMNS if name not in ("ticker", "date")]
    inputs = ", ".join(f"p.{name}" if name == "volume" else f"i.{name}" for name in later)
    previous = ", ".join(
        f"arg_max_null(i.{name}, i.date) AS {name}"
        for name in ("close", *(f"sma_{n}" for n in SMA_CROSS_PERIODS))
    )
    return f"""
WITH codes AS (
    SELECT unnest($tickers) AS ticker, generate_subscripts($tickers, 1) - 1 AS code
), inputs AS (
    SELECT c.code AS ticker, i.date, {inputs}
    FROM indicators i JOIN prices p ON p.ticker = i.ticker AND p.date = i.date
    JOIN codes c ON c.ticker = i.ticker
    WHERE i.date BETWEEN $first AND $last AND p.date BETWEEN $first AND $last
      AND i.ticker IN (SELECT unnest($tickers)) AND p.ticker IN (SELECT unnest($tickers))
), previous AS (
    SELECT c.code AS ticker, max(i.date) AS date, {previous}
    FROM indicators i JOIN codes c ON c.ticker = i.ticker WHERE i.date < $first GROUP BY c.code
)
SELECT * FROM inputs UNION ALL BY NAME SELECT * FROM previous
"""


BREADTH_ROWS_SQL = _breadth_rows_sql()
"""Parameters `$tickers`, `$first`, `$last`; columns `schema.BREADTH_INPUT_COLUMNS` with
`ticker` the position in `$tickers`."""
