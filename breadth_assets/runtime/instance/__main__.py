"""`python -m breadth_assets.runtime.instance [HOME]`: prepares a Dagster home (default
`$DAGSTER_HOME`) as `breadth-assets run` does before it opens it: created if missing, and given
the project's `dagster.yaml` when it has none. `scripts/dev.sh` and `scripts/demo.sh` call it
first."""

from __future__ import annotations

import sys

from breadth_assets.runtime.instance import prepare


def main(argv: list[str]) -> int:
    home = argv[0] if argv else None
    if prepare(home) is None:
        print(
            "breadth_assets.runtime.instance: give an absolute Dagster home (argument or "
            "$DAGSTER_HOME)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
