"""Metadata texts that read well in the Dagster UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
