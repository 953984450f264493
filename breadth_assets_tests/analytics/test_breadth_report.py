"""The table and chart that the `breadth` materialization shows in the Dagster UI."""

from __future__ import annotations

import base64
import io

import matplotlib.image as mpimg
import numpy as np
import pandas as pd

from breadth_assets import schema
from breadth_assets.analytics import breadth_report


def _breadth(days: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2025-01-01", periods=days)
    advancers = rng.integers(0, 51, days)
    frame = pd.DataFrame({column: 0.0 for column in schema.BREADTH_COLUMNS}, index=range(days))
    frame["date"] = dates
    frame["universe"] = 50
    frame["advancers"] = advancers
    frame["decliners"] = 50 - advancers
    frame["ad_line"] = np.cumsum(2 * advancers - 50)
    frame["mcclellan_osc"] = rng.normal(0, 40, days).round(2)
    frame["mcclellan_sum"] = frame["mcclellan_osc"].cumsum()
    frame["pct_above_ema_50"] = rng.uniform(0, 100, days)
    frame["pct_above_ema_200"] = np.nan  # not enough history for EMA 200 yet
    frame["new_highs_52w"] = rng.integers(0, 10, days)
    frame["new_lows_52w"] = rng.integers(0, 10, days)
    frame["trin"] = rng.uniform(0.5, 2, days)
    return frame.sample(frac=1, random_state=1)  # row order must not matter


def test_last_days_table_has_the_last_ten_days_oldest_first():
    frame = _breadth()
    table = breadth_report.last_days_table(frame).splitlines()
    assert table[0] == (
        "| date | adv/dec | A/D line | McCl. osc | % > EMA 50 | % > EMA 200 | 52w hi/lo |"
    )
    rows = table[2:]
    assert len(rows) == 10
    last = frame.sort_values("date").tail(10)
    for line, (_, row) in zip(rows, last.iterrows(), strict=True):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[0] == f"{row['date']:%Y-%m-%d}"
        assert cells[1] == f"{row['advancers']}/{row['decliners']}"
        assert cells[2] == f"{row['ad_line']:,.0f}"
        assert cells[3] == f"{row['mcclellan_osc']:,.1f}"
        assert cells[4] == f"{row['pct_above_ema_50']:.0f}"
        assert cells[5] == "–"  # a missing value reads as a dash, not nan
        assert cells[6] == f"{row['new_highs_52w']}/{row['new_lows_52w']}"


def test_chart_of_the_whole_universe_alone_is_a_small_png_of_900_by_700_pixels():
    png = breadth_report.chart_png(_breadth())
    assert png.startswith(b"\x89PNG")
    assert len(png) < 150_000
    image = mpimg.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (700, 900)
    assert image.std() > 0.05  # something is drawn, not a blank canvas


def test_chart_of_a_few_days_still_renders():
    png = breadth_report.chart_png(_breadth(days=3))
    assert mpimg.imread(io.BytesIO(png), format="png").shape[:2] == (700, 900)


def test_chart_adds_a_panel_of_200_pixels_per_group():
    whole = _breadth()
    groups = pd.concat([whole, whole.assign(group_name="BANKS")], ignore_index=True)
    png = breadth_report.chart_png(groups, ["ALL", "BANKS"])
    assert mpimg.imread(io.BytesIO(png), format="png").shape[:2] == (900, 900)


def test_chart_markdown_is_a_data_uri_image():
    markdown = breadth_report.chart_markdown(b"\x89PNGabc")
    assert markdown.startswith("![breadth, last year](data:image/png;base64,")
    encoded = markdown.split("base64,", 1)[1].rstrip(")")
    assert base64.b64decode(encoded) == b"\x89PNGabc"


def test_signals_markdown_lists_each_group_signal_and_its_values():
    signals = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-06-03"] * 2),
            "group_name": ["ALL", "BANKS"],
            "signal": ["mcclellan_cross_up", "zweig_thrust"],
            "detail": ["mcclellan_osc -2.0 -> 3.1", "zweig_ema 0.620"],
        }
    )
    lines = breadth_report.signals_markdown(signals).splitlines()
    assert lines[2:] == [
        "| ALL | mcclellan_cross_up | mcclellan_osc -2.0 -> 3.1 |",
        "| BANKS | zweig_thrust | zweig_ema 0.620 |",
    ]


def test_signals_markdown_says_when_none_fired():
    empty = pd.DataFrame(columns=["date", "group_name", "signal", "detail"])
    assert breadth_report.signals_markdown(empty) == "no signal fired"
