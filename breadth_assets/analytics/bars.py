"""What makes a bar possible, as one rule for every source that reads bars and every check.

Prices are positive, the high is at least the open and the close, the low at most both, and the
volume is not negative. A missing price is not positive; any other comparison with a missing
value holds, so a missing value is reported once, as missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

PRICES = ("open", "high", "low", "close")


class Rule(NamedTuple):
    """`field` is positive, at least `other`, at most `other`, or non-negative."""

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
        else:
            broken[rule] = value < 0
    return broken


def impossible_bars(bars: Mapping[str, ArrayLike]) -> np.ndarray:
    """A mask of the bars that break any rule."""
    return np.logical_or.reduce(list(ohlc_breaks(bars).values()))
