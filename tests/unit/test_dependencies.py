"""Every third-party module the package imports is a dependency it declares, pinned in
pyproject.toml: an install from the wheel never relies on what another package happens to
bring along. The deployer's own images (assets/) run with their own packages and are left out."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_roots() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in (ROOT / "deployer").rglob("*.py"):
        if "assets" in path.parts or "agent" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def declared() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        name, _, version = dep.partition("==")
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_every_imported_package_is_declared_and_pinned():
    pins = declared()
    assert all(pins.values()), f"unpinned: {[n for n, v in pins.items() if not v]}"
    dists = packages_distributions()
    missing = []
    for module, where in sorted(imported_roots().items()):
        if module in sys.stdlib_module_names or module in ("deployer", "__future__"):
            continue
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(module, [module])}
        if not names & set(pins):
            missing.append(f"{module} (imported by {where})")
    assert missing == []
