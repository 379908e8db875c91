"""``assert`` is not a run-time check: ``python -O`` strips it. The package checks with ``if``
and a typed error instead (narrowing for the type checker included)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_assert_statements_in_the_package_or_the_handlers():
    found = []
    for package in ("pyworkflow",):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=name)
            found += [
                f"{name}:{node.lineno}" for node in ast.walk(tree) if isinstance(node, ast.Assert)
            ]
    assert found == []
