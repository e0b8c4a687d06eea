"""A one-shot swarm task on a node the manager's API cannot act on directly: the Engine API of
a manager reaches only its own node's volumes and containers. `down --volumes` removes the
database's volume this way when the database runs on a worker ([swarm] db_constraints).

The task runs a fixed command from an image the cluster already runs (the edge's, which has
curl), pinned to the node by id, with that node's engine socket mounted; it never restarts,
and its service is removed whatever happens.
"""

from __future__ import annotations

import secrets as random
import time

from deployer.adapters.engine import _reason, debug
from deployer.adapters.swarm import Swarm
from deployer.core import stack as stack_rule
from deployer.errors import EngineError, InputError

SOCKET = "/var/run/docker.sock"


def remove_volume(
    cluster: Swarm, node_id: str, volume: str, *, image: str, auth: dict[str, str] | None, step: str,
    limit: float = 120, owner: tuple[str, str] | None = None,
) -> bool:  # fmt: skip
    """Remove a local volume of the node `node_id`. True: removed; False: that node has no such
    volume; EngineError when the task failed or did not finish (the node is down). With
    `owner` (project, deployment id), a volume not labelled with them stays: InputError."""
    from docker.types import ContainerSpec, Healthcheck, Mount, Placement, RestartPolicy, TaskTemplate

    name = f"{volume}-remove-{random.token_hex(3)}"
    task = TaskTemplate(
        container_spec=ContainerSpec(
            image,
            command=["sh", "-c", stack_rule.volume_removal_script(volume, owner=owner)],
            user="0",
            mounts=[Mount(SOCKET, SOCKET, type="bind")],
            healthcheck=Healthcheck(test=["NONE"]),
        ),
        placement=Placement(constraints=[f"node.id == {node_id}"]),
        restart_policy=RestartPolicy(condition="none"),
    )
    debug(f"remove volume {volume} on node {node_id}")
    try:
        created = _create(cluster.api, task, name, auth)
    except Exception as exc:
        raise EngineError(f"cannot remove the volume {volume} on its node: {_reason(exc)}", step=step) from None
    try:
        deadline, why = time.monotonic() + limit, "it did not finish in time (is the node down?)"
        while time.monotonic() < deadline:
            for t in cluster.tasks(name):
                status = t.get("Status") or {}
                code = (status.get("ContainerStatus") or {}).get("ExitCode")
                if status.get("State") == "complete":
                    return True
                if status.get("State") == "failed" and code == stack_rule.VOLUME_ABSENT:
                    return False
                if status.get("State") == "failed" and code == stack_rule.VOLUME_NOT_OURS:
                    raise InputError(
                        f"everything else was removed, but not the volume {volume} on node {node_id}: it carries no "
                        "label of this deployment. If it is this deployment's, run `deployer down --volumes` again in "
                        f"a terminal and type the project name, or remove it on that node: docker volume rm {volume}"
                    )
                if status.get("State") in ("failed", "rejected"):
                    why, deadline = status.get("Err") or f"exit {code}", 0
            time.sleep(0.5)
        logs = cluster.logs(name, 5)
        raise EngineError(
            f"the volume {volume} on node {node_id} was not removed: {why}{': ' + logs if logs else ''}; "
            f"remove it on that node with `docker volume rm {volume}`",
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
