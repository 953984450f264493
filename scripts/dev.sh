#!/usr/bin/env bash
# The Dagster UI (webserver and daemon together) on the project's Dagster home. `dg dev`
# (dagster-dg-cli, in the lock) replaces `dagster dev`, which Dagster 1.13 marks superseded; it
# finds the code location through [tool.dg] in pyproject.toml (named breadth_assets, as before).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h | --help)
    cat <<'USAGE'
Usage: bash scripts/dev.sh [-p PORT] [--host HOST] [other `dg dev` options]

The Dagster UI (webserver and daemon) on $DAGSTER_HOME, by default the project's dagster_home/;
a home without a dagster.yaml gets the project's.
  -p, --port PORT   the webserver's port (default 3000): http://127.0.0.1:PORT
  --host HOST       the address it listens on (default 127.0.0.1)
Every other option goes to `dg dev` as it is (.venv/bin/dg dev --help lists them).
USAGE
    exit 0
    ;;
esac
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
.venv/bin/python -m breadth_assets.runtime.instance
# dg warns unless the project's .venv is the active one.
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/dg dev "$@"
