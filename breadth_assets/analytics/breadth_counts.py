"""What breadth counts per group and day (docs/design.md "Breadth columns"), vectorised with
`np.bincount` over date positions, per group over its members' rows: the part a store may do
in its own query instead (stores/breadth_sql.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from breadth_assets.analytics.indicators import day_numbers, ticker_date_order
from breadth_assets.schema import ALL_GROUP

EMA_PERIODS_ABOVE: tuple[int, ...] = (20, 50, 200)
SMA_PERIODS_ABOVE: tuple[int, ...] = (20, 40, 50, 200)
ABOVE_MARGIN = 1e-9
"""A close is above (below) its average when it passes it by more than this share of it: a tie
within TA-Lib's last bits (a run of equal closes) is neither, on raw and rescaled bars alike."""
MOVER_UP, MOVER_DOWN = 1.04, 0.96
"""Stockbee's daily movers: close / previous close at least 1.04, at most 0.96."""
QUARTER_UP, QUARTER_DOWN = 1.25, 0.75
"""Stockbee's quarterly movers: close / the close 65 bars before at least 1.25, at most 0.75."""
MACD_STAGES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
RSI_OVERBOUGHT = 70.0
RSI_OVERSOLD = 30.0
LISTED_DAYS = 14
"""A ticker is listed on a day when it has a bar on one of the 14 calendar days ending that day:
without a bar that day it is missing; after 14 days without any it no longer counts."""


def above(close: np.ndarray, average: np.ndarray) -> np.ndarray:
    """Where close is above its average (`ABOVE_MARGIN`); False where either is NaN."""
    with np.errstate(invalid="ignore"):
        return close - average > np.abs(average) * ABOVE_MARGIN


def below(close: np.ndarray, average: np.ndarray) -> np.ndarray:
    """Where close is below its average (`ABOVE_MARGIN`); False where either is NaN."""
    with np.errstate(invalid="ignore"):
        return average - close > np.abs(average) * ABOVE_MARGIN


COUNT_COLUMNS: tuple[str, ...] = (
    "universe",
    "listed",
    "advancers",
    "decliners",
    "unchanged",
    *(f"above_ema_{period}" for period in EMA_PERIODS_ABOVE),
    *(f"with_ema_{period}" for period in EMA_PERIODS_ABOVE),
    *(f"above_sma_{period}" for period in SMA_PERIODS_ABOVE),
    *(f"with_sma_{period}" for period in SMA_PERIODS_ABOVE),
    "up_4pct",
    "down_4pct",
    "up_25pct_quarter",
    "down_25pct_quarter",
    "new_highs_52w",
    "new_lows_52w",
    "rsi_overbought",
    "rsi_oversold",
    "staged",
    *(f"stage_{k}" for k in MACD_STAGES),
)
"""What breadth counts per group and day, before the ratios and the cumulative columns; a store
may count these in its own query (docs/design.md "Breadth columns")."""
VOLUME_COLUMNS: tuple[str, ...] = ("up_volume", "down_volume")


class TickerDays:
    """The ticker-day rows of a count, sorted by ticker and date, placed on the output dates:
    what the counts (`count_breadth`) and who made them (`breadth_events.breadth_members`) are
    computed from, with each row's previous bar."""

    def __init__(self, rows: pd.DataFrame, dates: Sequence | pd.DatetimeIndex) -> None:
        missing = [c for c in ("ticker", "date", "close") if c not in rows.columns]
        if missing:
            raise ValueError(f"breadth rows lack columns {missing}")
        self.dates = pd.DatetimeIndex(pd.to_datetime(dates))
        out_days = day_numbers(self.dates)
        if np.any(np.diff(out_days) <= 0):
            raise ValueError("dates must be strictly ascending")
        self.n = n = out_days.size
        row_days = day_numbers(rows["date"])
        order, starts = ticker_date_order(rows["ticker"], row_days)
        self.rows, self.order = rows, order
        if order is not None:
            row_days = row_days[order]
        values = rows["ticker"].to_numpy()
        codes, uniques = pd.factorize(values if order is None else values[order])
        self.codes, self.tickers = codes, pd.Index(uniques)
        self.has_prev = np.ones(row_days.size, dtype=bool)
        self.has_prev[starts] = False
        self.starts = starts
        position = np.searchsorted(out_days, row_days)
        clipped = np.minimum(position, max(n - 1, 0))
        off_dates = (position >= n) | (out_days[clipped] != row_days) if n else position >= 0
        position[off_dates] = n
        self.position = position
        """Each row's output position; `n` for a row off the dates (a previous bar)."""
        never = np.iinfo(np.int64).max // 2
        next_day = np.full(row_days.size, never)
        next_day[:-1] = row_days[1:]
        next_day[np.asarray(starts[1:], dtype=np.int64) - 1] = never
        self.listed_from = np.searchsorted(out_days, row_days)
        self.listed_to = np.searchsorted(out_days, np.minimum(next_day, row_days + LISTED_DAYS))

    def column(self, name: str) -> np.ndarray:
        """A column in the rows' order (NaN where the rows lack it)."""
        if name not in self.rows.columns:
            return np.full(self.position.size, np.nan)
        values = self.rows[name].to_numpy(dtype=np.float64)
        return values if self.order is None else values[self.order]

    def previous(self, values: np.ndarray) -> np.ndarray:
        """Each row's previous bar's value (NaN on a ticker's first row)."""
        out = np.full_like(values, np.nan)
        out[1:] = values[:-1]
        out[~self.has_prev] = np.nan
        return out

    def moves(self) -> dict[str, np.ndarray]:
        """What the counts and who moved share, by event name: a new 52-week high or low, a
        close 4 % or more above or below the previous bar's (False on a first bar)."""
        close = self.column("close")
        with np.errstate(invalid="ignore", divide="ignore"):
            daily = close / self.previous(close)
            return {
                "new_high_52w": self.column("high") > self.column("high_52w"),
                "new_low_52w": self.column("low") < self.column("low_52w"),
                "up_4pct": daily >= MOVER_UP,
                "down_4pct": daily <= MOVER_DOWN,
            }

    def membership(
        self, members: Mapping[str, Sequence[str]] | None
    ) -> tuple[list[str], np.ndarray]:
        """The groups (`ALL_GROUP` first: every ticker of the rows, unless given) and a
        groups x tickers matrix, 1.0 where a ticker is a member."""
        groups = {ALL_GROUP: list(self.tickers)}
        groups.update({name: list(m) for name, m in (members or {}).items()})
        matrix = np.zeros((len(groups), len(self.tickers)))
        for g, tickers in enumerate(groups.values()):
            at = self.tickers.get_indexer(pd.Index(tickers))
            matrix[g, at[at >= 0]] = 1.0
        return list(groups), matrix

    def per_day(self, values: np.ndarray) -> np.ndarray:
        """Output positions x tickers: each row's value at its day and ticker (0 elsewhere)."""
        width = len(self.tickers)
        flat = np.bincount(
            self.position * width + self.codes,
            weights=np.asarray(values, dtype=np.float64),
            minlength=(self.n + 1) * width,
        )
        return flat.reshape(self.n + 1, width)[: self.n]

    def listed(self) -> np.ndarray:
        """Output positions x tickers: 1 where the ticker is listed (`LISTED_DAYS`)."""
        width = len(self.tickers)
        size = (self.n + 1) * width
        steps = np.bincount(self.listed_from * width + self.codes, minlength=size)
        steps = steps - np.bincount(self.listed_to * width + self.codes, minlength=size)
        return np.cumsum(steps.reshape(self.n + 1, width), axis=0)[: self.n]


