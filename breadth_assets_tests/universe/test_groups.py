from __future__ import annotations

import datetime as dt

import pytest

from breadth_assets.universe.file import load_universe
from breadth_assets.universe.groups import Group, members_in, missing_members
from breadth_assets_tests.support import universe_refusal, write_universe_text

HEADER = """\
market: DEMO
start_date: 2015-01-01
source: demo
tickers: [RELIANCE, SBIN, TCS]
"""
NSE_HEADER = "Company Name,Industry,Symbol,Series,ISIN Code\n"
NSE_ROWS = """\
HDFC Bank Ltd.,Financial Services,HDFCBANK,EQ,INE040A01034
Reliance Industries Ltd.,Oil Gas & Consumable Fuels,RELIANCE,EQ,INE002A01018
ICICI Bank Ltd.,Financial Services,ICICIBANK,EQ,INE090A01021
Mahindra & Mahindra Ltd.,Automobile and Auto Components,M&M,EQ,INE101A01026
"""


def groups_of(tmp_path, text):
    return load_universe(write_universe_text(tmp_path, HEADER + text)).groups


def test_a_universe_without_groups_has_none(tmp_path):
    universe = load_universe(write_universe_text(tmp_path, HEADER))
    assert universe.groups == ()
    assert universe.chart_groups == ()


def test_a_list_group_keeps_its_members_normalised_deduplicated_in_order(tmp_path):
    (group,) = groups_of(tmp_path, "groups:\n  NIFTY50: [tcs, ' reliance ', ON, TCS]\n")
    assert group == Group(
        "NIFTY50", ("TCS", "RELIANCE", "ON"), False, "universe.yaml groups.NIFTY50"
    )


def test_members_need_not_be_in_the_universe(tmp_path):
    (group,) = groups_of(tmp_path, "groups:\n  Others: [INFY, WIPRO]\n")
    assert group.tickers == ("INFY", "WIPRO")


def test_a_tickers_mapping_is_a_list_group_that_may_be_charted(tmp_path):
    (group,) = groups_of(
        tmp_path, "groups:\n  ' Core ':\n    tickers: [SBIN, TCS]\n    chart: true\n"
    )
    assert (group.name, group.tickers, group.chart) == ("Core", ("SBIN", "TCS"), True)


def test_a_txt_file_group_has_one_symbol_a_line_relative_to_the_universe(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "banks.txt").write_text("# banks\nsbin\n\n HDFCBANK  # HDFC\nSBIN\n")
    (group,) = groups_of(tmp_path, "groups:\n  Banks: {file: lists/banks.txt}\n")
    assert group == Group("Banks", ("SBIN", "HDFCBANK"), False, "universe.yaml groups.Banks")


def test_an_nse_index_file_with_column_makes_a_group_per_industry(tmp_path):
    rows = NSE_ROWS + "Unclassified Ltd.,,ZZZ,EQ,INE000000000\n"
    (tmp_path / "ind_nifty500list.csv").write_text(NSE_HEADER + rows)
    groups = groups_of(
        tmp_path, "groups:\n  sectors: {file: ind_nifty500list.csv, column: Industry}\n"
    )
    origin = "ind_nifty500list.csv column Industry"
    assert groups == (
        Group("Financial Services", ("HDFCBANK", "ICICIBANK"), False, origin),
        Group("Oil Gas & Consumable Fuels", ("RELIANCE",), False, origin),
        Group("Automobile and Auto Components", ("M&M",), False, origin),
    )


def test_a_column_is_matched_ignoring_case_when_not_exactly(tmp_path):
    (tmp_path / "nifty.csv").write_text(NSE_HEADER + NSE_ROWS)
    groups = groups_of(tmp_path, "groups:\n  sectors: {file: nifty.csv, column: industry}\n")
    assert groups[0].origin == "nifty.csv column Industry"


def test_a_csv_without_column_is_one_group_of_its_ticker_column(tmp_path):
    (tmp_path / "nifty.csv").write_text(NSE_HEADER + NSE_ROWS)
    (group,) = groups_of(tmp_path, "groups:\n  NIFTY: {file: nifty.csv}\n")
    assert group.tickers == ("HDFCBANK", "RELIANCE", "ICICIBANK", "M&M")


def test_a_lower_case_ticker_header_is_a_ticker_column_too(tmp_path):
    (tmp_path / "picks.csv").write_text("ticker,weight\ntcs,0.5\nsbin,0.5\n")
    (group,) = groups_of(tmp_path, "groups:\n  Picks: {file: picks.csv}\n")
    assert group.tickers == ("TCS", "SBIN")


