from __future__ import annotations

import datetime as dt

import pytest

from breadth_assets.calendars import calendar, trading_days


def _days(market: str, start: str, end: str, extra=()) -> list[dt.date]:
    return [
        d.date()
        for d in trading_days(
            market, dt.date.fromisoformat(start), dt.date.fromisoformat(end), extra
        )
    ]


def test_demo_trades_every_weekday():
    assert _days("DEMO", "2024-12-23", "2024-12-27") == [
        dt.date(2024, 12, 23),
        dt.date(2024, 12, 24),
        dt.date(2024, 12, 25),
        dt.date(2024, 12, 26),
        dt.date(2024, 12, 27),
    ]


def test_no_market_trades_on_weekends():
    for market in ("DEMO", "NSE", "HOSE"):
        assert all(d.weekday() < 5 for d in _days(market, "2024-01-01", "2024-03-31"))


def test_nse_is_closed_on_republic_day():
    days = _days("NSE", "2024-01-25", "2024-01-29")
    assert dt.date(2024, 1, 26) not in days
    assert dt.date(2024, 1, 25) in days


def test_hose_is_closed_on_the_lunar_new_year():
    days = _days("HOSE", "2025-01-27", "2025-01-31")
    assert dt.date(2025, 1, 29) not in days


def test_hose_extra_closures_from_the_universe_file_are_not_trading_days():
    days = _days("HOSE", "2025-05-05", "2025-05-09", extra=[dt.date(2025, 5, 6)])
    assert dt.date(2025, 5, 6) not in days
    assert dt.date(2025, 5, 7) in days


def test_any_pandas_market_calendars_market_is_accepted_in_any_case():
    assert calendar("xnys").market == "XNYS"
    assert calendar("Xlon").market == "XLON"
    assert calendar("hose").market == "HOSE"


def test_an_unknown_market_is_refused_naming_where_the_names_come_from():
    with pytest.raises(ValueError, match="unknown market 'MARS': DEMO, HOSE or a calendar of"):
        calendar("MARS")


def test_a_library_market_takes_its_time_zone_and_an_update_time_two_hours_after_its_close():
    nyse, london, manila = calendar("XNYS"), calendar("XLON"), calendar("XPHS")
    assert (nyse.timezone, nyse.update_time) == ("America/New_York", dt.time(18, 0))
    assert (london.timezone, london.update_time) == ("Europe/London", dt.time(18, 30))
    assert (manila.timezone, manila.update_time) == ("Asia/Manila", dt.time(17, 30))


def test_the_known_markets_keep_their_time_zones_and_update_times():
    assert (calendar("NSE").timezone, calendar("NSE").update_time) == (
        "Asia/Kolkata",
        dt.time(18, 0),
    )
    assert calendar("HOSE").update_time == dt.time(17, 0)
    assert calendar("DEMO").timezone == "UTC"


def test_overrides_replace_the_time_zone_and_update_time():
    market = calendar("XNYS", timezone="America/Chicago", update_time=dt.time(19, 45))
    assert (market.timezone, market.update_time) == ("America/Chicago", dt.time(19, 45))


def test_nyse_is_closed_on_independence_day():
    days = _days("XNYS", "2024-07-03", "2024-07-05")
    assert days == [dt.date(2024, 7, 3), dt.date(2024, 7, 5)]


def test_a_sunday_to_thursday_market_trades_on_sundays_not_fridays():
    days = _days("XSAU", "2024-03-01", "2024-03-07")  # Friday to Thursday
    assert [d.strftime("%a") for d in days] == ["Sun", "Mon", "Tue", "Wed", "Thu"]


def test_the_last_closed_day_waits_for_the_update_time_in_the_markets_zone():
    nyse = calendar("XNYS")
    before = dt.datetime(2024, 7, 9, 21, 59, tzinfo=dt.UTC)  # 17:59 in New York
    after = dt.datetime(2024, 7, 9, 22, 0, tzinfo=dt.UTC)
    assert nyse.last_closed_day(before) == dt.date(2024, 7, 8)
    assert nyse.last_closed_day(after) == dt.date(2024, 7, 9)
