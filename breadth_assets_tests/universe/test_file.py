from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from breadth_assets.universe.file import (
    UniverseError,
    default_universe_path,
    load_universe,
    parse_universe,
)
from breadth_assets_tests.support import universe_refusal, write_universe_text

PROJECT_ROOT = Path(__file__).resolve().parents[2]

HEADER = """\
market: DEMO
start_date: 2015-01-01
source: demo
"""


def test_shipped_universe_loads_with_50_demo_tickers():
    universe = load_universe(PROJECT_ROOT / "universe.yaml")
    assert universe.market == "DEMO"
    assert universe.source == "demo"
    assert universe.start_date == dt.date(2015, 1, 1)
    assert universe.batch_size == 50
    assert len(universe.symbols) == 50
    assert len(set(universe.symbols)) == 50


def test_default_path_is_universe_yaml_at_the_project_root(monkeypatch):
    monkeypatch.delenv("BREADTH_UNIVERSE", raising=False)
    assert default_universe_path() == PROJECT_ROOT / "universe.yaml"


def test_breadth_universe_env_var_selects_another_file(tmp_path, monkeypatch):
    path = write_universe_text(tmp_path, HEADER + "tickers: [ZED]\n")
    monkeypatch.setenv("BREADTH_UNIVERSE", str(path))
    assert default_universe_path() == path
    assert load_universe().symbols == ["ZED"]


def test_bare_and_mapping_tickers_are_stripped_and_upper_cased(tmp_path):
    tickers = """\
tickers:
  - " aaa "
  - symbol: sbin
    instrument_key: "NSE_EQ|INE062A01020"
"""
    first, second = load_universe(write_universe_text(tmp_path, HEADER + tickers)).tickers
    assert (first.symbol, first.instrument_key, first.line) == ("AAA", None, 5)
    assert (second.symbol, second.instrument_key, second.line) == ("SBIN", "NSE_EQ|INE062A01020", 6)


def test_symbols_are_taken_as_written_not_as_yaml_booleans_or_numbers(tmp_path):
    universe = load_universe(
        write_universe_text(tmp_path, HEADER + "tickers: [ON, 007, M&M, BRK.B]\n")
    )
    assert universe.symbols == ["ON", "007", "M&M", "BRK.B"]


def test_optional_fields_take_their_defaults(tmp_path):
    universe = load_universe(write_universe_text(tmp_path, HEADER + "tickers: [A]\n"))
    assert universe.batch_size == 50
    assert universe.extra_closures == ()
    assert universe.source_settings.resource_options() == {}


def test_extra_closures_are_sorted_dates(tmp_path):
    universe = load_universe(
        write_universe_text(
            tmp_path, HEADER + "extra_closures: [2025-04-30, 2024-01-02]\ntickers: [A]\n"
        )
    )
    assert universe.extra_closures == (dt.date(2024, 1, 2), dt.date(2025, 4, 30))


def test_demo_seed_is_passed_as_a_source_option(tmp_path):
    text = "market: DEMO\nstart_date: 2015-01-01\nsource: {kind: demo, seed: 7}\ntickers: [A]\n"
    assert load_universe(
        write_universe_text(tmp_path, text)
    ).source_settings.resource_options() == {"seed": 7}


def test_csv_path_resolves_against_the_universe_folder_and_a_folder_defaults_to_per_ticker(
    tmp_path,
):
    (tmp_path / "prices").mkdir()
    text = "market: NSE\nstart_date: 2015-01-01\nsource: {kind: csv, path: prices}\ntickers: [A]\n"
    options = load_universe(write_universe_text(tmp_path, text)).source_settings.resource_options()
    assert options == {"path": str((tmp_path / "prices").resolve()), "layout": "per_ticker"}


