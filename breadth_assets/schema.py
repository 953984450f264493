"""The data contract of DESIGN.md as code: table names, key columns and column types.

Every module that names a table or a column takes it from here, so a rename happens in one place.
DataFrames carry `date` as a timezone-naive datetime64 at midnight; SQL types are DuckDB's.
"""

from __future__ import annotations

PRICES = "prices"
INDICATORS = "indicators"
BREADTH = "breadth"

PRICE_COLUMNS: dict[str, str] = {
    "ticker": "VARCHAR",
    "date": "DATE",
    "open": "DOUBLE",
    "high": "DOUBLE",
    "low": "DOUBLE",
    "close": "DOUBLE",
    "volume": "DOUBLE",
}

INDICATOR_COLUMNS: dict[str, str] = {
    "ticker": "VARCHAR",
    "date": "DATE",
    "close": "DOUBLE",
    "ema_10": "DOUBLE",
    "ema_20": "DOUBLE",
    "ema_50": "DOUBLE",
    "ema_100": "DOUBLE",
    "ema_200": "DOUBLE",
    "rsi_14": "DOUBLE",
    "macd": "DOUBLE",
    "macd_signal": "DOUBLE",
    "macd_hist": "DOUBLE",
    "macd_stage": "DOUBLE",
    "bb_upper": "DOUBLE",
    "bb_middle": "DOUBLE",
    "bb_lower": "DOUBLE",
    "high_52w": "DOUBLE",
    "low_52w": "DOUBLE",
}

_COUNT = "BIGINT"
BREADTH_COLUMNS: dict[str, str] = {
    "date": "DATE",
    "universe": _COUNT,
    "advancers": _COUNT,
    "decliners": _COUNT,
    "unchanged": _COUNT,
    "net_advances": _COUNT,
    "ad_line": _COUNT,
    "ad_ratio": "DOUBLE",
    "mcclellan_osc": "DOUBLE",
    "mcclellan_sum": "DOUBLE",
    "pct_above_ema_20": "DOUBLE",
    "pct_above_ema_50": "DOUBLE",
    "pct_above_ema_200": "DOUBLE",
    "new_highs_52w": _COUNT,
    "new_lows_52w": _COUNT,
    "up_volume": "DOUBLE",
    "down_volume": "DOUBLE",
    "trin": "DOUBLE",
    "rsi_overbought": _COUNT,
    "rsi_oversold": _COUNT,
    "zweig_ema": "DOUBLE",
    "macd_stage_1": "DOUBLE",
    "macd_stage_2": "DOUBLE",
    "macd_stage_3": "DOUBLE",
    "macd_stage_4": "DOUBLE",
    "macd_stage_5": "DOUBLE",
    "macd_stage_6": "DOUBLE",
}

TABLES: dict[str, dict[str, str]] = {
    PRICES: PRICE_COLUMNS,
    INDICATORS: INDICATOR_COLUMNS,
    BREADTH: BREADTH_COLUMNS,
}

KEYS: dict[str, tuple[str, ...]] = {
    PRICES: ("ticker", "date"),
    INDICATORS: ("ticker", "date"),
    BREADTH: ("date",),
}

# Columns of prices and indicators that breadth reads for each ticker-day.
BREADTH_INPUT_COLUMNS: tuple[str, ...] = (
    "ticker",
    "date",
    "close",
    "high",
    "low",
    "volume",
    "ema_20",
    "ema_50",
    "ema_200",
    "rsi_14",
    "macd_stage",
    "high_52w",
    "low_52w",
)
