"""What makes a bar possible, as one rule for every source that reads bars and every check.

Prices are positive and at most `MAX_PRICE`, the high is at least the open and the close, the low
at most both, and the volume is not negative and at most `MAX_VOLUME`. A missing price is not
positive; any other comparison with a missing value holds, so a missing value is reported once,
as missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

PRICES = ("open", "high", "low", "close")
MAX_PRICE = 1e9
"""No exchange quotes a share above a billion (the dearest, Berkshire Hathaway A, is below 1e6):
a larger price is a unit or parsing mistake, and 1e308 would overflow every sum over it."""
MAX_VOLUME = 1e15
"""Shares traded in one bar: far above any market's daily volume."""


class Rule(NamedTuple):
    """`field` is positive, at least `other`, at most `other`, non-negative, or at most its
    bound (`MAX_PRICE`, `MAX_VOLUME`)."""

    field: str
    relation: str
    other: str | None = None


OHLC_RULES = (
    *(Rule(name, "positive") for name in PRICES),
    Rule("high", "at least", "open"),
    Rule("high", "at least", "close"),
    Rule("low", "at most", "open"),
    Rule("low", "at most", "close"),
    Rule("volume", "non-negative"),
    *(Rule(name, "bounded") for name in PRICES),
    Rule("volume", "bounded"),
)


def ohlc_breaks(bars: Mapping[str, ArrayLike]) -> dict[Rule, np.ndarray]:
    """Per rule of `OHLC_RULES`, a mask of the bars that break it (`bars` maps each of open,
    high, low, close and volume to one value per bar)."""
    values = {name: np.asarray(bars[name], dtype=np.float64) for name in (*PRICES, "volume")}
    broken = {}
    for rule in OHLC_RULES:
        value = values[rule.field]
        if rule.relation == "positive":
            broken[rule] = ~(value > 0)
        elif rule.relation == "at least":
            broken[rule] = value < values[rule.other]
        elif rule.relation == "at most":
            broken[rule] = value > values[rule.other]
        elif rule.relation == "bounded":
            broken[rule] = value > bound(rule.field)
        else:
            broken[rule] = value < 0
    return broken


def bound(field: str) -> float:
    """The largest plausible value of a price or of the volume."""
    return MAX_VOLUME if field == "volume" else MAX_PRICE


def impossible_bars(bars: Mapping[str, ArrayLike]) -> np.ndarray:
    """A mask of the bars that break any rule."""
    return np.logical_or.reduce(list(ohlc_breaks(bars).values()))
