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

from breadth_assets import schema
from breadth_assets.analytics.actions import adjust_prices, breadth_changes_from
from breadth_assets.analytics.changes import apply_changes, changed_rows
from breadth_assets.analytics.indicator_updates import plan_indicator_update
from breadth_assets.analytics.indicators import (
    LOOKBACK_52W,
    compute_indicators_by_ticker,
    continue_indicators,
)
from breadth_assets.defs.assets.adjusting import Adjustment, actions_metadata, declared_actions
from breadth_assets.defs.assets.column_schemas import table_asset_args
from breadth_assets.defs.assets.daily_fetch import TickerRunConfig, fetch_bars, whole_where_needed
from breadth_assets.defs.assets.data_versions import partition_versions
from breadth_assets.defs.assets.instrument_keys import KEY_CHANGES
from breadth_assets.defs.assets.reporting import (
    batch_metadata,
    date_range_text,
    finish_batch,
    lines_markdown,
    rejected_metadata,
)
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.defs.report_keys import ACTIONS_APPLIED_LIST, ROWS_REJECTED
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.runtime.dagster_compat import latest_data_versions
from breadth_assets.sources.base import PriceSource
from breadth_assets.stores.base import FROM_ROWS, MarketStore
from breadth_assets.universe.file import Universe

RAW_PRICES = dg.AssetKey("raw_prices")
INDICATORS = dg.AssetKey("indicators")
TAIL_MARGIN_BARS = 10
"""Stored bars read beyond what an incremental update needs (the 52-week window, the overlap)."""
TICKER_TAG = {"partitioned_by": "ticker"}
"""Marks the assets partitioned by ticker, which `ticker_job` runs together."""


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
    adjustment: Adjustment | None = None
    """The corporate actions of the tickers whose indicators were computed."""
    computed: list[str] = field(default_factory=list)
    """Tickers whose indicators were computed (their actions are written with them)."""
    unreadable: list[str] = field(default_factory=list)
    breadth_from: pd.Timestamp | None = None
    instrument_keys: pd.DataFrame | None = None
    """`instrument_keys` rows of the tickers fetched under a key new to them."""
    key_changes: list[str] = field(default_factory=list)
    stale_from: dt.date | str | None = FROM_ROWS

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
    frames = {schema.PRICES: batch.prices, schema.INDICATORS: batch.indicators}
    if batch.instrument_keys is not None and len(batch.instrument_keys):
        frames[schema.INSTRUMENT_KEYS] = batch.instrument_keys
    replace = {}
    if INDICATORS in context.selected_asset_keys:
        frames[schema.CORPORATE_ACTIONS] = batch.adjustment.rows_of(batch.computed)
        replace[schema.CORPORATE_ACTIONS] = batch.computed
    store.write(frames, replace=replace, stale_from=batch.stale_from)
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
        fetched = fetch_bars(context, config, price_source, store, current, prices)
        batch.failed[RAW_PRICES], batch.rejected = fetched.failed, fetched.rejected
        batch.instrument_keys, batch.key_changes = fetched.instrument_keys, fetched.key_changes
        if incremental:
            prices = whole_where_needed(store, prices, fetched.bars, tail_bars)
        batch.prices = changed_rows(fetched.bars, prices, schema.KEYS[schema.PRICES])
        prices = apply_changes(prices, batch.prices, schema.KEYS[schema.PRICES])
    if INDICATORS in selected:
        overlap = config.overlap_bars if incremental else None
        _compute_indicators(context, store, price_source, current, prices, batch, overlap)
        batch.stale_from = _stale_from(batch)
    return batch


