"""`tickers: all` (every ticker of a csv source) and `tickers: {file: ...}` (a list file).

The Upstox forms are in test_universe_upstox.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from breadth_assets.universe.file import load_universe
from breadth_assets_tests.support import universe_refusal, write_universe_text


def csv_universe(source: str, tickers: str = "all") -> str:
    """A csv universe whose `source` mapping is on line 3 and `tickers` on line 4."""
    return f"market: NSE\nstart_date: 2015-01-01\nsource: {source}\ntickers: {tickers}\n"


def demo_universe(tickers: str) -> str:
    """A demo universe whose `tickers` is on line 4."""
    return f"market: DEMO\nstart_date: 2015-01-01\nsource: demo\ntickers: {tickers}\n"


def ticker_files(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("Date,Open,High,Low,Close,Volume\n")
    return folder


def long_file(path: Path, header: str, values: list[str]) -> Path:
    rows = "".join(f"{value},2024-01-02,10\n" for value in values)
    path.write_text(f"{header},Date,Close\n{rows}")
    return path


# --- all of a csv folder ----------------------------------------------------------------------


def test_all_with_a_folder_of_csv_files_is_every_ticker_sorted(tmp_path):
    ticker_files(tmp_path / "prices", "SBIN.csv", "INFY.csv", "M&M.csv", "notes.txt")
    universe = load_universe(
        write_universe_text(tmp_path, csv_universe("{kind: csv, path: prices}"))
    )
    assert universe.symbols == ["INFY", "M&M", "SBIN"]
    assert {entry.line for entry in universe.tickers} == {0}
    assert universe.skipped == ()


def test_all_takes_the_symbol_between_the_file_patterns_prefix_and_suffix(tmp_path):
    ticker_files(tmp_path / "prices", "daily_SBIN.NS.csv", "daily_TCS.NS.csv", "SBIN.csv")
    source = '{kind: csv, path: prices, file_pattern: "daily_{ticker}.NS.csv"}'
    universe = load_universe(write_universe_text(tmp_path, csv_universe(source)))
    assert universe.symbols == ["SBIN", "TCS"]


def test_all_with_a_file_pattern_in_subfolders_names_each_folder(tmp_path):
    ticker_files(tmp_path / "prices" / "SBIN", "daily.csv")
    ticker_files(tmp_path / "prices" / "TCS", "daily.csv", "weekly.csv")
    source = '{kind: csv, path: prices, file_pattern: "{ticker}/daily.csv"}'
    universe = load_universe(write_universe_text(tmp_path, csv_universe(source)))
    assert universe.symbols == ["SBIN", "TCS"]


def test_a_file_name_that_is_not_a_valid_symbol_is_skipped_and_reported(tmp_path):
    ticker_files(tmp_path / "prices", "SBIN.csv", "SBIN copy.csv", "A..B.csv")
    universe = load_universe(
        write_universe_text(tmp_path, csv_universe("{kind: csv, path: prices}"))
    )
    assert universe.symbols == ["SBIN"]
    assert [name for name, _ in universe.skipped] == ["A..B.csv", "SBIN copy.csv"]
    assert "'SBIN COPY' is not a valid ticker (letters, digits" in universe.skipped[1][1]


def test_a_lower_case_file_name_the_source_cannot_read_is_skipped_naming_the_file_it_reads(
    tmp_path,
):
    folder = ticker_files(tmp_path / "prices", "infy.csv", "TCS.csv")
    if (folder / "INFY.csv").exists():
        pytest.skip("a case-insensitive file system finds infy.csv as INFY.csv")
    universe = load_universe(
        write_universe_text(tmp_path, csv_universe("{kind: csv, path: prices}"))
    )
    assert universe.symbols == ["TCS"]
    assert universe.skipped == (
        ("infy.csv", "the source reads INFY.csv (the symbol upper-cased); rename the file"),
    )


def test_an_empty_folder_is_refused_naming_the_folder_and_the_pattern(tmp_path):
    folder = ticker_files(tmp_path / "prices", "README.md")
    path, message = universe_refusal(tmp_path, csv_universe("{kind: csv, path: prices}"))
    assert message == (
        f"{path} line 4: tickers: no ticker files matching '{{ticker}}.csv' in folder "
        f"{folder.resolve()}"
    )


def test_a_folder_of_only_invalid_names_is_refused_with_what_was_skipped(tmp_path):
    ticker_files(tmp_path / "prices", "my prices.csv")
    path, message = universe_refusal(tmp_path, csv_universe("{kind: csv, path: prices}"))
    assert message.startswith(f"{path} line 4: tickers: no ticker files matching"), message
    assert "(my prices.csv: 'MY PRICES' is not a valid ticker" in message


def test_a_missing_folder_is_refused_at_the_source_path(tmp_path):
    text = (
        "market: NSE\nstart_date: 2015-01-01\nsource:\n  kind: csv\n  path: prices/\ntickers: all\n"
    )
    path, message = universe_refusal(tmp_path, text)
    folder = (tmp_path / "prices").resolve()
    assert message == (
        f"{path} line 5: source.path: {folder}: folder not found (tickers: all lists its files)"
    )


# --- all of a long csv file -------------------------------------------------------------------


def test_all_with_a_long_file_is_the_distinct_values_of_its_mapped_ticker_column(tmp_path):
    long_file(tmp_path / "all.csv", "Symbol", ["SBIN", " sbin ", "infy", "TCS", "INFY"])
    source = "{kind: csv, path: all.csv, columns: {ticker: Symbol}}"
    universe = load_universe(write_universe_text(tmp_path, csv_universe(source)))
    assert universe.symbols == ["INFY", "SBIN", "TCS"]


def test_a_long_file_finds_its_ticker_column_ignoring_case_as_the_source_does(tmp_path):
    long_file(tmp_path / "all.csv", "TICKER", ["SBIN", "INFY"])
    universe = load_universe(
        write_universe_text(tmp_path, csv_universe("{kind: csv, path: all.csv}"))
    )
    assert universe.symbols == ["INFY", "SBIN"]


def test_a_long_file_value_that_is_not_a_valid_symbol_is_skipped_and_reported(tmp_path):
    long_file(tmp_path / "all.csv", "ticker", ["SBIN", "BRK B", "", "INFY"])
    universe = load_universe(
        write_universe_text(tmp_path, csv_universe("{kind: csv, path: all.csv}"))
    )
    assert universe.symbols == ["INFY", "SBIN"]
    assert [name for name, _ in universe.skipped] == ["BRK B"]


def test_a_long_file_without_its_mapped_ticker_column_is_refused_at_the_mapping(tmp_path):
    long_file(tmp_path / "all.csv", "Code", ["SBIN"])
    text = (
        "market: NSE\nstart_date: 2015-01-01\nsource:\n  kind: csv\n  path: all.csv\n"
        "  columns:\n    ticker: Symbol\ntickers: all\n"
    )
    path, message = universe_refusal(tmp_path, text)
    assert message == (
        f"{path} line 7: source.columns.ticker: {(tmp_path / 'all.csv').resolve()}: no column "
        "'Symbol'; the file's headers are 'Code', 'Date', 'Close'"
    )


def test_a_long_file_is_read_again_when_it_changes(tmp_path):
    file = long_file(tmp_path / "all.csv", "ticker", ["SBIN"])
    path = write_universe_text(tmp_path, csv_universe("{kind: csv, path: all.csv}"))
    assert load_universe(path).symbols == ["SBIN"]
    long_file(file, "ticker", ["SBIN", "INFY"])
    os.utime(file, ns=(file.stat().st_atime_ns, file.stat().st_mtime_ns + 1_000_000_000))
    assert load_universe(path).symbols == ["INFY", "SBIN"]


def test_an_unchanged_long_file_is_read_once_per_process(tmp_path, monkeypatch):
    long_file(tmp_path / "all.csv", "ticker", ["SBIN"])
    path = write_universe_text(tmp_path, csv_universe("{kind: csv, path: all.csv}"))
    reads = []
    read_csv = pd.read_csv
    monkeypatch.setattr(
        pd, "read_csv", lambda *args, **kw: reads.append(kw) or read_csv(*args, **kw)
    )
    for _ in range(3):
        assert load_universe(path).symbols == ["SBIN"]
    assert [read.get("usecols") for read in reads] == [None, ["ticker"]]
    assert reads[0]["nrows"] == 0


# --- a list file ------------------------------------------------------------------------------


def test_a_list_file_gives_its_symbols_in_order_without_comments_and_blank_lines(tmp_path):
    (tmp_path / "symbols.txt").write_text(
        "# NIFTY names\n\nsbin\n  INFY   # Infosys\n\n# TCS\nM&M\n", encoding="utf-8"
    )
    universe = load_universe(write_universe_text(tmp_path, demo_universe("{file: symbols.txt}")))
    assert universe.symbols == ["SBIN", "INFY", "M&M"]
    assert [entry.line for entry in universe.tickers] == [3, 4, 7]


def test_a_list_file_is_found_relative_to_the_universe_files_folder(tmp_path, monkeypatch):
    (tmp_path / "conf" / "lists").mkdir(parents=True)
    (tmp_path / "conf" / "lists" / "nifty.txt").write_text("SBIN\n")
    monkeypatch.chdir(tmp_path)
    path = write_universe_text(tmp_path / "conf", demo_universe("{file: lists/nifty.txt}"))
    assert load_universe(path).symbols == ["SBIN"]


def test_a_bad_symbol_in_a_list_file_is_refused_with_the_list_files_line(tmp_path):
    symbols = tmp_path / "symbols.txt"
    symbols.write_text("SBIN\n\nBRK B\nINFY\n")
    _, message = universe_refusal(tmp_path, demo_universe("{file: symbols.txt}"))
    assert message == (
        f"{symbols.resolve()} line 3: 'BRK B' is not a valid ticker (letters, digits, '&', '-', "
        "'_' and '.' only, at most 40, starting with a letter or digit)"
    )


def test_a_file_that_is_no_list_of_tickers_is_refused_without_quoting_it(tmp_path):
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\nSBIN\n")
    _, message = universe_refusal(tmp_path, demo_universe(f"{{file: {other}}}"))
    assert message.startswith(f"{other.resolve()} line 1: not a valid ticker (letters, ")
    assert message.endswith("; is this a list of tickers?")
    assert "/bin/bash" not in message


def test_a_duplicate_in_a_list_file_is_refused_naming_both_lines(tmp_path):
    symbols = tmp_path / "symbols.txt"
    symbols.write_text("SBIN\nINFY\n# again\nsbin\n")
    _, message = universe_refusal(tmp_path, demo_universe("{file: symbols.txt}"))
    assert message == f"{symbols.resolve()} line 4: duplicate ticker 'SBIN' (lines 1 and 4)"


def test_a_missing_list_file_is_refused_at_the_tickers_file_line(tmp_path):
    text = "market: DEMO\nstart_date: 2015-01-01\nsource: demo\ntickers:\n  file: nifty.txt\n"
    path, message = universe_refusal(tmp_path, text)
    missing = (tmp_path / "nifty.txt").resolve()
    assert message == f"{path} line 5: tickers.file: {missing}: list file not found"


def test_a_list_file_of_only_comments_is_refused(tmp_path):
    (tmp_path / "symbols.txt").write_text("# to do\n\n")
    path, message = universe_refusal(tmp_path, demo_universe("{file: symbols.txt}"))
    assert message.startswith(f"{path} line 4: tickers.file: "), message
    assert message.endswith("symbols.txt: the list file names no symbol")


def test_a_list_file_that_is_not_utf8_is_refused_with_its_line(tmp_path):
    symbols = tmp_path / "symbols.txt"
    symbols.write_bytes(b"SBIN\nCAF\xc9\n")
    _, message = universe_refusal(tmp_path, demo_universe("{file: symbols.txt}"))
    assert message == f"{symbols.resolve()} line 2: not UTF-8 text; save it as UTF-8"


# --- the forms of `tickers` -------------------------------------------------------------------


def test_all_with_the_demo_source_is_refused_saying_how_to_list_tickers(tmp_path):
    path, message = universe_refusal(tmp_path, demo_universe("all"))
    assert message == (
        f"{path} line 4: tickers: all: the demo source has no list of tickers of its own (it "
        "makes bars for any symbol); list the tickers, or name a list file: "
        "tickers: {file: symbols.txt}"
    )


def test_all_is_a_keyword_in_any_case_but_a_listed_all_is_a_ticker(tmp_path):
    ticker_files(tmp_path / "prices", "SBIN.csv")
    source = "{kind: csv, path: prices}"
    assert load_universe(
        write_universe_text(tmp_path, csv_universe(source, tickers="ALL"))
    ).symbols == ["SBIN"]
    assert load_universe(
        write_universe_text(tmp_path, csv_universe(source, tickers="[ALL]"))
    ).symbols == ["ALL"]


def test_a_single_symbol_instead_of_a_list_is_refused_naming_the_three_forms(tmp_path):
    path, message = universe_refusal(tmp_path, demo_universe("SBIN"))
    assert message == (
        f"{path} line 4: tickers: expected a list of symbols, `all`, or {{file: symbols.txt}}"
    )


def test_an_unknown_key_beside_file_is_refused_at_its_line(tmp_path):
    (tmp_path / "symbols.txt").write_text("SBIN\n")
    text = (
        "market: DEMO\nstart_date: 2015-01-01\nsource: demo\ntickers:\n  file: symbols.txt\n"
        "  exchange: NSE\n"
    )
    path, message = universe_refusal(tmp_path, text)
    assert message == f"{path} line 6: tickers.exchange: unknown key; allowed keys are file"
