"""The commands an operator runs under pressure start fast: `switch`, `rollback`, `status`
and `--help` import only what they use. Each runs here in a fresh interpreter against an
engine socket that does not exist (the command fails at its first engine call, exit 1), and
the modules it imported are compared with the heavy ones it must not pay for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deployer.flows import init as setup

HEAVY = {
    "docker": "the docker SDK (requests, urllib3): execs and inspections go through engine_api.py",
    "requests": "requests, under the docker SDK",
    "python_on_whales": "python-on-whales (compose and builds only)",
    "jinja2": "jinja2 (the edge's templates, rendered by up)",
    "rich.progress": "rich's progress bars",
    "rich.live": "rich's live view (builds only)",
    "httpx": "httpx (health waits and registry calls)",
    "pydantic": "pydantic (typer 0.29 builds a validator of every parameter with it, about 0.05 s a command)",
}
# What a plain `switch` does not import either: its command line is parsed by cli/hot.py.
SWITCH = {
    "typer": "typer: a plain switch needs no command-line library",
    "click": "click (typer now vendors its own, as typer._click)",
    "uuid": "uuid (it imports platform): the lock's token is os.urandom's",
    "hashlib": "hashlib (a TLS generation's hash, a compose file's)",
    "concurrent.futures": "thread pools (a release's removals in the background)",
}

RUN = """
import json, sys
sys.argv = ["deployer", *sys.argv[1:]]
from deployer.cli import _run
code = _run()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hot")
    (folder / "backend").mkdir()
    (folder / "frontend").mkdir()
    setup.init(folder, force=False)
    return folder


def imported(project: Path, *args: str) -> tuple[int, set[str], str]:
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{project}/no-engine.sock", "HOME": str(project)}
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, cwd=project, timeout=60
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["code"], set(answer["modules"]), done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("switch", "--to", "blue"),
        ("-q", "switch", "-c", "deployer.toml", "--to=green"),
        ("rollback",),
        ("--help",),
        ("status", "--json"),
    ],
    ids=["switch", "switch-quiet", "rollback", "help", "status"],
)
def test_a_hot_command_imports_no_heavy_module_it_does_not_use(project, args):
    code, modules, stderr = imported(project, *args)
    if args != ("--help",):
        assert code == 1 and "cannot reach the Docker engine" in stderr, stderr  # it did reach for the engine
    # status lists containers through the SDK
    allowed = {"docker", "requests"} if args[0] == "status" else set()
    heavy = {**HEAVY, **SWITCH} if "switch" in args else HEAVY
    paid = {m: why for m, why in heavy.items() if m in modules and m not in allowed}
    assert paid == {}, f"deployer {' '.join(args)} imported: {paid}"


def test_every_dataclass_has_a_docstring():
    """A dataclass without one gets a docstring made from inspect.signature when its module is
    imported: about half of what the class costs to create, paid by every command that imports
    it (the config's classes by every command)."""
    import ast

    package = Path(__file__).resolve().parents[2] / "deployer"
    missing = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            dataclass = isinstance(node, ast.ClassDef) and any(
                "dataclass" in ast.unparse(d) for d in node.decorator_list
            )
            if dataclass and ast.get_docstring(node) is None:
                missing.append(f"{path.relative_to(package)}: {node.name}")
    assert missing == []
