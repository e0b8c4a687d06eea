"""Whose volumes they are. `up` creates the infrastructure's volumes labelled with the project
and the deployment id; `down --volumes` removes only the volumes it can show are this
deployment's (the rule: core/volumes.py volume_doubt), and otherwise refuses, exit 2 and
nothing removed, unless the project name is typed at its prompt: a `--yes` in a script
confirms deleting this deployment's data, it cannot vouch for volumes nobody can tell apart.

Without this, a `down --volumes` with no edge left (nothing to read the deployment id from)
would remove, by name, the database of another deployment of the same project name.
"""

from __future__ import annotations

from typing import Any

from deployer.adapters import volumes
from deployer.core import names
from deployer.core import volumes as ownership
from deployer.errors import InputError
from deployer.flows.context import Context

REMOVED = ("db-data", "edge-state")  # what `down --volumes` removes (the dumps stay)


def removed(config) -> tuple[str, ...]:
    """What `down --volumes` removes: never a database volume when the database is external."""
    return ("edge-state",) if config.database.external else REMOVED


def create(ctx: Context, data: dict[str, Any], *, step: str) -> None:
    """Create the compose file's external volumes that do not exist yet, labelled."""
    labels = ownership.volume_labels(ctx.config.name, ctx.config.deployment)
    for volume in data.get("volumes", {}).values():
        if volume.get("external"):
            volumes.ensure(ctx.engine, volume["name"], labels, step=step)


def doubts(ctx: Context, keys: tuple[str, ...] = REMOVED) -> list[str]:
    """Why each of these volumes that exists on the engine cannot be shown to be this
    deployment's; empty when every one can."""
    config = ctx.config
    found = []
    for key in keys:
        name = names.volume(config.name, key)
        labels = volumes.labels(ctx.engine, name)
        if labels is None:
            continue
        ours = labels.get(names.LABEL_DEPLOYMENT) is None and any(
            u.get(names.LABEL_PROJECT) == config.name and u.get(names.LABEL_DEPLOYMENT, "") == config.deployment
            for u in volumes.users(ctx.engine, name)
        )
        doubt = ownership.volume_doubt(name, labels, config.name, config.deployment, used_by_ours=ours)
        if doubt:
            found.append(doubt)
    return found


def refusal(found: list[str]) -> InputError:
    return InputError(
        f"down --volumes: {'; '.join(found)}. Nothing was removed: run it in a terminal and type the project "
        "name when asked if they are this deployment's (--yes does not vouch for them), or remove them by hand"
    )
