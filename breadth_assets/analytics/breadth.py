"""Market breadth per trading day and group (docs/design.md "Breadth"), as plain functions over
DataFrames.

Daily counts are vectorised with `np.bincount` over date positions, per group over its members'
rows; only the recursions (McClellan, Zweig) and the 10-day windows (High-Low Index, Zweig
thrust) walk the days one by one, because each day depends on the ones before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from breadth_assets.analytics.breadth_counts import (
    EMA_PERIODS_ABOVE,
    MACD_STAGES,
    SMA_PERIODS_ABOVE,
    count_breadth,
)
from breadth_assets.schema import ALL_GROUP, BREADTH_COLUMNS, BREADTH_INPUT_COLUMNS

MCCLELLAN_FAST_ALPHA = 0.10
MCCLELLAN_SLOW_ALPHA = 0.05
ZWEIG_ALPHA = 2.0 / 11.0
HIGH_LOW_DAYS = 10
"""The High-Low Index is the average record_high_pct of a group's last 10 breadth days."""
THRUST_DAYS = 10
THRUST_LOW, THRUST_HIGH = 0.40, 0.615
"""Zweig's breadth thrust: zweig_ema rises above 0.615 having been below 0.40 within 10 days."""
DEFAULT_MIN_COVERAGE = 0.8
"""A group-day whose bars cover fewer than this share of its listed tickers is partial."""
_COUNT_TYPE = "BIGINT"


def _ratio(numerator: np.ndarray, denominator: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """scale·numerator/denominator, NaN (NULL) where the denominator is 0."""
    out = np.full(numerator.shape, np.nan)
    np.divide(scale * numerator, denominator, out=out, where=denominator != 0)
    return out


@dataclass
class SmoothingState:
    """Where the McClellan and Zweig recursions stand after a day: enough to go on from it."""

    seeded: bool = False
    """Whether a day with A+D > 0 has come; until then the smoothed columns are NULL."""
    ema_19: float = 0.0
    ema_39: float = 0.0
    summation: float = 0.0
    zweig: float = 0.0


@dataclass
class BreadthState:
    """What a group's next day goes on from: the cumulative columns at the end of a day and the
    days before it that the 10-day windows still see."""

    ad_line: int = 0
    net_new_highs_line: int = 0
    smoothing: SmoothingState = field(default_factory=SmoothingState)
    record_high_pcts: list[float] = field(default_factory=list)
    """record_high_pct of the last days (NaN where NULL), oldest first: the High-Low window."""
    zweig_emas: list[float] = field(default_factory=list)
    """zweig_ema of the last days (NaN where NULL), oldest first: the thrust's window."""


def _smoothed(
    advancers: np.ndarray,
    decliners: np.ndarray,
    counted: np.ndarray,
    state: SmoothingState,
) -> dict[str, np.ndarray]:
    """McClellan oscillator, summation and EMAs, and the Zweig EMA; NULL until the first day
    with A+D > 0. A day not `counted` (partial) leaves the recursions where they are: its
    oscillator is NULL and the state columns repeat the day before.

    Goes on from `state` (the day before the first one here) and leaves it at the last day.
    """
    n = advancers.size
    out = {
        name: np.full(n, np.nan)
        for name in (
            "mcclellan_osc",
            "mcclellan_sum",
            "zweig_ema",
            "mcclellan_ema_19",
            "mcclellan_ema_39",
        )
    }
    days = zip(advancers.tolist(), decliners.tolist(), counted.tolist(), strict=True)
    for i, (a, d, whole) in enumerate(days):
        if whole and a + d > 0:
            x = 1000.0 * (a - d) / (a + d)
            share = a / (a + d)
            if state.seeded:
                state.ema_19 += MCCLELLAN_FAST_ALPHA * (x - state.ema_19)
                state.ema_39 += MCCLELLAN_SLOW_ALPHA * (x - state.ema_39)
                state.zweig += ZWEIG_ALPHA * (share - state.zweig)
            else:
                state.ema_19 = state.ema_39 = x
                state.zweig = share
                state.seeded = True
        if state.seeded:
            if whole:
                state.summation += state.ema_19 - state.ema_39
                out["mcclellan_osc"][i] = state.ema_19 - state.ema_39
            out["mcclellan_sum"][i] = state.summation
            out["zweig_ema"][i] = state.zweig
            out["mcclellan_ema_19"][i] = state.ema_19
            out["mcclellan_ema_39"][i] = state.ema_39
    return out


def _windows(
    record_high_pct: np.ndarray, zweig: np.ndarray, state: BreadthState
) -> tuple[np.ndarray, np.ndarray]:
    """high_low_index (the mean of the defined record_high_pct of the last `HIGH_LOW_DAYS` days,
    NULL without any) and zweig_thrust (zweig_ema above `THRUST_HIGH` today, not the day before,
    and below `THRUST_LOW` on one of the last `THRUST_DAYS` days), going on from `state`."""
    highs = np.concatenate([np.asarray(state.record_high_pcts, dtype=np.float64), record_high_pct])
    zweigs = np.concatenate([np.asarray(state.zweig_emas, dtype=np.float64), zweig])
    lead_h, lead_z = len(state.record_high_pcts), len(state.zweig_emas)
    n = record_high_pct.size
    index = np.full(n, np.nan)
    thrust = np.zeros(n, dtype=bool)
    for i in range(n):
        window = highs[max(0, lead_h + i - HIGH_LOW_DAYS + 1) : lead_h + i + 1]
        defined = window[~np.isnan(window)]
        if defined.size:
            index[i] = defined.mean()
        at = lead_z + i
        today = zweigs[at]
        yesterday = zweigs[at - 1] if at else np.nan
        if today > THRUST_HIGH and not yesterday > THRUST_HIGH:
            recent = zweigs[max(0, at - THRUST_DAYS + 1) : at + 1]
            thrust[i] = bool(np.any(recent < THRUST_LOW))
    state.record_high_pcts = highs[-(HIGH_LOW_DAYS - 1) :].tolist()
    state.zweig_emas = zweigs[-(THRUST_DAYS - 1) :].tolist()
    return index, thrust


def state_after(rows: pd.DataFrame | pd.Series) -> BreadthState | None:
    """The state a group's stored rows leave (its last `HIGH_LOW_DAYS` rows up to a day, oldest
    first; or that day's row alone when no earlier one is stored), or None when they cannot say
    (they predate the state columns): the next day's row is computed from it exactly as in one
    computation."""
    if isinstance(rows, pd.Series):
        rows = rows.to_frame().T
    if rows.empty:
        return None
    row = rows.iloc[-1]
    seeded = not pd.isna(row["mcclellan_ema_19"])
    partial = bool(row.get("partial", False)) if not pd.isna(row.get("partial")) else False
    if pd.isna(row["mcclellan_ema_39"]) == seeded or pd.isna(row["mcclellan_sum"]) == seeded:
        return None
    if not partial and pd.isna(row["mcclellan_osc"]) == seeded:
        return None
    if pd.isna(row.get("net_new_highs_line")):
        return None
    smoothing = SmoothingState()
    if seeded:
        smoothing = SmoothingState(
            seeded=True,
            ema_19=float(row["mcclellan_ema_19"]),
            ema_39=float(row["mcclellan_ema_39"]),
            summation=float(row["mcclellan_sum"]),
            zweig=float(row["zweig_ema"]),
        )

    def last(column: str, days: int) -> list[float]:
        values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64)
        return values[-(days - 1) :].tolist()

    return BreadthState(
        ad_line=int(row["ad_line"]),
        net_new_highs_line=int(row["net_new_highs_line"]),
        smoothing=smoothing,
        record_high_pcts=last("record_high_pct", HIGH_LOW_DAYS),
        zweig_emas=last("zweig_ema", THRUST_DAYS),
    )


