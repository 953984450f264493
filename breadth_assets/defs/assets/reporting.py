"""Metadata texts that read well in the Dagster UI."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import dagster as dg
import pandas as pd

from breadth_assets.defs.assets.fetching import CREDENTIALS_PREFIX
from breadth_assets.defs.report_keys import CREDENTIALS_REFUSED
from breadth_assets.runtime.dagster_compat import log_materializations, versioned_materializations
from breadth_assets.runtime.workers import worker_name

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


def rejected_metadata(rejected: Mapping[str, Sequence[str]]) -> dict[str, dg.MetadataValue]:
    """A batch's refused rows: the total and a table per ticker (count, first reason)."""
    total = sum(len(lines) for lines in rejected.values())
    metadata = {"rows_rejected_in_run": dg.MetadataValue.int(total)}
    if rejected:
        table = ["| ticker | rows refused | first |", "|---|---:|---|"]
        ordered = sorted(rejected.items(), key=lambda item: (-len(item[1]), item[0]))
        for ticker, lines in ordered[:MAX_LISTED]:
            table.append(f"| {ticker} | {len(lines)} | {_cell(lines[0])} |")
        if len(rejected) > MAX_LISTED:
            table.append(f"| … | {len(rejected) - MAX_LISTED} more tickers | |")
        metadata["rejected_by_ticker"] = dg.MetadataValue.md("\n".join(table))
    return metadata


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def record_good_partitions(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    partitions: Sequence[str],
    failed: Mapping[str, object],
    metadata: Mapping[str, dg.MetadataValue],
    extra: Mapping[str, Mapping[str, dg.MetadataValue]] | None = None,
    versions: Mapping[str, str] | None = None,
) -> None:
    """Records the partitions that did not fail as materialized, before the step fails for the
    rest; `extra` adds metadata to single partitions, `versions` gives each its data version."""
    good = [partition for partition in partitions if partition not in failed]
    if versions is not None:
        shown = {partition: versions[partition] for partition in good}
        log_materializations(context, versioned_materializations(key, shown, metadata, extra or {}))
        return
    log_materializations(
        context,
        [
            dg.AssetMaterialization(
                asset_key=key,
                partition=partition,
                metadata={**metadata, **(extra or {}).get(partition, {})},
            )
            for partition in good
        ],
    )


def finish_batch(
    context: dg.AssetExecutionContext,
    tickers: Sequence[str],
    metadata: Mapping[dg.AssetKey, Mapping[str, dg.MetadataValue]],
    failed: Mapping[dg.AssetKey, Mapping[str, str]],
    by_partition: Mapping[dg.AssetKey, Mapping[str, Mapping[str, dg.MetadataValue]]] | None = None,
    versions: Mapping[dg.AssetKey, Mapping[str, str]] | None = None,
) -> Iterator[dg.MaterializeResult]:
    """Each asset's materialization for a batch of tickers, or, when some failed, the good ones
    recorded as materialized and the step failed with every reason. `by_partition` adds
    metadata to single partitions (a ticker's own refused rows); an asset in `versions` is
    recorded partition by partition with each one's data version (its spec is skippable).

    When a ticker failed for several assets, the first asset's reason wins.
    """
    by_partition = by_partition or {}
    versions = versions or {}
    failures: dict[str, str] = {}
    for key in metadata:
        for ticker, reason in failed.get(key, {}).items():
            failures.setdefault(ticker, reason)
    if failures:
        for key, values in metadata.items():
            extra = by_partition.get(key)
            record_good_partitions(
                context, key, tickers, failed.get(key, {}), values, extra, versions.get(key)
            )
        raise partial_failure(failures, len(tickers))
    for key, values in metadata.items():
        if key in versions:
            record_good_partitions(
                context, key, tickers, {}, values, by_partition.get(key), versions[key]
            )
            continue
        for partition, extra in by_partition.get(key, {}).items():
            context.add_asset_metadata(dict(extra), asset_key=key, partition_key=partition)
        yield dg.MaterializeResult(asset_key=key, metadata=dict(values))


def batch_metadata(
    rows_written: int,
    failures: Mapping[str, str],
    tickers: int,
    seconds: float,
    **extra: dg.MetadataValue,
) -> dict[str, dg.MetadataValue]:
    """What every batch of tickers reports: rows written, tickers ok and failed, time."""
    metadata = {
        "rows_written": dg.MetadataValue.int(rows_written),
        **extra,
        "worker": dg.MetadataValue.text(worker_name()),
        "tickers_ok": dg.MetadataValue.int(tickers - len(failures)),
        "tickers_failed": dg.MetadataValue.int(len(failures)),
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
        "tickers_per_second": dg.MetadataValue.float(round(tickers / max(seconds, 1e-6), 1)),
    }
    if failures:
        metadata["failures"] = dg.MetadataValue.md(failures_markdown(failures))
    return metadata


def partial_failure(failures: Mapping[str, str], tickers: int) -> dg.Failure:
    """The step's failure when some tickers failed and the others were recorded as materialized.

    Its metadata says `credentials_refused` when the source refused its credentials, so that
    the main job starts no later batch."""
    by_reason: dict[str, list[str]] = {}
    for ticker, reason in sorted(failures.items()):
        by_reason.setdefault(reason, []).append(ticker)
    lines = [
        f"- {names[0]}: {reason}"
        if len(names) == 1
        else f"- {len(names)} tickers ({_names(names)}): {reason}"
        for reason, names in by_reason.items()
    ]
    others = (
        "nothing was written"
        if len(failures) >= tickers
        else "the others were written and recorded as materialized"
    )
    refused = any(reason.startswith(CREDENTIALS_PREFIX) for reason in failures.values())
    return dg.Failure(
        description=f"{len(failures)} of {tickers} tickers failed; {others}:\n" + "\n".join(lines),
        metadata={
            "failures": dg.MetadataValue.md(failures_markdown(failures)),
            CREDENTIALS_REFUSED: dg.MetadataValue.bool(refused),
        },
    )


def _names(tickers: Sequence[str], shown: int = 10) -> str:
    more = f", … {len(tickers) - shown} more" if len(tickers) > shown else ""
    return ", ".join(tickers[:shown]) + more
