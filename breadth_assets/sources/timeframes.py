"""Candle sizes, whatever the source: a unit and an interval, such as minutes/5 or days/1.

Which sizes a vendor serves, and how far back, is the vendor's rule
(`breadth_assets.sources.upstox`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS = ("minutes", "hours", "days", "weeks", "months")
INTRADAY_UNITS = ("minutes", "hours")
_TIMEFRAME_RE = re.compile(r"^\s*([a-z]+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True, eq=False)
class Timeframe:
    """A candle size, `unit` and `interval`; equal to any timeframe of the same size."""

    unit: str
    interval: int

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; units are {', '.join(UNITS)}")
        if self.interval < 1:
            raise ValueError(f"{self.unit} interval {self.interval} is not at least 1")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timeframe):
            return NotImplemented
        return (self.unit, self.interval) == (other.unit, other.interval)

    def __hash__(self) -> int:
        return hash((self.unit, self.interval))

    def __str__(self) -> str:
        return f"{self.unit}/{self.interval}"

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """`minutes/5`, `hours/1`, `days/1`: the unit, a slash and the interval."""
        match = _TIMEFRAME_RE.match(str(text).lower())
        if not match or match.group(1) not in UNITS:
            raise ValueError(f"{text!r} is not a timeframe such as minutes/5 or hours/1")
        return cls(match.group(1), int(match.group(2)))

    @property
    def intraday(self) -> bool:
        return self.unit in INTRADAY_UNITS
