"""A one-shot swarm task on a node the manager's API cannot act on directly: the Engine API of
a manager reaches only its own node's volumes and containers. `down --volumes` removes the
database's volume this way when the database runs on a worker ([swarm] db_constraints).

Before anything is removed, another such task checks that the volume is this deployment's.
The task runs a fixed command from an image the cluster already runs (the edge's, which has
curl), pinned to the node by id, with that node's engine socket mounted; it never restarts,
and its service is removed whatever happens.
"""

from __future__ import annotations

import secrets as random

from deployer.adapters.engine import debug
from deployer.adapters.failures import reason as _reason
from deployer.adapters.polling import until
from deployer.adapters.swarm import Swarm
from deployer.core import node_volume
from deployer.errors import EngineError, InputError

SOCKET = node_volume.SOCKET


def check_volume(
    cluster: Swarm, node_id: str, volume: str, *, image: str, auth: dict[str, str] | None, step: str,
    owner: tuple[str, str], limit: float = 120,
) -> bool | None:  # fmt: skip
    """Whether the node's volume is this deployment's (labelled with `owner`), before anything
    is removed: True yes, False no, None the node has no such volume; EngineError when the task
    failed or did not finish (the node is down)."""
    code = _run(cluster, node_id, volume, node_volume.check_script(volume, owner), "check", image, auth, step, limit)
    return {node_volume.OURS: True, node_volume.NOT_OURS: False}.get(code)


def remove_volume(
    cluster: Swarm, node_id: str, volume: str, *, image: str, auth: dict[str, str] | None, step: str,
    limit: float = 120, owner: tuple[str, str] | None = None,
) -> bool:  # fmt: skip
    """Remove a local volume of the node `node_id`. True: removed; False: that node has no such
    volume; EngineError when the task failed or did not finish (the node is down). With
    `owner` (project, deployment id), a volume not labelled with them stays: InputError."""
    script = node_volume.removal_script(volume, owner=owner)
    code = _run(cluster, node_id, volume, script, "remove", image, auth, step, limit)
    if code == node_volume.NOT_OURS:
        raise InputError(
            f"everything else was removed, but not the volume {volume} on node {node_id}: it carries no "
            "label of this deployment. If it is this deployment's, run `deployer down --volumes` again in "
            f"a terminal and type the project name, or remove it on that node: docker volume rm {volume}"
        )
    return code == 0


def _run(
    cluster: Swarm, node_id: str, volume: str, script: str, what: str, image: str,
    auth: dict[str, str] | None, step: str, limit: float,
) -> int:  # fmt: skip
    """Run `script` in a one-shot task on the node; its exit code when it ended with 0,
    ABSENT or NOT_OURS. The task's service is removed whatever happens."""
    from docker.types import ContainerSpec, Healthcheck, Mount, Placement, RestartPolicy, TaskTemplate

    name = f"{volume}-{what}-{random.token_hex(3)}"
    task = TaskTemplate(
        container_spec=ContainerSpec(
            image,
            command=["sh", "-c", script],
            user="0",
            mounts=[Mount(SOCKET, SOCKET, type="bind")],
            healthcheck=Healthcheck(test=["NONE"]),
        ),
        placement=Placement(constraints=[f"node.id == {node_id}"]),
        restart_policy=RestartPolicy(condition="none"),
    )
    debug(f"{what} volume {volume} on node {node_id}")
    try:
        created = _create(cluster.api, task, name, auth)
    except Exception as exc:
        raise EngineError(f"cannot {what} the volume {volume} on its node: {_reason(exc)}", step=step) from None
    try:

        def ended() -> tuple[int | None, str] | None:
            """(its exit code, '') once it ended as the script tells; (None, why) when it failed."""
            for t in cluster.tasks(name):
                status = t.get("Status") or {}
                code = (status.get("ContainerStatus") or {}).get("ExitCode")
                if status.get("State") == "complete":
                    return 0, ""
                if status.get("State") == "failed" and code in (node_volume.ABSENT, node_volume.NOT_OURS):
                    return code, ""
                if status.get("State") in ("failed", "rejected"):
                    return None, status.get("Err") or f"exit {code}"
            return None

        # The task's end reaches no client as an event: the manager's task list is read again.
        code, why = until(ended, seconds=limit, every=0.5) or (None, "it did not finish in time (is the node down?)")
        if code is not None:
            return code
        logs = cluster.logs(name, 5)
        raise EngineError(
            f"the volume {volume} on node {node_id} could not be {'checked' if what == 'check' else 'removed'}: "
            f"{why}{': ' + logs if logs else ''}; "
            + ("is the node up?" if what == "check" else f"remove it on that node with `docker volume rm {volume}`"),
            step=step,
        )
    finally:
        try:
            cluster.api.remove_service(created["ID"])
        except Exception:
            debug(f"keep service {name}")


def _create(api, task, name: str, auth: dict[str, str] | None) -> dict:
    """Create the service; the nodes pull its image with `auth` (registry.env_file), else with
    the CLI's Docker login, as docker-py's create_service sends it."""
    if auth is None:
        return api.create_service(task, name=name)
    from docker.auth import encode_header

    body = {"Name": name, "TaskTemplate": task, "Mode": {"Replicated": {"Replicas": 1}}}
    headers = {"X-Registry-Auth": encode_header(auth)}
    return api._result(api._post_json(api._url("/services/create"), data=body, headers=headers), True)