def _compute_indicators(
    context: dg.AssetExecutionContext,
    store: MarketStore,
    price_source: PriceSource,
    current: Universe,
    prices: pd.DataFrame,
    batch: _Batch,
    overlap_bars: int | None,
) -> None:
    """Indicators on the bars adjusted for the tickers' actions, from each ticker's stored state
    where its applied actions are those the state was computed on (`overlap_bars` None: over
    the whole history of `prices`)."""
    failed = {
        ticker: f"prices were not updated: {reason}"
        for ticker, reason in batch.failed[RAW_PRICES].items()
    }
    declared = declared_actions(current, price_source, list(context.partition_keys))
    failed.update({t: "; ".join(lines) for t, lines in declared.problems.items()})
    for line in declared.unreadable:
        context.log.warning(line)
    good = prices[~prices["ticker"].isin(list(failed))]
    adjustment = Adjustment(
        store, declared.rows, good["ticker"].unique().tolist(), current.adjust_dividends
    )
    whole = adjustment.resolve(good)
    if overlap_bars is not None:
        computed, stored, broken = _indicators_from_state(
            store, good, batch.prices, adjustment, whole, overlap_bars + TAIL_MARGIN_BARS
        )
    else:
        computed, broken = compute_indicators_by_ticker(adjust_prices(good, adjustment.actions))
        stored = store.read_indicators(computed["ticker"].unique().tolist())
    broken.update(adjustment.problems)
    computed = computed[~computed["ticker"].isin(list(broken))]
    batch.failed[INDICATORS] = {**failed, **broken}
    batch.indicators = changed_rows(computed, stored, schema.KEYS[schema.INDICATORS])
    batch.adjustment = adjustment
    batch.computed = computed["ticker"].unique().tolist()
    batch.unreadable = declared.unreadable
    batch.breadth_from = breadth_changes_from(batch.indicators, stored, adjustment.changed)


def _stale_from(batch: _Batch) -> dt.date | None:
    """Where breadth must start again after this batch: its first new or corrected bar, or its
    first indicators row that changed other than by a corporate action's rescaling."""
    days = [batch.breadth_from] if batch.breadth_from is not None else []
    if len(batch.prices):
        days.append(pd.Timestamp(batch.prices["date"].min()))
    return min(days).date() if days else None


def _report(
    context: dg.AssetExecutionContext, tickers: list[str], batch: _Batch, seconds: float
) -> Iterator[dg.MaterializeResult]:
    """Each selected asset's metadata, log line and per-partition data versions."""
    keys = [key for key in (RAW_PRICES, INDICATORS) if key in context.selected_asset_keys]
    metadata = {
        key: _metadata(batch.written(key), batch.failed[key], len(tickers), seconds) for key in keys
    }
    if INDICATORS in metadata:
        metadata[INDICATORS].update(
            actions_metadata(batch.adjustment, batch.computed, batch.unreadable)
        )
        listed = metadata[INDICATORS].get(ACTIONS_APPLIED_LIST)
        if listed is not None:
            context.log.info(f"indicators: {listed.value}")
    by_partition: dict[dg.AssetKey, dict[str, dict[str, dg.MetadataValue]]] = {}
    if RAW_PRICES in metadata:
        metadata[RAW_PRICES].update(rejected_metadata(batch.rejected))
        if batch.key_changes:
            changes = dg.MetadataValue.text(", ".join(batch.key_changes))
            metadata[RAW_PRICES][KEY_CHANGES] = changes
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
    store: MarketStore,
    prices: pd.DataFrame,
    new_prices: pd.DataFrame,
    adjustment: Adjustment,
    whole_needed: set[str],
    stored_bars: int,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Indicator rows from each ticker's first new bar on, going on from its stored state, and
    the whole history of the tickers that cannot (docs/design.md "Indicators from state"), or
    whose applied actions changed (docs/design.md "Corporate actions").

    Returns the computed rows, the stored rows they replace, and the tickers that failed.
    """
    tickers = prices["ticker"].unique().tolist()
    stored = store.read_tail(schema.INDICATORS, tickers, stored_bars)
    adjusted = adjust_prices(prices, adjustment.actions)
    plan = plan_indicator_update(adjusted, new_prices, stored)
    recompute = sorted({*plan.recompute, *whole_needed})
    going_on_prices = plan.prices[~plan.prices["ticker"].isin(recompute)]
    going_on_previous = plan.previous[~plan.previous["ticker"].isin(recompute)]
    try:
        going_on = continue_indicators(going_on_prices, going_on_previous)
    except Exception:  # computed again below, where a broken ticker is named alone
        going_on = going_on_prices.iloc[0:0]
        recompute = sorted({*recompute, *going_on_previous["ticker"]})
    whole = apply_changes(
        store.read_prices(recompute),
        new_prices[new_prices["ticker"].isin(recompute)],
        schema.KEYS[schema.PRICES],
    )
    adjustment.resolve(whole)
    computed, broken = compute_indicators_by_ticker(adjust_prices(whole, adjustment.actions))
    stored = pd.concat(
        [stored[~stored["ticker"].isin(recompute)], store.read_indicators(recompute)],
        ignore_index=True,
    )
    computed = pd.concat([f for f in (going_on, computed) if len(f)] or [computed])
    return computed, stored, broken


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
