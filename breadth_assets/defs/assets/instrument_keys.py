"""The instrument key each ticker of a batch is fetched under, and what a changed key does to
its fetch (docs/design.md "When an instrument key changes").

On NSE a split gives the stock a new ISIN, so its Upstox instrument key changes. `instrument_keys`
records the keys a ticker's bars were fetched under. When the key the universe resolves differs
from the last one recorded, the fetch under the new key starts the day after the last stored bar:
the new key is assumed neither to serve the old history nor to serve it as it was stored, so the
stored bars stay as they are and no day is fetched twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from breadth_assets import schema
from breadth_assets.sources.base import PriceSource
from breadth_assets.stores.base import MarketStore

KEY_CHANGES = "instrument_key_changes"
"""The `raw_prices` metadata listing a batch's changed keys: `TICKER OLD -> NEW from DATE`."""


@dataclass(frozen=True)
class BatchKeys:
    """The keys of a batch's tickers: `current`, what each is fetched under now (only a source
    with instrument keys has them), and `last`, the last key recorded for each (index ticker:
    `instrument_key`, `first_used`, and `earlier`, whether another key was recorded before it)."""

    current: dict[str, str]
    last: pd.DataFrame

    @classmethod
    def read(
        cls, source: PriceSource, store: MarketStore, given: Mapping[str, str | None]
    ) -> BatchKeys:
        """The keys the source resolves for `given` (ticker -> the universe file's key or None)
        and the store's record of them; no read of the store for a source without keys."""
        current = source.instrument_keys(given)
        recorded = store.read_instrument_keys(list(current)) if current else _NO_KEYS
        last = recorded.groupby("ticker", sort=False).tail(1).set_index("ticker")
        counts = recorded["ticker"].value_counts().reindex(last.index)
        return cls(current, last.assign(earlier=(counts > 1).to_numpy(dtype=bool)))

    def old_key(self, ticker: str) -> str | None:
        """The last recorded key of a ticker now fetched under another one, else None."""
        if ticker not in self.current or ticker not in self.last.index:
            return None
        old = self.last.at[ticker, "instrument_key"]
        return old if old != self.current[ticker] else None

    def starts(self, stored: pd.DataFrame, usual: Mapping[str, dt.date]) -> dict[str, dt.date]:
        """Where each ticker's fetch starts, from `usual` (the overlap before its last stored
        bar, or the universe's start): the day after its last stored bar when its key changed;
        never before its key's first bar when the key replaced another (so neither the overlap
        nor a full refresh asks the new key for days of the old one)."""
        last_bars = stored.groupby("ticker")["date"].max()
        starts = dict(usual)
        for ticker in starts:
            if ticker not in self.current or ticker not in self.last.index:
                continue
            if self.old_key(ticker) is not None:
                if ticker in last_bars.index:
                    starts[ticker] = last_bars[ticker].date() + dt.timedelta(days=1)
            elif self.last.at[ticker, "earlier"]:
                first_used = self.last.at[ticker, "first_used"].date()
                starts[ticker] = max(starts[ticker], first_used)
        return starts

    def new_rows(self, fetched: pd.DataFrame) -> pd.DataFrame:
        """`instrument_keys` rows for the tickers whose bars were fetched under a key not yet
        recorded as their last: the key and the date of the first bar fetched under it."""
        firsts = fetched.groupby("ticker")["date"].min()
        rows = [
            (ticker, key, firsts[ticker])
            for ticker, key in self.current.items()
            if ticker in firsts.index
            and (ticker not in self.last.index or self.old_key(ticker) is not None)
        ]
        return pd.DataFrame(rows, columns=list(schema.INSTRUMENT_KEY_COLUMNS))

    def changes(self, rows: pd.DataFrame) -> list[str]:
        """`TICKER OLD -> NEW from DATE` for each of `new_rows` that replaces a recorded key."""
        return [
            f"{row.ticker} {old} -> {row.instrument_key} from {row.first_used:%Y-%m-%d}"
            for row in rows.itertuples(index=False)
            if (old := self.old_key(row.ticker)) is not None
        ]


_NO_KEYS = pd.DataFrame(
    {
        "ticker": pd.Series(dtype=object),
        "instrument_key": pd.Series(dtype=object),
        "first_used": pd.Series(dtype="datetime64[us]"),
    }
)
