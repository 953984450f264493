#!/usr/bin/env bash
# Regenerates requirements.lock (every package pinned, with hashes, for Linux x86_64 and
# Python 3.11) from pyproject.toml: the dependencies, the dev/postgres/celery extras, the
# install-tools group (pip, setuptools, wheel for scripts/setup.sh), and the Dagster family pins
# of [tool.uv] constraint-dependencies. Run it after changing a dependency,
# or with --upgrade to move everything to the newest versions the ranges allow; then
# `bash scripts/setup.sh` installs the new lock. uv comes from PyPI into a throwaway venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
UV_VERSION="0.13.9"
tools="${TMPDIR:-/tmp}/breadth-assets-lock-uv-$UV_VERSION"
if [ ! -x "$tools/bin/uv" ]; then
  "$PYTHON" -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet "uv==$UV_VERSION"
fi
exec "$tools/bin/uv" pip compile pyproject.toml \
  --extra dev --extra postgres --extra celery --group install-tools \
  --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --custom-compile-command "bash scripts/lock.sh" \
  -o requirements.lock "$@"
