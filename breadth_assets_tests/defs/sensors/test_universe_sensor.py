from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from breadth_assets.defs.batches import range_tags
from breadth_assets.defs.partitions import tickers_partitions
from breadth_assets.defs.sensors.universe_sensor import universe_sensor
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.universe.file import UniverseError
from breadth_assets_tests.support import write_universe, write_universe_text


@pytest.fixture
def universe_at(tmp_path):
    """Writes the universe file the sensor's `universe` resource reads."""

    def write(tickers: list[str], batch_size: int = 50) -> None:
        path = write_universe(tmp_path, tickers)
        path.write_text(path.read_text().replace("batch_size: 50", f"batch_size: {batch_size}"))

    return write


@pytest.fixture
def tick(instance, tmp_path):
    """Evaluates the sensor and applies its partition requests, as the daemon would."""
    resources = {"universe": UniverseFile(path=str(tmp_path / "universe.yaml"))}

    def tick(instance: dg.DagsterInstance):
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            return _apply(instance, universe_sensor(context))

    return tick


def _apply(instance: dg.DagsterInstance, result):
    if isinstance(result, dg.SensorResult):
        for request in result.dynamic_partitions_requests or []:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
            else:
                for key in request.partition_keys:
                    instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result


def _tickers(instance: dg.DagsterInstance) -> list[str]:
    return instance.get_dynamic_partitions(tickers_partitions.name)


def test_new_tickers_become_partitions_and_are_fetched_in_batches(instance, universe_at, tick):
    universe_at(["AAA", "BBB", "CCC", "DDD", "EEE"], batch_size=2)
    result = tick(instance)
    assert _tickers(instance) == ["AAA", "BBB", "CCC", "DDD", "EEE"]
    assert [request.tags for request in result.run_requests] == [
        range_tags("AAA", "BBB"),
        range_tags("CCC", "DDD"),
        range_tags("EEE", "EEE"),
    ]


def test_tickers_appended_later_are_fetched_alone(instance, universe_at, tick):
    universe_at(["AAA", "BBB"])
    tick(instance)
    universe_at(["AAA", "BBB", "CCC", "DDD"])
    result = tick(instance)
    assert _tickers(instance) == ["AAA", "BBB", "CCC", "DDD"]
    assert [request.tags for request in result.run_requests] == [range_tags("CCC", "DDD")]


def test_removed_tickers_leave_the_partitions_without_a_run(instance, universe_at, tick):
    universe_at(["AAA", "BBB", "CCC"])
    tick(instance)
    universe_at(["AAA", "CCC"])
    result = tick(instance)
    assert _tickers(instance) == ["AAA", "CCC"]
    assert result.run_requests == []


def test_an_unchanged_file_skips_the_tick(instance, universe_at, tick):
    universe_at(["AAA", "BBB"])
    tick(instance)
    result = tick(instance)
    assert isinstance(result, dg.SkipReason)
    assert "in step" in result.skip_message


def test_a_broken_file_fails_the_tick_with_its_reason_and_changes_nothing(
    instance, universe_at, tmp_path, tick
):
    universe_at(["AAA", "BBB"])
    tick(instance)
    path = tmp_path / "universe.yaml"
    path.write_text(path.read_text().replace("market: DEMO", "market: MARS"))
    with pytest.raises(UniverseError, match="line 1: market"):
        tick(instance)
    assert _tickers(instance) == ["AAA", "BBB"]


def test_a_new_batch_size_in_the_file_applies_at_the_next_tick_without_a_reload(
    instance, universe_at, tick
):
    universe_at(["AAA", "BBB", "CCC"], batch_size=1)
    assert len(tick(instance).run_requests) == 3
    universe_at(["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"], batch_size=3)
    assert [request.tags for request in tick(instance).run_requests] == [range_tags("DDD", "FFF")]


def _csv_universe_of_all(tmp_path) -> Path:
    """A universe of every file in tmp_path/prices, at the path the sensor's resource reads."""
    (tmp_path / "prices").mkdir(exist_ok=True)
    text = "market: NSE\nstart_date: 2023-01-02\nsource: {kind: csv, path: prices}\ntickers: all\n"
    return write_universe_text(tmp_path, text)


def test_new_files_in_the_folder_of_tickers_all_become_partitions_at_the_next_tick(
    instance, tmp_path, tick
):
    _csv_universe_of_all(tmp_path)
    for symbol in ("AAA", "BBB"):
        (tmp_path / "prices" / f"{symbol}.csv").write_text("Date,Close\n")
    tick(instance)
    assert _tickers(instance) == ["AAA", "BBB"]
    (tmp_path / "prices" / "CCC.csv").write_text("Date,Close\n")
    result = tick(instance)
    assert _tickers(instance) == ["AAA", "BBB", "CCC"]
    assert [request.tags for request in result.run_requests] == [range_tags("CCC", "CCC")]


def test_names_tickers_all_skipped_are_one_warning_with_their_count_at_each_tick(
    instance, tmp_path, monkeypatch
):
    _csv_universe_of_all(tmp_path)
    for name in ("AAA.csv", "my notes.csv", "A..B.csv"):
        (tmp_path / "prices" / name).write_text("Date,Close\n")
    resources = {"universe": UniverseFile(path=str(tmp_path / "universe.yaml"))}
    for _ in range(2):
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            warnings = []
            monkeypatch.setattr(context.log, "warning", warnings.append)
            _apply(instance, universe_sensor(context))
        (warning,) = warnings
        assert warning.startswith(
            "2 names skipped by `tickers: all` of universe.yaml: A..B.csv: 'A..B' is not a valid "
            "ticker ("
        )
        assert "; my notes.csv: 'MY NOTES' is not a valid ticker" in warning


def test_the_skipped_warning_writes_out_twenty_names_and_counts_the_rest(
    instance, tmp_path, monkeypatch
):
    _csv_universe_of_all(tmp_path)
    for name in ["AAA.csv", *(f"copy {n:02}.csv" for n in range(25))]:
        (tmp_path / "prices" / name).write_text("Date,Close\n")
    resources = {"universe": UniverseFile(path=str(tmp_path / "universe.yaml"))}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        warnings = []
        monkeypatch.setattr(context.log, "warning", warnings.append)
        universe_sensor(context)
    (warning,) = warnings
    assert warning.startswith("25 names skipped by `tickers: all` of universe.yaml: copy 00.csv")
    assert "copy 19.csv" in warning
    assert "copy 20.csv" not in warning
    assert warning.endswith("; and 5 more")
