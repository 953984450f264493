from breadth_assets.assets.breadth import breadth
from breadth_assets.assets.tickers import INDICATORS, RAW_PRICES, ticker_assets

__all__ = ["INDICATORS", "RAW_PRICES", "breadth", "ticker_assets"]
