"""The shape of the package: folders that are layers, imports that go one way, small modules and
functions, pure analytics, Dagster's internals fenced."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster

from breadth_assets.runtime.dagster_compat import CHECKED_DAGSTER

PACKAGE = Path(__file__).resolve().parents[1] / "breadth_assets"
MAX_LINES = 400
MAX_FUNCTION_LINES = 60
RANKS = {
    "cli": 6,
    "instance": 6,  # kept import paths, re-exporting runtime/
    "celery_worker": 6,
    "definitions": 5,
    "defs": 4,
    "runtime": 3,
    "universe": 2.5,  # holds each source's settings model
    "sources": 2,
    "stores": 2,
    "analytics": 1,
    "calendars": 0,
    "schema": 0,
    "fields": 0,
    "": 0,  # the package itself
}
"""A module may import its own folder and the folders of a lower rank, nothing else."""


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The package's modules that `path` imports at module level or in a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found |= {name for name in names if name in modules}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(graph: Mapping[str, set[str]]) -> list[str]:
    """Imports against the direction of `RANKS`, as `importer -> imported`."""
    found = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            here, there = _folder(module), _folder(target)
            if here != there and RANKS[there] >= RANKS[here]:
                found.append(f"{module} -> {target}")
    return found


def _cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _imported_roots(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_every_folder_of_the_package_is_a_known_layer():
    assert {_folder(module) for module in _modules()} <= set(RANKS)


def test_imports_go_one_way_between_the_layers():
    assert layer_violations(_graph()) == []


def test_an_import_against_the_direction_is_found():
    graph = _graph()
    planted = {**graph, "breadth_assets.analytics.breadth": {"breadth_assets.defs.jobs"}}
    planted["breadth_assets.sources.base"] = {"breadth_assets.stores.base"}

    found = [edge for edge in layer_violations(planted) if edge not in layer_violations(graph)]
    assert found == [
        "breadth_assets.analytics.breadth -> breadth_assets.defs.jobs",
        "breadth_assets.sources.base -> breadth_assets.stores.base",
    ]


def test_the_package_has_no_import_cycle():
    graph = {
        name: {
            target
            for target in imported
            # A package's __init__ re-exporting its modules is not a cycle with them.
            if not (target.startswith(f"{name}.") or name.startswith(f"{target}."))
        }
        for name, imported in _graph().items()
    }
    assert _cycle(graph) is None


def test_no_module_of_the_package_is_over_400_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_function_in_defs_is_over_60_lines():
    long = {}
    for path in (PACKAGE / "defs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE.parent)}:{node.name}"] = lines
    assert long == {}


def test_analytics_and_the_upstox_client_import_no_dagster():
    """`sources/upstox/source.py` is the Dagster resource; everything beside it is plain."""
    plain = [*(PACKAGE / "analytics").rglob("*.py"), *(PACKAGE / "sources" / "upstox").glob("*.py")]
    for path in plain:
        if path.name in {"source.py", "settings.py"}:
            continue
        assert not any(name.split(".")[0] == "dagster" for name in _imported_roots(path)), path


def test_dagster_internals_are_imported_in_runtime_only():
    outside = [
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if "runtime" not in path.relative_to(PACKAGE).parts
        and any(name.startswith("dagster._") for name in _imported_roots(path))
    ]
    assert outside == []


def test_the_installed_dagster_is_the_minor_version_the_internals_were_checked_against():
    minor = ".".join(dagster.__version__.split(".")[:2])
    assert minor == CHECKED_DAGSTER, (
        f"Dagster {dagster.__version__} is installed, but the dagster._ imports in "
        f"breadth_assets/runtime/ were checked against {CHECKED_DAGSTER}: check each one's note "
        "(runtime/dagster_compat.py) and raise CHECKED_DAGSTER"
    )
