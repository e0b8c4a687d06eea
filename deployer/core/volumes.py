"""The infrastructure's volumes and whose they are: every volume the deployer creates carries
its project and deployment id, and `down --volumes` removes only volumes it can show are
this deployment's (flows/volumes.py)."""

from __future__ import annotations

from typing import Any

from deployer.core import names


def volumes(project: str, dumps_on_host: str | None = None, *, db: bool = True, pitr: bool = False) -> dict[str, str]:
    """The infrastructure's volumes, by their key in the compose file: edge-state (route
    state, lock, history), db-data (unless the database is external: `db` False), unless
    the dumps live in a host folder, dumps, and with `[backup] pitr` the pgBackRest
    repository (pgbackrest)."""
    keys = ("edge-state",) + (("db-data",) if db else ()) + (() if dumps_on_host else ("dumps",))
    keys += ("pgbackrest",) if pitr else ()
    return {k: names.volume(project, k) for k in keys}


def volume_labels(project: str, deployment: str) -> dict[str, str]:
    """What every volume the deployer creates carries: whose it is. Volume labels never change."""
    return {names.LABEL_PROJECT: project, names.LABEL_DEPLOYMENT: deployment}


def volume_spec(project: str, deployment: str, key: str) -> dict[str, Any]:
    """A volume of a swarm stack: made by the node's engine when a task first needs it, labelled
    (one that exists is used as it is)."""
    return {"name": names.volume(project, key), "labels": volume_labels(project, deployment)}


def volume_doubt(name: str, labels: dict[str, str], project: str, deployment: str, *, used_by_ours: bool) -> str:
    """Why a volume cannot be shown to be this deployment's ('' when it can): its labels name
    this project and deployment id, or (a volume made before volumes were labelled) a
    container of this deployment uses it."""
    has = labels.get(names.LABEL_DEPLOYMENT)
    if has is None and names.LABEL_PROJECT not in labels:
        if used_by_ours:
            return ""
        return (
            f"volume {name} carries no deployment label (made before volumes were labelled, or not by the "
            "deployer) and no container of this deployment uses it"
        )
    if labels.get(names.LABEL_PROJECT) != project or has != deployment:
        return (
            f"volume {name} belongs to deployment {has or 'none'!r} of project "
            f"{labels.get(names.LABEL_PROJECT) or 'none'!r}, not to this config's ({deployment or 'none'!r})"
        )
    return ""
