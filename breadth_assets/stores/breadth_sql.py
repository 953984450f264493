"""The DuckDB store's breadth count as SQL: docs/design.md "Breadth columns" in one query."""

from __future__ import annotations

from breadth_assets import schema
from breadth_assets.analytics.breadth import (
    EMA_PERIODS_ABOVE,
    MACD_STAGES,
    MOVER_DOWN,
    MOVER_UP,
    QUARTER_DOWN,
    QUARTER_UP,
    RSI_OVERBOUGHT,
    RSI_OVERSOLD,
    SMA_PERIODS_ABOVE,
)


def _count_expressions() -> tuple[str, ...]:
    """The aggregates over `bars` (a ticker-day with its `prev_close`) per day: the same SQL in
    DuckDB and PostgreSQL, so the PostgreSQL store's count (postgres_sql.py) shares them."""
    rising, falling = "close > prev_close", "close < prev_close"
    return (
        "count(*) AS universe",
        f"count(*) FILTER (WHERE {rising}) AS advancers",
        f"count(*) FILTER (WHERE {falling}) AS decliners",
        "count(*) FILTER (WHERE close = prev_close) AS unchanged",
        *(f"count(*) FILTER (WHERE close > ema_{n}) AS above_ema_{n}" for n in EMA_PERIODS_ABOVE),
        *(f"count(ema_{n}) AS with_ema_{n}" for n in EMA_PERIODS_ABOVE),
        *(f"count(*) FILTER (WHERE close > sma_{n}) AS above_sma_{n}" for n in SMA_PERIODS_ABOVE),
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


def _count_breadth_sql() -> str:
    """docs/design.md "Breadth columns" as one aggregate: the previous bar by `lag` over each
    ticker's rows (the last bar before the days joined in), counted on the asked days only."""
    inputs = ", ".join(
        f"p.{name}" if name == "volume" else f"i.{name}" for name in schema.BREADTH_INPUT_COLUMNS
    )
    return f"""
WITH inputs AS (
    SELECT {inputs}, TRUE AS counted
    FROM indicators i JOIN prices p ON p.ticker = i.ticker AND p.date = i.date
    WHERE i.ticker IN (SELECT unnest($tickers)) AND i.date BETWEEN $first AND $last
      AND p.ticker IN (SELECT unnest($tickers)) AND p.date BETWEEN $first AND $last
), previous AS (
    SELECT ticker, max(date) AS date, arg_max(close, date) AS close, FALSE AS counted
    FROM indicators WHERE ticker IN (SELECT unnest($tickers)) AND date < $first GROUP BY ticker
), bars AS (
    SELECT *, lag(close) OVER (PARTITION BY ticker ORDER BY date) AS prev_close
    FROM (SELECT * FROM inputs UNION ALL BY NAME SELECT * FROM previous)
)
SELECT date, {", ".join(COUNT_EXPRESSIONS)}
FROM bars WHERE counted AND date IN (SELECT unnest($days)) GROUP BY date ORDER BY date
"""


COUNT_BREADTH_SQL = _count_breadth_sql()
"""Parameters `$tickers`, `$first`, `$last`, `$days`; one row per asked day with ticker-days,
columns `date`, `COUNT_COLUMNS`, `VOLUME_COLUMNS` (analytics.breadth)."""
