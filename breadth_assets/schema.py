"""The data contract of docs/design.md "Tables" as code: table names, key columns, column types.

Every module that names a table or a column takes it from here, so a rename happens in one place.
DataFrames carry `date` as a timezone-naive datetime64 at midnight; SQL types are DuckDB's.
"""

from __future__ import annotations

PRICES = "prices"
INDICATORS = "indicators"
BREADTH = "breadth"
INTRADAY_PRICES = "intraday_prices"
CORPORATE_ACTIONS = "corporate_actions"
INSTRUMENT_KEYS = "instrument_keys"
BREADTH_MEMBERS = "breadth_members"
BREADTH_SIGNALS = "breadth_signals"

ALL_GROUP = "ALL"
"""The `group_name` of the whole universe, computed every day beside the universe file's groups."""

PRICE_COLUMNS: dict[str, str] = {
    "ticker": "VARCHAR",
    "date": "DATE",
    "open": "DOUBLE",
    "high": "DOUBLE",
    "low": "DOUBLE",
    "close": "DOUBLE",
    "volume": "DOUBLE",
}

# What the indicator recursions carry from one bar to the next beyond the published columns
# (docs/design.md "Indicators from state"): the two EMAs inside talib.MACD and Wilder's averages.
INDICATOR_STATE_COLUMNS: tuple[str, ...] = (
    "macd_ema_12",
    "macd_ema_26",
    "rsi_avg_gain",
    "rsi_avg_loss",
)

INDICATOR_COLUMNS: dict[str, str] = {
    "ticker": "VARCHAR",
    "date": "DATE",
    "close": "DOUBLE",
    "high": "DOUBLE",
    "low": "DOUBLE",
    "ema_10": "DOUBLE",
    "ema_20": "DOUBLE",
    "ema_50": "DOUBLE",
    "ema_100": "DOUBLE",
    "ema_200": "DOUBLE",
    "sma_20": "DOUBLE",
    "sma_40": "DOUBLE",
    "sma_50": "DOUBLE",
    "sma_200": "DOUBLE",
    "close_65": "DOUBLE",
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
    **{name: "DOUBLE" for name in INDICATOR_STATE_COLUMNS},
}

_COUNT = "BIGINT"
BREADTH_COLUMNS: dict[str, str] = {
    "date": "DATE",
    "group_name": "VARCHAR",
    "universe": _COUNT,
    "listed": _COUNT,
    "partial": "BOOLEAN",
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
    "pct_above_sma_20": "DOUBLE",
    "pct_above_sma_40": "DOUBLE",
    "pct_above_sma_50": "DOUBLE",
    "pct_above_sma_200": "DOUBLE",
    "new_highs_52w": _COUNT,
    "new_lows_52w": _COUNT,
    "net_new_highs": _COUNT,
    "net_new_highs_line": _COUNT,
    "record_high_pct": "DOUBLE",
    "high_low_index": "DOUBLE",
    "up_4pct": _COUNT,
    "down_4pct": _COUNT,
    "up_25pct_quarter": _COUNT,
    "down_25pct_quarter": _COUNT,
    "up_volume": "DOUBLE",
    "down_volume": "DOUBLE",
    "trin": "DOUBLE",
    "up_volume_pct": "DOUBLE",
    "rsi_overbought": _COUNT,
    "rsi_oversold": _COUNT,
    "zweig_ema": "DOUBLE",
    "zweig_thrust": "BOOLEAN",
    "macd_stage_1": "DOUBLE",
    "macd_stage_2": "DOUBLE",
    "macd_stage_3": "DOUBLE",
    "macd_stage_4": "DOUBLE",
    "macd_stage_5": "DOUBLE",
    "macd_stage_6": "DOUBLE",
    "mcclellan_ema_19": "DOUBLE",
    "mcclellan_ema_39": "DOUBLE",
}

BREADTH_MEMBER_COLUMNS: dict[str, str] = {
    "date": "DATE",
    "group_name": "VARCHAR",
    "event": "VARCHAR",
    "ticker": "VARCHAR",
}

BREADTH_SIGNAL_COLUMNS: dict[str, str] = {
    "date": "DATE",
    "group_name": "VARCHAR",
    "signal": "VARCHAR",
    "detail": "VARCHAR",
}

INTRADAY_COLUMNS: dict[str, str] = {
    "ticker": "VARCHAR",
    "ts": "TIMESTAMP",
    "unit": "VARCHAR",
    "interval": "BIGINT",
    "open": "DOUBLE",
    "high": "DOUBLE",
    "low": "DOUBLE",
    "close": "DOUBLE",
    "volume": "DOUBLE",
}

CORPORATE_ACTION_COLUMNS: dict[str, str] = {
    "ticker": "VARCHAR",
    "ex_date": "DATE",
    "kind": "VARCHAR",
    "value": "VARCHAR",
    "factor": "DOUBLE",
    "origin": "VARCHAR",
}