def test_csv_file_path_defaults_to_long_and_keeps_its_settings(tmp_path):
    text = """\
    market: HOSE
    start_date: 2015-01-01
    source:
      kind: csv
      path: all.csv
      columns: {ticker: Symbol, date: Day}
      date_format: "%d/%m/%Y"
    tickers: [A]
    """
    options = load_universe(write_universe_text(tmp_path, text)).source_settings.resource_options()
    assert options["layout"] == "long"
    assert options["path"] == str((tmp_path / "all.csv").resolve())
    assert options["columns"] == {"ticker": "Symbol", "date": "Day"}
    assert options["date_format"] == "%d/%m/%Y"


def test_parse_universe_reads_text_without_a_file():
    universe = parse_universe(HEADER + "tickers: [A]\n", Path("virtual.yaml"))
    assert universe.symbols == ["A"]
    assert universe.market == "DEMO"


def test_missing_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(UniverseError) as error:
        load_universe(path)
    assert str(error.value) == f"{path}: universe file not found"


def test_invalid_yaml_is_refused_with_the_yaml_error_line(tmp_path):
    path, message = universe_refusal(
        tmp_path, "market: DEMO\ntickers: [A, B\nstart_date: 2015-01-01\n"
    )
    assert f"{path} line " in message
    assert "not valid YAML" in message


def test_top_level_that_is_not_a_mapping_is_refused(tmp_path):
    path, message = universe_refusal(tmp_path, "- AAA\n- BBB\n")
    assert f"{path} line 1:" in message
    assert "expected a mapping" in message


