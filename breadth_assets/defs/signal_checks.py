"""Each breadth signal as an asset check on `breadth` (WARN when it fired on the last breadth
day, in any group): the Checks tab keeps the history of the signals."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from breadth_assets.analytics.signals import SIGNALS
from breadth_assets.defs.assets.breadth import BREADTH
from breadth_assets.stores.base import MarketStore

SHOWN = 10


def check_name(signal: str) -> str:
    return f"signal_{signal}"


def build_signal_checks() -> dg.AssetChecksDefinition:
    """One step that reads the last day's signals once and answers every signal's check."""

    @dg.multi_asset_check(
        name="breadth_signal_checks",
        specs=[
            dg.AssetCheckSpec(
                check_name(signal),
                asset=BREADTH,
                description=f"Warns when the breadth signal {signal} fired on the last breadth "
                "day, in any group (docs/design.md, Breadth signals): passing means it did "
                "not.",
            )
            for signal in SIGNALS
        ],
        can_subset=True,
    )
    def breadth_signal_checks(
        context: dg.AssetCheckExecutionContext, store: MarketStore
    ) -> Iterator[dg.AssetCheckResult]:
        latest = store.read_breadth_before(dt.date.max)
        day = None if latest is None else latest["date"].date()
        fired = store.read_breadth_signals(start=day, end=day) if day else None
        for signal in SIGNALS:
            key = dg.AssetCheckKey(BREADTH, check_name(signal))
            if key not in context.selected_asset_check_keys:
                continue
            rows = fired[fired["signal"] == signal] if fired is not None else []
            if day is None or not len(rows):
                text = "no breadth row yet" if day is None else f"did not fire on {day}"
                yield dg.AssetCheckResult(
                    check_name=check_name(signal),
                    passed=True,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=text,
                )
                continue
            listed = "; ".join(f"{r.group_name}: {r.detail}" for r in rows.head(SHOWN).itertuples())
            yield dg.AssetCheckResult(
                check_name=check_name(signal),
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{signal} fired on {day} in {len(rows)} groups: {listed}",
                metadata={
                    "day": dg.MetadataValue.text(f"{day}"),
                    "groups": dg.MetadataValue.text(", ".join(rows["group_name"])),
                },
            )

    return breadth_signal_checks
