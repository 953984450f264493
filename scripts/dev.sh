#!/usr/bin/env bash
# The Dagster UI (webserver and daemon together) on the project's Dagster home.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/dagster ] || bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
exec .venv/bin/dagster dev "$@"
