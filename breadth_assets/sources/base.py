"""The interface every price source implements (demo, csv, upstox)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import dagster as dg
import pandas as pd

from breadth_assets.analytics.actions import empty_actions
from breadth_assets.fields import SourceSettings
from breadth_assets.sources.timeframes import Timeframe


class SourceError(Exception):
    """A ticker's bars cannot be had; the message names the ticker (and file or request) and why."""


class CredentialsError(SourceError):
    """The source refused the credentials (an expired token): no later request can succeed, so
    the main job starts no further batch."""


class SourceChangedError(Exception):
    """The universe file now names another kind of source than the code location was loaded with."""


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

    kind: ClassVar[str] = "source"
    """The universe file's `source.kind` of this source."""
    file_settings: ClassVar[frozenset[str]] = frozenset()
    """The fields that the universe file's `source:` block sets; the deployment sets the rest."""

    def with_settings(self, settings: SourceSettings) -> PriceSource:
        """This source with the universe file's `source:` settings as they are now.

        Runs read the file when they start, so an edited setting (Upstox workers or rate limits,
        CSV columns, the demo seed) applies to the next run without reloading the code location;
        a setting the file no longer gives returns to its default.
        """
        if settings.kind != self.kind:
            raise SourceChangedError(
                f"the universe file now names the {settings.kind} source, but the code location "
                f"was loaded with the {self.kind} source; reload the code location (Deployment → "
                "Reload, or restart scripts/dev.sh)"
            )
        fields = type(self).model_fields
        kept = {name: getattr(self, name) for name in fields if name not in self.file_settings}
        return type(self)(**kept, **settings.resource_options())

    def fetch(self, request: PriceRequest) -> TickerBars:
        raise NotImplementedError

    def declared_actions(self, tickers: Sequence[str]) -> pd.DataFrame:
        """The corporate actions the source itself knows of (`analytics.actions.ACTION_COLUMNS`,
        factor NULL); the universe's actions file overrides them. None by default."""
        return empty_actions()

    def instrument_keys(self, given: Mapping[str, str | None]) -> dict[str, str]:
        """The key each ticker's bars are fetched under, for a source that has instrument keys
        (Upstox): the one `given` (from the universe file), else the source's own lookup. A
        ticker whose key cannot be had is left out (its fetch fails, saying why). None here."""
        return {}

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
