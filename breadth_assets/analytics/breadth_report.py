"""What the `breadth` materialization shows in the Dagster UI: a table of the last days and a chart.

Pure functions over the breadth DataFrame (the columns of `schema.BREADTH_COLUMNS`, `date` a
datetime column): markdown strings and PNG bytes, no Dagster, no store.
"""

from __future__ import annotations

import base64
import io
import math

import pandas as pd

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
CHART_HEIGHT_PX = 700
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


def chart_png(breadth: pd.DataFrame, days: int = CHART_DAYS) -> bytes:
    """Four stacked panels over the last `days` rows, as a PNG of 900x700 pixels."""
    # Imported here, and without pyplot: matplotlib costs a process half a second, and only
    # the breadth run draws.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image  # Pillow comes with matplotlib

    data = breadth.sort_values("date").tail(days)
    dates = pd.to_datetime(data["date"])
    figure = Figure(
        figsize=(CHART_WIDTH_PX / CHART_DPI, CHART_HEIGHT_PX / CHART_DPI), dpi=CHART_DPI
    )
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots(4, 1, sharex=True)
    ad, osc, ema, highs = axes
    ad.plot(dates, data["ad_line"], color="#1f4e9c", linewidth=1.4)
    ad.set_title("Advance-decline line", loc="left", fontsize=11)

    values = data["mcclellan_osc"].astype(float)
    colors = ["#2e8b57" if v >= 0 else "#c0392b" for v in values.fillna(0)]
    osc.vlines(dates, 0, values.fillna(0), colors=colors, linewidth=2.0)
    osc.axhline(0, color="#555555", linewidth=0.8)
    osc.set_title("McClellan oscillator", loc="left", fontsize=11)

    ema.plot(dates, data["pct_above_ema_50"], color="#e67e22", label="EMA 50", linewidth=1.3)
    ema.plot(dates, data["pct_above_ema_200"], color="#6c3483", label="EMA 200", linewidth=1.3)
    ema.set_ylim(0, 100)
    ema.axhline(50, color="#999999", linewidth=0.6, linestyle="--")
    ema.set_title("% of tickers above EMA 50 / 200", loc="left", fontsize=11)
    ema.legend(loc="lower right", bbox_to_anchor=(1, 1), fontsize=9, ncols=2, frameon=False)

    highs.plot(dates, data["new_highs_52w"], color="#2e8b57", label="new highs", linewidth=1.2)
    highs.plot(dates, data["new_lows_52w"], color="#c0392b", label="new lows", linewidth=1.2)
    highs.set_title("New 52-week highs vs lows", loc="left", fontsize=11)
    highs.legend(loc="lower right", bbox_to_anchor=(1, 1), fontsize=9, ncols=2, frameon=False)

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
    highs.tick_params(axis="x", labelrotation=30)
    for label in highs.get_xticklabels():
        label.set_horizontalalignment("right")
    figure.subplots_adjust(left=0.075, right=0.985, top=0.91, bottom=0.1, hspace=0.42)
    canvas.draw()
    rgba = Image.frombuffer("RGBA", canvas.get_width_height(), bytes(canvas.buffer_rgba()))
    # A palette of 64 colours keeps the PNG small enough to embed in every materialization.
    buffer = io.BytesIO()
    rgba.convert("RGB").quantize(colors=64).save(buffer, format="png", optimize=True)
    return buffer.getvalue()


def chart_markdown(png: bytes, alt: str = "breadth, last year") -> str:
    """The PNG as a markdown image with a base64 data URI (rendered by the Dagster UI)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
