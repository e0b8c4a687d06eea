"""Volumes on the engine: created labelled (whose they are), their labels read back, the
containers that use one, and their removal."""

from __future__ import annotations

from deployer.adapters.engine import Engine, debug
from deployer.adapters.failures import reason as _reason
from deployer.core.steps import Step
from deployer.errors import EngineError


def ensure(engine: Engine, name: str, labels: dict[str, str], *, step: str) -> bool:
    """Create a local volume with these labels unless one of that name exists (it is used as
    it is: a volume's labels never change). True when it was created."""
    from docker.errors import APIError, NotFound

    api = engine.sdk.api
    try:
        api.inspect_volume(name)
        return False
    except NotFound:
        pass
    except APIError as exc:
        raise EngineError(f"cannot inspect volume {name}: {_reason(exc)}", step=step) from None
    debug(f"create volume {name}")
    try:
        api.create_volume(name, driver="local", labels=labels)
    except APIError as exc:
        raise EngineError(f"cannot create volume {name}: {_reason(exc)}", step=step) from None
    return True


def labels(engine: Engine, name: str) -> dict[str, str] | None:
    """A volume's labels; None when there is no such volume."""
    from docker.errors import APIError, NotFound

    try:
        return engine.sdk.api.inspect_volume(name).get("Labels") or {}
    except NotFound:
        return None
    except APIError as exc:
        raise EngineError(f"cannot inspect volume {name}: {_reason(exc)}", step=Step.DOWN) from None


def users(engine: Engine, name: str) -> list[dict[str, str]]:
    """The labels of every container (in any state) that mounts the volume."""
    try:
        found = engine.sdk.api.containers(all=True, filters={"volume": name})
    except Exception as exc:  # docker.errors.APIError, requests errors
        raise EngineError(f"cannot list the users of volume {name}: {_reason(exc)}", step=Step.DOWN) from None
    return [c.get("Labels") or {} for c in found]


def named(engine: Engine, prefix: str) -> list[str]:
    """The names of the volumes whose name starts with `prefix`, sorted."""
    try:
        found = engine.sdk.api.volumes(filters={"name": prefix}).get("Volumes") or []
    except Exception as exc:  # docker.errors.APIError, requests errors
        raise EngineError(f"cannot list volumes on {engine.where}: {_reason(exc)}", step=Step.LIST) from None
    return sorted(v["Name"] for v in found if v.get("Name", "").startswith(prefix))


def exists(engine: Engine, name: str) -> bool:
    return any(v.name == name for v in engine.sdk.volumes.list(filters={"name": name}))


def remove(engine: Engine, name: str, *, step: str) -> bool:
    """Remove a volume; False when there is none. The engine refuses one a container uses."""
    from docker.errors import APIError, NotFound

    debug(f"remove volume {name}")
    try:
        engine.sdk.volumes.get(name).remove(force=True)
    except NotFound:
        return False
    except APIError as exc:
        raise EngineError(f"cannot remove volume {name}: {_reason(exc)}", step=step) from None
    return True
