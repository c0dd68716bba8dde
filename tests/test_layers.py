"""Imports between the domain packages flow one way: a lower room never imports a higher one.

core ← accounts ← skills ← courses ← credentials ← orgs / insights. A lower room that must react to
something higher up sends a signal (completion → issuance), or the factory hands it a lookup. Imports
inside functions count too: a lazy import is the same dependency, only hidden.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.nodb  # reads source files only: run once, not on both databases

ROOT = Path(__file__).resolve().parents[1]

# rank of each top-level package; equal ranks are siblings and may not import upward either
LAYERS = {
    "core": 0,
    "accounts": 1,
    "skills": 2,
    "courses": 3,
    "credentials": 4,
    "orgs": 5,
    "insights": 5,
    "obapi": 5,  # the Open Badges API serves credentials' documents to apps a learner connects
    "notifications": 6,  # emails about events from every room below (it reads orgs' saved candidates)
}
# the application factory is the one place that knows every room: it registers them all
COMPOSITION_ROOT = {Path("core/__init__.py")}


def _imported_packages(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative: inside the same package
            return [package]
        return [(node.module or "").split(".")[0]]
    return []


def upward_imports(source: str, package: str, filename: str) -> list[str]:
    """Every import in ``source`` (module level, in functions, in classes) of a higher-ranked package."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        for target in _imported_packages(node, package):
            if target in LAYERS and target != package and LAYERS[target] >= LAYERS[package]:
                if LAYERS[target] == LAYERS[package] and {target, package} <= {"orgs", "insights"}:
                    continue  # orgs and insights sit side by side above credentials
                found.append(f"{filename}:{node.lineno} {package} imports {target}")
    return found


def _packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["packages"]


def test_every_installed_package_has_a_layer():
    unplaced = [p for p in _packages() if p.split(".")[0] not in LAYERS]
    assert not unplaced, f"add {unplaced} to LAYERS in tests/test_layers.py (where does it sit?)"


def test_no_domain_package_imports_a_higher_one():
    violations = []
    for package in sorted({p.split(".")[0] for p in _packages()} & set(LAYERS)):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative in COMPOSITION_ROOT:
                continue
            violations += upward_imports(path.read_text(encoding="utf-8"), package, str(relative))
    assert not violations, "\n".join(violations)


def test_the_check_sees_lazy_and_relative_imports():
    # the rule itself must be able to fail: function-level, class-level and aliased imports are caught
    source = (
        "import courses.models as m\n"
        "def f():\n    from credentials.models import Certificate\n"
        "class C:\n    import insights\n"
        "from . import services\n"
        "from core.extensions import db\n"
    )
    assert upward_imports(source, "courses", "x.py") == [
        "x.py:3 courses imports credentials",
        "x.py:5 courses imports insights",
    ]
    assert upward_imports(source, "skills", "x.py") == [
        "x.py:1 skills imports courses",
        "x.py:3 skills imports credentials",
        "x.py:5 skills imports insights",
    ]
    assert upward_imports("from insights import reports\n", "orgs", "o.py") == []
    assert upward_imports("from orgs import models\n", "credentials", "c.py") == ["c.py:1 credentials imports orgs"]


def _imported_modules(source: str, filename: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_the_credentials_cli_imports_no_views_module():
    # commands run without a request: what they share with pages lives in presenters, storage, identity
    path = ROOT / "credentials" / "cli.py"
    violations = [
        f"credentials/cli.py:{line} imports {name}"
        for line, name in _imported_modules(path.read_text(encoding="utf-8"), str(path))
        if any(part == "views" or part.endswith("_views") for part in name.split("."))
    ]
    assert not violations, "\n".join(violations)
