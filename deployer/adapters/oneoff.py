"""Throwaway containers: a scratch database for a full restore check, a throwaway edge that
checks a rendered site with `nginx -t`. Never published, removed whatever happens; labelled
(core/oneoffs.py), so that one a killed command left behind is found: `listing`."""

from __future__ import annotations

from typing import Any

from deployer.adapters.engine import Engine, debug
from deployer.adapters.failures import reason as _reason
from deployer.adapters.models import Container, ExecResult
from deployer.core import masking, names, oneoffs
from deployer.core.steps import Step
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
    command: list[str] | None = None,
    files: dict[str, bytes] | None = None,
    also: tuple[str, ...] = (),
) -> None:
    """Start a throwaway container (a scratch database): no published port, on `network`
    ('none': loopback only) and the networks `also`; `volumes` maps a volume name or host
    path to {"bind": path inside, "mode": "ro"|"rw"}; `command` replaces the image's;
    `files` (paths under /run) are written before it starts, through the Engine API: in no
    argv, environment or inspect. Removed again if it cannot start."""
    from docker.errors import APIError, ImageNotFound

    debug(f"run {name} from {image}")
    try:
        _started(
            engine,
            files,
            also,
            image,
            command,
            name=name,
            network_mode=network,
            environment=environment or {},
            labels=labels or {},
            volumes=volumes or {},
            shm_size=shm_size,
        )
    except (APIError, ImageNotFound) as exc:
        remove(engine, name)
        raise EngineError(f"cannot start {name} from {image}: {_reason(exc)}", step=step, command="run") from None


def _started(engine: Engine, files: dict[str, bytes] | None, also: tuple[str, ...], *args, **kwargs) -> Any:
    """Create, write `files` under /run, join the networks `also`, start."""
    import time

    from deployer.core.archive import tar_of

    container = engine.sdk.containers.create(*args, **kwargs)
    try:
        if files:
            container.put_archive("/run", tar_of(files, mode=0o400, now=time.time()))
        for network in also:
            engine.sdk.networks.get(network).connect(container)
        container.start()
    except BaseException:
        remove(engine, container.id)
        raise
    return container


def remove(engine: Engine, name: str) -> None:
    """Remove at once, with its anonymous volumes; gone already is fine."""
    from docker.errors import APIError, NotFound

    try:
        engine.sdk.api.remove_container(name, v=True, force=True)
    except (NotFound, APIError):
        pass


def run_once(
    engine: Engine,
    image: str,
    argv: list[str],
    *,
    step: str,
    name: str,
    labels: dict[str, str],
    environment: dict[str, str] | None = None,
    volumes: dict[str, dict[str, str]] | None = None,
    timeout: float | None = None,
    files: dict[str, bytes] | None = None,
    network: str = "none",
) -> ExecResult:
    """Run a throwaway container to completion (no network unless `network`) and return its
    exit code and output; it is removed whatever happens. Its environment holds no secret.
    `volumes` and `files` as for run_detached; `timeout` (default: the engine's) bounds the
    wait for its end."""
    from docker.errors import APIError, ImageNotFound

    debug(f"run-once {name} from {image} {argv[:2]}")
    container = None
    try:
        container = _started(
            engine,
            files,
            (),
            image,
            argv,
            name=name,
            labels=labels,
            network_mode=network,
            environment=environment or {},
            volumes=volumes or {},
            entrypoint=[],
        )
        code = int(container.wait(timeout=timeout or engine.timeout).get("StatusCode", -1))
        out = container.logs(stdout=True, stderr=True).decode(errors="replace")
    except (APIError, ImageNotFound) as exc:
        raise EngineError(f"cannot run {image}: {_reason(exc)}", step=step, command="run") from None
    finally:
        if container is not None:
            remove(engine, container.id)
    return ExecResult(code, masking.mask(out), "")


def listing(engine: Engine, project: str) -> list[Container]:
    """Every one-off container of a project name (any deployment, any state): one listing,
    and an inspect of the one-offs only."""
    from docker.errors import NotFound

    api = engine.sdk.api
    found = []
    try:
        for summary in api.containers(all=True, filters={"label": [f"{names.LABEL_PROJECT}={project}"]}):
            if (summary.get("Labels") or {}).get(names.LABEL_ROLE) not in oneoffs.ROLES:
                continue
            try:
                found.append(Container.from_attrs(api.inspect_container(summary["Id"])))
            except NotFound:
                continue  # its own command removed it since the listing
    except Exception as exc:  # docker.errors.APIError, requests errors
        raise EngineError(f"cannot list containers on {engine.where}: {_reason(exc)}", step=Step.INSPECT) from None
    return found


def engine_time(engine: Engine) -> float:
    """The engine's clock, as epoch seconds (what a container's StartedAt is measured by)."""
    return oneoffs.epoch(str(engine.sdk.api.info().get("SystemTime") or ""))


def wait(engine: Engine, name: str, seconds: float) -> int | None:
    """Wait up to `seconds` for a container to end: its exit code, or None while it still runs."""
    from docker.errors import NotFound

    try:
        outcome: dict[str, Any] = engine.sdk.api.wait(name, timeout=max(1, round(seconds)))
    except NotFound:
        return 0  # gone already: removed by whoever started it
    except Exception as exc:  # requests' ReadTimeout: it still runs
        if "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower():
            return None
        raise EngineError(f"cannot wait for {name}: {_reason(exc)}", step=Step.INSPECT) from None
    return int(outcome.get("StatusCode", -1))


def running_execs(engine: Engine, name: str) -> list[list[str]]:
    """The argv of each exec still running in a container ([] when it is gone): what a
    command whose process was killed left running there."""
    from docker.errors import APIError, NotFound

    found = []
    for exec_id in (engine.inspect(name) or {}).get("ExecIDs") or []:
        try:
            info = engine.sdk.api.exec_inspect(exec_id)
        except (NotFound, APIError):
            continue  # ended since the container was inspected
        if info.get("Running"):
            process = info.get("ProcessConfig") or {}
            found.append([process.get("entrypoint", ""), *(process.get("arguments") or [])])
    return found
