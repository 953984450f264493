"""The universe file's `signals:` block: which breadth signals are on and their thresholds
(docs/universe.md "Signals"), read into `breadth_assets.analytics.signals.SignalSettings`.

```yaml
signals:
  enabled: [zweig_thrust, mcclellan_cross_up]   # or all (the default), or none
  summation_levels: [-500, 0, 500]              # default -1000, 0, 1000
  new_lows_share: 10%                           # 10%, 0.1 or 10; default 10%
  sma200_level: 50                              # a percentage of tickers, 0..100; default 50
  hindenburg_share: 2.2%                        # default 2.2%
```

Every key may be left out; a key left out, or the whole block, keeps the default.
"""

from __future__ import annotations

import contextlib
import math
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainValidator

from breadth_assets.analytics.signals import SIGNALS, SignalSettings
from breadth_assets.fields import Strict, is_null, shown, text, typed
from breadth_assets.universe import fields

DEFAULTS = SignalSettings()
ALL, NONE = "all", "none"
"""`enabled:` as one word: every signal, or none."""


def _enabled(value: Any) -> list:
    """`enabled:` as a list of names: `all`, `none`, one name or a list of them."""
    if is_null(value):
        raise ValueError(f"is empty; write {ALL}, {NONE} or a list of signals")
    if isinstance(value, list):
        return value
    word = text(value).lower()
    return list(SIGNALS) if word == ALL else [] if word == NONE else [value]


def _signal(value: Any) -> str:
    name = text(value).lower()
    if name not in SIGNALS:
        raise ValueError(
            f"unknown signal {shown(value)!r}; valid signals are {', '.join(SIGNALS)} "
            f"(or {ALL} or {NONE} instead of the list)"
        )
    return name


def _in_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names once each, in the order of `SIGNALS`."""
    return tuple(name for name in SIGNALS if name in names)


def _levels(value: Any) -> list:
    if is_null(value):
        raise ValueError("is empty; write a list of levels such as [-1000, 0, 1000], or []")
    if not isinstance(value, list):
        raise ValueError("expected a list of levels such as [-1000, 0, 1000]")
    return value


def _level(value: Any) -> float:
    """A summation index level: a finite number (1e3, which YAML 1.1 reads as text, too)."""
    number = typed(value)
    if isinstance(number, str):
        with contextlib.suppress(ValueError):
            number = float(number)
    level = float("nan")
    if isinstance(number, int | float) and not isinstance(number, bool):
        with contextlib.suppress(OverflowError):
            level = float(number)
    if not math.isfinite(level):
        raise ValueError(
            f"{shown(value)!r} is not a number (a summation index level such as -1000, 0 or 1000)"
        )
    return level


def _sorted_levels(levels: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(sorted(set(levels)))


def _share(percent: float):
    def check(value: Any) -> float:
        return fields.share(value, percent)

    return check


def _percentage(value: Any) -> float:
    """A percentage of tickers from 0 to 100, written 50 or 50%."""
    written = text(value)
    number = typed(value)
    try:
        if written.endswith("%"):
            level = float(written[:-1])
        elif isinstance(number, bool):
            level = float("nan")
        else:
            level = float(number)
    except (TypeError, ValueError, OverflowError):
        level = float("nan")
    if not 0 <= level <= 100:
        raise ValueError(f"{written!r} is not a percentage of tickers such as 50 or 50% (0 to 100)")
    return level


class SignalsBlock(Strict):
    """The `signals:` block as written; `settings()` is what the signals are computed with."""

    enabled: Annotated[
        tuple[Annotated[str, PlainValidator(_signal)], ...], BeforeValidator(_enabled)
    ] = DEFAULTS.enabled
    summation_levels: Annotated[
        tuple[Annotated[float, PlainValidator(_level)], ...], BeforeValidator(_levels)
    ] = DEFAULTS.summation_levels
    new_lows_share: Annotated[float, PlainValidator(_share(10))] = DEFAULTS.new_lows_share
    sma200_level: Annotated[float, PlainValidator(_percentage)] = DEFAULTS.sma200_level
    hindenburg_share: Annotated[float, PlainValidator(_share(2.2))] = DEFAULTS.hindenburg_share

    def settings(self) -> SignalSettings:
        """The settings: the enabled signals once each in the order of `SIGNALS`, the summation
        levels sorted without repeats."""
        return SignalSettings(
            enabled=_in_order(self.enabled),
            summation_levels=_sorted_levels(self.summation_levels),
            new_lows_share=self.new_lows_share,
            sma200_level=self.sma200_level,
            hindenburg_share=self.hindenburg_share,
        )


def signals_block(value: Any) -> Any:
    """`signals:`: a mapping of the keys of `SignalsBlock`; nothing is every default."""
    return {} if is_null(value) else value
