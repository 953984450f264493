"""The interface of the store that holds `prices`, `indicators`, `breadth`, `intraday_prices`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import ClassVar

import dagster as dg
import pandas as pd


class StoreError(Exception):
    """The store cannot be used; the message says which store and why, never a secret."""


class MarketStore(dg.ConfigurableResource):
    """Reads by ticker or by date, writes whole batches atomically.

    Writing rows whose keys exist replaces them, so writing a partition twice changes nothing.
    Frames carry `date` as timezone-naive datetime64 at midnight and `ts` as exchange time.
    """

    kind: ClassVar[str] = "store"
    """The asset `kinds` tag that names this store in the UI."""

    def read_prices(self, tickers: Sequence[str]) -> pd.DataFrame:
        """All stored bars of these tickers, sorted by ticker and date."""
        raise NotImplementedError

    def read_indicators(self, tickers: Sequence[str]) -> pd.DataFrame:
        """All stored indicator rows of these tickers, sorted by ticker and date."""
        raise NotImplementedError

    def read_breadth_inputs(
        self, tickers: Sequence[str], end: dt.date, start: dt.date | None = None
    ) -> pd.DataFrame:
        """Ticker-days in [start, end] that have indicators: `schema.BREADTH_INPUT_COLUMNS`,
        sorted by ticker and date."""
        raise NotImplementedError

    def read_breadth(
        self, start: dt.date | None = None, end: dt.date | None = None
    ) -> pd.DataFrame:
        """Stored breadth rows in [start, end], sorted by date."""
        raise NotImplementedError

    def read_intraday(self, tickers: Sequence[str]) -> pd.DataFrame:
        """All stored intraday candles of these tickers, sorted by ticker, unit, interval, ts."""
        raise NotImplementedError

    def read_intraday_latest(self, tickers: Sequence[str]) -> pd.DataFrame:
        """The last stored candle time per series: `ticker, unit, interval, ts`."""
        raise NotImplementedError

    def write(self, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        """Upsert each table's rows in one transaction; returns rows written per table."""
        raise NotImplementedError
