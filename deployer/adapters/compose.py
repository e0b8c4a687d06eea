"""Compose through python-on-whales, pointed at the engine's own connection (local, or the
ssh tunnel). Each call writes the compose file (data from deployer.core.compose) as JSON in a
private temporary folder; secrets travel in this process's environment for the call only."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from deployer.adapters import docker_cli
from deployer.adapters.engine import Engine, debug


@contextmanager
def _client(engine: Engine, project: str, spec: dict[str, Any], secrets: dict[str, str] | None) -> Iterator[Any]:
    """A python-on-whales client for one compose project, whose file is `spec` as JSON.

    Secret values are set in this process's environment for the length of the call
    only (compose reads them from there and copies them into the containers); the file
    holds none, and lives in a private temporary folder."""
    with tempfile.TemporaryDirectory(prefix="deployer-compose-") as tmp:
        path = os.path.join(tmp, "compose.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(spec, fh)
        saved = {k: os.environ.get(k) for k in (secrets or {})}
        os.environ.update(secrets or {})
        try:
            yield docker_cli.client(engine, compose_files=[path], compose_project_name=project)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def up(
    engine: Engine,
    project: str,
    spec: dict[str, Any],
    *,
    step: str,
    secrets: dict[str, str] | None = None,
    wait: bool = False,
    recreate: bool = False,
    services: list[str] | None = None,
    scales: dict[str, int] | None = None,
    beside: bool = False,
) -> None:
    """`services`: only these (and what they depend on), else all. `beside`: only these, and
    their running containers are kept whatever changed (`--no-deps --no-recreate`: with
    `scales`, a new container of the new file starts beside the old one)."""
    debug(f"compose up {project} {' '.join(services or [])}")
    _ = engine.sdk  # fail early, with a clear message, on an unreachable engine
    with (
        _client(engine, project, spec, secrets) as docker,
        docker_cli.calling(f"compose up of {project}", step=step, command="docker compose up"),
    ):
        docker.compose.up(
            services or None,
            detach=True,
            force_recreate=recreate,
            recreate=not beside,
            dependencies=not beside,
            scales=scales or {},
            remove_orphans=True,
            pull="never",
            quiet=True,
            wait=wait,
            wait_timeout=120 if wait else None,
        )


def down(
    engine: Engine,
    project: str,
    spec: dict[str, Any],
    *,
    step: str,
    volumes: bool = False,
    secrets: dict[str, str] | None = None,
) -> None:
    debug(f"compose down {project}")
    _ = engine.sdk
    with (
        _client(engine, project, spec, secrets) as docker,
        docker_cli.calling(f"compose down of {project}", step=step, command="docker compose down"),
    ):
        docker.compose.down(remove_orphans=True, volumes=volumes, quiet=True)


def config_hash(
    engine: Engine, project: str, spec: dict[str, Any], service: str, *, secrets: dict[str, str] | None = None
) -> str:
    """The hash compose gives a service of this file (`docker compose config --hash`): what it
    compares with a container's com.docker.compose.config-hash label to decide whether
    `up` recreates it. '' when compose cannot tell."""
    with _client(engine, project, spec, secrets) as docker:
        out = docker_cli.output(docker.compose.docker_compose_cmd + ["config", "--hash", service])
    parts = str(out or "").split()
    return parts[1] if len(parts) == 2 and parts[0] == service else ""


# How the engine says that a published port is taken: by another program (the userland
# proxy cannot listen), or by another container (the port is allocated).
_BUSY_PORT = re.compile(
    r"(?:listen tcp[46]? |Bind for )\[?[0-9a-fA-F.:]*\]?:(\d+)(?:: bind: address already in use| failed: port is already allocated)"
)


def busy_port(text: str) -> int | None:
    """The host port the engine could not publish because something else holds it."""
    match = _BUSY_PORT.search(text or "")
    return int(match[1]) if match else None
