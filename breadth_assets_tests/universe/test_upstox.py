"""The `source: {kind: upstox, ...}` settings of the universe file, and their refusals."""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from pathlib import Path

import pytest

from breadth_assets.sources.timeframes import Timeframe
from breadth_assets.universe.file import load_universe
from breadth_assets_testing.fake_upstox import write_instruments_master
from breadth_assets_tests.support import universe_refusal, write_universe_text

SBIN_KEY = "NSE_EQ|INE062A01020"
INFY_KEY = "NSE_EQ|INE009A01021"


def with_master(tmp_path: Path, name: str = "NSE.json.gz") -> Path:
    return write_instruments_master(tmp_path / name, {"SBIN": SBIN_KEY, "INFY": INFY_KEY})


def upstox(source_lines: str, tickers: str = "tickers: [SBIN]\n", market: str = "NSE") -> str:
    """A universe whose source block starts on line 3 (`kind: upstox` on line 4) and whose
    `source_lines` (indented by two spaces each) start on line 5."""
    return (
        f"market: {market}\nstart_date: 2015-01-01\nsource:\n  kind: upstox\n"
        + textwrap.indent(source_lines, "  ")
        + tickers
    )


def assert_refused(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    path, message = universe_refusal(tmp_path, text)
    assert message.startswith(f"{path} line {line}: {field}: "), message
    assert words in message, message


# --- what loads -------------------------------------------------------------------------------


def test_full_upstox_universe_loads_with_its_options_and_timeframes(tmp_path):
    master = with_master(tmp_path)
    text = """\
    market: NSE
    start_date: 2015-01-01
    source:
      kind: upstox
      instruments: NSE.json.gz
      timeframes: [hours/1, minutes/5]
      rate_limits: {per_second: 10, per_minute: 200, per_30_minutes: 1000}
      workers: 8
    tickers:
      - SBIN
      - symbol: INFY
        instrument_key: "NSE_EQ|INE009A01021"
    """
    universe = load_universe(write_universe_text(tmp_path, text))
    assert universe.market == "NSE"
    assert universe.source == "upstox"
    assert universe.source_settings.resource_options() == {
        "instruments": str(master.resolve()),
        "per_second": 10,
        "per_minute": 200,
        "per_30_minutes": 1000,
        "workers": 8,
    }
    assert universe.timeframes == (Timeframe("hours", 1), Timeframe("minutes", 5))
    assert universe.symbols == ["SBIN", "INFY"]
    assert universe.tickers[1].instrument_key == INFY_KEY


def test_timeframes_are_not_a_source_option(tmp_path):
    with_master(tmp_path)
    universe = load_universe(
        write_universe_text(tmp_path, upstox("instruments: NSE.json.gz\ntimeframes: [minutes/5]\n"))
    )
    assert "timeframes" not in universe.source_settings.resource_options()
    assert universe.timeframes == (Timeframe("minutes", 5),)


def test_relative_instruments_path_resolves_against_the_universe_folder(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    (tmp_path / "masters").mkdir()
    with_master(tmp_path / "masters")
    universe = load_universe(
        write_universe_text(tmp_path, upstox("instruments: masters/NSE.json.gz\n"))
    )
    expected = (tmp_path / "masters" / "NSE.json.gz").resolve()
    assert universe.source_settings.resource_options()["instruments"] == str(expected)


def test_instruments_path_with_dot_dot_is_resolved_to_an_absolute_path(tmp_path):
    master = with_master(tmp_path)
    (tmp_path / "conf").mkdir()
    universe = load_universe(
        write_universe_text(tmp_path / "conf", upstox("instruments: ../NSE.json.gz\n"))
    )
    assert universe.source_settings.resource_options()["instruments"] == str(master.resolve())
    assert ".." not in universe.source_settings.resource_options()["instruments"]


def test_timeframes_are_deduplicated_keeping_first_seen_order(tmp_path):
    text = upstox(
        "timeframes: [minutes/5, hours/1, minutes/5, Minutes / 5, hours/1, minutes/1]\n",
        tickers=f'tickers:\n  - symbol: SBIN\n    instrument_key: "{SBIN_KEY}"\n',
    )
    universe = load_universe(write_universe_text(tmp_path, text))
    assert universe.timeframes == (
        Timeframe("minutes", 5),
        Timeframe("hours", 1),
        Timeframe("minutes", 1),
    )


def test_upstox_without_timeframes_has_none(tmp_path):
    with_master(tmp_path)
    universe = load_universe(write_universe_text(tmp_path, upstox("instruments: NSE.json.gz\n")))
    assert universe.timeframes == ()
    assert universe.source_settings.resource_options() == {
        "instruments": str((tmp_path / "NSE.json.gz").resolve())
    }


def test_every_ticker_with_a_key_needs_no_instruments_master(tmp_path):
    tickers = (
        f'tickers:\n  - symbol: SBIN\n    instrument_key: "{SBIN_KEY}"\n'
        f'  - symbol: INFY\n    instrument_key: "{INFY_KEY}"\n'
    )
    universe = load_universe(write_universe_text(tmp_path, upstox("", tickers=tickers)))
    assert universe.source_settings.resource_options() == {}
    assert [entry.instrument_key for entry in universe.tickers] == [SBIN_KEY, INFY_KEY]


def test_rate_limits_equal_to_upstox_limits_are_accepted(tmp_path):
    with_master(tmp_path)
    text = upstox(
        "instruments: NSE.json.gz\n"
        "rate_limits: {per_second: 50, per_minute: 500, per_30_minutes: 2000}\n"
    )
    options = load_universe(write_universe_text(tmp_path, text)).source_settings.resource_options()
    assert (options["per_second"], options["per_minute"], options["per_30_minutes"]) == (
        50,
        500,
        2000,
    )


def test_rate_limits_may_give_only_some_windows(tmp_path):
    with_master(tmp_path)
    text = upstox("instruments: NSE.json.gz\nrate_limits:\n  per_minute: 100\n")
    options = load_universe(write_universe_text(tmp_path, text)).source_settings.resource_options()
    assert dict(options) == {
        "instruments": str((tmp_path / "NSE.json.gz").resolve()),
        "per_minute": 100,
    }


@pytest.mark.parametrize("workers", [1, 64])
def test_workers_at_the_bounds_are_accepted(tmp_path, workers):
    with_master(tmp_path)
    text = upstox(f"instruments: NSE.json.gz\nworkers: {workers}\n")
    assert (
        load_universe(write_universe_text(tmp_path, text)).source_settings.resource_options()[
            "workers"
        ]
        == workers
    )


# --- refusals ---------------------------------------------------------------------------------


def test_upstox_on_a_market_other_than_nse_is_refused_at_the_source_kind(tmp_path):
    with_master(tmp_path)
    text = upstox("instruments: NSE.json.gz\n", market="HOSE")
    assert_refused(tmp_path, text, 4, "source.kind", "upstox serves NSE; the market is HOSE")


def test_upstox_as_a_bare_source_on_the_demo_market_is_refused(tmp_path):
    text = (
        "market: DEMO\nstart_date: 2015-01-01\nsource: upstox\n"
        f'tickers:\n  - symbol: SBIN\n    instrument_key: "{SBIN_KEY}"\n'
    )
    assert_refused(tmp_path, text, 3, "source.kind", "upstox serves NSE; the market is DEMO")


def test_upstox_on_another_market_names_the_kind_line_when_kind_is_not_first(tmp_path):
    with_master(tmp_path)
    text = (
        "market: HOSE\nstart_date: 2015-01-01\nsource:\n"
        "  instruments: NSE.json.gz\n  workers: 4\n  kind: upstox\ntickers: [SBIN]\n"
    )
    assert_refused(tmp_path, text, 6, "source.kind", "upstox serves NSE; the market is HOSE")


def test_missing_instruments_master_is_refused_naming_the_resolved_path(tmp_path):
    text = upstox("workers: 4\ninstruments: absent/NSE.json.gz\n")
    missing = (tmp_path / "absent/NSE.json.gz").resolve()
    assert_refused(tmp_path, text, 6, "source.instruments", f"{missing}: file not found")


def test_instruments_that_name_a_folder_are_refused(tmp_path):
    (tmp_path / "masters").mkdir()
    text = upstox("instruments: masters\n")
    assert_refused(tmp_path, text, 5, "source.instruments", "file not found")


def test_empty_instruments_is_refused(tmp_path):
    assert_refused(tmp_path, upstox('instruments: ""\n'), 5, "source.instruments", "is empty")


def test_ticker_without_key_and_no_instruments_is_refused_at_that_ticker(tmp_path):
    tickers = (
        f'tickers:\n  - symbol: SBIN\n    instrument_key: "{SBIN_KEY}"\n'
        "  - symbol: infy\n"
        f'  - symbol: TCS\n    instrument_key: "NSE_EQ|INE467B01029"\n'
    )
    assert_refused(
        tmp_path,
        upstox("workers: 2\n", tickers=tickers),
        9,
        "tickers[1].instrument_key",
        "INFY has no instrument_key and source.instruments names no instruments master",
    )


def test_bare_ticker_without_instruments_is_refused_at_its_line(tmp_path):
    tickers = f'tickers:\n  - symbol: SBIN\n    instrument_key: "{SBIN_KEY}"\n  - RELIANCE\n'
    assert_refused(
        tmp_path,
        upstox("", tickers=tickers),
        8,
        "tickers[1].instrument_key",
        "RELIANCE has no instrument_key",
    )


# settings given from line 6 (after `instruments:` on line 5): (settings, line, field, words)
SOURCE_REFUSALS = {
    "timeframe_days_is_not_intraday": (
        "timeframes:\n  - hours/1\n  - days/1\n",
        8,
        "source.timeframes[1]",
        "days/1 is not intraday; daily bars are raw_prices",
    ),
    "timeframe_weeks_is_not_intraday": (
        "timeframes: [weeks/1]\n",
        6,
        "source.timeframes[0]",
        "weeks/1 is not intraday",
    ),
    "timeframe_minutes_zero": (
        "timeframes:\n  - minutes/0\n",
        7,
        "source.timeframes[0]",
        "minutes interval 0 is outside Upstox's 1..300",
    ),
    "timeframe_hours_six": (
        "timeframes:\n  - hours/6\n",
        7,
        "source.timeframes[0]",
        "hours interval 6 is outside Upstox's 1..5",
    ),
    "timeframe_junk": (
        "timeframes:\n  - minutes/5\n  - junk\n",
        8,
        "source.timeframes[1]",
        "'junk' is not a timeframe such as minutes/5 or hours/1",
    ),
    "timeframe_empty_item": (
        "timeframes:\n  - ''\n",
        7,
        "source.timeframes[0]",
        "is empty",
    ),
    "timeframe_item_is_a_list": (
        "timeframes:\n  - [minutes, 5]\n",
        7,
        "source.timeframes[0]",
        "expected a single value",
    ),
    "timeframes_not_a_list": (
        "timeframes: minutes/5\n",
        6,
        "source.timeframes",
        "expected a list such as [hours/1, minutes/5]",
    ),
    "timeframes_a_mapping": (
        "timeframes: {minutes: 5}\n",
        6,
        "source.timeframes",
        "expected a list",
    ),
    "rate_limit_not_an_integer": (
        "rate_limits:\n  per_second: 10\n  per_minute: 2.5\n",
        8,
        "source.rate_limits.per_minute",
        "expected a whole number",
    ),
    "rate_limit_a_word": (
        "rate_limits: {per_second: fast}\n",
        6,
        "source.rate_limits.per_second",
        "expected a whole number",
    ),
    "rate_limit_a_boolean": (
        "rate_limits: {per_second: true}\n",
        6,
        "source.rate_limits.per_second",
        "expected a whole number",
    ),
    "rate_limit_unknown_key": (
        "rate_limits:\n  per_second: 10\n  per_hour: 100\n",
        8,
        "source.rate_limits.per_hour",
        "unknown key; allowed keys are per_second, per_minute, per_30_minutes",
    ),
    "rate_limits_not_a_mapping": (
        "rate_limits: 50\n",
        6,
        "source.rate_limits",
        "expected a mapping with keys per_second, per_minute, per_30_minutes",
    ),
    "rate_limit_given_twice": (
        "rate_limits:\n  per_second: 10\n  per_second: 20\n",
        8,
        "source.rate_limits.per_second",
        "given twice (first on line 7)",
    ),
    "workers_zero": ("workers: 0\n", 6, "source.workers", "expected a whole number from 1 to 64"),
    "workers_65": ("workers: 65\n", 6, "source.workers", "expected a whole number from 1 to 64"),
    "workers_not_a_number": (
        'workers: "x"\n',
        6,
        "source.workers",
        "expected a whole number from 1 to 64",
    ),
    "workers_a_float": ("workers: 4.0\n", 6, "source.workers", "expected a whole number"),
    "workers_a_boolean": ("workers: yes\n", 6, "source.workers", "expected a whole number"),
    "unknown_upstox_key_path": (
        "workers: 4\npath: prices/\n",
        7,
        "source.path",
        "not a setting of the upstox source; "
        "allowed keys are kind, instruments, timeframes, rate_limits, workers",
    ),
    "key_of_no_source": (
        "token: abc\n",
        6,
        "source.token",
        "unknown key; allowed keys are kind, seed, path",
    ),
}


@pytest.mark.parametrize(
    ("source_lines", "line", "field", "words"), SOURCE_REFUSALS.values(), ids=SOURCE_REFUSALS
)
def test_upstox_setting_refusal_names_file_line_and_field(
    tmp_path, source_lines, line, field, words
):
    with_master(tmp_path)
    text = upstox("instruments: NSE.json.gz\n" + source_lines)
    assert_refused(tmp_path, text, line, field, words)


def test_rate_limit_above_upstox_is_refused_naming_the_limit(tmp_path):
    with_master(tmp_path)
    text = upstox("instruments: NSE.json.gz\nrate_limits: {per_minute: 600}\n")
    path, message = universe_refusal(tmp_path, text)
    assert message.startswith(f"{path} line 6: source.rate_limits"), message
    assert "per_minute=600 is above Upstox's limit of 500 a minute" in message


def test_rate_limit_zero_is_refused(tmp_path):
    with_master(tmp_path)
    text = upstox("instruments: NSE.json.gz\nrate_limits: {per_30_minutes: 0}\n")
    path, message = universe_refusal(tmp_path, text)
    assert message.startswith(f"{path} line 6: source.rate_limits"), message
    assert "per_30_minutes=0 must be at least 1" in message


def test_negative_rate_limit_is_refused(tmp_path):
    with_master(tmp_path)
    text = upstox("instruments: NSE.json.gz\nrate_limits: {per_second: -5}\n")
    path, message = universe_refusal(tmp_path, text)
    assert message.startswith(f"{path} line 6: source.rate_limits"), message
    assert "per_second=-5 must be at least 1" in message


def test_rate_limit_above_upstox_names_the_offending_key_line_and_field(tmp_path):
    with_master(tmp_path)
    text = upstox("instruments: NSE.json.gz\nrate_limits:\n  per_second: 10\n  per_minute: 600\n")
    assert_refused(
        tmp_path,
        text,
        8,
        "source.rate_limits.per_minute",
        "per_minute=600 is above Upstox's limit of 500 a minute",
    )


def test_timeframes_under_the_demo_source_are_refused(tmp_path):
    text = (
        "market: DEMO\nstart_date: 2015-01-01\nsource:\n  kind: demo\n"
        "  timeframes: [minutes/5]\ntickers: [A]\n"
    )
    assert_refused(
        tmp_path,
        text,
        5,
        "source.timeframes",
        "not a setting of the demo source; allowed keys are kind, seed",
    )


def test_upstox_settings_under_the_csv_source_are_refused(tmp_path):
    text = (
        "market: NSE\nstart_date: 2015-01-01\nsource:\n  kind: csv\n  path: prices\n"
        "  workers: 4\ntickers: [A]\n"
    )
    assert_refused(tmp_path, text, 6, "source.workers", "not a setting of the csv source")


def test_universe_timeframes_know_how_far_back_upstox_serves_them(tmp_path):
    with_master(tmp_path)
    text = upstox("instruments: NSE.json.gz\ntimeframes: [minutes/5]\n")
    (timeframe,) = load_universe(write_universe_text(tmp_path, text)).timeframes
    assert timeframe.history_start == dt.date(2022, 1, 1)


# --- tickers: all and a list file -------------------------------------------------------------


def test_all_is_every_nse_equity_of_the_master_sorted_with_its_instrument_key(tmp_path):
    with_master(tmp_path)  # each equity comes with an index, a BSE equity and a future as decoys
    text = upstox("instruments: NSE.json.gz\n", tickers="tickers: all\n")
    universe = load_universe(write_universe_text(tmp_path, text))
    assert [(entry.symbol, entry.instrument_key, entry.line) for entry in universe.tickers] == [
        ("INFY", INFY_KEY, 0),
        ("SBIN", SBIN_KEY, 0),
    ]


def test_all_skips_a_master_symbol_that_is_not_a_valid_ticker(tmp_path):
    master = {"SBIN": SBIN_KEY, "NIFTY 50 ETF": "NSE_EQ|INF000A01010"}
    write_instruments_master(tmp_path / "NSE.json.gz", master)
    text = upstox("instruments: NSE.json.gz\n", tickers="tickers: all\n")
    universe = load_universe(write_universe_text(tmp_path, text))
    assert universe.symbols == ["SBIN"]
    assert [name for name, _ in universe.skipped] == ["NIFTY 50 ETF"]


def test_all_without_an_instruments_master_is_refused_at_tickers(tmp_path):
    assert_refused(
        tmp_path,
        upstox("workers: 4\n", tickers="tickers: all\n"),
        6,
        "tickers",
        "all: the upstox source needs source.instruments, the instruments master whose NSE "
        "equities are the universe",
    )


def test_all_reads_the_master_again_when_it_changes(tmp_path):
    master = with_master(tmp_path)
    path = write_universe_text(
        tmp_path, upstox("instruments: NSE.json.gz\n", tickers="tickers: all\n")
    )
    assert load_universe(path).symbols == ["INFY", "SBIN"]
    write_instruments_master(master, {"SBIN": SBIN_KEY, "TCS": "NSE_EQ|INE467B01029"})
    os.utime(master, ns=(master.stat().st_atime_ns, master.stat().st_mtime_ns + 1_000_000_000))
    assert load_universe(path).symbols == ["SBIN", "TCS"]


def test_a_list_files_symbols_are_left_to_the_master_as_bare_symbols_are(tmp_path):
    master = with_master(tmp_path)
    (tmp_path / "nifty.txt").write_text("SBIN\nRELIANCE  # looked up when it is fetched\n")
    text = upstox("instruments: NSE.json.gz\n", tickers="tickers: {file: nifty.txt}\n")
    universe = load_universe(write_universe_text(tmp_path, text))
    assert [(entry.symbol, entry.instrument_key) for entry in universe.tickers] == [
        ("SBIN", None),
        ("RELIANCE", None),
    ]
    assert universe.source_settings.resource_options()["instruments"] == str(master.resolve())


def test_a_list_file_without_an_instruments_master_is_refused_at_tickers_file(tmp_path):
    (tmp_path / "nifty.txt").write_text("SBIN\n")
    assert_refused(
        tmp_path,
        upstox("workers: 4\n", tickers="tickers:\n  file: nifty.txt\n"),
        7,
        "tickers.file",
        "the list file's symbols are looked up in source.instruments, which names no "
        "instruments master file",
    )
