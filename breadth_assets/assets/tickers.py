"""`raw_prices[ticker]` and `indicators[ticker]`: one step per batch of tickers.

Both assets live in one multi-asset step so that a ticker whose fetch fails costs only itself:
the good tickers of the batch get their prices and indicators in the same run, and the failed
ones are left failed in the partition status, ready for "re-execute failed" in the UI.
"""

import datetime as dt
import time
from collections.abc import Iterator

import dagster as dg
import pandas as pd
from pydantic import Field

from breadth_assets import schema
from breadth_assets.analytics import compute_indicators
from breadth_assets.analytics.changes import changed_rows
from breadth_assets.assets.column_schemas import OWNERS, table_metadata
from breadth_assets.assets.reporting import (
    date_range_text,
    failures_markdown,
    lines_markdown,
    partial_failure,
    record_good_partitions,
)
from breadth_assets.calendars import last_closed_day
from breadth_assets.partitions import UNIVERSE, tickers_partitions
from breadth_assets.progress import Progress
from breadth_assets.resources.market_store import MarketStore
from breadth_assets.resources.price_source import PriceRequest, PriceSource, SourceError
from breadth_assets.resources.universe_file import UniverseFile
from breadth_assets.universe import Universe, partition_key_problems

RAW_PRICES = dg.AssetKey("raw_prices")
TICKER_TAG = {"partitioned_by": "ticker"}
"""Marks the assets partitioned by ticker, which `ticker_job` runs together."""
INDICATORS = dg.AssetKey("indicators")


class FetchRunConfig(dg.Config):
    end_date: str | None = Field(
        default=None,
        description="Last day to fetch (YYYY-MM-DD); by default the last trading day whose "
        "daily update time (a while after the close) has passed.",
    )


class TickerRunConfig(FetchRunConfig):
    overlap_bars: int = Field(
        default=5,
        ge=0,
        description="Stored bars fetched again at the end of each ticker, to pick up corrections.",
    )
    full_refresh: bool = Field(
        default=False, description="Fetch every ticker again from the universe's start date."
    )


def _fetch_start(
    stored_dates: pd.Series | None, history_start: dt.date, overlap_bars: int
) -> dt.date:
    if stored_dates is None or stored_dates.empty:
        return history_start
    back = min(overlap_bars, len(stored_dates) - 1)
    return max(stored_dates.iloc[-1 - back].date(), history_start)


def run_end_date(end_date: str | None, universe: Universe) -> dt.date:
    """The run config's end date, else the last trading day whose update time has passed."""
    if end_date:
        return dt.date.fromisoformat(end_date)
    return last_closed_day(universe.market, extra_closures=universe.extra_closures)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RAW_PRICES,
            description="Daily OHLCV bars per ticker from the universe's source, in the "
            "`prices` table. Incremental: bars after the last stored one, with a few bars of "
            "overlap to pick up corrections.",
            group_name="market",
            kinds={"duckdb"},
            tags=TICKER_TAG,
            metadata=table_metadata(schema.PRICES),
            owners=OWNERS,
        ),
        dg.AssetSpec(
            INDICATORS,
            deps=[RAW_PRICES],
            description="EMA 10/20/50/100/200, RSI 14, MACD 12/26/9 with its stage, Bollinger "
            "20/2 and 52-week high/low per ticker (TA-Lib), in the `indicators` table.",
            group_name="market",
            kinds={"duckdb"},
            tags=TICKER_TAG,
            metadata=table_metadata(schema.INDICATORS),
            owners=OWNERS,
        ),
    ],
    partitions_def=tickers_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=UNIVERSE.batch_size),
    pool="price_api",
    can_subset=True,
)
def ticker_assets(
    context: dg.AssetExecutionContext,
    config: TickerRunConfig,
    store: MarketStore,
    price_source: PriceSource,
    universe: UniverseFile,
) -> Iterator[dg.MaterializeResult]:
    started = time.perf_counter()
    tickers = list(context.partition_keys)
    selected = context.selected_asset_keys
    failed: dict[dg.AssetKey, dict[str, str]] = {RAW_PRICES: {}, INDICATORS: {}}
    rejected: list[str] = []

    prices = store.read_prices(tickers)
    new_prices = prices.iloc[0:0]
    if RAW_PRICES in selected:
        fetched, rejected = _fetch(
            context, config, price_source, universe, prices, failed[RAW_PRICES]
        )
        new_prices = changed_rows(fetched, prices, schema.KEYS[schema.PRICES])
        prices = _apply(prices, new_prices)

    new_indicators = prices.iloc[0:0]
    if INDICATORS in selected:
        for ticker, reason in failed[RAW_PRICES].items():
            failed[INDICATORS][ticker] = f"prices were not updated: {reason}"
        good = prices[~prices["ticker"].isin(list(failed[INDICATORS]))]
        computed = _compute(good, failed[INDICATORS])
        stored = store.read_indicators(computed["ticker"].unique().tolist())
        new_indicators = changed_rows(computed, stored, schema.KEYS[schema.INDICATORS])

    store.write({schema.PRICES: new_prices, schema.INDICATORS: new_indicators})
    seconds = time.perf_counter() - started
    keys = [key for key in (RAW_PRICES, INDICATORS) if key in selected]
    written = {RAW_PRICES: new_prices, INDICATORS: new_indicators}
    metadata = {key: _metadata(written[key], failed[key], len(tickers), seconds) for key in keys}
    if RAW_PRICES in metadata and rejected:
        metadata[RAW_PRICES]["rows_rejected"] = dg.MetadataValue.int(len(rejected))
        metadata[RAW_PRICES]["rejected"] = dg.MetadataValue.md(lines_markdown(rejected))
    for key in keys:
        context.log.info(
            f"{key.to_user_string()}: {len(tickers) - len(failed[key])} tickers ok, "
            f"{len(failed[key])} failed, {len(written[key])} rows written in {seconds:.2f} s"
        )

    # A price failure's own reason wins over the indicators' "prices were not updated".
    failures = {ticker: reason for key in reversed(keys) for ticker, reason in failed[key].items()}
    if failures:
        for key in keys:
            record_good_partitions(context, key, tickers, failed[key], metadata[key])
        raise partial_failure(failures, len(tickers))
    for key in keys:
        yield dg.MaterializeResult(asset_key=key, metadata=metadata[key])


