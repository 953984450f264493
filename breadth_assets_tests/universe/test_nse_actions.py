"""NSE's corporate-actions export read into the actions file's kinds and values. Every PURPOSE
below is written as NSE's export has written it, typos included."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from breadth_assets.universe.nse_actions import NseAction, is_nse_export, parse_nse_actions

NAME = "CF-CA-equities.csv"
HEADER = [
    "SYMBOL", "COMPANY NAME", "SERIES", "PURPOSE", "FACE VALUE", "EX-DATE", "RECORD DATE",
    "BC START DATE", "BC END DATE", "ND START DATE", "ND END DATE", "ACTUAL PAYMENT DATE",
]  # fmt: skip
REMEDY = "declare it as a `factor` line in the actions file"
ABC_REMEDY = f"{REMEDY} (ABC,2023-12-13,factor,F)"
"""The remedy of a line of ABC on the rows' default ex-date, with the line it takes."""


def row(
    symbol: str,
    purpose: str,
    ex_date: str = "13-Dec-2023",
    face_value: str = "10",
    series: str = "EQ",
) -> list[str]:
    return [symbol, f"{symbol} Limited", series, purpose, face_value, ex_date, ex_date, *"------"]


def export(*rows: list[str]) -> str:
    """The file as NSE writes it: every field quoted, the header on line 1."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows([HEADER, *rows])
    return out.getvalue()


def parse(*rows: list[str]) -> tuple[list[NseAction], list[str]]:
    return parse_nse_actions(export(*rows), NAME)


def read(purpose: str, face_value: str = "10") -> list[tuple[str, str]]:
    """The (kind, value) pairs of one line, which must have no problem."""
    actions, problems = parse(row("ABC", purpose, face_value=face_value))
    assert problems == []
    return [(action.kind, action.value) for action in actions]


def refused(purpose: str, face_value: str = "10") -> str:
    """The one problem of one line, which must apply nothing."""
    actions, problems = parse(row("ABC", purpose, face_value=face_value))
    assert actions == []
    assert len(problems) == 1
    return problems[0]


def test_is_nse_export_is_true_for_a_header_with_bom_quotes_and_stray_spaces():
    assert is_nse_export(['\ufeff"SYMBOL "', " Company Name", "series", ' "PURPOSE"', "Ex-Date\t"])


def test_is_nse_export_is_false_without_purpose():
    assert not is_nse_export(["SYMBOL", "SERIES", "EX-DATE", "RECORD DATE"])


def test_a_header_with_bom_quotes_and_spaces_is_read():
    text = (
        '\ufeff"SYMBOL ", "COMPANY NAME" ,"SERIES"," PURPOSE","FACE VALUE ","EX-DATE "\n'
        '"TCS","Tata Consultancy Services Limited","EQ","Bonus 1:1","1","31-May-2018"\n'
    )
    actions, problems = parse_nse_actions(text, NAME)
    assert problems == []
    assert actions == [NseAction("TCS", dt.date(2018, 5, 31), "bonus", "1:1", 2)]


def test_a_file_that_is_not_the_export_is_one_problem_on_line_1():
    actions, problems = parse_nse_actions("Date,Close\n2024-01-02,10\n", NAME)
    assert actions == []
    assert problems == [
        f"{NAME} line 1: not NSE's corporate-actions export"
        " (no SYMBOL, PURPOSE and EX-DATE in its header)"
    ]


def test_an_action_carries_the_symbol_stripped_and_upper_cased_its_ex_date_and_line():
    actions, _ = parse(row("SBIN", "Annual General Meeting"), row(" kansainer ", "Bonus 1:1"))
    assert actions == [NseAction("KANSAINER", dt.date(2023, 12, 13), "bonus", "1:1", 3)]


def test_the_ex_date_is_read_in_nse_form_whatever_the_case_of_its_month():
    actions, problems = parse(row("ABC", "Bonus 1:1", ex_date="04-JUN-2026"))
    assert problems == []
    assert actions[0].ex_date == dt.date(2026, 6, 4)


@pytest.mark.parametrize(
    "purpose",
    ["Bonus 1:2", "BONUS 1 : 2", "Bonus 1: 2", "Bonus- 1:2", "Bonus - 1:2", "Bonus Issue Of 1:2"],
)
def test_a_bonus_keeps_nse_order_new_shares_for_shares_held(purpose):
    assert read(purpose) == [("bonus", "1:2")]


def test_a_bonus_of_more_new_shares_than_held_is_not_turned_round():
    assert read("Bonus 2:1") == [("bonus", "2:1")]


@pytest.mark.parametrize(
    ("purpose", "value"),
    [
        ("FACE VALUE SPLIT (SUB-DIVISION) - FROM RS 10/- PER SHARE TO RE 1/- PER SHARE", "1:10"),
        ("Face Value Split (Sub-Division) - From Rs 10/- Per Share To Rs 2/- Per Share", "1:5"),
        ("Face Value Split (Sub-Division): From Rs10/- Per Share To Re 1/- Per Share", "1:10"),
        ("Face Valus Split (Sub-Division) - From Rs 10/- Per To Rs 2/- Per Share", "1:5"),
        ("Face Value Split From Rs.10/- To Rs.2/-", "1:5"),
        ("Face Value Split From Rs 10 To Re 1 (Record Date Revised)", "1:10"),
        ("Face Value Split Rs 10 To Rs 1", "1:10"),
        ("Fv Splt Frm Rs 10 To Re 1", "1:10"),
    ],
)
def test_a_face_value_split_from_f1_to_f2_makes_one_old_share_f1_over_f2_new(purpose, value):
    assert read(purpose) == [("split", value)]


def test_a_split_of_a_ratio_that_is_not_whole_is_written_in_whole_shares():
    assert read("Face Value Split (Sub-Division) - From Rs 5/- Per Share To Rs 2/- Per Share") == [
        ("split", "2:5")
    ]


@pytest.mark.parametrize(
    "purpose",
    [
        "FACE VALUE CONSOLIDATION FROM RS 1 TO RS 10",
        "Consolidation Of Equity Shares From Re 1 Per Share To Rs 10 Per Share",
    ],
)
def test_a_consolidation_from_f1_to_f2_makes_f2_over_f1_old_shares_one(purpose):
    assert read(purpose) == [("consolidation", "10:1")]


def test_a_split_that_raises_the_face_value_is_a_problem():
    assert "gives no more shares" in refused("Face Value Split From Rs 1 To Rs 10")


@pytest.mark.parametrize(
    ("purpose", "amount"),
    [
        ("DIVIDEND - RS 5 PER SHARE", "5"),
        ("INTERIM DIVIDEND - RS 2.50 PER SHARE", "2.5"),
        ("DIVIDEND - RE 0.50 PER SHARE", "0.5"),
        ("Dividend - Rs 0.40 Per Share", "0.4"),
        ("DIV-RS.3.50 PER SH", "3.5"),
        ("Dividend Rs 15 Per Sh", "15"),
        ("Interim Divdend - Rs 5/- Per Share", "5"),
        ("Final Dividend - Rs. - 10.0000", "10"),
        ("Dividend - Rs 1,250 Per Share", "1250"),
    ],
)
def test_a_dividend_is_its_amount_per_share_in_plain_decimals(purpose, amount):
    assert read(purpose) == [("dividend", amount)]


@pytest.mark.parametrize(
    ("purpose", "amount"),
    [
        ("FINAL DIVIDEND - RS 8 PER SHARE / SPECIAL DIVIDEND - RS 2 PER SHARE", "10"),
        ("Interim Dividend - Rs 8 Per Share Special Dividend - Rs 67 Per Share", "75"),
        (
            "Dividend - Rs 35 Per Share & Special Dividend Of Rs 100 Per Share/"
            " Special Dividend Of Rs 30",
            "165",
        ),
        ("Interim Dividend - Re 0.75 Per Share & Special Dividend Rs 1.25 Per Share", "2"),
        ("AGM/Spl Div- Rs 5/- Div-Rs 3/-", "8"),
    ],
)
def test_several_dividends_in_one_line_are_one_action_of_their_sum(purpose, amount):
    assert read(purpose) == [("dividend", amount)]


def test_dividends_of_one_symbol_and_ex_date_on_several_lines_are_one_action_of_their_sum():
    actions, problems = parse(
        row("ITC", "Interim Dividend - Rs 6.25 Per Share"),
        row("ITC", "Special Dividend - Rs 2.75 Per Share"),
    )
    assert problems == []
    assert actions == [NseAction("ITC", dt.date(2023, 12, 13), "dividend", "9", 2)]


@pytest.mark.parametrize(
    "purpose",
    [
        "Dividend-Rs.8.50 Per Share (Including Special Dividend Of Rs.2/- Per Share).",
        "Dividend - Rs 8.50 Per Share Including Special Dividend Of Rs 2 Per Share",
    ],
)
def test_a_dividend_total_stated_with_its_parts_is_counted_once(purpose):
    assert read(purpose) == [("dividend", "8.5")]


def test_the_face_value_named_in_a_dividend_is_not_paid():
    assert read("Dividend - Rs 2.50 Per Share Of Rs 10/- Each") == [("dividend", "2.5")]


@pytest.mark.parametrize(
    ("purpose", "face_value", "amount"),
    [("DIVIDEND - 50%", "10", "5"), ("Final Dividend - 35%", "2", "0.7")],
)
def test_a_percentage_dividend_is_that_share_of_the_face_value(purpose, face_value, amount):
    assert read(purpose, face_value=face_value) == [("dividend", amount)]


def test_a_percentage_dividend_without_a_face_value_is_a_problem():
    assert "FACE VALUE the line does not give" in refused("DIVIDEND - 50%", face_value="-")


def test_a_dividend_without_an_amount_is_a_problem():
    assert "a dividend without its amount per share" in refused("Interim Dividend")


def test_a_reit_distribution_is_a_dividend_of_its_stated_total_not_of_its_items():
    purpose = (
        "Distribution - Rs 5.25 Per Unit Consisting Of Interest - Rs 1.85 Per Unit/ Repayment Of"
        " Shareholder Loan - Rs 2.53 Per Unit/ Dividend - Re 0.83 Per Unit/ Interest On Fixed"
        " Deposit - Re 0.04 Per Unit"
    )
    assert read(purpose) == [("dividend", "5.25")]


SPLIT_AND_BONUS = [("split", "1:2"), ("bonus", "1:1")]


@pytest.mark.parametrize(
    ("purpose", "actions"),
    [
        ("BONUS 1:1 AND FACE VALUE SPLIT FROM RS 10 TO RS 5", SPLIT_AND_BONUS),
        (
            "Bonus 1:1 / Face Value Split - From Rs 10/- Per Share To Rs 5/- Per Share",
            SPLIT_AND_BONUS,
        ),
        ("Bonus 1:1 Face Value Split From Rs 10 To Rs 5", SPLIT_AND_BONUS),
        ("AGM/DIVIDEND - RS 3 PER SHARE", [("dividend", "3")]),
        ("ANNUAL GENERAL MEETING/DIVIDEND - RS 5 PER SHARE", [("dividend", "5")]),
        (
            "Annual General Meeting/ Dividend - Rs 29.50/- Per Share And Bonus 1:1",
            [("bonus", "1:1"), ("dividend", "29.5")],
        ),
        (
            "Annual General Meeting / Dividend - Rs 3/- Per Share / Bonus - 1:2",
            [("bonus", "1:2"), ("dividend", "3")],
        ),
        (
            "Interim Div - Rs 5/- Per Share + Face Value Split (Sub-Division) - From Rs 10/- Per"
            " Share To Re 1/- Per Share",
            [("split", "1:10"), ("dividend", "5")],
        ),
    ],
)
def test_several_purposes_in_one_line_give_one_action_per_kind(purpose, actions):
    assert read(purpose) == actions


def test_a_bonus_and_a_split_of_one_day_on_two_lines_are_two_actions():
    actions, problems = parse(
        row("TECHM", "Bonus 1:1"),
        row("TECHM", "Face Value Split From Rs 10 To Rs 5"),
    )
    assert problems == []
    assert [(a.kind, a.value, a.line) for a in actions] == [
        ("bonus", "1:1", 2),
        ("split", "1:2", 3),
    ]


def test_a_purpose_it_cannot_read_is_a_problem_naming_the_line_and_applies_none_of_it():
    actions, problems = parse(
        row("SBIN", "Annual General Meeting"),
        row("ABC", "Bonus 1:1/Dividend - Rs 2 Per Share/Something New"),
    )
    assert actions == []
    assert problems == [
        f"{NAME} line 3: ABC 'Bonus 1:1/Dividend - Rs 2 Per Share/Something New':"
        f" not a purpose this reader knows; {ABC_REMEDY}"
    ]


@pytest.mark.parametrize(
    "purpose",
    ["Demerger", "Scheme Of Arrangement In The Nature Of Demerger", "Bonus 1:1/Demerger"],
)
def test_a_demerger_is_a_problem(purpose):
    assert f"ABC {purpose!r}: a demerger has no price factor in its text; {ABC_REMEDY}" in (
        refused(purpose)
    )


@pytest.mark.parametrize(
    "purpose",
    [
        "Rights 1:5 @ Premium Rs 390/- Per Share",
        "Scheme Of Arrangement",
        "Scheme Of Arangement- Bonus - 1 Debenture For 1 Equity Share Held",
        "Scheme Of Arrangement - Bonus Ncrps 4:1",
        "Bonus Preference Shares 1:1",
        "Capital Reduction Rs 10 To Rs 1 / Consolidation Rs 1 To Rs.10",
        "Scheme Of Amalgamation",
        "For Distribution Of Chennai Super Kings Cricket Limited Shares To The Shareholders",
    ],
)
def test_a_purpose_that_moves_the_price_without_a_factor_is_a_problem(purpose):
    assert refused(purpose).endswith(ABC_REMEDY)


@pytest.mark.parametrize(
    "purpose", ["Face Value Split (Ratio Awaited)", "Bonus Issue", "Consolidation Of Shares"]
)
def test_a_kind_without_its_figures_is_a_problem(purpose):
    assert "without its" in refused(purpose)


def test_two_bonuses_of_one_symbol_and_day_are_a_problem_naming_both_lines_and_apply_nothing():
    actions, problems = parse(
        row("ABC", "Bonus 1:1"),
        row("ABC", "Dividend - Rs 2 Per Share"),
        row("ABC", "Bonus 1:2"),
        row("XYZ", "Bonus 1:1"),
    )
    assert [a.ticker for a in actions] == ["XYZ"]
    assert problems == [
        f"{NAME} lines 2 and 4: ABC 'Bonus 1:1' and 'Bonus 1:2': two bonus actions on 2023-12-13;"
        f" {REMEDY}"
    ]


def test_a_line_repeated_word_for_word_counts_once():
    actions, problems = parse(
        row("ABC", "Dividend - Rs 2 Per Share"), row("ABC", "DIVIDEND -  RS 2 PER SHARE")
    )
    assert problems == []
    assert [(a.kind, a.value, a.line) for a in actions] == [("dividend", "2", 2)]


def test_an_agm_alone_gives_no_action_and_no_problem():
    assert parse(row("ABC", "Annual General Meeting")) == ([], [])


@pytest.mark.parametrize(
    "purpose",
    [
        "AGM",
        "Annual General Meetig",
        "Extra Ordinary General Meeting",
        "EGM",
        "Buy Back",
        "Buyback Of Shares",
        "Interest Payment",
        "Redemption",
        "E-Voting",
        "Postal Ballot",
        "Book Closure",
    ],
)
def test_a_price_neutral_purpose_is_skipped_without_a_problem(purpose):
    assert parse(row("ABC", purpose)) == ([], [])


def test_a_malformed_ex_date_is_a_problem_naming_the_line():
    actions, problems = parse(row("ABC", "Bonus 1:1", ex_date="31-Foo-2023"))
    assert actions == []
    assert problems == [
        f"{NAME} line 2: ABC 'Bonus 1:1': EX-DATE '31-Foo-2023' is not a date like 13-Dec-2023;"
        f" {REMEDY}"
    ]


def test_a_missing_ex_date_on_an_action_is_a_problem():
    assert "no EX-DATE" in parse(row("ABC", "Bonus 1:1", ex_date="-"))[1][0]


def test_a_missing_ex_date_on_a_meeting_is_skipped_without_a_problem():
    assert parse(row("ABC", "Annual General Meeting", ex_date="-")) == ([], [])


def test_lines_of_every_series_are_read():
    actions, problems = parse(
        row("AAA", "Bonus 1:1", series="EQ"),
        row("BBB", "Bonus 1:1", series="BE"),
        row("CCC", "Bonus 1:1", series="SM"),
        row("DDD", "Bonus 1:1", series="ST"),
    )
    assert problems == []
    assert [a.ticker for a in actions] == ["AAA", "BBB", "CCC", "DDD"]


def test_a_purpose_broken_over_two_lines_is_numbered_where_it_starts_and_its_lines_stay_apart():
    actions, problems = parse(
        row("ABC", "Face Value Split (Ratio Awaited)\nRecord Date Moved From 10 To 2 March"),
        row("XYZ", "Bonus 1:1"),
    )
    assert [(a.ticker, a.line) for a in actions] == [("XYZ", 4)]
    assert len(problems) == 1
    assert problems[0].startswith(f"{NAME} line 2: ABC ")
