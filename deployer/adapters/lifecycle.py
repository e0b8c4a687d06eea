"""Renaming, stopping and starting a container, and the Docker host's kernel: what replacing
the edge needs (flows/edge_roll.py) beyond the engine adapter's own calls."""

from __future__ import annotations

import re

from deployer.adapters.engine import Engine
from deployer.adapters.failures import reason
from deployer.errors import EdgeError


def rename(engine: Engine, container: str, name: str, *, step: str) -> None:
    """Give a container another name (the edge's name goes to the edge that replaces it)."""
    from docker.errors import APIError

    try:
        engine.sdk.api.rename(container, name)
    except APIError as exc:
        raise EdgeError(
            f"cannot rename the edge container {container[:12]} to {name}: {reason(exc)}", step=step
        ) from None


def stop(engine: Engine, container: str, grace: float, *, step: str) -> None:
    """Stop a container (its STOPSIGNAL, SIGKILL after `grace` seconds) and keep it."""
    from docker.errors import APIError, NotFound

    try:
        engine.sdk.api.stop(container, timeout=max(1, round(grace)))
    except NotFound:
        return
    except APIError as exc:
        raise EdgeError(f"cannot stop {container}: {reason(exc)}", step=step) from None


def start(engine: Engine, container: str, *, step: str) -> bool:
    """Start a stopped container again; False when it is gone."""
    from docker.errors import APIError, NotFound

    try:
        engine.sdk.api.start(container)
    except NotFound:
        return False
    except APIError as exc:
        raise EdgeError(f"cannot start {container} again: {reason(exc)}", step=step) from None
    return True


def kernel(engine: Engine) -> tuple[int, int]:
    """The Docker host's Linux version (major, minor); (0, 0) when the engine does not say."""
    found = re.match(r"(\d+)\.(\d+)", str(engine.sdk.info().get("KernelVersion") or ""))
    return (int(found[1]), int(found[2])) if found else (0, 0)
