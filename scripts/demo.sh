#!/usr/bin/env bash
# Quick start: set up, then run the main job on the demo universe through Dagster, using the
# project's Dagster home (or $DAGSTER_HOME; a home without a dagster.yaml gets the project's),
# and print the last days of breadth.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
.venv/bin/python -m breadth_assets.runtime.instance
exec .venv/bin/breadth-assets run --checks "$@"
