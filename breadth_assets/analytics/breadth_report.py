"""What the `breadth` materialization shows in the Dagster UI: a table of the last days and a chart.

Pure functions over the breadth DataFrame (the columns of `schema.BREADTH_COLUMNS`, `date` a
datetime column): markdown strings and PNG bytes, no Dagster, no store.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import pandas as pd

from breadth_assets.schema import ALL_GROUP

TABLE_DAYS = 10
CHART_DAYS = 252  # about a year of trading days

# (header, columns, decimals) of the last days' table: few and narrow, because the UI shows it
# inline in the metadata table's value column (about 350 px wide); two columns joined by "/".
TABLE_COLUMNS: list[tuple[str, tuple[str, ...], int]] = [
    ("adv/dec", ("advancers", "decliners"), 0),
    ("A/D line", ("ad_line",), 0),
    ("McCl. osc", ("mcclellan_osc",), 1),
    ("% > EMA 50", ("pct_above_ema_50",), 0),
    ("% > EMA 200", ("pct_above_ema_200",), 0),
    ("52w hi/lo", ("new_highs_52w", "new_lows_52w"), 0),
]

CHART_WIDTH_PX = 900
PANEL_HEIGHT_PX = 200
MOVERS_SHOWN = 6
CHART_DPI = 80


def _cell(value: object, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return "–"
    return f"{float(value):,.{decimals}f}"


def last_days_table(breadth: pd.DataFrame, days: int = TABLE_DAYS) -> str:
    """A markdown table of the last `days` rows (by date, oldest first) and the key columns."""
    rows = breadth.sort_values("date").tail(days)
    header = "| date | " + " | ".join(title for title, _, _ in TABLE_COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(TABLE_COLUMNS)
    lines = [header, rule]
    for _, row in rows.iterrows():
        cells = [
            "/".join(_cell(row[column], decimals) for column in columns)
            for _, columns, decimals in TABLE_COLUMNS
        ]
        lines.append(f"| {pd.Timestamp(row['date']):%Y-%m-%d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart_png(
    breadth: pd.DataFrame, groups: Sequence[str] = (ALL_GROUP,), days: int = CHART_DAYS
) -> bytes:
    """The whole universe's A/D line and McClellan oscillator, then one panel per group of
    `groups` with its % above SMA 50 / 200 and High-Low Index, over the last `days` days, as a
    PNG 900 pixels wide. `breadth` holds every group's rows (`group_name`); a partial day
    (NULL percentages) is a gap in the lines."""
    # Imported here, and without pyplot: matplotlib costs a process half a second, and only
    # the breadth run draws.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image  # Pillow comes with matplotlib

    rows = breadth if "group_name" in breadth.columns else breadth.assign(group_name=ALL_GROUP)
    everyone = rows[rows["group_name"] == ALL_GROUP].sort_values("date").tail(days)
    dates = pd.to_datetime(everyone["date"])
    start = dates.iloc[0] if len(dates) else None
    panels = 2 + len(groups)
    height = PANEL_HEIGHT_PX * panels + 100
    figure = Figure(figsize=(CHART_WIDTH_PX / CHART_DPI, height / CHART_DPI), dpi=CHART_DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots(panels, 1, sharex=True)
    ad, osc, *group_axes = axes
    ad.plot(dates, everyone["ad_line"], color="#1f4e9c", linewidth=1.4)
    ad.set_title("Advance-decline line (ALL)", loc="left", fontsize=11)

    values = everyone["mcclellan_osc"].astype(float)
    colors = ["#2e8b57" if v >= 0 else "#c0392b" for v in values.fillna(0)]
    osc.vlines(dates, 0, values.fillna(0), colors=colors, linewidth=2.0)
    osc.axhline(0, color="#555555", linewidth=0.8)
    osc.set_title("McClellan oscillator (ALL)", loc="left", fontsize=11)

    for axis, name in zip(group_axes, groups, strict=True):
        data = rows[rows["group_name"] == name].sort_values("date")
        if start is not None:
            data = data[pd.to_datetime(data["date"]) >= start]
        when = pd.to_datetime(data["date"])
        for column, color, label in (
            ("pct_above_sma_50", "#e67e22", "% > SMA 50"),
            ("pct_above_sma_200", "#6c3483", "% > SMA 200"),
            ("high_low_index", "#2e8b57", "High-Low Index"),
        ):
            axis.plot(when, data[column].astype(float), color=color, label=label, linewidth=1.2)
        axis.set_ylim(0, 100)
        axis.axhline(50, color="#999999", linewidth=0.6, linestyle="--")
        axis.set_title(f"{name}", loc="left", fontsize=11)
        axis.legend(loc="lower right", bbox_to_anchor=(1, 1), fontsize=9, ncols=3, frameon=False)

    for axis in axes:
        axis.grid(True, color="#e5e5e5", linewidth=0.6)
        axis.tick_params(labelsize=9)
        for side in ("top", "right"):
            axis.spines[side].set_visible(False)
    if len(dates):
        first, last = dates.iloc[0], dates.iloc[-1]
        figure.suptitle(
            f"Market breadth {first:%Y-%m-%d} to {last:%Y-%m-%d} ({len(dates)} trading days)",
            fontsize=12,
        )
    # Fixed margins instead of tight_layout/autofmt_xdate, which draw the figure once more to
    # measure it (0.4 s of a daily breadth step).
    last_axis = axes[-1]
    last_axis.tick_params(axis="x", labelrotation=30)
    for label in last_axis.get_xticklabels():
        label.set_horizontalalignment("right")
    figure.subplots_adjust(
        left=0.075, right=0.985, top=1 - 50 / height, bottom=70 / height, hspace=0.5
    )
    canvas.draw()
    rgba = Image.frombuffer("RGBA", canvas.get_width_height(), bytes(canvas.buffer_rgba()))
    # A palette of 64 colours keeps the PNG small enough to embed in every materialization.
    buffer = io.BytesIO()
    rgba.convert("RGB").quantize(colors=64).save(buffer, format="png", optimize=True)
    return buffer.getvalue()


def who_moved_markdown(day_rows: pd.DataFrame, members: pd.DataFrame) -> str:
    """One day's `breadth_members` per group, short: a line per group and event with the first
    `MOVERS_SHOWN` tickers and how many more; groups in order of their row (ALL first)."""
    if day_rows.empty:
        return ""
    day = pd.Timestamp(day_rows["date"].iloc[0])
    lines = [f"**{day:%Y-%m-%d}**", "", "| group | event | tickers |", "|---|---|---|"]
    order = [ALL_GROUP, *sorted(set(day_rows["group_name"]) - {ALL_GROUP})]
    for group in order:
        shown = members[members["group_name"] == group]
        partial = day_rows.loc[day_rows["group_name"] == group, "partial"]
        if len(partial) and bool(partial.iloc[0]):
            lines.append(f"| {group} | partial day | – |")
        for event, tickers in shown.groupby("event", sort=False)["ticker"]:
            names = sorted(tickers)
            more = len(names) - MOVERS_SHOWN
            text = ", ".join(names[:MOVERS_SHOWN]) + (f" +{more}" if more > 0 else "")
            lines.append(f"| {group} | {event} | {text} |")
    return "\n".join(lines)


def signals_markdown(signals: pd.DataFrame) -> str:
    """One day's `breadth_signals` as a markdown table: group, signal and the values behind it;
    a line saying none fired when the frame is empty."""
    if signals.empty:
        return "no signal fired"
    lines = ["| group | signal | values |", "|---|---|---|"]
    for row in signals.itertuples():
        lines.append(f"| {row.group_name} | {row.signal} | {row.detail} |")
    return "\n".join(lines)


TOP_GROUPS = 5
GROUP_COLUMNS = [
    "group_name",
    "universe",
    "pct_above_sma_50",
    "pct_above_sma_200",
    "high_low_index",
    "up_4pct",
    "down_4pct",
    "new_highs_52w",
    "new_lows_52w",
]


def top_groups(day_rows: pd.DataFrame, groups: int = TOP_GROUPS) -> pd.DataFrame:
    """One day's groups (not ALL) strongest first by % above SMA 50, partial ones last: what
    the command line prints under the whole universe's last days."""
    rows = day_rows[day_rows["group_name"] != ALL_GROUP]
    rows = rows.sort_values(
        ["partial", "pct_above_sma_50", "group_name"],
        ascending=[True, False, True],
        na_position="last",
    )
    return rows.head(groups)[GROUP_COLUMNS].reset_index(drop=True)


def chart_markdown(png: bytes, alt: str = "breadth, last year") -> str:
    """The PNG as a markdown image with a base64 data URI (rendered by the Dagster UI)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
