"""The Docker Engine adapter: one lazily created SDK client and the few calls we need.

The docker SDK is used where an Engine API call is simpler or faster than the
CLI (exec, inspect, labels). Compose goes through python-on-whales in colours.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from deployer.errors import EngineError

LABEL_PROJECT = "deployer.project"
LABEL_COLOUR = "deployer.colour"
LABEL_VERSION = "deployer.version"
LABEL_SERVICE = "deployer.service"
LABEL_RELEASE = "deployer.release"


@functools.cache
def client() -> Any:
    import docker
    from docker.errors import DockerException

    try:
        return docker.from_env(timeout=120)
    except DockerException as exc:
        raise EngineError(f"cannot reach the Docker engine: {exc}", step="engine") from None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


def exec_in(container: str, argv: list[str], *, step: str) -> ExecResult:
    """Run argv inside a running container; argv must hold no secret."""
    from docker.errors import APIError, NotFound

    try:
        c = client().containers.get(container)
        code, (out, err) = c.exec_run(argv, demux=True)
    except NotFound:
        raise EngineError(f"container {container} does not exist (run `deployer up`)", step=step) from None
    except APIError as exc:
        raise EngineError(f"exec in {container} failed: {exc.explanation or exc}", step=step) from None
    return ExecResult(code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace"))


@dataclass(frozen=True)
class Container:
    name: str
    service: str
    colour: str
    version: str
    release: str  # the release id: its containers answer to <service>-<colour>-<release>
    status: str  # running, exited, restarting, ...
    health: str  # healthy, unhealthy, starting, or '' without a healthcheck
    restart_count: int
    exit_code: int
    started_at: str

    @property
    def failed(self) -> bool:
        """Exited, dead or restarting: it will not become healthy by waiting."""
        return self.status in ("exited", "dead", "restarting") or self.restart_count > 0


def colour_containers(project: str, colour: str | None = None) -> list[Container]:
    """Containers of the app stack of one project, found by their labels (all states)."""
    filters = [f"{LABEL_PROJECT}={project}"]
    if colour:
        filters.append(f"{LABEL_COLOUR}={colour}")
    from docker.errors import NotFound

    api = client().api
    found = []
    try:
        for summary in api.containers(all=True, filters={"label": filters}):
            try:
                found.append(_container(api.inspect_container(summary["Id"])))
            except NotFound:
                continue  # removed since the listing (an old standby that a release retires)
    except Exception as exc:  # docker.errors.APIError, requests errors
        raise EngineError(f"cannot list containers: {exc}", step="inspect") from None
    return found


def _container(attrs: dict[str, Any]) -> Container:
    labels = attrs["Config"].get("Labels") or {}
    state = attrs.get("State") or {}
    return Container(
        name=attrs["Name"].lstrip("/"),
        service=labels.get(LABEL_SERVICE, ""),
        colour=labels.get(LABEL_COLOUR, ""),
        version=labels.get(LABEL_VERSION, ""),
        release=labels.get(LABEL_RELEASE, ""),
        status=state.get("Status", ""),
        health=(state.get("Health") or {}).get("Status", ""),
        restart_count=int(attrs.get("RestartCount") or 0),
        exit_code=int(state.get("ExitCode") or 0),
        started_at=state.get("StartedAt", ""),
    )


def container_logs(name: str, lines: int = 30) -> str:
    try:
        raw = client().containers.get(name).logs(tail=lines, stdout=True, stderr=True)
    except Exception:
        return ""
    return raw.decode(errors="replace").rstrip()


def stop_and_remove(name: str, grace: float) -> None:
    """SIGTERM, SIGKILL after `grace` seconds, then remove with its anonymous volumes; gone already is fine."""
    from docker.errors import APIError, NotFound

    api = client().api
    try:
        api.stop(name, timeout=max(1, round(grace)))
        api.remove_container(name, v=True, force=True)
    except NotFound:
        pass
    except APIError as exc:
        if exc.status_code != 409 or "in progress" not in str(exc):  # another remover got there first
            raise EngineError(f"cannot remove {name}: {exc.explanation or exc}", step="remove") from None


def container_state(name: str) -> dict[str, Any] | None:
    from docker.errors import NotFound

    try:
        return client().containers.get(name).attrs
    except NotFound:
        return None


def published_port(attrs: dict[str, Any], container_port: int) -> int:
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = ports.get(f"{container_port}/tcp") or []
    for b in bindings:
        if b.get("HostPort"):
            return int(b["HostPort"])
    raise EngineError(f"port {container_port} of {attrs['Name'].lstrip('/')} is not published", step="inspect")


def image_exists(ref: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client().images.get(ref)
        return True
    except ImageNotFound:
        return False


def build_image(context: str, tag: str, *, dockerfile: str | None, base_image: str, step: str) -> None:
    """Build with the classic builder through the Engine API, streaming errors back."""
    from docker.errors import APIError, BuildError

    try:
        client().images.build(
            path=context,
            dockerfile=dockerfile,
            tag=tag,
            buildargs={"BASE_IMAGE": base_image},
            rm=True,
            forcerm=True,
        )
    except BuildError as exc:
        tail = "\n".join(
            str(chunk.get("stream", chunk.get("error", ""))).rstrip() for chunk in list(exc.build_log)[-15:]
        )
        raise EngineError(f"building {tag} failed: {exc.msg}", step=step, logs=tail) from None
    except APIError as exc:
        raise EngineError(f"building {tag} failed: {exc.explanation or exc}", step=step) from None


def ensure_network(name: str, *, internal: bool) -> None:
    from docker.errors import NotFound

    c = client()
    try:
        net = c.networks.get(name)
    except NotFound:
        c.networks.create(name, driver="bridge", internal=internal, labels={LABEL_PROJECT: name.rsplit("-", 1)[0]})
        return
    if bool(net.attrs.get("Internal")) != internal:
        raise EngineError(
            f"network {name} exists with internal={net.attrs.get('Internal')}, expected {internal}; remove it first",
            step="up",
        )