def count_breadth(
    rows: pd.DataFrame,
    dates: Sequence | pd.DatetimeIndex,
    members: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """The daily counts (`COUNT_COLUMNS`, `VOLUME_COLUMNS`) per group and date in `dates` from
    the ticker-day `rows`; rows before `dates[0]` (or on days not in `dates`) only serve as a
    ticker's previous bar (and make it listed, `LISTED_DAYS`).

    `members` maps group names to their tickers; `ALL_GROUP` (every ticker of `rows`, unless
    given) always comes first. One row per group and date, groups in that order. Each count is
    a day x ticker matrix times the groups' membership matrix.
    """
    return count_days(TickerDays(rows, dates), members)


def count_days(
    days: TickerDays, members: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """`count_breadth` over rows already placed on their dates."""
    groups, matrix = days.membership(members)
    close = days.column("close")
    prev_close = days.previous(close)
    has_prev = days.has_prev
    moves = days.moves()
    with np.errstate(invalid="ignore", divide="ignore"):
        rising = has_prev & (close > prev_close)
        falling = has_prev & (close < prev_close)
        quarter = close / days.column("close_65")
        rsi = days.column("rsi_14")
        stage = days.column("macd_stage")
        flags: dict[str, np.ndarray] = {
            "universe": np.ones(close.size, dtype=bool),
            "advancers": rising,
            "decliners": falling,
            "unchanged": has_prev & (close == prev_close),
            "new_highs_52w": moves["new_high_52w"],
            "new_lows_52w": moves["new_low_52w"],
            "up_4pct": moves["up_4pct"],
            "down_4pct": moves["down_4pct"],
            "up_25pct_quarter": quarter >= QUARTER_UP,
            "down_25pct_quarter": quarter <= QUARTER_DOWN,
            "rsi_overbought": rsi > RSI_OVERBOUGHT,
            "rsi_oversold": rsi < RSI_OVERSOLD,
            "staged": ~np.isnan(stage),
            **{f"stage_{k}": stage == k for k in MACD_STAGES},
        }
        for period in EMA_PERIODS_ABOVE:
            ema = days.column(f"ema_{period}")
            flags[f"above_ema_{period}"] = above(close, ema)
            flags[f"with_ema_{period}"] = ~np.isnan(ema)
        for period in SMA_PERIODS_ABOVE:
            sma = days.column(f"sma_{period}")
            flags[f"above_sma_{period}"] = above(close, sma)
            flags[f"with_sma_{period}"] = ~np.isnan(sma)
        volume = np.nan_to_num(days.column("volume"), nan=0.0)
    totals = {name: days.per_day(mask) @ matrix.T for name, mask in flags.items()}
    totals["up_volume"] = days.per_day(np.where(rising, volume, 0.0)) @ matrix.T
    totals["down_volume"] = days.per_day(np.where(falling, volume, 0.0)) @ matrix.T
    totals["listed"] = days.listed() @ matrix.T
    n = days.n
    frame = {
        "date": np.tile(days.dates.to_numpy(), len(groups)),
        "group_name": np.repeat(np.asarray(groups, dtype=object), n),
    }
    for name in (*COUNT_COLUMNS, *VOLUME_COLUMNS):
        by_group = totals[name].T.reshape(-1)
        frame[name] = by_group if name in VOLUME_COLUMNS else np.rint(by_group).astype(np.int64)
    return pd.DataFrame(frame, index=pd.RangeIndex(n * len(groups)))
