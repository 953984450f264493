"""`breadth-assets run|status`: the main job and what it prints (`commands`, `run_report`)."""

from breadth_assets.cli.commands import main

__all__ = ["main"]