def test_chart_marks_choose_the_charted_groups_and_a_column_marks_all_its_groups(tmp_path):
    (tmp_path / "nifty.csv").write_text(NSE_HEADER + NSE_ROWS)
    text = """\
groups:
  A: [SBIN]
  sectors: {file: nifty.csv, column: Industry, chart: true}
  B: {tickers: [TCS], chart: true}
"""
    universe = load_universe(write_universe_text(tmp_path, HEADER + text))
    assert universe.chart_groups == (
        "Financial Services",
        "Oil Gas & Consumable Fuels",
        "Automobile and Auto Components",
        "B",
    )


def test_without_chart_marks_the_first_three_groups_are_charted(tmp_path):
    text = "groups:\n  A: [SBIN]\n  B: [TCS]\n  C: [RELIANCE]\n  D: [SBIN, TCS]\n"
    universe = load_universe(write_universe_text(tmp_path, HEADER + text))
    assert universe.chart_groups == ("A", "B", "C")


def test_members_in_and_missing_members_split_groups_by_the_universe():
    groups = (Group("A", ("TCS", "INFY", "SBIN")), Group("B", ("SBIN",)), Group("C", ("X",)))
    assert members_in(groups, ["SBIN", "TCS"]) == {"A": ["SBIN", "TCS"], "B": ["SBIN"], "C": []}
    assert missing_members(groups, {"SBIN", "TCS"}) == {"A": ["INFY"], "C": ["X"]}


# --- refusals ----------------------------------------------------------------------------------


def refused(tmp_path, text):
    path, message = universe_refusal(tmp_path, HEADER + text)
    return message.removeprefix(f"{path} ")


def test_a_group_named_all_in_any_case_is_refused(tmp_path):
    message = refused(tmp_path, "groups:\n  A: [SBIN]\n  All: [TCS]\n")
    assert message.startswith("line 7: groups.All: 'All' is reserved: ALL is the whole universe")


def test_a_column_value_named_all_is_refused_naming_the_file(tmp_path):
    (tmp_path / "x.csv").write_text("Symbol,Kind\nSBIN,all\n")
    message = refused(tmp_path, "groups:\n  kinds: {file: x.csv, column: Kind}\n")
    assert message.startswith("line 6: groups.kinds: x.csv column Kind: 'all' is reserved")


def test_two_groups_of_one_name_are_refused_naming_both_origins(tmp_path):
    message = refused(tmp_path, "groups:\n  Banks: [SBIN]\n  ' banks': [TCS]\n")
    assert message == (
        "line 7: groups. banks: group 'banks' is defined twice: by universe.yaml groups.Banks "
        "and by universe.yaml groups.banks"
    )


def test_a_group_named_like_a_column_value_is_refused_naming_both_origins(tmp_path):
    (tmp_path / "nifty.csv").write_text(NSE_HEADER + NSE_ROWS)
    text = "groups:\n  financial services: [SBIN]\n  s: {file: nifty.csv, column: Industry}\n"
    message = refused(tmp_path, text)
    assert message == (
        "line 7: groups.s: group 'Financial Services' is defined twice: by universe.yaml "
        "groups.financial services and by nifty.csv column Industry"
    )


@pytest.mark.parametrize("group", ["[]", "{tickers: []}", "", "{tickers: }"])
def test_a_group_without_member_is_refused(tmp_path, group):
    message = refused(tmp_path, f"groups:\n  Empty: {group}\n")
    assert message.startswith("line 6: groups.Empty"), message
    assert message.endswith("the group has no member")


def test_a_group_file_without_symbol_is_refused(tmp_path):
    (tmp_path / "none.txt").write_text("# nothing yet\n\n")
    message = refused(tmp_path, "groups:\n  Empty: {file: none.txt}\n")
    path = tmp_path / "none.txt"
    assert message == f"line 6: groups.Empty: {path}: group 'Empty' has no member"


def test_a_missing_group_file_is_refused_with_its_path(tmp_path):
    message = refused(tmp_path, "groups:\n  Banks:\n    file: banks.txt\n")
    assert message == f"line 7: groups.Banks.file: {tmp_path / 'banks.txt'}: group file not found"


def test_an_unknown_column_is_refused_naming_the_file_and_its_columns(tmp_path):
    (tmp_path / "nifty.csv").write_text(NSE_HEADER + NSE_ROWS)
    message = refused(tmp_path, "groups:\n  s:\n    file: nifty.csv\n    column: Sector\n")
    assert message == (
        f"line 8: groups.s.column: {tmp_path / 'nifty.csv'}: no column 'Sector'; the file's "
        "columns are 'Company Name', 'Industry', 'Symbol', 'Series', 'ISIN Code'"
    )


