"""`intraday_prices[ticker]`: the universe's intraday timeframes (Upstox), one step per batch.

Defined only when the universe file lists `source.timeframes`. Incremental per series (ticker,
unit, interval): the last stored day is fetched again, to complete it, and every day after it up
to the last closed trading day; a new series starts at its unit's history start (2022 for
minutes and hours) or the universe's start date, whichever is later.
"""

import datetime as dt
import time
from collections.abc import Iterator

import dagster as dg
import pandas as pd
from pydantic import Field

from breadth_assets import schema
from breadth_assets.defs.assets.column_schemas import table_asset_args
from breadth_assets.defs.assets.fetching import (
    FetchRunConfig,
    fetched_answers,
    refused_partitions,
    run_end_date,
)
from breadth_assets.defs.assets.reporting import batch_metadata, finish_batch
from breadth_assets.defs.assets.tickers import TICKER_TAG
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.sources.base import IntradayRequest, PriceSource
from breadth_assets.sources.timeframes import Timeframe
from breadth_assets.stores.base import MarketStore
from breadth_assets.universe.file import Universe

INTRADAY_PRICES = dg.AssetKey(schema.INTRADAY_PRICES)


class IntradayRunConfig(FetchRunConfig):
    full_refresh: bool = Field(
        default=False, description="Fetch every series again from its history start."
    )


def _series_start(
    latest: dict[tuple[str, str, int], pd.Timestamp],
    ticker: str,
    timeframe: Timeframe,
    history_start: dt.date,
    full_refresh: bool,
) -> dt.date:
    """The last stored day again, else the universe's start (the source clamps it to the
    history it serves, e.g. Upstox's intraday candles from 2022)."""
    last = None if full_refresh else latest.get((ticker, timeframe.unit, timeframe.interval))
    return max(history_start, last.date()) if last is not None else history_start


def build_intraday_prices(batch_size: int, store_kind: str) -> dg.AssetsDefinition:
    """Defined only when the universe lists timeframes; backfills in runs of `batch_size`."""

    # A one-asset multi_asset: @asset flags backfill_policy as beta, @multi_asset does not.
    return dg.multi_asset(
        name="intraday_prices",
        specs=[
            dg.AssetSpec(
                INTRADAY_PRICES,
                description="Intraday OHLCV candles per ticker in the universe's timeframes "
                "(such as hours/1 and minutes/5) from Upstox, in the `intraday_prices` table. "
                "Incremental: the last stored day again, then the days after it.",
                tags=TICKER_TAG,
                **table_asset_args(schema.INTRADAY_PRICES, store_kind),
            )
        ],
        partitions_def=tickers_partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=batch_size),
        pool="price_api",
    )(intraday_prices)


def intraday_prices(
    context: dg.AssetExecutionContext,
    config: IntradayRunConfig,
    store: MarketStore,
    price_source: PriceSource,
    universe: UniverseFile,
) -> Iterator[dg.MaterializeResult]:
    """Plans a request per ticker and timeframe, fetches, writes the candles, reports."""
    started = time.perf_counter()
    tickers = list(context.partition_keys)
    current = universe.load()
    failures = refused_partitions(context, tickers, current)
    requests = _requests(config, store, current, tickers, failures)
    written = _fetch(context, price_source, current, requests, failures)
    store.write({schema.INTRADAY_PRICES: written})
    seconds = time.perf_counter() - started
    metadata = batch_metadata(
        len(written),
        failures,
        len(tickers),
        seconds,
        series=dg.MetadataValue.int(len(requests)),
        time_range=dg.MetadataValue.text(
            f"{written['ts'].min():%Y-%m-%d %H:%M} to {written['ts'].max():%Y-%m-%d %H:%M}"
            if len(written)
            else "no rows"
        ),
    )
    context.log.info(
        f"intraday_prices: {len(tickers) - len(failures)} tickers ok, {len(failures)} failed, "
        f"{len(written)} candles written in {seconds:.2f} s"
    )
    yield from finish_batch(
        context, tickers, {INTRADAY_PRICES: metadata}, {INTRADAY_PRICES: failures}
    )


def _requests(
    config: IntradayRunConfig,
    store: MarketStore,
    current: Universe,
    tickers: list[str],
    failures: dict[str, str],
) -> list[IntradayRequest]:
    """One request per ticker and timeframe, from each series' last stored candle."""
    end = run_end_date(config.end_date, current)
    keys = {entry.symbol: entry.instrument_key for entry in current.tickers}
    stored = store.read_intraday_latest(tickers)
    latest = {(row.ticker, row.unit, int(row.interval)): row.ts for row in stored.itertuples()}
    return [
        IntradayRequest(
            ticker=ticker,
            timeframe=timeframe,
            start=_series_start(latest, ticker, timeframe, current.start_date, config.full_refresh),
            end=end,
            instrument_key=keys.get(ticker),
        )
        for ticker in tickers
        if ticker not in failures
        for timeframe in current.timeframes
    ]


def _fetch(
    context: dg.AssetExecutionContext,
    price_source: PriceSource,
    current: Universe,
    requests: list[IntradayRequest],
    failures: dict[str, str],
) -> pd.DataFrame:
    """The candles of the tickers whose every series came back (`failures` gets the others)."""
    fetched: list[tuple[str, pd.DataFrame]] = []
    answers = fetched_answers(
        context,
        price_source.with_settings(current.source_settings).fetch_intraday(requests),
        len(requests),
        failures,
        unit="series",
        label=lambda request: f"{request.ticker} {request.timeframe}",
    )
    for request, answer in answers:
        series = {"unit": request.timeframe.unit, "interval": request.timeframe.interval}
        fetched.append((request.ticker, answer.assign(ticker=request.ticker, **series)))
    good = [frame for ticker, frame in fetched if ticker not in failures and len(frame)]
    columns = list(schema.INTRADAY_COLUMNS)
    return pd.concat(good, ignore_index=True)[columns] if good else pd.DataFrame(columns=columns)
