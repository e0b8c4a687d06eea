"""The docker command, through python-on-whales: the one module that runs it.

The deployer reaches the engine by three transports, each in one module: the Engine API through
the docker SDK (engine.py, whose client the other adapters use), the same API on a unix socket
with the standard library (engine_api.py, for a switch), and this one, for what the Engine API
has no call for: compose, `docker buildx build`, `docker stack deploy`, and an interactive exec,
whose terminal the docker command owns. Each runs against the engine's own connection (the
local socket, or the ssh tunnel's), and each failure becomes an EngineError naming the docker
command, its exit code and the engine, with its stderr masked of secrets."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from deployer.adapters.engine import Engine
from deployer.core import masking
from deployer.errors import EngineError


def warm_up() -> None:
    """Import python-on-whales (about 0.2 s of CPU on the test machine) in a thread, while
    the command waits on the engine (the lock, the images): a release's `compose up` then
    starts at once. Importing it again later waits for this import, never repeats it."""

    def load() -> None:
        try:
            import python_on_whales  # noqa: F401
        except Exception:  # the real import in client() reports it
            pass

    threading.Thread(target=load, name="deployer-docker-cli-import", daemon=True).start()


def client(engine: Engine, **options: Any) -> Any:
    """A python-on-whales client of this engine (`options`: its compose files and project)."""
    from python_on_whales import DockerClient

    return DockerClient(host=engine.base_url(), **options)


@contextmanager
def calling(what: str, *, step: str, command: str, logs: Callable[[], str] | None = None) -> Iterator[None]:
    """Run docker commands; a failure is an EngineError: `<what> failed: `<command>` exited
    with N`, its stderr (masked) as the last lines unless `logs` gives better ones."""
    from python_on_whales.exceptions import DockerException

    try:
        yield
    except DockerException as exc:
        stderr = masking.mask((getattr(exc, "stderr", None) or str(exc)).strip()[-2000:])
        code = getattr(exc, "return_code", None)
        raise EngineError(
            f"{what} failed: `{command}` exited with {code}",
            step=step,
            logs=logs() if logs else stderr,
            command=command,
            exit_code=code,
            stderr=stderr,
        ) from None


def output(argv: list[str]) -> str | None:
    """What a docker command (a client's `docker_cmd` and its arguments) prints, or None when
    it fails: for questions whose answer may be "cannot tell"."""
    from python_on_whales.exceptions import DockerException
    from python_on_whales.utils import run

    try:
        return str(run(argv, capture_stdout=True) or "")
    except DockerException:
        return None


def run(argv: list[str], *, what: str, step: str, command: str) -> str:
    """A docker command (a client's `docker_cmd` and its arguments) whose failure fails the step."""
    from python_on_whales.utils import run as pow_run

    with calling(what, step=step, command=command):
        return str(pow_run(argv, capture_stdout=True) or "")


def interactive_exec(engine: Engine, container: str, argv: list[str], *, step: str) -> int:
    """`docker exec -it`: the docker command owns the terminal. Returns the command's exit code."""
    from python_on_whales.exceptions import DockerException

    try:
        client(engine).container.execute(container, argv, interactive=True, tty=True)
    except DockerException as exc:
        return int(exc.return_code or 1)
    except FileNotFoundError:
        raise EngineError(
            "an interactive exec needs the docker command on this machine (or run without a terminal)", step=step
        ) from None
    return 0


@cache
def has_buildx() -> bool:
    """Whether this machine's docker command has the buildx plugin."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        found = subprocess.run([docker, "buildx", "version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0
