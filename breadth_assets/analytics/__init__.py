"""Pure computation (no Dagster): per-ticker indicators, MACD stages and daily market breadth."""

from __future__ import annotations

from breadth_assets.analytics import breadth_report
from breadth_assets.analytics.breadth import compute_breadth
from breadth_assets.analytics.indicators import compute_indicators, macd_stage

__all__ = ["breadth_report", "compute_breadth", "compute_indicators", "macd_stage"]