INSTRUMENT_KEY_COLUMNS: dict[str, str] = {
    "ticker": "VARCHAR",
    "instrument_key": "VARCHAR",
    "first_used": "DATE",
}

TABLES: dict[str, dict[str, str]] = {
    PRICES: PRICE_COLUMNS,
    INDICATORS: INDICATOR_COLUMNS,
    BREADTH: BREADTH_COLUMNS,
    BREADTH_MEMBERS: BREADTH_MEMBER_COLUMNS,
    BREADTH_SIGNALS: BREADTH_SIGNAL_COLUMNS,
    INTRADAY_PRICES: INTRADAY_COLUMNS,
    CORPORATE_ACTIONS: CORPORATE_ACTION_COLUMNS,
    INSTRUMENT_KEYS: INSTRUMENT_KEY_COLUMNS,
}

POSTGRES_TYPES: dict[str, str] = {
    "VARCHAR": "TEXT",
    "DATE": "DATE",
    "DOUBLE": "DOUBLE PRECISION",
    "BIGINT": "BIGINT",
    "TIMESTAMP": "TIMESTAMP",
    "BOOLEAN": "BOOLEAN",
}
"""The SQL types above as the PostgreSQL store declares its columns."""

KEYS: dict[str, tuple[str, ...]] = {
    PRICES: ("ticker", "date"),
    INDICATORS: ("ticker", "date"),
    BREADTH: ("date", "group_name"),
    BREADTH_MEMBERS: ("date", "group_name", "event", "ticker"),
    BREADTH_SIGNALS: ("date", "group_name", "signal"),
    INTRADAY_PRICES: ("ticker", "unit", "interval", "ts"),
    CORPORATE_ACTIONS: ("ticker", "ex_date", "kind"),
    INSTRUMENT_KEYS: ("ticker", "instrument_key"),
}

GROUP_TABLES: tuple[str, ...] = (BREADTH, BREADTH_MEMBERS, BREADTH_SIGNALS)
"""The tables keyed by day and group, which a breadth run replaces together over its range."""

# Columns of prices and indicators that breadth reads for each ticker-day: the volume as traded
# from prices, everything else (adjusted) from indicators.
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
    "sma_20",
    "sma_40",
    "sma_50",
    "sma_200",
    "close_65",
    "rsi_14",
    "macd_stage",
    "high_52w",
    "low_52w",
)

