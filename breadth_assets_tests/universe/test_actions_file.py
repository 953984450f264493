"""The universe's actions file: the project's own form, NSE's export, a folder of both."""

from __future__ import annotations

import pandas as pd
import pytest

from breadth_assets.universe.actions_file import ActionsFileError, read_actions_path
from breadth_assets.universe.file import load_universe
from breadth_assets_tests.support import universe_refusal, write_universe_text

HEADER = "ticker,ex_date,kind,value\n"


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_each_line_is_an_action_with_its_file_and_line_as_origin(tmp_path):
    path = write(
        tmp_path,
        "actions.csv",
        HEADER + "abc,2019-06-03,split,1:5\nDEF,2020-01-10,Bonus,1:1\n",
    )
    rows = read_actions_path(path).rows
    assert rows[["ticker", "kind", "value", "origin"]].values.tolist() == [
        ["ABC", "split", "1:5", "actions.csv line 2"],
        ["DEF", "bonus", "1:1", "actions.csv line 3"],
    ]
    assert rows["ex_date"].tolist() == [pd.Timestamp("2019-06-03"), pd.Timestamp("2020-01-10")]
    assert rows["factor"].isna().all()


def test_comments_and_blank_lines_are_ignored(tmp_path):
    text = "# splits\n" + HEADER + "\nABC,2019-06-03,split,1:5   # 1 old share becomes 5\n"
    assert len(read_actions_path(write(tmp_path, "a.csv", text)).rows) == 1


def test_a_line_that_cannot_be_used_is_refused_for_its_ticker_alone(tmp_path):
    text = HEADER + "ABC,2019-06-03,split,5:1\nDEF,2020-01-10,bonus,1:1\n"
    declared = read_actions_path(write(tmp_path, "a.csv", text))
    assert declared.rows["ticker"].tolist() == ["DEF"]
    assert declared.problems == {
        "ABC": ["a.csv line 2: split 5:1: a split gives more shares (a:b with a < b)"]
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("ABC,2019-13-03,split,1:5", "ex_date '2019-13-03' is not a date (YYYY-MM-DD)"),
        ("ABC,2019-06-03,spinoff,0.8", "unknown kind 'spinoff'"),
        ("ABC,2019-06-03,split", "expected 4 values, found 3"),
        ("ABC,2019-06-03,factor,-1", "factor '-1' must be a number above 0"),
    ],
)
def test_each_mistake_is_named_with_the_file_and_line(tmp_path, line, reason):
    declared = read_actions_path(write(tmp_path, "a.csv", HEADER + line + "\n"))
    assert declared.problems["ABC"][0].startswith(f"a.csv line 2: {reason}")


def test_a_file_without_the_header_is_refused_whole(tmp_path):
    path = write(tmp_path, "a.csv", "ABC,2019-06-03,split,1:5\n")
    with pytest.raises(ActionsFileError, match=r"a\.csv line 1: the header must be"):
        read_actions_path(path)


def test_the_same_action_declared_twice_with_another_value_is_refused(tmp_path):
    text = HEADER + "ABC,2019-06-03,split,1:5\nABC,2019-06-03,split,1:2\n"
    declared = read_actions_path(write(tmp_path, "a.csv", text))
    assert "declared again with another value" in declared.problems["ABC"][0]


def test_two_kinds_on_one_day_are_two_actions(tmp_path):
    text = HEADER + "ABC,2019-06-03,split,1:5\nABC,2019-06-03,bonus,1:1\n"
    assert len(read_actions_path(write(tmp_path, "a.csv", text)).rows) == 2


def test_a_folder_reads_every_csv_file_in_it_whatever_its_form(tmp_path):
    folder = tmp_path / "actions"
    folder.mkdir()
    write(folder, "own.csv", HEADER + "ABC,2022-02-01,factor,0.8312\n")
    write(
        folder,
        "CF-CA-equities.csv",
        '"SYMBOL","COMPANY NAME","SERIES","PURPOSE","FACE VALUE","EX-DATE"\n'
        '"DEF","Def Ltd","EQ","Bonus 1:1","10","13-Dec-2023"\n'
        '"GHI","Ghi Ltd","EQ","Demerger","10","14-Dec-2023"\n',
    )
    declared = read_actions_path(folder)
    assert declared.rows[["ticker", "kind", "value"]].values.tolist() == [
        ["ABC", "factor", "0.8312"],
        ["DEF", "bonus", "1:1"],
    ]
    assert len(declared.unreadable) == 1
    assert declared.unreadable[0].startswith("CF-CA-equities.csv line 3: GHI")


def test_the_universe_names_its_actions_file_relative_to_itself(tmp_path):
    write(tmp_path, "actions.csv", HEADER)
    path = write_universe_text(
        tmp_path,
        """
        market: DEMO
        start_date: 2024-01-02
        source: demo
        tickers: [ABC]
        actions: actions.csv
        adjust_dividends: true
        max_daily_move: 25%
        """,
    )
    universe = load_universe(path)
    assert universe.actions == tmp_path / "actions.csv"
    assert universe.adjust_dividends is True
    assert universe.max_daily_move == 0.25


def test_the_largest_plausible_move_defaults_to_the_markets_band(tmp_path):
    path = write_universe_text(
        tmp_path,
        """
        market: HOSE
        start_date: 2024-01-02
        source: demo
        tickers: [ABC]
        """,
    )
    assert load_universe(path).max_daily_move == 0.07


def test_a_missing_actions_file_is_refused_on_its_line(tmp_path):
    _, message = universe_refusal(
        tmp_path,
        """
        market: DEMO
        start_date: 2024-01-02
        source: demo
        tickers: [ABC]
        actions: nowhere.csv
        """,
    )
    assert message.endswith(
        "line 6: actions: " + f"{tmp_path / 'nowhere.csv'}: no such file or folder"
    )


def test_a_factor_line_for_an_nse_line_it_cannot_read_silences_that_line(tmp_path):
    folder = tmp_path / "actions"
    folder.mkdir()
    write(
        folder,
        "CF-CA-equities.csv",
        '"SYMBOL","COMPANY NAME","SERIES","PURPOSE","FACE VALUE","EX-DATE"\n'
        '"GHI","Ghi Ltd","EQ","Demerger","10","14-Dec-2023"\n',
    )
    assert read_actions_path(folder).unreadable[0].endswith("(GHI,2023-12-14,factor,F)")
    write(folder, "own.csv", HEADER + "GHI,2023-12-14,factor,0.83\n")
    declared = read_actions_path(folder)
    assert declared.unreadable == []
    assert declared.rows[["ticker", "kind", "value"]].values.tolist() == [["GHI", "factor", "0.83"]]
