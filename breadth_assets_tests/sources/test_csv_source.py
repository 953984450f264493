from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from breadth_assets.schema import PRICE_COLUMNS
from breadth_assets.sources.base import PriceRequest, SourceError, TickerBars
from breadth_assets.sources.csv.source import CsvSource

HEADER = "date,open,high,low,close,volume"
GOOD = [
    "2024-01-02,10,11,9,10.5,1000",
    "2024-01-03,10.5,12,10,11.5,2000",
    "2024-01-04,11.5,12,11,11.8,1500",
]


def write(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fetch(source: CsvSource, ticker: str = "AAA", start="2000-01-01", end="2030-12-31"):
    request = PriceRequest(ticker, dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    return source.fetch(request)


def days(bars: TickerBars) -> list[str]:
    return [d.date().isoformat() for d in bars.bars["date"]]


def test_per_ticker_folder_reads_the_tickers_file(tmp_path):
    write(tmp_path / "AAA.csv", HEADER, *GOOD)
    bars = fetch(CsvSource(path=str(tmp_path)))
    assert days(bars) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert bars.bars["close"].tolist() == [10.5, 11.5, 11.8]
    assert bars.rejected == []


def test_returned_bars_have_the_price_columns_and_types(tmp_path):
    write(tmp_path / "AAA.csv", HEADER, *GOOD)
    bars = fetch(CsvSource(path=str(tmp_path))).bars
    assert list(bars.columns) == list(PRICE_COLUMNS)
    assert (bars["ticker"] == "AAA").all()
    assert bars["date"].dtype == "datetime64[us]"
    for column in ("open", "high", "low", "close", "volume"):
        assert bars[column].dtype == np.float64


def test_file_pattern_names_the_file_of_each_ticker(tmp_path):
    write(tmp_path / "daily_AAA_prices.txt", HEADER, *GOOD)
    source = CsvSource(path=str(tmp_path), file_pattern="daily_{ticker}_prices.txt")
    assert len(fetch(source).bars) == 3


def test_long_file_selects_the_tickers_rows_stripped_and_case_insensitive(tmp_path):
    file = write(
        tmp_path / "all.csv",
        "ticker," + HEADER,
        "AAA,2024-01-02,10,11,9,10.5,1000",
        "BBB,2024-01-02,50,51,49,50.5,10",
        " aaa ,2024-01-03,10.5,12,10,11.5,2000",
    )
    bars = fetch(CsvSource(path=str(file), layout="long"))
    assert days(bars) == ["2024-01-02", "2024-01-03"]
    assert (bars.bars["ticker"] == "AAA").all()


def test_long_file_is_read_again_after_it_changes(tmp_path):
    file = write(tmp_path / "all.csv", "ticker," + HEADER, "AAA," + GOOD[0])
    source = CsvSource(path=str(file), layout="long")
    assert len(fetch(source).bars) == 1
    write(file, "ticker," + HEADER, *("AAA," + line for line in GOOD))
    assert len(fetch(source).bars) == 3


def test_column_mapping_maps_our_names_to_the_files_headers(tmp_path):
    file = write(
        tmp_path / "all.csv",
        "Symbol,Day,O,H,L,C,Qty",
        "AAA,2024-01-02,10,11,9,10.5,1000",
    )
    columns = {
        "ticker": "Symbol",
        "date": "Day",
        "open": "O",
        "high": "H",
        "low": "L",
        "close": "C",
        "volume": "Qty",
    }
    bars = fetch(CsvSource(path=str(file), layout="long", columns=columns)).bars
    assert bars[["open", "high", "low", "close", "volume"]].iloc[0].tolist() == [
        10,
        11,
        9,
        10.5,
        1000,
    ]


def test_headers_match_ignoring_case_without_a_mapping(tmp_path):
    write(tmp_path / "AAA.csv", "Date,Open,High,Low,Close,Volume,Adj Close", GOOD[0] + ",1")
    bars = fetch(CsvSource(path=str(tmp_path))).bars
    assert bars["volume"].tolist() == [1000.0]


def test_date_format_parses_day_first_dates(tmp_path):
    write(tmp_path / "AAA.csv", HEADER, "02/01/2024,10,11,9,10.5,1000", "03/01/2024,10,11,9,10,5")
    bars = fetch(CsvSource(path=str(tmp_path), date_format="%d/%m/%Y"))
    assert days(bars) == ["2024-01-02", "2024-01-03"]


def test_rows_are_sorted_by_date_and_filtered_to_the_range_inclusive(tmp_path):
    write(tmp_path / "AAA.csv", HEADER, GOOD[2], GOOD[0], GOOD[1], "2024-01-05,11,12,10,11,1")
    bars = fetch(CsvSource(path=str(tmp_path)), start="2024-01-03", end="2024-01-04")
    assert days(bars) == ["2024-01-03", "2024-01-04"]


# (bad row, reason the report must contain)
BAD_ROWS = {
    "unparsable_date": ("2024-13-45,10,11,9,10.5,1000", "unparsable date '2024-13-45'"),
    "empty_date": (",10,11,9,10.5,1000", "unparsable date ''"),
    "non_numeric_price": ("2024-01-05,10,abc,9,10.5,1000", "high is not a number: 'abc'"),
    "zero_price": ("2024-01-05,10,11,9,0,1000", "close is not positive: 0"),
    "negative_price": ("2024-01-05,-10,11,9,10.5,1000", "open is not positive: -10"),
    "high_below_open": ("2024-01-05,12,11.5,9,10.5,1000", "high 11.5 is below open 12"),
    "high_below_close": ("2024-01-05,10,11,9,11.5,1000", "high 11 is below close 11.5"),
    "low_above_open": ("2024-01-05,9.5,11,9.8,10.5,1000", "low 9.8 is above open 9.5"),
    "low_above_close": ("2024-01-05,10,11,9.8,9.5,1000", "low 9.8 is above close 9.5"),
    "negative_volume": ("2024-01-05,10,11,9,10.5,-1", "volume is negative: -1"),
    "non_numeric_volume": ("2024-01-05,10,11,9,10.5,many", "volume is not a number: 'many'"),
    "missing_volume": ("2024-01-05,10,11,9,10.5", "volume is not a number: ''"),
    "huge_price": (
        "2024-01-05,10,1e308,9,10.5,1000",
        "high is above the plausible bound 1e+09: 1e308",
    ),
    "infinite_price": ("2024-01-05,10,11,9,inf,1000", "close is not a number: 'inf'"),
    "huge_volume": (
        "2024-01-05,10,11,9,10.5,1e20",
        "volume is above the plausible bound 1e+15: 1e20",
    ),
}


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS.values(), ids=BAD_ROWS)
def test_bad_row_is_reported_with_file_and_line_and_left_out(tmp_path, row, reason):
    file = write(tmp_path / "AAA.csv", HEADER, GOOD[0], GOOD[1], row, GOOD[2])
    bars = fetch(CsvSource(path=str(tmp_path)))
    assert days(bars) == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert len(bars.rejected) == 1
    assert bars.rejected[0].startswith(f"{file}:4: ")
    assert reason in bars.rejected[0]


def test_duplicate_date_keeps_the_first_and_names_its_line(tmp_path):
    file = write(tmp_path / "AAA.csv", HEADER, *GOOD, "2024-01-03,99,99,99,99,1")
    bars = fetch(CsvSource(path=str(tmp_path)))
    assert bars.bars["close"].tolist() == [10.5, 11.5, 11.8]
    assert bars.rejected == [f"{file}:5: duplicate date 2024-01-03 (first on line 3)"]


def test_blank_lines_are_skipped_without_shifting_line_numbers(tmp_path):
    file = write(tmp_path / "AAA.csv", HEADER, GOOD[0], "", GOOD[1], "2024-01-04,x,12,11,11.8,1")
    bars = fetch(CsvSource(path=str(tmp_path)))
    assert days(bars) == ["2024-01-02", "2024-01-03"]
    assert len(bars.rejected) == 1
    assert bars.rejected[0].startswith(f"{file}:5: open is not a number")


def test_long_file_reports_lines_of_the_whole_file(tmp_path):
    file = write(
        tmp_path / "all.csv",
        "ticker," + HEADER,
        "BBB,2024-01-02,50,51,49,50.5,10",
        "AAA,2024-01-02,10,11,9,10.5,1000",
        "BBB,2024-01-03,50,51,49,50.5,10",
        "AAA,2024-01-03,10,9,9,10.5,1000",
    )
    bars = fetch(CsvSource(path=str(file), layout="long"))
    assert days(bars) == ["2024-01-02"]
    assert bars.rejected == [f"{file}:5: high 9 is below open 10; high 9 is below close 10.5"]


def test_bad_rows_outside_the_range_are_not_reported(tmp_path):
    write(tmp_path / "AAA.csv", HEADER, "2023-06-01,10,9,9,10,1", *GOOD)
    bars = fetch(CsvSource(path=str(tmp_path)), start="2024-01-01")
    assert len(bars.bars) == 3
    assert bars.rejected == []


def test_missing_file_raises_naming_ticker_and_file(tmp_path):
    with pytest.raises(SourceError) as error:
        fetch(CsvSource(path=str(tmp_path)), ticker="ZZZ")
    assert str(error.value) == f"ZZZ: {tmp_path / 'ZZZ.csv'}: file not found"


def test_missing_folder_raises_naming_the_file_and_the_missing_folder(tmp_path):
    folder = tmp_path / "prices"
    with pytest.raises(SourceError) as error:
        fetch(CsvSource(path=str(folder)))
    assert str(error.value) == f"AAA: {folder / 'AAA.csv'}: file not found (no folder {folder})"


@pytest.mark.parametrize("layout", ["per_ticker", "long"])
def test_a_directory_in_place_of_the_file_raises_one_line_naming_it(tmp_path, layout):
    path = tmp_path / "AAA.csv"
    path.mkdir()
    source = CsvSource(path=str(path if layout == "long" else tmp_path), layout=layout)
    with pytest.raises(SourceError) as error:
        fetch(source)
    assert str(error.value) == f"AAA: {path}: is a directory, not a file"


@pytest.mark.parametrize("layout", ["per_ticker", "long"])
def test_an_unreadable_file_raises_one_line_naming_it_and_the_reason(tmp_path, monkeypatch, layout):
    file = write(tmp_path / "AAA.csv", "ticker," + HEADER, "AAA," + GOOD[0])

    def refused(self):
        raise PermissionError(13, "Permission denied", str(self))

    # chmod cannot take reading away from root, which the CI runs as.
    monkeypatch.setattr(Path, "read_bytes", refused)
    source = CsvSource(path=str(file if layout == "long" else tmp_path), layout=layout)
    with pytest.raises(SourceError) as error:
        fetch(source)
    assert str(error.value) == f"AAA: {file}: cannot be read: permission denied"


def test_a_file_error_is_one_line_without_the_exception_it_came_from(tmp_path):
    with pytest.raises(SourceError) as error:
        fetch(CsvSource(path=str(tmp_path)))
    assert "\n" not in str(error.value)
    assert error.value.__suppress_context__ and error.value.__cause__ is None


def test_missing_column_raises_naming_it_and_the_files_headers(tmp_path):
    file = write(tmp_path / "AAA.csv", "date,open,high,low,close", "2024-01-02,10,11,9,10.5")
    with pytest.raises(SourceError) as error:
        fetch(CsvSource(path=str(tmp_path)))
    message = str(error.value)
    assert message.startswith(f"AAA: {file}: no column 'volume'")
    assert "'date', 'open', 'high', 'low', 'close'" in message


def test_missing_mapped_column_says_what_it_was_mapped_from(tmp_path):
    write(tmp_path / "AAA.csv", HEADER, *GOOD)
    with pytest.raises(SourceError, match=r"no column 'Qty' \(mapped from 'volume'\)"):
        fetch(CsvSource(path=str(tmp_path), columns={"volume": "Qty"}))


def test_ticker_absent_from_long_file_raises_naming_ticker_and_file(tmp_path):
    file = write(tmp_path / "all.csv", "ticker," + HEADER, "AAA," + GOOD[0])
    with pytest.raises(SourceError) as error:
        fetch(CsvSource(path=str(file), layout="long"), ticker="ZZZ")
    assert str(error.value).startswith(f"ZZZ: {file}: no rows for this ticker")


def test_row_with_more_fields_than_the_header_makes_the_file_unreadable(tmp_path):
    file = write(tmp_path / "AAA.csv", HEADER, GOOD[0], GOOD[1] + ",7")
    with pytest.raises(SourceError) as error:
        fetch(CsvSource(path=str(tmp_path)))
    assert str(error.value).startswith(f"AAA: {file}: cannot be read as CSV")


def test_empty_file_raises(tmp_path):
    file = write(tmp_path / "AAA.csv", "")
    with pytest.raises(SourceError) as error:
        fetch(CsvSource(path=str(tmp_path)))
    assert str(error.value) == f"AAA: {file}: the file is empty"


def test_a_ticker_whose_file_would_lie_outside_the_folder_is_refused_unread(tmp_path):
    folder = tmp_path / "prices"
    folder.mkdir()
    (tmp_path / "outside.csv").write_text("date,open,high,low,close,volume\n")
    with pytest.raises(SourceError, match=r"outside the csv folder .*; not read"):
        CsvSource(path=str(folder)).fetch(
            PriceRequest("../outside", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
        )


def test_a_line_that_is_not_utf8_is_refused_with_its_line_and_the_others_are_kept(tmp_path):
    folder = tmp_path / "prices"
    folder.mkdir()
    file = folder / "AAA.csv"
    file.write_bytes(
        b"date,open,high,low,close,volume\n"
        b"2024-01-02,10,11,9,10.5,100\n"
        b"2024-01-03,10,11,9,10\xe9,100\n"
        b"2024-01-04,10,11,9,10.5,100\n"
    )
    answer = CsvSource(path=str(folder)).fetch(
        PriceRequest("AAA", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    )
    assert list(answer.bars["date"].dt.strftime("%Y-%m-%d")) == ["2024-01-02", "2024-01-04"]
    assert answer.rejected == [f"{file}:3: not UTF-8 text (byte 0xe9 at column 22)"]


def test_an_unknown_layout_is_refused_when_the_source_is_built(tmp_path):
    with pytest.raises(
        ValueError, match="unknown layout 'wide'; valid layouts are per_ticker, long"
    ):
        CsvSource(path=str(tmp_path), layout="wide")


def test_a_file_pattern_without_the_ticker_is_refused_when_the_source_is_built(tmp_path):
    with pytest.raises(ValueError, match=r"must contain \{ticker\}"):
        CsvSource(path=str(tmp_path), file_pattern="prices.csv")
