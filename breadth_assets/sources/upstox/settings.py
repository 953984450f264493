"""The Upstox source's settings: the `source: {kind: upstox}` block and `UpstoxSource`'s fields.

Which timeframes Upstox serves and its rate limits are Upstox's rules
(`breadth_assets.sources.upstox`); this module only applies them to the universe file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, PlainValidator, ValidationInfo

from breadth_assets.fields import (
    Loc,
    SourceSettings,
    Strict,
    a_list,
    relative_path,
    text,
    typed,
    whole_number,
)
from breadth_assets.sources.upstox.history import UpstoxTimeframe
from breadth_assets.sources.upstox.limiter import RateLimits

MARKET = "NSE"
DEFAULT_WORKERS = 16
MAX_WORKERS = 64
Workers = Annotated[int, whole_number(1, MAX_WORKERS)]


def instruments(value: Any, info: ValidationInfo) -> Path:
    path = relative_path(value, info)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    return path


def timeframe(value: Any) -> UpstoxTimeframe:
    """An intraday timeframe Upstox serves."""
    parsed = UpstoxTimeframe.parse(text(value))
    if not parsed.intraday:
        raise ValueError(f"{parsed} is not intraday; daily bars are raw_prices")
    return parsed


def rate_limit(value: Any, info: ValidationInfo) -> int:
    """Requests in one window: a whole number within Upstox's limit for it."""
    number = typed(value)
    if type(number) is not int:
        raise ValueError("expected a whole number")
    RateLimits(**{info.field_name: number})
    return number


Instruments = Annotated[Path | None, PlainValidator(instruments)]
RateLimit = Annotated[int | None, PlainValidator(rate_limit)]
Timeframes = Annotated[
    tuple[Annotated[UpstoxTimeframe, PlainValidator(timeframe)], ...],
    BeforeValidator(a_list("expected a list such as [hours/1, minutes/5]")),
    AfterValidator(lambda found: tuple(dict.fromkeys(found))),
]


class RateLimitSettings(Strict):
    per_second: RateLimit = None
    per_minute: RateLimit = None
    per_30_minutes: RateLimit = None


class UpstoxSettings(SourceSettings):
    kind: Literal["upstox"]
    instruments: Instruments = None
    timeframes: Timeframes = ()
    rate_limits: RateLimitSettings = RateLimitSettings()
    workers: Workers = DEFAULT_WORKERS

    def resource_options(self) -> dict[str, Any]:
        options = self.model_dump(include={"workers"}, exclude_unset=True)
        if self.instruments is not None:
            options["instruments"] = str(self.instruments)
        return {**options, **self.rate_limits.model_dump(exclude_unset=True)}

    def timeframe_list(self) -> tuple[UpstoxTimeframe, ...]:
        return self.timeframes

    def universe_refusal(
        self, market: str, tickers: list[tuple[str, str | None]]
    ) -> tuple[Loc, str] | None:
        if market != MARKET:
            return ("source", "kind"), f"upstox serves {MARKET}; the market is {market}"
        if self.instruments is None:
            for index, (symbol, key) in enumerate(tickers):
                if key is None:
                    return ("tickers", index, "instrument_key"), (
                        f"{symbol} has no instrument_key and source.instruments names no "
                        "instruments master file to look it up in"
                    )
        return None
