from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from breadth_assets.defs.batches import BATCHES_TAG, DAY_TAG, range_tags
from breadth_assets.defs.schedules import build_daily_update
from breadth_assets.defs.universe_file import UniverseFile
from breadth_assets.universe.file import load_universe
from breadth_assets_tests.support import add_tickers

TICKERS = ["AAA", "BBB", "CCC"]


def _write(folder: Path, market: str, batch_size: int = 2, update_batch_size: int = 500) -> Path:
    text = f"market: {market}\nstart_date: 2020-01-01\nbatch_size: {batch_size}\n"
    text += f"update_batch_size: {update_batch_size}\nsource: demo\n"
    text += "tickers: [" + ", ".join(TICKERS) + "]\n"
    path = folder / "universe.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def instance_with_tickers(instance):
    """The instance with this module's TICKERS as partitions."""
    return add_tickers(instance, TICKERS)


def _tick(schedule: dg.ScheduleDefinition, path: Path, local_time: dt.datetime, instance):
    zone = ZoneInfo(schedule.execution_timezone)
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=local_time.replace(tzinfo=zone),
        resources={"universe": UniverseFile(path=str(path))},
    ) as context:
        return schedule.evaluate_tick(context)


@pytest.fixture
def evaluate(instance_with_tickers, tmp_path):
    def evaluate(market: str, local_time: dt.datetime):
        path = _write(tmp_path, market)
        return _tick(
            build_daily_update(load_universe(path)), path, local_time, instance_with_tickers
        )

    return evaluate


@pytest.mark.parametrize(
    ("market", "cron", "zone"),
    [
        ("NSE", "0 18 * * 1-5", "Asia/Kolkata"),
        ("HOSE", "0 17 * * 1-5", "Asia/Ho_Chi_Minh"),
        ("XNYS", "0 18 * * 1-5", "America/New_York"),
        ("XLON", "30 18 * * 1-5", "Europe/London"),
        ("XSAU", "0 17 * * 0,1,2,3,4", "Asia/Riyadh"),
    ],
)
def test_the_update_runs_after_the_close_in_the_markets_time_zone(market, cron, zone, tmp_path):
    schedule = build_daily_update(load_universe(_write(tmp_path, market)))
    assert schedule.cron_schedule == cron
    assert schedule.execution_timezone == zone


@pytest.mark.parametrize(
    ("market", "day"),
    [("NSE", dt.datetime(2024, 1, 25, 18)), ("HOSE", dt.datetime(2025, 3, 12, 17))],
)
def test_a_trading_day_requests_every_ticker_in_batches_up_to_that_day(market, day, evaluate):
    requests = evaluate(market, day).run_requests
    own_tags = [
        {k: v for k, v in r.tags.items() if not k.startswith("dagster/schedule")} for r in requests
    ]
    assert own_tags == [
        {**range_tags("AAA", "BBB"), DAY_TAG: f"{day:%Y-%m-%d}", BATCHES_TAG: "2"},
        {**range_tags("CCC", "CCC"), DAY_TAG: f"{day:%Y-%m-%d}", BATCHES_TAG: "2"},
    ]
    config = requests[0].run_config["ops"]["ticker_assets"]["config"]
    assert config["end_date"] == f"{day:%Y-%m-%d}"


@pytest.mark.parametrize(
    ("market", "day"),
    [
        ("NSE", dt.datetime(2024, 1, 27, 18)),  # Saturday
        ("HOSE", dt.datetime(2025, 3, 15, 17)),  # Saturday
    ],
)
def test_a_weekend_is_skipped(market, day, evaluate):
    result = evaluate(market, day)
    assert result.run_requests == []
    assert "not a trading day" in result.skip_message


@pytest.mark.parametrize(
    ("market", "day"),
    [
        ("NSE", dt.datetime(2024, 1, 26, 18)),  # Republic Day
        ("HOSE", dt.datetime(2025, 1, 29, 17)),  # Lunar New Year
        ("XNYS", dt.datetime(2024, 7, 4, 18)),  # Independence Day
    ],
)
def test_an_exchange_holiday_is_skipped(market, day, evaluate):
    result = evaluate(market, day)
    assert result.run_requests == []
    assert "not a trading day" in result.skip_message


def test_a_new_batch_size_in_the_file_applies_at_the_next_tick_without_a_reload(
    instance_with_tickers, tmp_path
):
    path = _write(tmp_path, "NSE", batch_size=2)
    schedule = build_daily_update(load_universe(path))
    day = dt.datetime(2024, 1, 25, 18)
    assert len(_tick(schedule, path, day, instance_with_tickers).run_requests) == 2
    _write(tmp_path, "NSE", batch_size=3)
    [request] = _tick(schedule, path, day, instance_with_tickers).run_requests
    assert request.tags[BATCHES_TAG] == "1"


def test_tickers_with_history_are_updated_in_runs_of_the_update_batch_size(
    instance_with_tickers, tmp_path
):
    for ticker in ("AAA", "BBB"):
        instance_with_tickers.report_runless_asset_event(
            dg.AssetMaterialization("raw_prices", partition=ticker)
        )
    path = _write(tmp_path, "NSE", batch_size=1, update_batch_size=3)

    result = _tick(
        build_daily_update(load_universe(path)),
        path,
        dt.datetime(2024, 1, 25, 18),
        instance_with_tickers,
    )

    assert [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests
    ] == [("AAA", "BBB"), ("CCC", "CCC")]


def test_the_universe_file_overrides_the_time_zone_and_update_time(tmp_path):
    path = _write(tmp_path, "XNYS")
    path.write_text(path.read_text() + 'timezone: America/Chicago\nupdate_time: "19:45"\n')
    schedule = build_daily_update(load_universe(path))
    assert schedule.cron_schedule == "45 19 * * 1-5"
    assert schedule.execution_timezone == "America/Chicago"


def test_a_day_after_the_histories_end_date_is_skipped_saying_so(instance_with_tickers, tmp_path):
    path = _write(tmp_path, "XNYS")
    path.write_text(path.read_text() + "end_date: 2024-06-28\n")
    result = _tick(
        build_daily_update(load_universe(path)),
        path,
        dt.datetime(2024, 7, 1, 18),
        instance_with_tickers,
    )
    assert result.run_requests == []
    assert "the history ends on 2024-06-28 (end_date in universe.yaml)" in result.skip_message
