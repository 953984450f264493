"""What `raw_prices` fetches for a batch of tickers: from where each ticker's update starts, the
answers of the source, and the stored history a fetch reaching back needs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg
import pandas as pd
from pydantic import Field

from breadth_assets import schema
from breadth_assets.defs.assets.fetching import (
    FetchRunConfig,
    fetched_answers,
    refused_partitions,
    run_end_date,
)
from breadth_assets.defs.assets.instrument_keys import BatchKeys
from breadth_assets.sources.base import PriceRequest, PriceSource
from breadth_assets.stores.base import MarketStore
from breadth_assets.universe.file import Universe


class TickerRunConfig(FetchRunConfig):
    overlap_bars: int = Field(
        default=5,
        ge=0,
        description="Stored bars fetched again at the end of each ticker, to pick up corrections.",
    )
    full_refresh: bool = Field(
        default=False, description="Fetch every ticker again from the universe's start date."
    )


def fetch_starts(stored: pd.DataFrame, history_start: dt.date, overlap_bars: int) -> dict:
    """Per stored ticker, the date of its bar `overlap_bars` before the last (or its first);
    `stored` is sorted by ticker and date, as the store returns it."""
    last_bars = stored.groupby("ticker", sort=False).tail(overlap_bars + 1)
    firsts = last_bars.drop_duplicates("ticker")
    return {
        ticker: max(day.date(), history_start)
        for ticker, day in zip(firsts["ticker"], firsts["date"], strict=True)
    }


def whole_where_needed(
    store: MarketStore, tail: pd.DataFrame, fetched: pd.DataFrame, tail_bars: int
) -> pd.DataFrame:
    """The tail, with the whole history of each ticker whose fetched bars reach before it."""
    first_fetched = fetched.groupby("ticker")["date"].min()
    first_stored = tail.groupby("ticker")["date"].min()
    counts = tail["ticker"].value_counts()
    cut = counts.index[counts >= tail_bars]
    before = first_fetched.reindex(cut) < first_stored.reindex(cut)
    whole = before.index[before.to_numpy()].tolist()
    if not whole:
        return tail
    return pd.concat(
        [tail[~tail["ticker"].isin(whole)], store.read_prices(whole)], ignore_index=True
    ).sort_values(["ticker", "date"], ignore_index=True)


@dataclass
class Fetched:
    bars: pd.DataFrame
    failed: dict[str, str]
    rejected: dict[str, list[str]]
    instrument_keys: pd.DataFrame
    """`instrument_keys` rows to write: the tickers fetched under a key new to them."""
    key_changes: list[str]
    """`TICKER OLD -> NEW from DATE` for each ticker whose key changed."""


def fetch_bars(
    context: dg.AssetExecutionContext,
    config: TickerRunConfig,
    price_source: PriceSource,
    store: MarketStore,
    current: Universe,
    stored: pd.DataFrame,
) -> Fetched:
    """Bars from the source for every ticker of the run; failures are collected, not raised."""
    failures = refused_partitions(context, context.partition_keys, current)
    given = {entry.symbol: entry.instrument_key for entry in current.tickers}
    tickers = [ticker for ticker in context.partition_keys if ticker not in failures]
    source = price_source.with_settings(current.source_settings)
    keys = BatchKeys.read(source, store, {ticker: given.get(ticker) for ticker in tickers})
    end = run_end_date(config.end_date, current)
    usual = (
        {} if config.full_refresh else fetch_starts(stored, current.start_date, config.overlap_bars)
    )
    starts = keys.starts(stored, {t: usual.get(t, current.start_date) for t in tickers})
    requests = [
        PriceRequest(ticker, starts[ticker], end, keys.current.get(ticker, given.get(ticker)))
        for ticker in tickers
    ]
    frames: list[pd.DataFrame] = []
    rejected: dict[str, list[str]] = {}
    answers = source.fetch_many(requests)
    for request, answer in fetched_answers(context, answers, len(requests), failures):
        frames.append(answer.bars)
        if answer.rejected:
            more = len(answer.rejected) - 1
            context.log.warning(
                f"{request.ticker}: {len(answer.rejected)} rows left out: {answer.rejected[0]}"
                + (f" and {more} more (the raw_prices metadata lists them)" if more else "")
            )
            rejected[request.ticker] = list(answer.rejected)
    columns = list(schema.PRICE_COLUMNS)
    fetched = pd.concat(frames, ignore_index=True) if frames else stored.iloc[0:0]
    new_keys = keys.new_rows(fetched)
    return Fetched(
        fetched[columns], failures, rejected, new_keys, _changes(context, keys, new_keys)
    )


def _changes(
    context: dg.AssetExecutionContext, keys: BatchKeys, new_keys: pd.DataFrame
) -> list[str]:
    """The changed keys among the rows to record, each logged as a warning."""
    changes = keys.changes(new_keys)
    for line in changes:
        context.log.warning(
            f"instrument key changed: {line}; fetched under the new key from the day after the "
            "last stored bar, the stored bars kept"
        )
    return changes
