#!/usr/bin/env bash
# Creates .venv with Python 3.11+ and installs exactly requirements.lock (hash-checked), then the
# project itself (editable, no dependencies). Safe to re-run: does nothing when the lock,
# pyproject.toml, setup.py, this script and the Python are what the last install saw
# (a stamp in .venv). Refresh the lock with `bash scripts/lock.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
stamp=.venv/.breadth-assets-installed
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
want="$({ sha256sum requirements.lock pyproject.toml setup.py scripts/setup.sh; .venv/bin/python -VV; } | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
rm -f "$stamp"
# The locked pip first (the one Python ships cannot install the lock's `gql[requests]` in
# hash-checking mode), then the whole lock, then the project with the locked setuptools.
pip_only="$(mktemp)"
trap 'rm -f "$pip_only"' EXIT
awk '/^pip==/ {f = 1} f {print} f && !/\\$/ {exit}' requirements.lock > "$pip_only"
.venv/bin/python -m pip install --quiet --require-hashes -r "$pip_only"
.venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
# Exactly the lock: remove what an earlier lock or a hand install left behind.
extra="$(.venv/bin/python - <<'PY'
import re
from importlib.metadata import distributions

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

locked = {norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==",
                                               open("requirements.lock").read(), re.M)}
keep = locked | {"pip", "setuptools", "wheel", "breadth-assets"}
print(" ".join(sorted({norm(d.metadata["Name"]) for d in distributions()} - keep)))
PY
)"
if [ -n "$extra" ]; then
  echo "setup: removing packages not in requirements.lock: $extra" >&2
  # shellcheck disable=SC2086
  .venv/bin/python -m pip uninstall --quiet --yes $extra
fi
# Fails when pyproject.toml gained a dependency that the lock lacks (run scripts/lock.sh).
.venv/bin/python -m pip check >/dev/null || {
  .venv/bin/python -m pip check >&2 || true
  echo "setup: requirements.lock does not satisfy pyproject.toml: run bash scripts/lock.sh" >&2
  exit 1
}
echo "$want" > "$stamp"
