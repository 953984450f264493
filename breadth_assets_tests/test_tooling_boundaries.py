"""Who may import the test tooling: the product never, benchmarks never the tests, tests only
their support module (fixtures come from conftest through pytest)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "breadth_assets_tests"
ALLOWED_IN_TESTS = {"breadth_assets_tests.support"}


def _imported(path: Path) -> set[str]:
    """Every module `path` imports, at module level or in a function (absolute imports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _importing(folder: Path, prefix: str) -> dict[str, list[str]]:
    return {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imported(path) if name == prefix or name.startswith(prefix + ".")
        )
        for path in sorted(folder.rglob("*.py"))
        if any(name == prefix or name.startswith(prefix + ".") for name in _imported(path))
    }


def test_test_modules_import_no_other_test_module_than_the_support_module():
    offending = {
        module: [name for name in names if not name.startswith("breadth_assets_tests.support")]
        for module, names in _importing(TESTS, "breadth_assets_tests").items()
        if not module.endswith("support.py")
    }
    assert {module: names for module, names in offending.items() if names} == {}


def test_the_product_imports_no_test_tooling():
    package = ROOT / "breadth_assets"
    assert _importing(package, "breadth_assets_testing") == {}
    assert _importing(package, "breadth_assets_tests") == {}


def test_benchmarks_and_the_tooling_import_nothing_from_the_tests():
    assert _importing(ROOT / "benchmarks", "breadth_assets_tests") == {}
    assert _importing(ROOT / "breadth_assets_testing", "breadth_assets_tests") == {}
