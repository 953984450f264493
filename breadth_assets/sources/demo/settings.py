"""The demo source's settings: the `source: {kind: demo}` block and `DemoSource`'s fields."""

from __future__ import annotations

from typing import Annotated, Literal

from breadth_assets.fields import SourceSettings, whole_number

Seed = Annotated[int, whole_number(0)]
DEFAULT_SEED = 0


class DemoSettings(SourceSettings):
    kind: Literal["demo"]
    seed: Seed = DEFAULT_SEED
