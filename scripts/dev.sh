#!/usr/bin/env bash
# The Dagster UI (webserver and daemon together) on the project's Dagster home. `dg dev`
# (dagster-dg-cli, in the lock) replaces `dagster dev`, which Dagster 1.13 marks superseded; it
# finds the code location through [tool.dg] in pyproject.toml (named breadth_assets, as before).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
# dg warns unless the project's .venv is the active one.
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/dg dev "$@"
