"""The corporate actions of a batch of tickers: declared, applied to their bars, compared with
what their stored indicators were computed on (docs/design.md "Corporate actions")."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
import pandas as pd

from breadth_assets.analytics.actions import (
    describe,
    empty_actions,
    first_changed_ex_dates,
    resolve_factors,
)
from breadth_assets.defs.assets.reporting import lines_markdown
from breadth_assets.defs.report_keys import ACTIONS_APPLIED, ACTIONS_APPLIED_LIST
from breadth_assets.sources.base import PriceSource
from breadth_assets.stores.base import MarketStore
from breadth_assets.universe.actions_file import (
    ActionsFileError,
    DeclaredActions,
    read_actions_path,
)
from breadth_assets.universe.file import Universe


def declared_actions(
    universe: Universe, source: PriceSource, tickers: Sequence[str]
) -> DeclaredActions:
    """The source's own actions of these tickers, overridden by the universe's actions file
    where both declare a ticker's kind on one ex-date. An actions file that cannot be read
    holds back every ticker's indicators, naming the file (their prices are kept)."""
    from_source = source.with_settings(universe.source_settings).declared_actions(tickers)
    if universe.actions is None:
        return DeclaredActions(from_source.reset_index(drop=True))
    try:
        declared = read_actions_path(universe.actions).of(tickers)
    except ActionsFileError as error:
        return DeclaredActions(empty_actions(), {ticker: [str(error)] for ticker in tickers})
    if len(from_source):
        keys = ["ticker", "ex_date", "kind"]
        rows = pd.concat([declared.rows, from_source], ignore_index=True)
        declared.rows = rows.drop_duplicates(keys, keep="first").sort_values(keys)
    return declared


class Adjustment:
    """The actions applied to each ticker's bars, and where they changed since its stored
    indicators: a ticker whose applied actions changed is computed again over its history."""

    def __init__(
        self,
        store: MarketStore,
        declared: pd.DataFrame,
        tickers: Sequence[str],
        adjust_dividends: bool,
    ) -> None:
        self.declared = declared[declared["ticker"].isin(list(tickers))]
        self.stored = store.read_actions(list(tickers)) if len(tickers) else empty_actions()
        self.adjust_dividends = adjust_dividends
        self.actions = empty_actions()
        self.changed: dict[str, pd.Timestamp] = {}
        self.problems: dict[str, str] = {}

    def resolve(self, prices: pd.DataFrame) -> set[str]:
        """Applies the actions to the tickers of `prices` (raw bars, replacing what an earlier
        call resolved for them); returns the tickers whose whole history is needed."""
        tickers = prices["ticker"].unique().tolist()
        resolved = resolve_factors(
            self.declared[self.declared["ticker"].isin(tickers)],
            prices,
            self.adjust_dividends,
            self.stored,
        )
        kept = self.actions[~self.actions["ticker"].isin(tickers)]
        frames = [frame for frame in (kept, resolved.actions) if len(frame)]
        self.actions = pd.concat(frames, ignore_index=True) if frames else empty_actions()
        changed = first_changed_ex_dates(self.stored, resolved.actions, tickers)
        self.changed = {
            **{t: day for t, day in self.changed.items() if t not in tickers},
            **changed,
        }
        self.problems.update(resolved.problems)
        return set(changed) | resolved.need_history

    def rows_of(self, tickers: Sequence[str]) -> pd.DataFrame:
        """The `corporate_actions` rows of these tickers, as applied."""
        return self.actions[self.actions["ticker"].isin(list(tickers))].reset_index(drop=True)

    def newly_applied(self, tickers: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Of these tickers, the actions applied now but not before, and the reverse."""
        key = ["ticker", "ex_date", "kind", "value", "factor"]
        now = self.rows_of(tickers).dropna(subset=["factor"])
        before = self.stored[self.stored["ticker"].isin(list(tickers))].dropna(subset=["factor"])
        merged = now.merge(before[key], on=key, how="outer", indicator=True)
        applied = merged[merged["_merge"] == "left_only"].drop(columns="_merge")
        undone = merged[merged["_merge"] == "right_only"].drop(columns="_merge")
        return applied, undone


def actions_metadata(
    adjustment: Adjustment | None, tickers: Sequence[str], unreadable: Sequence[str]
) -> dict[str, dg.MetadataValue]:
    """What a batch did with its tickers' actions: applied and undone ones (`ABC split 1:5 on
    2019-06-03`), and the lines of an NSE export that need a `factor` line."""
    metadata: dict[str, dg.MetadataValue] = {}
    if adjustment is not None:
        applied, undone = adjustment.newly_applied(tickers)
        metadata[ACTIONS_APPLIED] = dg.MetadataValue.int(len(applied))
        if len(applied):
            metadata[ACTIONS_APPLIED_LIST] = dg.MetadataValue.text(describe(applied))
        if len(undone):
            metadata["actions_undone"] = dg.MetadataValue.text(
                describe(undone).replace("applied", "undone")
            )
    if unreadable:
        metadata["actions_unreadable"] = dg.MetadataValue.md(lines_markdown(list(unreadable)))
    return metadata


def actions_in_days(
    store: MarketStore, first: pd.Timestamp, last: pd.Timestamp
) -> dict[str, dg.MetadataValue]:
    """The actions applied with an ex-date among a breadth run's days, for its metadata."""
    stored = store.read_actions(store.read_breadth_tickers())
    dates = pd.to_datetime(stored["ex_date"])
    inside = stored[stored["factor"].notna() & (dates >= first) & (dates <= last)]
    if inside.empty:
        return {}
    return {ACTIONS_APPLIED_LIST: dg.MetadataValue.text(describe(inside))}
