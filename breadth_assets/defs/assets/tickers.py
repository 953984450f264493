"""`raw_prices[ticker]` and `indicators[ticker]`: one step per batch of tickers.

Both assets live in one multi-asset step so that a ticker whose fetch fails costs only itself:
the good tickers of the batch get their prices and indicators in the same run, and the failed
ones are left failed in the partition status, ready for "re-execute failed" in the UI.
"""

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd
from pydantic import Field

from breadth_assets import schema
from breadth_assets.analytics.changes import apply_changes, changed_rows
from breadth_assets.analytics.indicator_updates import plan_indicator_update
from breadth_assets.analytics.indicators import (
    LOOKBACK_52W,
    compute_indicators_by_ticker,
    continue_indicators,
)
from breadth_assets.defs.assets.column_schemas import table_asset_args
from breadth_assets.defs.assets.data_versions import partition_versions
from breadth_assets.defs.assets.fetching import (
    FetchRunConfig,
    fetched_answers,
    refused_partitions,
    run_end_date,
)
from breadth_assets.defs.assets.reporting import (
    batch_metadata,
    date_range_text,
    finish_batch,
    lines_markdown,
    rejected_metadata,
)
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.defs.report_keys import ROWS_REJECTED
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.runtime.dagster_compat import latest_data_versions
from breadth_assets.sources.base import PriceRequest, PriceSource
from breadth_assets.stores.base import MarketStore
from breadth_assets.universe.file import Universe

RAW_PRICES = dg.AssetKey("raw_prices")
INDICATORS = dg.AssetKey("indicators")
TAIL_MARGIN_BARS = 10
"""Stored bars read beyond what an incremental update needs (the 52-week window, the overlap)."""
TICKER_TAG = {"partitioned_by": "ticker"}
"""Marks the assets partitioned by ticker, which `ticker_job` runs together."""


class TickerRunConfig(FetchRunConfig):
    overlap_bars: int = Field(
        default=5,
        ge=0,
        description="Stored bars fetched again at the end of each ticker, to pick up corrections.",
    )
    full_refresh: bool = Field(
        default=False, description="Fetch every ticker again from the universe's start date."
    )


def _fetch_starts(stored: pd.DataFrame, history_start: dt.date, overlap_bars: int) -> dict:
    """Per stored ticker, the date of its bar `overlap_bars` before the last (or its first);
    `stored` is sorted by ticker and date, as the store returns it."""
    last_bars = stored.groupby("ticker", sort=False).tail(overlap_bars + 1)
    firsts = last_bars.drop_duplicates("ticker")
    return {
        ticker: max(day.date(), history_start)
        for ticker, day in zip(firsts["ticker"], firsts["date"], strict=True)
    }


def build_ticker_assets(batch_size: int, store_kind: str) -> dg.AssetsDefinition:
    """The multi-asset, with UI backfills split into runs of `batch_size` tickers."""

    return dg.multi_asset(
        name="ticker_assets",
        specs=[
            dg.AssetSpec(
                RAW_PRICES,
                description="Daily OHLCV bars per ticker from the universe's source, in the "
                "`prices` table. Incremental: bars after the last stored one, with a few bars "
                "of overlap to pick up corrections.",
                tags=TICKER_TAG,
                skippable=True,
                **table_asset_args(schema.PRICES, store_kind),
            ),
            dg.AssetSpec(
                INDICATORS,
                deps=[RAW_PRICES],
                description="EMA 10/20/50/100/200, RSI 14, MACD 12/26/9 with its stage, "
                "Bollinger 20/2 and 52-week high/low per ticker (TA-Lib), in the `indicators` "
                "table.",
                tags=TICKER_TAG,
                skippable=True,
                **table_asset_args(schema.INDICATORS, store_kind),
            ),
        ],
        partitions_def=tickers_partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=batch_size),
        pool="price_api",
        can_subset=True,
    )(ticker_assets)