# What each column means, in a few words (docs/design.md has the formulas and NULL rules); the
# Dagster UI shows them as each asset's column schema.
COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    PRICES: {
        "ticker": "Symbol, as listed in the universe file",
        "date": "Trading day of the bar",
        "open": "First traded price of the day",
        "high": "Highest traded price of the day",
        "low": "Lowest traded price of the day",
        "close": "Last traded price of the day",
        "volume": "Shares traded during the day",
    },
    INDICATORS: {
        "ticker": "Symbol, as in prices",
        "date": "Trading day of the bar, as in prices",
        "close": "Close adjusted for corporate actions: prices' close x the bar's factor",
        "high": "High adjusted like close",
        "low": "Low adjusted like close",
        **{
            f"ema_{n}": f"EMA {n} of close (talib.EMA); NULL for the first {n - 1} bars"
            for n in (10, 20, 50, 100, 200)
        },
        **{
            f"sma_{n}": f"Simple moving average of the last {n} closes (talib.SMA); NULL for "
            f"the first {n - 1} bars"
            for n in (20, 40, 50, 200)
        },
        "close_65": "Close of the bar 65 bars before this one (a quarter); NULL for the first 65",
        "rsi_14": "Wilder's RSI 14 of close, 0-100; NULL for the first 14 bars",
        "macd": "EMA12 - EMA26 of close (talib.MACD 12/26/9); NULL for the first 33 bars",
        "macd_signal": "EMA9 of macd; NULL for the first 33 bars",
        "macd_hist": "macd - macd_signal, the histogram h; NULL for the first 33 bars",
        "macd_stage": "MACD cycle stage 1-6 from h and the previous bar's h (docs/design.md)",
        "bb_upper": "Bollinger upper band: 20-bar SMA + 2 standard deviations",
        "bb_middle": "Bollinger middle band: 20-bar SMA of close",
        "bb_lower": "Bollinger lower band: 20-bar SMA - 2 standard deviations",
        "high_52w": "Highest adjusted high of the 252 bars before this one (this bar excluded)",
        "low_52w": "Lowest adjusted low of the 252 bars before this one (this bar excluded)",
        "macd_ema_12": "State: the fast EMA inside talib.MACD (macd = macd_ema_12 - macd_ema_26)",
        "macd_ema_26": "State: the slow EMA inside talib.MACD",
        "rsi_avg_gain": "State: Wilder's average gain inside talib.RSI",
        "rsi_avg_loss": "State: Wilder's average loss inside talib.RSI",
    },
    BREADTH: {
        "date": "Trading day of the market",
        "group_name": "ALL (the whole universe) or a group of the universe file",
        "universe": "Tickers of the group with a bar that day",
        "listed": "Tickers of the group with a bar on one of the 14 days up to this one",
        "partial": "Bars cover fewer than min_coverage of listed: ratios and percentages NULL",
        "advancers": "Tickers closing above their previous bar's close (A)",
        "decliners": "Tickers closing below their previous bar's close (D)",
        "unchanged": "Tickers closing at their previous bar's close",
        "net_advances": "A - D",
        "ad_line": "Advance/decline line: running sum of net_advances",
        "ad_ratio": "A / D; NULL when D = 0",
        "mcclellan_osc": "McClellan oscillator, ratio-adjusted: EMA19 - EMA39 of 1000(A-D)/(A+D)",
        "mcclellan_sum": "McClellan summation index: running sum of the oscillator",
        "pct_above_ema_20": "% of tickers with ema_20 whose close is above it (EMA)",
        "pct_above_ema_50": "% of tickers with ema_50 whose close is above it (EMA)",
        "pct_above_ema_200": "% of tickers with ema_200 whose close is above it (EMA)",
        "new_highs_52w": "Tickers whose high beats their 52-week high",
        "new_lows_52w": "Tickers whose low breaks their 52-week low",
        **{
            f"pct_above_sma_{n}": f"% of tickers with sma_{n} whose close is above it (SMA)"
            for n in (20, 40, 50, 200)
        },
        "net_new_highs": "new_highs_52w - new_lows_52w",
        "net_new_highs_line": "Running sum of net_new_highs",
        "record_high_pct": "Record high percent: 100 NH / (NH + NL); NULL when NH + NL = 0",
        "high_low_index": "High-Low Index: mean record_high_pct of the group's last 10 days",
        "up_4pct": "Tickers whose close rose 4% or more from their previous bar (Stockbee)",
        "down_4pct": "Tickers whose close fell 4% or more from their previous bar (Stockbee)",
        "up_25pct_quarter": "Tickers whose close is 25% or more above the close 65 bars before",
        "down_25pct_quarter": "Tickers whose close is 25% or more below the close 65 bars before",
        "up_volume_pct": "100 up_volume / (up_volume + down_volume); NULL when both are 0",
        "up_volume": "Summed volume of the advancers",
        "down_volume": "Summed volume of the decliners",
        "trin": "Arms index: (A / D) / (up_volume / down_volume); below 1 is bullish",
        "rsi_overbought": "Tickers with rsi_14 above 70",
        "rsi_oversold": "Tickers with rsi_14 below 30",
        "zweig_ema": "Zweig breadth thrust EMA: 10-day EMA of A / (A + D)",
        "zweig_thrust": "zweig_ema rose above 0.615 today, having been below 0.40 in 10 days",
        **{
            f"macd_stage_{k}": f"% of tickers with a MACD stage that are in stage {k}"
            for k in range(1, 7)
        },
        "mcclellan_ema_19": "State: EMA19 of 1000(A-D)/(A+D), the oscillator's fast EMA",
        "mcclellan_ema_39": "State: EMA39 of 1000(A-D)/(A+D), the oscillator's slow EMA",
    },
    BREADTH_MEMBERS: {
        "date": "Trading day, as in breadth",
        "group_name": "ALL or a group of the universe file, as in breadth",
        "event": "new_high_52w, new_low_52w, up_4pct, down_4pct, cross_above_sma_50, ...",
        "ticker": "A ticker of the group that made the event that day",
    },
    BREADTH_SIGNALS: {
        "date": "Trading day, as in breadth",
        "group_name": "ALL or a group of the universe file, as in breadth",
        "signal": "zweig_thrust, mcclellan_cross_up, ..., hindenburg_omen (docs/design.md)",
        "detail": "The values behind it: mcclellan_osc -3.1 -> 4.2",
    },
    INTRADAY_PRICES: {
        "ticker": "Symbol, as listed in the universe file",
        "ts": "Start of the candle in exchange time (IST), without a time zone",
        "unit": "Candle unit as Upstox names it: minutes or hours",
        "interval": "Candle length in units: 5 with minutes is a 5-minute candle",
        "open": "First traded price of the candle",
        "high": "Highest traded price of the candle",
        "low": "Lowest traded price of the candle",
        "close": "Last traded price of the candle",
        "volume": "Shares traded during the candle",
    },
    CORPORATE_ACTIONS: {
        "ticker": "Symbol, as in prices",
        "ex_date": "First trading day on the new basis: bars before it are adjusted",
        "kind": "split, bonus, consolidation, factor, dividend or move",
        "value": "As declared: a:b for split, bonus and consolidation; a number otherwise",
        "factor": "Price factor of the bars before ex_date; NULL while not applied",
        "origin": "Where it was declared: the file and line, or the source",
    },
    INSTRUMENT_KEYS: {
        "ticker": "Symbol, as in prices",
        "instrument_key": "The source's key the ticker's bars were fetched under: NSE_EQ|ISIN",
        "first_used": "Date of the first bar fetched under this key",
    },
}