# (universe text, line, field, words the message must contain)
REFUSALS = {
    "unknown_top_level_key": (
        HEADER + "tickers: [A]\nticker_count: 1\n",
        5,
        "ticker_count",
        "allowed keys are market, timezone, update_time, start_date, end_date, batch_size, "
        "update_batch_size, source, extra_closures, tickers",
    ),
    "missing_market": (
        "start_date: 2015-01-01\nsource: demo\ntickers: [A]\n",
        1,
        "market",
        "missing",
    ),
    "missing_start_date": (
        "market: DEMO\nsource: demo\ntickers: [A]\n",
        1,
        "start_date",
        "missing",
    ),
    "missing_source": (
        "market: DEMO\nstart_date: 2015-01-01\ntickers: [A]\n",
        1,
        "source",
        "missing",
    ),
    "missing_tickers": (HEADER, 1, "tickers", "missing"),
    "unknown_market": (
        "market: MARS\nstart_date: 2015-01-01\nsource: demo\ntickers: [A]\n",
        1,
        "market",
        "'MARS': DEMO, HOSE or a calendar of pandas_market_calendars",
    ),
    "end_date_before_start_date": (
        "market: DEMO\nstart_date: 2015-01-01\nend_date: 2014-12-31\nsource: demo\ntickers: [A]\n",
        3,
        "end_date",
        "2014-12-31 is before start_date 2015-01-01",
    ),
    "unknown_time_zone": (
        "market: XNYS\ntimezone: Mars/Olympus\nstart_date: 2015-01-01\nsource: demo\n"
        "tickers: [A]\n",
        2,
        "timezone",
        "'Mars/Olympus' is not a time zone",
    ),
    "update_time_not_a_time": (
        "market: XNYS\nupdate_time: 25:00\nstart_date: 2015-01-01\nsource: demo\ntickers: [A]\n",
        2,
        "update_time",
        "'25:00' is not a time of day such as 18:30 (HH:MM)",
    ),
    "unknown_source_kind": (
        "market: DEMO\nstart_date: 2015-01-01\nsource:\n  kind: ftp\ntickers: [A]\n",
        4,
        "source.kind",
        "'ftp'; valid sources are demo, csv",
    ),
    "start_date_not_a_date": (
        "market: DEMO\nstart_date: soon\nsource: demo\ntickers: [A]\n",
        2,
        "start_date",
        "'soon' is not a date",
    ),
    "start_date_impossible": (
        "market: DEMO\nstart_date: 2015-13-01\nsource: demo\ntickers: [A]\n",
        2,
        "start_date",
        "'2015-13-01' is not a date",
    ),
    "start_date_in_the_future": (
        "market: DEMO\nstart_date: 2999-01-01\nsource: demo\ntickers: [A]\n",
        2,
        "start_date",
        "in the future",
    ),
    "batch_size_zero": (
        HEADER + "batch_size: 0\ntickers: [A]\n",
        4,
        "batch_size",
        "not a whole number from 1 to 1000",
    ),
    "update_batch_size_too_big": (
        HEADER + "update_batch_size: 5001\ntickers: [A]\n",
        4,
        "update_batch_size",
        "not a whole number from 1 to 5000",
    ),
    "batch_size_too_big": (
        HEADER + "batch_size: 1001\ntickers: [A]\n",
        4,
        "batch_size",
        "not a whole number from 1 to 1000",
    ),
    "batch_size_not_an_int": (
        HEADER + "batch_size: 2.5\ntickers: [A]\n",
        4,
        "batch_size",
        "not a whole number",
    ),
    "malformed_ticker": (
        HEADER + "tickers:\n  - AAA\n  - BB\n  - CC\n  - AB/C\n",
        8,
        "tickers[3]",
        "'AB/C' is not a valid ticker",
    ),
    "ticker_with_double_dot": (
        HEADER + "tickers:\n  - A..B\n",
        5,
        "tickers[0]",
        "not a valid ticker",
    ),
    "malformed_symbol_in_mapping": (
        HEADER + "tickers:\n  - symbol: 'A B'\n",
        5,
        "tickers[0].symbol",
        "'A B' is not a valid ticker",
    ),
    "duplicate_ticker_names_both_lines": (
        HEADER + "tickers:\n  - AAA\n  - BBB\n  - aaa\n",
        7,
        "tickers[2]",
        "duplicate ticker 'AAA' (lines 5 and 7)",
    ),
    "empty_ticker_list": (HEADER + "tickers: []\n", 4, "tickers", "empty"),
    "unknown_key_in_ticker_entry": (
        HEADER + "tickers:\n  - symbol: AAA\n    isin: X\n",
        6,
        "tickers[0].isin",
        "allowed keys are symbol, instrument_key",
    ),
    "ticker_entry_without_symbol": (
        HEADER + "tickers:\n  - instrument_key: X\n",
        5,
        "tickers[0].symbol",
        "missing",
    ),
    "csv_source_without_path": (
        "market: NSE\nstart_date: 2015-01-01\nsource:\n  kind: csv\ntickers: [A]\n",
        4,
        "source.path",
        "missing",
    ),
    "csv_unknown_layout": (
        "market: NSE\nstart_date: 2015-01-01\nsource:\n  kind: csv\n  path: x\n"
        "  layout: wide\ntickers: [A]\n",
        6,
        "source.layout",
        "'wide'; valid layouts are per_ticker, long",
    ),
    "csv_columns_not_a_mapping": (
        "market: NSE\nstart_date: 2015-01-01\nsource:\n  kind: csv\n  path: x\n"
        "  columns: [Date, Close]\ntickers: [A]\n",
        6,
        "source.columns",
        "expected a mapping",
    ),
    "csv_column_header_not_a_string": (
        "market: NSE\nstart_date: 2015-01-01\nsource:\n  kind: csv\n  path: x\n"
        "  columns:\n    date: [Date]\ntickers: [A]\n",
        7,
        "source.columns.date",
        "expected a single value",
    ),
    "csv_column_name_unknown": (
        "market: NSE\nstart_date: 2015-01-01\nsource:\n  kind: csv\n  path: x\n"
        "  columns:\n    adj_close: Adj\ntickers: [A]\n",
        7,
        "source.columns.adj_close",
        "allowed keys are date, open, high, low, close, volume, ticker",
    ),
    "csv_setting_on_demo_source": (
        "market: DEMO\nstart_date: 2015-01-01\nsource:\n  kind: demo\n  path: x\ntickers: [A]\n",
        5,
        "source.path",
        "not a setting of the demo source",
    ),
    "extra_closure_not_a_date": (
        HEADER + "extra_closures: [2025-04-30, someday]\ntickers: [A]\n",
        4,
        "extra_closures[1]",
        "'someday' is not a date",
    ),
    "key_given_twice": (
        HEADER + "tickers: [A]\nmarket: NSE\n",
        5,
        "market",
        "given twice (first on line 1)",
    ),
}


