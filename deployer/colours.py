"""The app stack of one colour, run with compose (python-on-whales) as project <name>-<colour>."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


def up(config: Config, colour: str, version: str, release_id: str) -> None:
    """Start (or replace) every container of the colour at the version."""
    from python_on_whales.exceptions import DockerException

    with compose(config.project(colour), "app.yml", variables(config, colour, version, release_id)) as docker:
        try:
            docker.compose.up(detach=True, force_recreate=True, remove_orphans=True, pull="never", quiet=True)
        except DockerException as exc:
            raise EngineError(f"compose up of {config.project(colour)} failed", step="start", logs=error_text(exc)) from None


def down(config: Config, colour: str, version: str = "none") -> None:
    from python_on_whales.exceptions import DockerException

    with compose(config.project(colour), "app.yml", variables(config, colour, version)) as docker:
        try:
            docker.compose.down(remove_orphans=True, volumes=True, quiet=True)
        except DockerException as exc:
            raise EngineError(f"compose down of {config.project(colour)} failed", step="down", logs=error_text(exc)) from None


def error_text(exc: Any) -> str:
    return (getattr(exc, "stderr", None) or str(exc)).strip()[-2000:]