@dataclass
class _Batch:
    """What a batch of tickers computed: the rows to write per table, the tickers that failed
    per asset (with the reason), and the source's refused rows per ticker."""

    prices: pd.DataFrame
    indicators: pd.DataFrame
    failed: dict[dg.AssetKey, dict[str, str]] = field(default_factory=dict)
    rejected: dict[str, list[str]] = field(default_factory=dict)

    def written(self, key: dg.AssetKey) -> pd.DataFrame:
        return self.prices if key == RAW_PRICES else self.indicators


def ticker_assets(
    context: dg.AssetExecutionContext,
    config: TickerRunConfig,
    store: MarketStore,
    price_source: PriceSource,
    universe: UniverseFile,
) -> Iterator[dg.MaterializeResult]:
    """Reads what the update needs, fetches and computes, writes the batch in one transaction,
    then reports each asset's materializations (docs/design.md "Indicators from state")."""
    started = time.perf_counter()
    tickers = list(context.partition_keys)
    batch = _compute(context, config, store, price_source, universe.load(), tickers)
    store.write({schema.PRICES: batch.prices, schema.INDICATORS: batch.indicators})
    yield from _report(context, tickers, batch, time.perf_counter() - started)


def _compute(
    context: dg.AssetExecutionContext,
    config: TickerRunConfig,
    store: MarketStore,
    price_source: PriceSource,
    current: Universe,
    tickers: list[str],
) -> _Batch:
    """The rows of the selected assets that are new or changed, and who failed."""
    selected = context.selected_asset_keys
    tail_bars = LOOKBACK_52W + config.overlap_bars + TAIL_MARGIN_BARS
    incremental = not config.full_refresh and RAW_PRICES in selected
    if incremental:
        prices = store.read_tail(schema.PRICES, tickers, tail_bars)
    else:
        prices = store.read_prices(tickers)
    batch = _Batch(prices.iloc[0:0], prices.iloc[0:0], {RAW_PRICES: {}, INDICATORS: {}})
    if RAW_PRICES in selected:
        fetched = _fetch(context, config, price_source, current, prices)
        batch.failed[RAW_PRICES], batch.rejected = fetched.failed, fetched.rejected
        if incremental:
            prices = _whole_where_needed(store, prices, fetched.bars, tail_bars)
        batch.prices = changed_rows(fetched.bars, prices, schema.KEYS[schema.PRICES])
        prices = apply_changes(prices, batch.prices, schema.KEYS[schema.PRICES])
    if INDICATORS in selected:
        failed = {
            ticker: f"prices were not updated: {reason}"
            for ticker, reason in batch.failed[RAW_PRICES].items()
        }
        good = prices[~prices["ticker"].isin(list(failed))]
        if incremental:
            computed, stored, broken = _indicators_from_state(
                store, good, batch.prices, config.overlap_bars + TAIL_MARGIN_BARS
            )
        else:
            computed, broken = compute_indicators_by_ticker(good)
            stored = store.read_indicators(computed["ticker"].unique().tolist())
        batch.failed[INDICATORS] = {**failed, **broken}
        batch.indicators = changed_rows(computed, stored, schema.KEYS[schema.INDICATORS])
    return batch


def _report(
    context: dg.AssetExecutionContext, tickers: list[str], batch: _Batch, seconds: float
) -> Iterator[dg.MaterializeResult]:
    """Each selected asset's metadata, log line and per-partition data versions."""
    keys = [key for key in (RAW_PRICES, INDICATORS) if key in context.selected_asset_keys]
    metadata = {
        key: _metadata(batch.written(key), batch.failed[key], len(tickers), seconds) for key in keys
    }
    by_partition: dict[dg.AssetKey, dict[str, dict[str, dg.MetadataValue]]] = {}
    if RAW_PRICES in metadata:
        metadata[RAW_PRICES].update(rejected_metadata(batch.rejected))
        by_partition[RAW_PRICES] = {
            ticker: {
                ROWS_REJECTED: dg.MetadataValue.int(len(lines)),
                "rejected": dg.MetadataValue.md(lines_markdown(lines)),
            }
            for ticker, lines in batch.rejected.items()
        }
    for key in keys:
        failed, written = batch.failed[key], batch.written(key)
        refused = sum(map(len, batch.rejected.values())) if key == RAW_PRICES else 0
        context.log.info(
            f"{key.to_user_string()}: {len(tickers) - len(failed)} tickers ok, "
            f"{len(failed)} failed, {len(written)} rows written in {seconds:.2f} s"
            + (f", {refused} rows refused in {len(batch.rejected)} tickers" if refused else "")
        )
    versions = {
        key: partition_versions(
            latest_data_versions(context.instance, key, tickers), tickers, batch.written(key)
        )
        for key in keys
        if not _checked_in_this_run(context, key)
    }
    yield from finish_batch(context, tickers, metadata, batch.failed, by_partition, versions)