def test_a_column_of_a_csv_without_ticker_column_is_refused_naming_its_columns(tmp_path):
    (tmp_path / "x.csv").write_text("Name,Industry\nHDFC Bank,Financial Services\n")
    message = refused(tmp_path, "groups:\n  s: {file: x.csv, column: Industry}\n")
    assert "no ticker column" in message
    assert "the file's columns are 'Name', 'Industry'" in message


def test_an_unknown_key_of_a_group_is_refused_listing_the_allowed_keys(tmp_path):
    message = refused(tmp_path, "groups:\n  Banks:\n    tickers: [SBIN]\n    colour: red\n")
    assert message == (
        "line 8: groups.Banks.colour: unknown key; allowed keys are tickers, file, column, chart"
    )


def test_an_invalid_member_is_refused_at_its_item(tmp_path):
    message = refused(tmp_path, "groups:\n  Banks:\n    - SBIN\n    - A B\n")
    assert message.startswith("line 8: groups.Banks[1]: 'A B' is not a valid ticker")


def test_an_invalid_symbol_of_a_group_file_is_refused_with_its_line(tmp_path):
    (tmp_path / "banks.txt").write_text("SBIN\nA/B\n")
    _, message = universe_refusal(tmp_path, HEADER + "groups:\n  Banks: {file: banks.txt}\n")
    assert message.startswith(f"{tmp_path / 'banks.txt'} line 2: 'A/B' is not a valid ticker")


def test_tickers_and_file_together_are_refused(tmp_path):
    message = refused(tmp_path, "groups:\n  B: {tickers: [SBIN], file: b.txt}\n")
    assert message == "line 6: groups.B.file: give tickers or file, not both"


def test_a_group_that_is_a_single_value_is_refused(tmp_path):
    message = refused(tmp_path, "groups:\n  Banks: banks.txt\n")
    assert message.startswith("line 6: groups.Banks: expected a list of symbols, or a mapping")


def test_groups_that_are_not_a_mapping_are_refused(tmp_path):
    message = refused(tmp_path, "groups: [SBIN, TCS]\n")
    assert message.startswith("line 5: groups: expected a mapping of group names")


# --- min_coverage ------------------------------------------------------------------------------


def test_min_coverage_defaults_to_80_percent(tmp_path):
    assert load_universe(write_universe_text(tmp_path, HEADER)).min_coverage == 0.8


@pytest.mark.parametrize(
    ("written", "share"),
    [("80%", 0.8), ("0.8", 0.8), ("80", 0.8), ("1", 1.0), ("100%", 1.0), ("0.5%", 0.005)],
)
def test_min_coverage_is_a_share_a_percent_or_a_number_above_1_read_as_percent(
    tmp_path, written, share
):
    universe = load_universe(write_universe_text(tmp_path, HEADER + f"min_coverage: {written}\n"))
    assert universe.min_coverage == pytest.approx(share)


@pytest.mark.parametrize("written", ["0", "0%", "-0.5", "101%", "150", "true", "most", "[80]"])
def test_min_coverage_out_of_range_or_not_a_number_is_refused(tmp_path, written):
    message = refused(tmp_path, f"min_coverage: {written}\n")
    assert message.startswith("line 5: min_coverage: "), message
    assert "not a share such as 80%, 0.8 or 80" in message or "single value" in message


# --- extra_sessions ----------------------------------------------------------------------------


def test_extra_sessions_are_sorted_deduplicated_dates(tmp_path):
    text = "extra_sessions: [2024-11-01, 2023-11-12, 2024-11-01]\n"
    universe = load_universe(write_universe_text(tmp_path, HEADER + text))
    assert universe.extra_sessions == (dt.date(2023, 11, 12), dt.date(2024, 11, 1))


def test_extra_sessions_default_to_none(tmp_path):
    assert load_universe(write_universe_text(tmp_path, HEADER)).extra_sessions == ()


def test_an_extra_session_that_is_not_a_date_is_refused(tmp_path):
    message = refused(tmp_path, "extra_sessions: [2024-11-01, diwali]\n")
    assert message.startswith("line 5: extra_sessions[1]: 'diwali' is not a date")


def test_an_extra_session_also_in_extra_closures_is_refused_naming_the_day(tmp_path):
    text = "extra_closures: [2024-11-01]\nextra_sessions:\n  - 2023-11-12\n  - 2024-11-01\n"
    message = refused(tmp_path, text)
    assert message == (
        "line 8: extra_sessions[1]: 2024-11-01 is also in extra_closures: a day is either closed "
        "or traded"
    )
