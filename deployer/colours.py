"""The app stack of one colour: each release is its own compose project, <name>-<colour>-<release id>.

A release starts its containers beside the colour's previous ones (the old standby)
instead of recreating them in place, so the old standby's graceful stop runs while
the new release starts and warms up, not before it (python-on-whales for compose,
the docker SDK for the stop and removal).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from deployer import engine
from deployer.assets import asset
from deployer.config import Config
from deployer.errors import EngineError


def variables(config: Config, colour: str, version: str, release_id: str = "00000000") -> dict[str, str]:
    """Compose variables for one colour (pure). Secrets stay in the services' env files."""
    values = {
        "DEPLOYER_PROJECT": config.name,
        "DEPLOYER_COLOUR": colour,
        "DEPLOYER_VERSION": version,
        "DEPLOYER_RELEASE": release_id,
        "DEPLOYER_RESTART": config.restart,
    }
    for name, service in config.services.items():
        prefix = name.upper()
        values[f"{prefix}_IMAGE"] = service.image_ref(version)
        values[f"{prefix}_PORT"] = str(service.port)
        values[f"{prefix}_ENV_FILE"] = str(service.env_file or "/dev/null")
        values[f"{prefix}_STOP_GRACE"] = f"{service.stop_grace}s"
    return values


@contextmanager
def compose(project: str, file: str, values: dict[str, str]) -> Iterator[Any]:
    """A python-on-whales client for one compose project; variables go through an env file."""
    from python_on_whales import DockerClient

    with tempfile.TemporaryDirectory(prefix="deployer-") as tmp:
        env_file = os.path.join(tmp, "compose.env")
        with open(env_file, "w", encoding="utf-8") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in values.items())
        yield DockerClient(
            compose_files=[str(asset("compose", file))],
            compose_project_name=project,
            compose_env_files=[env_file],
        )


def project(config: Config, colour: str, release_id: str) -> str:
    return f"{config.project(colour)}-{release_id}"


def up(config: Config, colour: str, version: str, release_id: str) -> None:
    """Start every container of one release of the colour (a compose project of its own)."""
    from python_on_whales.exceptions import DockerException

    name = project(config, colour, release_id)
    with compose(name, "app.yml", variables(config, colour, version, release_id)) as docker:
        try:
            docker.compose.up(detach=True, force_recreate=True, remove_orphans=True, pull="never", quiet=True)
        except DockerException as exc:
            raise EngineError(f"compose up of {name} failed", step="start", logs=error_text(exc)) from None


def remove(config: Config, colour: str, *, keep_release: str | None = None, release: str | None = None) -> list[str]:
    """Stop and remove the colour's containers, all at once: those of one `release`, or
    all but those of `keep_release`, or all. Each gets SIGTERM and its service's stop_grace
    to finish in-flight requests. Returns the names removed."""
    doomed = [
        c
        for c in engine.colour_containers(config.name, colour)
        if (release is None or c.release == release) and (keep_release is None or c.release != keep_release)
    ]
    if not doomed:
        return []

    def grace(service: str) -> float:
        return config.services[service].stop_grace if service in config.services else 10

    with ThreadPoolExecutor(max_workers=len(doomed)) as pool:
        list(pool.map(lambda c: engine.stop_and_remove(c.name, grace(c.service)), doomed))
    return [c.name for c in doomed]


def error_text(exc: Any) -> str:
    return (getattr(exc, "stderr", None) or str(exc)).strip()[-2000:]