def _checked_in_this_run(context: dg.AssetExecutionContext, key: dg.AssetKey) -> bool:
    """A check of `key` runs after this step in the same run (a materialization or backfill
    from the UI with its checks): it needs the step's output, so the asset is recorded as
    Dagster records outputs (one data version for the run), not partition by partition."""
    selected = context.run.asset_check_selection
    if selected is None:
        selected = context.job_def.asset_layer.asset_graph.asset_check_keys
    return any(check.asset_key == key for check in selected)


def _indicators_from_state(
    store: MarketStore, prices: pd.DataFrame, new_prices: pd.DataFrame, stored_bars: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Indicator rows from each ticker's first new bar on, going on from its stored state, and
    the whole history of the tickers that cannot (docs/design.md "Indicators from state").

    Returns the computed rows, the stored rows they replace, and the tickers that failed.
    """
    tickers = prices["ticker"].unique().tolist()
    stored = store.read_tail(schema.INDICATORS, tickers, stored_bars)
    plan = plan_indicator_update(prices, new_prices, stored)
    recompute = plan.recompute
    try:
        going_on = continue_indicators(plan.prices, plan.previous)
    except Exception:  # computed again below, where a broken ticker is named alone
        going_on, recompute = plan.prices.iloc[0:0], sorted({*recompute, *plan.previous["ticker"]})
    whole = apply_changes(
        store.read_prices(recompute),
        new_prices[new_prices["ticker"].isin(recompute)],
        schema.KEYS[schema.PRICES],
    )
    computed, broken = compute_indicators_by_ticker(whole)
    stored = pd.concat(
        [stored[~stored["ticker"].isin(recompute)], store.read_indicators(recompute)],
        ignore_index=True,
    )
    computed = pd.concat([f for f in (going_on, computed) if len(f)] or [computed])
    return computed, stored, broken


def _whole_where_needed(
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


def _metadata(
    written: pd.DataFrame, failures: dict[str, str], tickers: int, seconds: float
) -> dict[str, dg.MetadataValue]:
    metadata = batch_metadata(
        len(written),
        failures,
        tickers,
        seconds,
        date_range=dg.MetadataValue.text(date_range_text(written)),
    )
    if len(written):
        metadata["first_date_written"] = dg.MetadataValue.text(f"{written['date'].min():%Y-%m-%d}")
    return metadata


@dataclass
class _Fetched:
    bars: pd.DataFrame
    failed: dict[str, str]
    rejected: dict[str, list[str]]


def _fetch(
    context: dg.AssetExecutionContext,
    config: TickerRunConfig,
    price_source: PriceSource,
    current: Universe,
    stored: pd.DataFrame,
) -> _Fetched:
    """Bars from the source for every ticker of the run; failures are collected, not raised."""
    failures = refused_partitions(context, context.partition_keys, current)
    instrument_keys = {entry.symbol: entry.instrument_key for entry in current.tickers}
    end = run_end_date(config.end_date, current)
    starts = _fetch_starts(stored, current.start_date, config.overlap_bars)
    requests = [
        PriceRequest(
            ticker=ticker,
            start=current.start_date
            if config.full_refresh
            else starts.get(ticker, current.start_date),
            end=end,
            instrument_key=instrument_keys.get(ticker),
        )
        for ticker in context.partition_keys
        if ticker not in failures
    ]
    frames: list[pd.DataFrame] = []
    rejected: dict[str, list[str]] = {}
    answers = price_source.with_settings(current.source_settings).fetch_many(requests)
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
    return _Fetched(fetched[columns], failures, rejected)
