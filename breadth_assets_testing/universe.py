"""Universe files for tests, benchmarks and trials."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from breadth_assets.universe.file import DEFAULT_BATCH_SIZE, DEFAULT_UPDATE_BATCH_SIZE


def write_demo_universe(
    folder: Path,
    symbols: Sequence[str],
    start: str | dt.date,
    batch_size: int = DEFAULT_BATCH_SIZE,
    update_batch_size: int = DEFAULT_UPDATE_BATCH_SIZE,
) -> Path:
    """Writes a demo-market `universe.yaml` into `folder`, for tests, benchmarks and trials."""
    path = Path(folder) / "universe.yaml"
    lines = ["market: DEMO", f"start_date: {str(start)[:10]}", f"batch_size: {batch_size}"]
    lines.append(f"update_batch_size: {update_batch_size}")
    lines += ["source:", "  kind: demo", "tickers:", *(f"  - {symbol}" for symbol in symbols)]
    path.write_text("\n".join(lines) + "\n")
    return path
