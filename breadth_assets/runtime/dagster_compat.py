"""What the project needs of Dagster that its public API does not offer (checked against
Dagster 1.13, `CHECKED_DAGSTER`): the one place outside `runtime/`'s own storages, executor and
logger that imports `dagster._`. Each name says what it stands for and when it can go; a test
fails on a Dagster minor version these were not checked against.

Dagster gives a run over many partitions one data version for all of them (`MaterializeResult`
has no per-partition version), and `context.log_event` writes each event alone, outside the
batches (`DAGSTER_EVENT_BATCH_SIZE`) in which Dagster writes its own materializations of such a
run: `log_materializations` and `latest_data_versions` fill that gap until Dagster has
per-partition data versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg
from dagster._core.definitions.data_version import (
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
)
from dagster._core.definitions.reconstruct import (
    ReconstructableRepository,  # dg.execute_job needs a reconstructable job; no public builder
)
from dagster._core.events import (
    DagsterEvent,
    DagsterEventBatchMetadata,
    RunFailureReason,  # tells an interrupted run from a failed one; not exported by dagster
    generate_event_batch_id,
)
from dagster._core.execution.backfill import (  # a backfill's status for the sensors: the
    BulkActionsFilter,  # filter `instance.get_backfills` takes is not exported by dagster
    BulkActionStatus,
)
from dagster._core.storage.tags import (  # run tags Dagster sets and reads, without public names
    ASSET_PARTITION_RANGE_END_TAG,  # a run over a range of partitions (no public helper)
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,  # the backfill a run belongs to
)

CHECKED_DAGSTER = "1.13"
"""The Dagster minor version every name here was checked against."""

__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "BACKFILL_ID_TAG",
    "CHECKED_DAGSTER",
    "BulkActionStatus",
    "BulkActionsFilter",
    "ReconstructableRepository",
    "RunFailureReason",
    "data_version_tags",
    "latest_data_versions",
    "log_materializations",
    "versioned_materializations",
]


def data_version_tags(version: str) -> dict[str, str]:
    """The tags by which Dagster reads a materialization's data version (as it writes them for
    `MaterializeResult(data_version=...)`)."""
    return {DATA_VERSION_TAG: version, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"}


def latest_data_versions(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: Sequence[str]
) -> dict[str, str]:
    """The data version of each partition's latest materialization, in one query (the public
    `get_latest_data_version_record` asks once per partition)."""
    if not partitions:
        return {}
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION, [DATA_VERSION_TAG], list(partitions)
    )
    return {partition: found[DATA_VERSION_TAG] for partition, found in tags.items() if found}


def log_materializations(
    context: dg.AssetExecutionContext, materializations: Sequence[dg.AssetMaterialization]
) -> None:
    """Logs the materializations as `context.log_event` does, written as one batch."""
    op_context = context.op_execution_context
    step = op_context._step_execution_context
    batch = generate_event_batch_id()
    last = len(materializations) - 1
    for number, materialization in enumerate(materializations):
        op_context._events.append(
            DagsterEvent.asset_materialization(
                step, materialization, DagsterEventBatchMetadata(batch, number == last)
            )
        )


def versioned_materializations(
    key: dg.AssetKey,
    versions: Mapping[str, str],
    metadata: Mapping[str, dg.MetadataValue],
    by_partition: Mapping[str, Mapping[str, dg.MetadataValue]],
) -> list[dg.AssetMaterialization]:
    """One materialization per partition of `versions`, each with its own data version."""
    return [
        dg.AssetMaterialization(
            asset_key=key,
            partition=partition,
            metadata={**metadata, **by_partition.get(partition, {})},
            tags=data_version_tags(version),
        )
        for partition, version in versions.items()
    ]
