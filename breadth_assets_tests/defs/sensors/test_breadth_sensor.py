from __future__ import annotations

import uuid

import dagster as dg
import pytest

from breadth_assets import schema
from breadth_assets.defs.batches import BATCHES_TAG, DAY_TAG
from breadth_assets.defs.sensors.breadth_sensor import daily_breadth_sensor
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets_tests.support import materialize_breadth, materialize_tickers

DAY = "2024-06-28"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture(autouse=True)
def _resources(store, universe_path):
    global _RESOURCES
    _RESOURCES = {"store": store, "universe": UniverseFile(path=str(universe_path))}


def _add_ticker_run(instance, status: dg.DagsterRunStatus, day: str = DAY, batches: int = 2):
    instance.add_run(
        dg.DagsterRun(
            job_name="ticker_job",
            run_id=str(uuid.uuid4()),
            status=status,
            tags={DAY_TAG: day, BATCHES_TAG: str(batches)},
        )
    )


_RESOURCES: dict = {}


def _tick(instance):
    return daily_breadth_sensor(dg.build_sensor_context(instance=instance, resources=_RESOURCES))


def _requested(result) -> list[tuple[str, str]]:
    return [(r.partition_key, r.run_key) for r in result.run_requests]


def test_breadth_waits_while_a_ticker_run_of_the_day_is_still_running(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    _add_ticker_run(instance, dg.DagsterRunStatus.STARTED)
    assert isinstance(_tick(instance), dg.SkipReason)


def test_breadth_waits_until_every_batch_of_the_day_has_been_launched(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS, batches=3)
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS, batches=3)
    assert isinstance(_tick(instance), dg.SkipReason)


def test_breadth_of_the_day_is_requested_once_every_run_finished_even_a_failed_one(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    _add_ticker_run(instance, dg.DagsterRunStatus.FAILURE)
    assert _requested(_tick(instance)) == [(DAY, f"daily-breadth:{DAY}:2")]


def test_the_same_finished_day_keeps_its_run_key_so_the_daemon_runs_it_once(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    assert _requested(_tick(instance)) == _requested(_tick(instance))


def test_a_re_executed_failed_batch_asks_for_the_days_breadth_again(instance):
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)
    _add_ticker_run(instance, dg.DagsterRunStatus.FAILURE)
    assert _requested(_tick(instance)) == [(DAY, f"daily-breadth:{DAY}:2")]
    _add_ticker_run(instance, dg.DagsterRunStatus.SUCCESS)  # the re-execution keeps the tags
    assert _requested(_tick(instance)) == [(DAY, f"daily-breadth:{DAY}:3")]


def test_runs_without_a_day_tag_such_as_backfills_are_ignored(instance):
    instance.add_run(
        dg.DagsterRun(
            job_name="ticker_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.SUCCESS
        )
    )
    assert isinstance(_tick(instance), dg.SkipReason)


# --- breadth made stale by other writes ---------------------------------------------------------


@pytest.fixture
def computed(instance_with_tickers, store, universe_path):
    """Tickers and breadth up to DAY, as a finished main job leaves them."""
    assert materialize_tickers(instance_with_tickers, store, universe_path, DAY).success
    assert materialize_breadth(instance_with_tickers, store, "2024-06-03", DAY).success
    return store


def _stale_requests(result) -> list[tuple[str, str]]:
    return [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in result.run_requests]


def test_up_to_date_breadth_asks_for_nothing(instance_with_tickers, computed):
    assert isinstance(_tick(instance_with_tickers), dg.SkipReason)


def test_stale_stored_rows_are_recomputed_from_the_first_stale_day_to_the_last_row(
    instance_with_tickers, computed
):
    changed = computed.read_indicators(["ALPHA"])
    computed.write({schema.INDICATORS: changed[changed["date"] == "2024-06-12"]})

    result = _tick(instance_with_tickers)

    assert _stale_requests(result) == [("2024-06-12", DAY)]
    assert result.run_requests[0].run_key == _tick(instance_with_tickers).run_requests[0].run_key


def test_a_ticker_removed_from_the_partitions_asks_for_breadth_from_its_first_bar(
    instance_with_tickers, computed
):
    instance_with_tickers.delete_dynamic_partition("tickers", "ECHO")
    first_bar = computed.read_indicators(["ECHO"])["date"].min()

    assert _stale_requests(_tick(instance_with_tickers)) == [(f"{first_bar:%Y-%m-%d}", DAY)]


def test_stale_breadth_waits_while_any_ticker_run_is_running(instance_with_tickers, computed):
    instance_with_tickers.delete_dynamic_partition("tickers", "ECHO")
    instance_with_tickers.add_run(
        dg.DagsterRun(
            job_name="ticker_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTING
        )
    )
    assert isinstance(_tick(instance_with_tickers), dg.SkipReason)


def test_stale_breadth_waits_while_a_breadth_run_is_running(instance_with_tickers, computed):
    instance_with_tickers.delete_dynamic_partition("tickers", "ECHO")
    instance_with_tickers.add_run(
        dg.DagsterRun(
            job_name="breadth_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED
        )
    )
    assert isinstance(_tick(instance_with_tickers), dg.SkipReason)


def test_a_finished_daily_update_is_asked_for_before_stale_rows(instance_with_tickers, computed):
    instance_with_tickers.delete_dynamic_partition("tickers", "ECHO")
    _add_ticker_run(instance_with_tickers, dg.DagsterRunStatus.SUCCESS, batches=1)

    assert _requested(_tick(instance_with_tickers)) == [(DAY, f"daily-breadth:{DAY}:1")]
