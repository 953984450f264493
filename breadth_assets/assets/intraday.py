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
from breadth_assets.assets.column_schemas import OWNERS, table_metadata
from breadth_assets.assets.reporting import (
    failures_markdown,
    partial_failure,
    record_good_partitions,
)
from breadth_assets.assets.tickers import TICKER_TAG, FetchRunConfig, run_end_date
from breadth_assets.partitions import UNIVERSE, tickers_partitions
from breadth_assets.progress import Progress
from breadth_assets.resources.market_store import MarketStore
from breadth_assets.resources.price_source import IntradayRequest, PriceSource, SourceError
from breadth_assets.resources.universe_file import UniverseFile
from breadth_assets.universe import partition_key_problems
from breadth_assets.upstox.history import Timeframe

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
    start = max(history_start, timeframe.history_start)
    last = None if full_refresh else latest.get((ticker, timeframe.unit, timeframe.interval))
    return max(start, last.date()) if last is not None else start


# A one-asset multi_asset: @asset flags backfill_policy as beta, @multi_asset does not.
@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            INTRADAY_PRICES,
            description="Intraday OHLCV candles per ticker in the universe's timeframes (such "
            "as hours/1 and minutes/5) from Upstox, in the `intraday_prices` table. "
            "Incremental: the last stored day again, then the days after it.",
            group_name="market",
            kinds={"duckdb"},
            metadata=table_metadata(schema.INTRADAY_PRICES),
            owners=OWNERS,
            tags=TICKER_TAG,
        )
    ],
    partitions_def=tickers_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=UNIVERSE.batch_size),
    pool="price_api",
)
def intraday_prices(
    context: dg.AssetExecutionContext,
    config: IntradayRunConfig,
    store: MarketStore,
    price_source: PriceSource,
    universe: UniverseFile,
) -> Iterator[dg.MaterializeResult]:
    started = time.perf_counter()
    tickers = list(context.partition_keys)
    current = universe.load()
    end = run_end_date(config.end_date, current)
    keys = {entry.symbol: entry.instrument_key for entry in current.tickers}
    failures = partition_key_problems(tickers, current)
    for ticker, reason in failures.items():
        context.log.error(f"{ticker}: {reason}")
    stored = store.read_intraday_latest(tickers)
    latest = {(row.ticker, row.unit, int(row.interval)): row.ts for row in stored.itertuples()}
    requests = [
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
    fetched: list[tuple[str, pd.DataFrame]] = []
    progress = Progress(len(requests), context.log.info, what="fetching", unit="series")
    for request, answer in price_source.fetch_intraday(requests):
        progress.step()
        if isinstance(answer, SourceError):
            failures.setdefault(request.ticker, str(answer).removeprefix(f"{request.ticker}: "))
            context.log.error(f"{request.ticker} {request.timeframe}: {answer}")
            continue
        series = {"unit": request.timeframe.unit, "interval": request.timeframe.interval}
        fetched.append((request.ticker, answer.assign(ticker=request.ticker, **series)))
    progress.finish()

    good = [frame for ticker, frame in fetched if ticker not in failures and len(frame)]
    columns = list(schema.INTRADAY_COLUMNS)
    written = pd.concat(good, ignore_index=True)[columns] if good else pd.DataFrame(columns=columns)
    store.write({schema.INTRADAY_PRICES: written})
    seconds = time.perf_counter() - started
    metadata = _metadata(written, failures, len(tickers), len(requests), seconds)
    context.log.info(
        f"intraday_prices: {len(tickers) - len(failures)} tickers ok, {len(failures)} failed, "
        f"{len(written)} candles written in {seconds:.2f} s"
    )
    if failures:
        record_good_partitions(context, INTRADAY_PRICES, tickers, failures, metadata)
        raise partial_failure(failures, len(tickers))
    yield dg.MaterializeResult(asset_key=INTRADAY_PRICES, metadata=metadata)


def _metadata(
    written: pd.DataFrame, failures: dict[str, str], tickers: int, series: int, seconds: float
) -> dict[str, dg.MetadataValue]:
    metadata = {
        "rows_written": dg.MetadataValue.int(len(written)),
        "series": dg.MetadataValue.int(series),
        "time_range": dg.MetadataValue.text(
            f"{written['ts'].min():%Y-%m-%d %H:%M} to {written['ts'].max():%Y-%m-%d %H:%M}"
            if len(written)
            else "no rows"
        ),
        "tickers_ok": dg.MetadataValue.int(tickers - len(failures)),
        "tickers_failed": dg.MetadataValue.int(len(failures)),
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
    }
    if failures:
        metadata["failures"] = dg.MetadataValue.md(failures_markdown(failures))
    return metadata