def _metadata(
    written: pd.DataFrame, failures: dict[str, str], tickers: int, seconds: float
) -> dict[str, dg.MetadataValue]:
    metadata = {
        "rows_written": dg.MetadataValue.int(len(written)),
        "date_range": dg.MetadataValue.text(date_range_text(written)),
        "tickers_ok": dg.MetadataValue.int(tickers - len(failures)),
        "tickers_failed": dg.MetadataValue.int(len(failures)),
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
        "tickers_per_second": dg.MetadataValue.float(round(tickers / seconds, 1)),
    }
    if len(written):
        metadata["first_date_written"] = dg.MetadataValue.text(f"{written['date'].min():%Y-%m-%d}")
    if failures:
        metadata["failures"] = dg.MetadataValue.md(failures_markdown(failures))
    return metadata


def _fetch(
    context: dg.AssetExecutionContext,
    config: TickerRunConfig,
    price_source: PriceSource,
    universe: UniverseFile,
    stored: pd.DataFrame,
    failures: dict[str, str],
) -> tuple[pd.DataFrame, list[str]]:
    """Bars from the source for every ticker of the run; failures are collected, not raised."""
    current = universe.load()
    refused = partition_key_problems(context.partition_keys, current)
    for ticker, reason in refused.items():
        failures[ticker] = reason
        context.log.error(f"{ticker}: {reason}")
    instrument_keys = {entry.symbol: entry.instrument_key for entry in current.tickers}
    end = run_end_date(config.end_date, current)
    stored_dates = {ticker: group["date"] for ticker, group in stored.groupby("ticker")}
    requests = [
        PriceRequest(
            ticker=ticker,
            start=current.start_date
            if config.full_refresh
            else _fetch_start(stored_dates.get(ticker), current.start_date, config.overlap_bars),
            end=end,
            instrument_key=instrument_keys.get(ticker),
        )
        for ticker in context.partition_keys
        if ticker not in refused
    ]
    frames: list[pd.DataFrame] = []
    rejected: list[str] = []
    progress = Progress(len(requests), context.log.info, what="fetching")
    for request, answer in price_source.fetch_many(requests):
        progress.step()
        if isinstance(answer, SourceError):
            reason = str(answer).removeprefix(f"{request.ticker}: ")
            if reason not in failures.values():
                context.log.error(f"{request.ticker}: {reason}")
            failures[request.ticker] = reason
            continue
        frames.append(answer.bars)
        for line in answer.rejected:
            context.log.warning(f"{request.ticker}: row left out: {line}")
        rejected.extend(answer.rejected)
    progress.finish()
    columns = list(schema.PRICE_COLUMNS)
    fetched = pd.concat(frames, ignore_index=True) if frames else stored.iloc[0:0]
    return fetched[columns], rejected


def _apply(stored: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """The stored rows as they will be once `changes` is written."""
    if changes.empty:
        return stored
    keys = list(schema.KEYS[schema.PRICES])
    kept = stored.merge(changes[keys], on=keys, how="left", indicator=True)
    kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge")
    merged = pd.concat([kept, changes], ignore_index=True)
    return merged.sort_values(keys, ignore_index=True)


def _compute(prices: pd.DataFrame, failures: dict[str, str]) -> pd.DataFrame:
    """Indicators for all tickers at once; if that fails, ticker by ticker to find the culprit."""
    try:
        return compute_indicators(prices)
    except Exception:
        frames = []
        for ticker, bars in prices.groupby("ticker"):
            try:
                frames.append(compute_indicators(bars))
            except Exception as error:
                failures[ticker] = f"indicators failed: {error}"
        columns = list(schema.INDICATOR_COLUMNS)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
