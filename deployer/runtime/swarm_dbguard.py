"""The database keeps running through `deployer up` on a swarm, as on one host
(flows/dbguard.py): any change to its service makes swarm replace its task, a PostgreSQL
restart under live traffic. Before the database's stack is deployed, `up` compares the
service it would deploy with the one that runs (core/dbchange.py):

- the same: nothing to do;
- only the image, another build of the deployer's own database image from the same files (a
  newer base image, or `--refresh-images`): the database keeps the image it runs, and says so;
- anything else (its settings, or the image [database] image names): refused, exit 2, and no
  service is changed;
- with `--recreate-db`: a verified dump first, then swarm replaces the task.

What the service was deployed with is recorded as a digest in one of its service labels
(not its task's, so writing it restarts nothing). A database deployed before that label
existed has only its image compared, once: the `up` that writes the label.
"""

from __future__ import annotations

from typing import Any

from deployer.adapters.swarm import Swarm
from deployer.core import dbchange
from deployer.core import stack as stack_rule
from deployer.core.steps import Step
from deployer.errors import InputError
from deployer.flows.context import Context
from deployer.flows.images import OWN


def settle(ctx: Context, cluster: Swarm, data: dict[str, Any], *, recreate: bool) -> dict[str, Any]:
    """The database stack to deploy: `data` with its digest label, and with the running image
    kept when only a newer build of ours would replace it. Raises InputError on a change that
    needs `--recreate-db`, and dumps first when it is given."""
    db = dict(data["services"]["db"])
    spec = dbchange.db_spec_digest(db)
    db["deploy"] = {**db["deploy"], "labels": {**db["deploy"].get("labels", {}), dbchange.DB_SPEC_LABEL: spec}}
    data = {**data, "services": {**data["services"], "db": db}}
    current = cluster.service(stack_rule.service_name(stack_rule.db_stack(ctx.config.name), "db"))
    if current is None:
        return data
    running = (((current.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
    recorded = ((current.get("Spec") or {}).get("Labels") or {}).get(dbchange.DB_SPEC_LABEL)
    change = dbchange.db_change(running, db["image"], recorded, spec, own_repository=OWN["db"])
    if not change:
        return data
    if recreate:
        from deployer.flows import backups

        ctx.say(f"database: its {change} changed: dumping it before swarm replaces its task")
        name = backups.take(ctx, label="before recreating the database", step=Step.UP)
        ctx.say(f"database: {name} written and verified; updating the database service")
        return data
    if change == "newer build":
        ctx.say(
            f"database: keeps running its image {running.partition('@')[0]}; {db['image'].partition('@')[0]} is a "
            "newer build of it: `deployer up --recreate-db` moves the database to it, after a verified dump"
        )
        db["image"] = running
        return data
    raise InputError(
        f"`deployer up` would make swarm replace the database's task, a PostgreSQL restart under live traffic, "
        f"because its {change} changed: no service was changed. Put the old settings back, or run `deployer up "
        "--recreate-db`, which takes a verified dump first (the data stays in its volume)"
    )
