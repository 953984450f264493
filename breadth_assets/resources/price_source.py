"""The interface every price source implements (demo, csv, upstox)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd

from breadth_assets.timeframes import Timeframe


class SourceError(Exception):
    """A ticker's bars cannot be had; the message names the ticker (and file or request) and why."""


@dataclass(frozen=True)
class PriceRequest:
    ticker: str
    start: dt.date
    end: dt.date
    instrument_key: str | None = None


@dataclass(frozen=True)
class IntradayRequest:
    """Candles of one ticker and timeframe (`Timeframe`, e.g. minutes/5) over whole days."""

    ticker: str
    timeframe: Timeframe
    start: dt.date
    end: dt.date
    instrument_key: str | None = None


@dataclass
class TickerBars:
    """Bars of one ticker (`prices` columns, sorted by date) and the rows a source left out."""

    ticker: str
    bars: pd.DataFrame
    rejected: list[str] = field(default_factory=list)


class PriceSource(dg.ConfigurableResource):
    """Daily OHLCV bars per ticker, both ends of the date range inclusive."""

    def fetch(self, request: PriceRequest) -> TickerBars:
        raise NotImplementedError

    def fetch_many(
        self, requests: Sequence[PriceRequest]
    ) -> Iterator[tuple[PriceRequest, TickerBars | SourceError]]:
        """One answer per request; a failing ticker yields its error and the others go on.

        Sources that can fetch in parallel (Upstox) override this.
        """
        for request in requests:
            try:
                yield request, self.fetch(request)
            except SourceError as error:
                yield request, error

    def fetch_intraday(
        self, requests: Sequence[IntradayRequest]
    ) -> Iterator[tuple[IntradayRequest, pd.DataFrame | SourceError]]:
        """Candles per (ticker, timeframe): `ts, open, high, low, close, volume`, by time."""
        raise NotImplementedError(f"the {type(self).__name__} has no intraday candles")
