from breadth_assets.assets.breadth import breadth
from breadth_assets.assets.intraday import INTRADAY_PRICES, intraday_prices
from breadth_assets.assets.tickers import INDICATORS, RAW_PRICES, TICKER_TAG, ticker_assets

__all__ = [
    "INDICATORS",
    "INTRADAY_PRICES",
    "RAW_PRICES",
    "TICKER_TAG",
    "breadth",
    "intraday_prices",
    "ticker_assets",
]
