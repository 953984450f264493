"""Breadth signals (docs/design.md "Breadth signals"): rules over one group's breadth rows that
say when the market turns. Pure: breadth rows in, signal rows out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SIGNALS: tuple[str, ...] = (
    "zweig_thrust",
    "mcclellan_cross_up",
    "mcclellan_cross_down",
    "summation_above",
    "summation_below",
    "sma200_breadth_cross_up",
    "sma200_breadth_cross_down",
    "new_lows_expansion",
    "hindenburg_omen",
)
SIGNAL_COLUMNS = ("date", "group_name", "signal", "detail")
HINDENBURG_DAYS = 50
"""The Hindenburg Omen's trend: the A/D line above its value 50 breadth days before."""


@dataclass(frozen=True)
class SignalSettings:
    """Which signals are on and their thresholds (the universe file's `signals:`)."""

    enabled: tuple[str, ...] = SIGNALS
    summation_levels: tuple[float, ...] = (-1000.0, 0.0, 1000.0)
    """`summation_above` / `summation_below` fire when the summation index crosses one."""
    new_lows_share: float = 0.10
    """`new_lows_expansion`: new 52-week lows above this share of the group's tickers."""
    sma200_level: float = 50.0
    hindenburg_share: float = 0.022
    """Hindenburg Omen: new highs and new lows both at least this share of the issues traded."""


def _previous(values: np.ndarray) -> np.ndarray:
    """The last defined value before each row (NaN before the first): a partial day, whose
    percentages are NULL, is stepped over."""
    return pd.Series(values, dtype=np.float64).ffill().shift(1).to_numpy()


def _crossings(
    previous: np.ndarray, now: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Where a series goes from at or below `level` to above it, and from at or above to below."""
    with np.errstate(invalid="ignore"):
        return (previous <= level) & (now > level), (previous >= level) & (now < level)


def breadth_signals(
    rows: pd.DataFrame,
    dates: Sequence | pd.DatetimeIndex,
    settings: SignalSettings | None = None,
) -> pd.DataFrame:
    """The signals of one group's breadth `rows` (sorted by date; rows before `dates` serve as
    the days before, `HINDENBURG_DAYS` of them for the Hindenburg Omen) on `dates`:
    `date, group_name, signal, detail` (the values behind it). None on a partial row."""
    settings = settings or SignalSettings()
    rows = rows.reset_index(drop=True)
    asked = pd.to_datetime(rows["date"]).isin(pd.DatetimeIndex(pd.to_datetime(dates))).to_numpy()
    whole = ~rows["partial"].astype(bool).to_numpy()

    def column(name: str) -> np.ndarray:
        return rows[name].to_numpy(dtype=np.float64)

    osc, summation, sma200 = (
        column("mcclellan_osc"),
        column("mcclellan_sum"),
        column("pct_above_sma_200"),
    )
    highs, lows, universe = column("new_highs_52w"), column("new_lows_52w"), column("universe")
    ad_line = column("ad_line")
    before = np.full(ad_line.size, np.nan)
    if ad_line.size > HINDENBURG_DAYS:
        before[HINDENBURG_DAYS:] = ad_line[:-HINDENBURG_DAYS]
    masks: dict[str, np.ndarray] = {"zweig_thrust": rows["zweig_thrust"].astype(bool).to_numpy()}
    last_osc, last_sum, last_sma200 = _previous(osc), _previous(summation), _previous(sma200)
    osc_up, osc_down = _crossings(last_osc, osc, 0.0)
    masks.update(mcclellan_cross_up=osc_up, mcclellan_cross_down=osc_down)
    sma_up, sma_down = _crossings(last_sma200, sma200, settings.sma200_level)
    masks.update(sma200_breadth_cross_up=sma_up, sma200_breadth_cross_down=sma_down)
    masks["summation_above"] = np.zeros(osc.size, dtype=bool)
    masks["summation_below"] = np.zeros(osc.size, dtype=bool)
    levels: dict[int, float] = {}
    for level in settings.summation_levels:
        up, down = _crossings(last_sum, summation, level)
        levels.update({int(i): level for i in np.flatnonzero(up | down)})
        masks["summation_above"] |= up
        masks["summation_below"] |= down
    with np.errstate(invalid="ignore"):
        masks["new_lows_expansion"] = lows > settings.new_lows_share * universe
        least = settings.hindenburg_share * universe
        masks["hindenburg_omen"] = (
            (highs >= least)
            & (lows >= least)
            & (highs <= 2 * lows)
            & (ad_line > before)
            & (osc < 0)
        )

    zweig = column("zweig_ema")

    def detail(signal: str, i: int) -> str:
        if signal == "zweig_thrust":
            return f"zweig_ema {zweig[i]:.3f}"
        if signal.startswith("mcclellan_cross"):
            return f"mcclellan_osc {last_osc[i]:.1f} -> {osc[i]:.1f}"
        if signal.startswith("summation"):
            crossed = f"{last_sum[i]:.0f} -> {summation[i]:.0f}"
            return f"mcclellan_sum {crossed} (level {levels[i]:g})"
        if signal.startswith("sma200"):
            return f"pct_above_sma_200 {last_sma200[i]:.1f} -> {sma200[i]:.1f}"
        if signal == "new_lows_expansion":
            return f"new_lows_52w {lows[i]:.0f} of {universe[i]:.0f}"
        return (
            f"new_highs_52w {highs[i]:.0f}, new_lows_52w {lows[i]:.0f} of {universe[i]:.0f}, "
            f"mcclellan_osc {osc[i]:.1f}"
        )

    dates_of, groups_of = rows["date"].to_numpy(), rows["group_name"].to_numpy()
    out = [
        (dates_of[i], groups_of[i], signal, detail(signal, int(i)))
        for signal in SIGNALS
        if signal in settings.enabled
        for i in np.flatnonzero(masks[signal] & whole & asked)
    ]
    frame = pd.DataFrame(out, columns=list(SIGNAL_COLUMNS))
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.sort_values(["date", "signal"], ignore_index=True)


def signal_message(day: pd.Timestamp, group: str, signals: pd.DataFrame) -> tuple[str, str]:
    """One message for a group's signals on a day: a title naming them, a line each with the
    values behind it."""
    names = ", ".join(signals["signal"])
    body = "\n".join(f"{row.signal}: {row.detail}" for row in signals.itertuples())
    return f"breadth {group} {pd.Timestamp(day):%Y-%m-%d}: {names}", body
