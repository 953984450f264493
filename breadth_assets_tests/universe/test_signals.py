from __future__ import annotations

import pytest

from breadth_assets.analytics.signals import SIGNALS, SignalSettings
from breadth_assets.universe.file import load_universe
from breadth_assets_tests.support import universe_refusal, write_universe_text

HEADER = """\
market: DEMO
start_date: 2015-01-01
source: demo
tickers: [RELIANCE, SBIN, TCS]
"""


def signals_of(tmp_path, text):
    return load_universe(write_universe_text(tmp_path, HEADER + text)).signals


def refused(tmp_path, text):
    path, message = universe_refusal(tmp_path, HEADER + text)
    return message.removeprefix(f"{path} ")


def test_a_universe_without_signals_has_the_default_settings(tmp_path):
    assert signals_of(tmp_path, "") == SignalSettings()


def test_an_empty_signals_block_is_the_default_settings(tmp_path):
    assert signals_of(tmp_path, "signals:\n") == SignalSettings()


def test_every_setting_is_read(tmp_path):
    text = """\
signals:
  enabled: [zweig_thrust, mcclellan_cross_up, mcclellan_cross_down]
  summation_levels: [-500, 0, 500]
  new_lows_share: 10%
  sma200_level: 40
  hindenburg_share: 2.5%
"""
    assert signals_of(tmp_path, text) == SignalSettings(
        enabled=("zweig_thrust", "mcclellan_cross_up", "mcclellan_cross_down"),
        summation_levels=(-500.0, 0.0, 500.0),
        new_lows_share=pytest.approx(0.10),
        sma200_level=40.0,
        hindenburg_share=pytest.approx(0.025),
    )


def test_a_key_left_out_keeps_its_default(tmp_path):
    settings = signals_of(tmp_path, "signals:\n  sma200_level: 60\n")
    assert settings == SignalSettings(sma200_level=60.0)


@pytest.mark.parametrize(("written", "enabled"), [("all", SIGNALS), ("ALL", SIGNALS), ("none", ())])
def test_enabled_may_be_all_or_none(tmp_path, written, enabled):
    assert signals_of(tmp_path, f"signals:\n  enabled: {written}\n").enabled == enabled


def test_an_empty_enabled_list_is_no_signal(tmp_path):
    assert signals_of(tmp_path, "signals:\n  enabled: []\n").enabled == ()


def test_enabled_names_ignore_case_and_repeats_and_follow_the_order_of_signals(tmp_path):
    text = "signals:\n  enabled: [Hindenburg_Omen, zweig_thrust, hindenburg_omen]\n"
    assert signals_of(tmp_path, text).enabled == ("zweig_thrust", "hindenburg_omen")


def test_a_single_enabled_name_is_that_signal_alone(tmp_path):
    assert signals_of(tmp_path, "signals:\n  enabled: zweig_thrust\n").enabled == ("zweig_thrust",)


def test_summation_levels_are_sorted_without_repeats(tmp_path):
    text = "signals:\n  summation_levels: [500, -250.5, 0, 500, 1e3]\n"
    assert signals_of(tmp_path, text).summation_levels == (-250.5, 0.0, 500.0, 1000.0)


def test_an_empty_summation_levels_list_is_no_level(tmp_path):
    assert signals_of(tmp_path, "signals:\n  summation_levels: []\n").summation_levels == ()


@pytest.mark.parametrize(("written", "share"), [("10%", 0.1), ("0.1", 0.1), ("10", 0.1)])
@pytest.mark.parametrize("key", ["new_lows_share", "hindenburg_share"])
def test_shares_are_written_as_min_coverage_is(tmp_path, key, written, share):
    settings = signals_of(tmp_path, f"signals:\n  {key}: {written}\n")
    assert getattr(settings, key) == pytest.approx(share)


@pytest.mark.parametrize(("written", "level"), [("0", 0.0), ("37.5", 37.5), ("50%", 50.0)])
def test_sma200_level_is_a_percentage_of_tickers(tmp_path, written, level):
    assert signals_of(tmp_path, f"signals:\n  sma200_level: {written}\n").sma200_level == level


# --- refusals ----------------------------------------------------------------------------------


def test_an_unknown_signal_is_refused_at_its_item_listing_the_valid_names(tmp_path):
    message = refused(tmp_path, "signals:\n  enabled:\n    - zweig_thrust\n    - omen\n")
    assert message == (
        f"line 8: signals.enabled[1]: unknown signal 'omen'; valid signals are "
        f"{', '.join(SIGNALS)} (or all or none instead of the list)"
    )


def test_an_empty_enabled_is_refused(tmp_path):
    message = refused(tmp_path, "signals:\n  enabled:\n")
    assert message == "line 6: signals.enabled: is empty; write all, none or a list of signals"


def test_an_unknown_key_is_refused_listing_the_allowed_keys(tmp_path):
    message = refused(tmp_path, "signals:\n  enabled: all\n  omen_share: 3%\n")
    assert message == (
        "line 7: signals.omen_share: unknown key; allowed keys are enabled, summation_levels, "
        "new_lows_share, sma200_level, hindenburg_share"
    )


@pytest.mark.parametrize("written", ["high", "true", ".nan", ".inf", "[1]"])
def test_a_summation_level_that_is_not_a_number_is_refused_at_its_item(tmp_path, written):
    message = refused(tmp_path, f"signals:\n  summation_levels: [0, {written}]\n")
    assert message.startswith("line 6: signals.summation_levels[1]: "), message
    assert message.endswith("is not a number (a summation index level such as -1000, 0 or 1000)")


def test_summation_levels_that_are_not_a_list_are_refused(tmp_path):
    message = refused(tmp_path, "signals:\n  summation_levels: 500\n")
    assert message == (
        "line 6: signals.summation_levels: expected a list of levels such as [-1000, 0, 1000]"
    )


@pytest.mark.parametrize("written", ["0", "0%", "-5%", "101%", "150", "true", "many"])
def test_a_new_lows_share_outside_0_to_100_percent_is_refused(tmp_path, written):
    message = refused(tmp_path, f"signals:\n  new_lows_share: {written}\n")
    assert message == (
        f"line 6: signals.new_lows_share: {written!r} is not a share such as 10%, 0.1 or 10 "
        "(above 0, at most 100%)"
    )


def test_a_hindenburg_share_outside_0_to_100_percent_is_refused(tmp_path):
    message = refused(tmp_path, "signals:\n  hindenburg_share: 0\n")
    assert message == (
        "line 6: signals.hindenburg_share: '0' is not a share such as 2.2%, 0.022 or 2.2 "
        "(above 0, at most 100%)"
    )


@pytest.mark.parametrize("written", ["-1", "100.5", "101%", "true", "half"])
def test_an_sma200_level_outside_0_to_100_is_refused(tmp_path, written):
    message = refused(tmp_path, f"signals:\n  sma200_level: {written}\n")
    assert message == (
        f"line 6: signals.sma200_level: {written!r} is not a percentage of tickers such as 50 "
        "or 50% (0 to 100)"
    )


@pytest.mark.parametrize("block", ["all", "[zweig_thrust]"])
def test_a_signals_block_that_is_not_a_mapping_is_refused(tmp_path, block):
    message = refused(tmp_path, f"signals: {block}\n")
    assert message == (
        "line 5: signals: expected a mapping with keys enabled, summation_levels, "
        "new_lows_share, sma200_level, hindenburg_share"
    )