@pytest.mark.parametrize(("text", "line", "field", "words"), REFUSALS.values(), ids=REFUSALS)
def test_refusal_names_file_line_and_field(tmp_path, text, line, field, words):
    path, message = universe_refusal(tmp_path, text)
    assert message.startswith(f"{path} line {line}: {field}"), message
    assert words in message


def test_an_instrument_key_without_segment_and_id_is_refused_at_load(tmp_path):
    path, message = universe_refusal(
        tmp_path,
        """\
        market: NSE
        start_date: 2020-01-01
        source: {kind: upstox}
        tickers:
          - symbol: SBIN
            instrument_key: 12345
        """,
    )
    assert message == (
        f"{path} line 6: tickers[0].instrument_key: '12345' is not an instrument key of the form "
        "SEGMENT|ID, such as NSE_EQ|INE062A01020"
    )


def test_a_universe_file_that_is_not_utf8_is_refused_with_its_line(tmp_path):
    path = tmp_path / "universe.yaml"
    path.write_bytes(b"market: DEMO\nstart_date: 2020-01-01\nsource: demo\ntickers: [AB\xe9C]\n")
    with pytest.raises(UniverseError) as error:
        load_universe(path)
    assert str(error.value) == (
        f"{path} line 4: not UTF-8 text (byte 0xe9 at column 13); save the file as UTF-8"
    )


def test_an_empty_extra_closures_is_no_closure(tmp_path):
    universe = load_universe(
        write_universe_text(tmp_path, HEADER + "extra_closures:\ntickers: [A]\n")
    )
    assert universe.extra_closures == ()


def test_a_market_of_pandas_market_calendars_is_kept_under_its_own_name(tmp_path):
    text = "market: xlon\nstart_date: 2015-01-01\nsource: demo\ntickers: [A]\n"
    assert load_universe(write_universe_text(tmp_path, text)).market == "XLON"


def test_end_date_time_zone_and_update_time_are_read_as_written(tmp_path):
    text = (
        "market: XNYS\ntimezone: America/Chicago\nupdate_time: 19:45\nstart_date: 2015-01-01\n"
        "end_date: 2024-06-28\nsource: demo\ntickers: [A]\n"
    )
    universe = load_universe(write_universe_text(tmp_path, text))
    assert universe.end_date == dt.date(2024, 6, 28)
    assert (universe.calendar.timezone, universe.calendar.update_time) == (
        "America/Chicago",
        dt.time(19, 45),
    )


def test_a_finished_historys_last_day_is_its_end_date(tmp_path):
    text = (
        "market: XNYS\nstart_date: 2015-01-01\nend_date: 2024-07-04\nsource: demo\ntickers: [A]\n"
    )
    assert load_universe(write_universe_text(tmp_path, text)).last_day() == dt.date(2024, 7, 3)


def test_a_yaml_alias_is_refused_before_it_is_expanded(tmp_path):
    lines = ["market: DEMO", 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join([f'*{previous}'] * 9)}]")
    text = "\n".join(lines) + "\n"
    assert len(text) < 500  # 9**9 strings once expanded

    path, message = universe_refusal(tmp_path, text)

    assert message == (
        f"{path} line 3: b[0]: YAML aliases (*name) are not accepted in a universe file; "
        "write the value out"
    )


def test_a_merge_key_is_an_alias_too(tmp_path):
    text = "base: &base {kind: demo}\nmarket: DEMO\nsource:\n  <<: *base\n"

    path, message = universe_refusal(tmp_path, text)

    assert message.startswith(f"{path} line 4: source.<<: YAML aliases (*name) are not accepted")


def test_nesting_deeper_than_any_universe_needs_is_refused(tmp_path):
    text = "market: DEMO\nx: " + "[" * 30 + "]" * 30 + "\n"

    path, message = universe_refusal(tmp_path, text)

    assert message.startswith(f"{path} line 2: ")
    assert message.endswith("nested deeper than 20 levels")
