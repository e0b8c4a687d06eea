"""Throwaway PostgreSQL servers from the db image: no network, trust auth, removed afterwards."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from deployer import engine
from deployer.backup import pgexec
from deployer.errors import BackupError

READY = 'pg_isready -q -h 127.0.0.1 -p 5432 -U "$POSTGRES_USER"'  # TCP: the init-time server is socket-only
DEFAULT_SHM = 256 * 1024 * 1024


def db_image(config) -> str:
    """The image the project's db container runs (the truth on the host), else the configured one."""
    attrs = engine.container_state(config.db_container)
    if attrs:
        return attrs["Config"]["Image"]
    if config.database.image:
        return config.database.image
    from deployer import images

    return images.own_image("db", config.base_image)


def db_shm(config) -> int:
    attrs = engine.container_state(config.db_container)
    return int(((attrs or {}).get("HostConfig") or {}).get("ShmSize") or DEFAULT_SHM)


@contextmanager
def server(config, *, step: str, deadline: float = 90) -> Iterator[str]:
    """Start a scratch server; yields its container name. The container is always removed."""
    name = f"{config.name}-backup-scratch-{uuid.uuid4().hex[:8]}"
    image = db_image(config)
    try:
        engine.client().containers.run(
            image,
            name=name,
            detach=True,
            network_mode="none",
            shm_size=db_shm(config),
            environment={"POSTGRES_USER": "scratch", "POSTGRES_DB": "scratch", "POSTGRES_HOST_AUTH_METHOD": "trust"},
            labels={"deployer.project": config.name, "deployer.role": "backup-scratch"},
        )
    except Exception as exc:  # docker.errors.APIError, ImageNotFound
        _remove(name)
        raise BackupError(f"cannot start a scratch database from {image}: {exc}", step=step) from None
    try:
        _wait_ready(name, deadline, step)
        yield name
    finally:
        _remove(name)


def _wait_ready(name: str, deadline: float, step: str) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        attrs = engine.container_state(name)
        if not attrs or not attrs["State"].get("Running"):
            raise BackupError(f"scratch database {name} stopped: {engine.container_logs(name, 10)}", step=step)
        if pgexec.run(name, READY, step=step).exit_code == 0:
            return
        time.sleep(0.3)
    raise BackupError(f"scratch database {name} not ready after {deadline:.0f}s", step=step)


def _remove(name: str) -> None:
    try:
        engine.client().containers.get(name).remove(force=True, v=True)
    except Exception:  # already gone
        pass
