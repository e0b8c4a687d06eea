"""The folders are the layers: no import goes up, no adapter imports the CLI, no import loop;
the flows know the runtime only by its interface, and never ask which mode they run in."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "deployer"

# What each layer may import from the package (besides itself).
ALLOWED = {
    "core": {"errors"},
    "config": {"core", "errors"},
    "adapters": {"core", "errors"},
    "flows": {"adapters", "core", "config", "errors", "assets", "runtime"},  # runtime.base only (below)
    "runtime": {"flows", "adapters", "core", "config", "errors", "assets"},
    "cli": {"flows", "runtime", "adapters", "core", "config", "errors", "assets", ""},
    "agent": {"core", "errors"},
    "assets": set(),
    "errors": set(),
}


@functools.cache
def modules() -> dict[str, set[str]]:
    """module name -> the deployer modules it imports (at any depth of the file)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "assets" in path.parts and path.name != "__init__.py":
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        imports = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deployer"):
                imports.add(node.module)
                imports.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                imports.update(a.name for a in node.names if a.name.startswith("deployer"))
        found[name] = imports
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_goes_up():
    problems = []
    for module, imports in modules().items():
        mine = layer(module)
        if mine not in ALLOWED:
            continue
        for target in imports:
            theirs = layer(target)
            if theirs and theirs != mine and theirs not in ALLOWED[mine] and target in modules():
                problems.append(f"{module} imports {target}")
    assert problems == []


def test_flows_know_only_the_runtime_interface():
    """A flow calls ctx.runtime; which implementation it gets is runtime/mode.py's choice."""
    wrong = [
        f"{module} imports {target}"
        for module, imports in modules().items()
        if layer(module) == "flows"
        for target in imports
        if layer(target) == "runtime" and target in modules() and target != "deployer.runtime.base"
    ]
    assert wrong == []


def test_only_the_runtime_reads_the_mode():
    """No flow and no command branches on compose or swarm: runtime/mode.py reads it once."""
    readers = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for folder in ("flows", "cli")
        for path in (PACKAGE / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"config\.swarm\b|engine\.mode\b", line)
    ]
    assert readers == []


def test_only_the_adapters_reach_the_engine():
    """The docker SDK, its client (`engine.sdk`) and python-on-whales are the adapters' alone:
    a flow, the runtime or a command asks an adapter, which names the call when it fails."""
    reaching = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for folder in ("flows", "runtime", "cli", "core", "config", "agent")
        for path in (PACKAGE / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.sdk\b|^\s*(import docker|from docker\b|import python_on_whales|from python_on_whales)", line)
    ]
    assert reaching == []


def test_one_module_per_transport():
    """Each way to the engine is opened in one module: the SDK's client in engine.py, the
    standard library's HTTP on the engine's socket in engine_api.py, and the docker command
    (python-on-whales, `docker buildx`) in docker_cli.py. The other adapters call these."""
    rules = {
        "engine.py": r"docker\.(DockerClient|APIClient|from_env)\b",
        "engine_api.py": r"\bhttp\.client\b",
        "docker_cli.py": r"python_on_whales|\[docker, \"buildx\"",
    }
    found = {
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if "agent" not in path.relative_to(PACKAGE).parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for home, pattern in rules.items()
        if re.search(pattern, line) and path.relative_to(PACKAGE).as_posix() != f"adapters/{home}"
    }
    assert sorted(found) == []
    for home, pattern in rules.items():
        assert re.search(pattern, (PACKAGE / "adapters" / home).read_text()), f"{home} no longer holds its transport"


def test_no_import_loop():
    graph = {m: {i for i in imports if i in modules() and i != m} for m, imports in modules().items()}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for n in graph[m]:
            if seen.get(n) == 1:
                raise AssertionError("import loop: " + " -> ".join(stack[stack.index(n) :] + [n]))
            if n not in seen:
                visit(n)
        stack.pop()
        seen[m] = 2

    for m in graph:
        if m not in seen:
            visit(m)


def test_files_stay_small():
    big = [
        f"{p.relative_to(PACKAGE)}: {n} lines"
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 350
    ]
    assert big == []
