from breadth_assets.defs.assets.breadth import BREADTH, build_breadth
from breadth_assets.defs.assets.intraday import INTRADAY_PRICES, build_intraday_prices
from breadth_assets.defs.assets.tickers import (
    INDICATORS,
    RAW_PRICES,
    TICKER_TAG,
    build_ticker_assets,
)

__all__ = [
    "BREADTH",
    "INDICATORS",
    "INTRADAY_PRICES",
    "RAW_PRICES",
    "TICKER_TAG",
    "build_breadth",
    "build_intraday_prices",
    "build_ticker_assets",
]
