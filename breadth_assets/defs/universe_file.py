"""The universe file as a resource, read at run time so that runs see the file as it is now."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from breadth_assets.universe.file import Universe, load_universe


class UniverseFile(dg.ConfigurableResource):
    path: str = Field(description="The universe YAML file (see docs/universe.md).")

    def load(self) -> Universe:
        return load_universe(self.path)