def finish_breadth(
    counts: pd.DataFrame,
    states: dict[str, BreadthState] | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    groups: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Breadth rows from the daily counts of `count_breadth`: ratios, percentages, the
    cumulative columns and the 10-day windows, which go on from `states` (per group, the day
    before the first count; a group not in it starts there; the dict is left at the last day).

    A day on which no ticker of `ALL_GROUP` has a bar (a closure the calendar does not know, or a
    day after the data ends) is not a breadth day: no group gets a row and the cumulative
    columns do not move. On a breadth day a group gets a row when it has a listed ticker; the row
    is `partial` when its bars cover fewer than `min_coverage` of them, and then its ratios and
    percentages are NULL and the recursions skip it. `groups` limits the rows to these groups.
    """
    states = states if states is not None else {}
    everyone = counts[counts["group_name"] == ALL_GROUP]
    breadth_days = pd.DatetimeIndex(everyone.loc[everyone["universe"] > 0, "date"])
    parts = []
    for name, group in counts.groupby("group_name", sort=False):
        if groups is not None and name not in groups:
            continue
        group = group[group["date"].isin(breadth_days) & (group["listed"] > 0)]
        state = states.setdefault(str(name), BreadthState())
        parts.append(_finish_group(group.reset_index(drop=True), state, min_coverage))
    if not parts:
        return _finish_group(counts.iloc[:0].reset_index(drop=True), BreadthState(), min_coverage)
    return pd.concat(parts, ignore_index=True)


def _finish_group(counts: pd.DataFrame, state: BreadthState, min_coverage: float) -> pd.DataFrame:
    """One group's rows (`finish_breadth`) from its counts on its breadth days."""
    n = len(counts)

    def count(name: str) -> np.ndarray:
        return counts[name].to_numpy(dtype=np.int64)

    universe, listed = count("universe"), count("listed")
    partial = universe < min_coverage * listed
    whole = ~partial
    advancers, decliners = count("advancers"), count("decliners")
    up_volume = counts["up_volume"].to_numpy(dtype=np.float64)
    down_volume = counts["down_volume"].to_numpy(dtype=np.float64)
    result: dict[str, np.ndarray] = {
        name: count(name)
        for name in (
            *("universe", "listed", "advancers", "decliners", "unchanged"),
            *("new_highs_52w", "new_lows_52w", "rsi_overbought", "rsi_oversold"),
            *("up_4pct", "down_4pct", "up_25pct_quarter", "down_25pct_quarter"),
        )
    }
    result["partial"] = partial
    result.update(up_volume=up_volume, down_volume=down_volume)
    result["net_advances"] = advancers - decliners
    result["ad_line"] = state.ad_line + np.cumsum(result["net_advances"])
    if n:
        state.ad_line = int(result["ad_line"][-1])
    highs, lows = count("new_highs_52w"), count("new_lows_52w")
    result["net_new_highs"] = highs - lows
    result["net_new_highs_line"] = state.net_new_highs_line + np.cumsum(result["net_new_highs"])
    if n:
        state.net_new_highs_line = int(result["net_new_highs_line"][-1])

    def share(numerator: np.ndarray, denominator: np.ndarray, scale: float = 100.0) -> np.ndarray:
        values = _ratio(numerator.astype(np.float64), denominator, scale)
        values[partial] = np.nan
        return values

    result["ad_ratio"] = share(advancers, decliners, 1.0)
    result["record_high_pct"] = share(highs, highs + lows)
    result["up_volume_pct"] = share(up_volume, up_volume + down_volume)
    for period in SMA_PERIODS_ABOVE:
        result[f"pct_above_sma_{period}"] = share(
            count(f"above_sma_{period}"), count(f"with_sma_{period}")
        )
    for period in EMA_PERIODS_ABOVE:
        result[f"pct_above_ema_{period}"] = share(
            count(f"above_ema_{period}"), count(f"with_ema_{period}")
        )
    for k in MACD_STAGES:
        result[f"macd_stage_{k}"] = share(count(f"stage_{k}"), count("staged"))
    result.update(_smoothed(advancers, decliners, whole, state.smoothing))
    result["high_low_index"], result["zweig_thrust"] = _windows(
        result["record_high_pct"], result["zweig_ema"], state
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        defined = whole & (advancers > 0) & (decliners > 0) & (up_volume > 0) & (down_volume > 0)
        trin = np.full(n, np.nan)
        trin[defined] = (advancers[defined] / decliners[defined]) / (
            up_volume[defined] / down_volume[defined]
        )
    result["trin"] = trin
    result["high_low_index"][partial] = np.nan

    columns: dict[str, object] = {
        "date": pd.DatetimeIndex(counts["date"]),
        "group_name": counts["group_name"].to_numpy(),
    }
    for name, sql_type in BREADTH_COLUMNS.items():
        if name not in columns:
            dtype = {_COUNT_TYPE: np.int64, "BOOLEAN": bool}.get(sql_type, np.float64)
            columns[name] = np.asarray(result[name], dtype=dtype)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
    frame["group_name"] = frame["group_name"].astype(str)
    return frame


def compute_breadth(
    rows: pd.DataFrame,
    dates: Sequence | pd.DatetimeIndex,
    states: dict[str, BreadthState] | None = None,
    members: Mapping[str, Sequence[str]] | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> pd.DataFrame:
    """Breadth rows per group (`ALL_GROUP` first, then `members`) and date in `dates` on which a
    ticker has a bar, from the ticker-day `rows`.

    `rows` hold each ticker's history up to the last date; rows before `dates[0]` (or on days not
    in `dates`) only serve as a ticker's previous bar. The cumulative columns go on from `states`
    (per group, the day before `dates[0]`; none: they start at `dates[0]`), left at the last date.
    """
    missing = [c for c in BREADTH_INPUT_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"breadth rows lack columns {missing}")
    return finish_breadth(count_breadth(rows, dates, members), states, min_coverage)


def compute_breadth_in_chunks(
    count_days: Callable[[pd.DatetimeIndex], pd.DataFrame],
    dates: Sequence | pd.DatetimeIndex,
    chunk_days: int,
    states: dict[str, BreadthState] | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    groups: Sequence[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """Breadth rows over `dates`, counted `chunk_days` dates at a time.

    `count_days(chunk)` gives the daily counts of the chunk (`count_breadth` over its ticker-days
    with each ticker's last bar before it, or a store's own query); `states` is where each
    group stands on the day before `dates[0]` (a group without one starts at `dates[0]`). The
    rows equal one `compute_breadth` over all the rows while memory holds one chunk at a time.
    Yields the rows chunk by chunk; `groups` limits them to these groups.
    """
    out_dates = pd.DatetimeIndex(pd.to_datetime(dates))
    if chunk_days < 1:
        raise ValueError("chunk_days must be at least 1")
    states = states if states is not None else {}
    for first in range(0, out_dates.size, chunk_days):
        counts = count_days(out_dates[first : first + chunk_days])
        yield finish_breadth(counts, states, min_coverage, groups)
