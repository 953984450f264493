from __future__ import annotations

import datetime as dt

from breadth_assets.calendars import trading_days


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
