"""Metadata texts that read well in the Dagster UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg
import pandas as pd

MAX_LISTED = 50


def date_range_text(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "no rows"
    return f"{rows['date'].min():%Y-%m-%d} to {rows['date'].max():%Y-%m-%d}"


def failures_markdown(failures: Mapping[str, str]) -> str:
    lines = ["| ticker | reason |", "|---|---|"]
    for ticker, reason in sorted(failures.items())[:MAX_LISTED]:
        lines.append(f"| {ticker} | {_cell(reason)} |")
    if len(failures) > MAX_LISTED:
        lines.append(f"| … | {len(failures) - MAX_LISTED} more in the run's logs |")
    return "\n".join(lines)


def lines_markdown(lines: Sequence[str]) -> str:
    shown = [f"- {_cell(line)}" for line in lines[:MAX_LISTED]]
    if len(lines) > MAX_LISTED:
        shown.append(f"- … {len(lines) - MAX_LISTED} more in the run's logs")
    return "\n".join(shown)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def record_good_partitions(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    tickers: Sequence[str],
    failed: Mapping[str, str],
    metadata: Mapping[str, dg.MetadataValue],
) -> None:
    """Records the tickers that did not fail as materialized, before the step fails for the rest."""
    for ticker in tickers:
        if ticker not in failed:
            context.log_event(
                dg.AssetMaterialization(asset_key=key, partition=ticker, metadata=dict(metadata))
            )


def partial_failure(failures: Mapping[str, str], tickers: int) -> dg.Failure:
    """The step's failure when some tickers failed and the others were recorded as materialized."""
    by_reason: dict[str, list[str]] = {}
    for ticker, reason in sorted(failures.items()):
        by_reason.setdefault(reason, []).append(ticker)
    lines = [
        f"- {names[0]}: {reason}"
        if len(names) == 1
        else f"- {len(names)} tickers ({_names(names)}): {reason}"
        for reason, names in by_reason.items()
    ]
    return dg.Failure(
        description=f"{len(failures)} of {tickers} tickers failed; the others were "
        "written and recorded as materialized:\n" + "\n".join(lines),
        metadata={"failures": dg.MetadataValue.md(failures_markdown(failures))},
    )


def _names(tickers: Sequence[str], shown: int = 10) -> str:
    more = f", … {len(tickers) - shown} more" if len(tickers) > shown else ""
    return ", ".join(tickers[:shown]) + more
