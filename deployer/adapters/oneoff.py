"""Throwaway containers: a scratch database for a full restore check, a throwaway edge that
checks a rendered site with `nginx -t`. Never published, removed whatever happens."""

from __future__ import annotations

from deployer.adapters.engine import Engine, _reason, debug
from deployer.adapters.models import ExecResult
from deployer.core import masking
from deployer.errors import EngineError


def run_detached(
    engine: Engine,
    image: str,
    name: str,
    *,
    step: str,
    environment: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    volumes: dict[str, dict[str, str]] | None = None,
    network: str = "none",
    shm_size: int | None = None,
) -> None:
    """Start a throwaway container (a scratch database): no published port, on `network`
    ('none': loopback only); `volumes` maps a volume name or host path to
    {"bind": path inside, "mode": "ro"|"rw"}. Removed again if it cannot start."""
    from docker.errors import APIError, ImageNotFound

    debug(f"run {name} from {image}")
    try:
        engine.sdk.containers.run(
            image,
            name=name,
            detach=True,
            network_mode=network,
            environment=environment or {},
            labels=labels or {},
            volumes=volumes or {},
            shm_size=shm_size,
        )
    except (APIError, ImageNotFound) as exc:
        remove(engine, name)
        raise EngineError(f"cannot start {name} from {image}: {_reason(exc)}", step=step, command="run") from None


def remove(engine: Engine, name: str) -> None:
    """Remove at once, with its anonymous volumes; gone already is fine."""
    from docker.errors import APIError, NotFound

    try:
        engine.sdk.api.remove_container(name, v=True, force=True)
    except (NotFound, APIError):
        pass


def run_once(
    engine: Engine, image: str, argv: list[str], *, step: str, environment: dict[str, str] | None = None
) -> ExecResult:
    """Run a throwaway container to completion (no network) and return its exit code and
    output; it is removed whatever happens. Its environment holds no secret."""
    from docker.errors import APIError, ImageNotFound

    debug(f"run-once {image} {argv[:2]}")
    container = None
    try:
        container = engine.sdk.containers.run(
            image, argv, detach=True, network_mode="none", environment=environment or {}, entrypoint=[]
        )
        code = int(container.wait(timeout=engine.timeout).get("StatusCode", -1))
        out = container.logs(stdout=True, stderr=True).decode(errors="replace")
    except (APIError, ImageNotFound) as exc:
        raise EngineError(f"cannot run {image}: {_reason(exc)}", step=step, command="run") from None
    finally:
        if container is not None:
            remove(engine, container.id)
    return ExecResult(code, masking.mask(out), "")
