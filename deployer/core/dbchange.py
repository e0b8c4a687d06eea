"""Whether `deployer up` would restart a swarm's database (runtime/swarm_dbguard.py): the
service that runs against the one `up` would deploy. Pure: the digest of a stack service
and the comparison."""

from __future__ import annotations

import hashlib
import json
from typing import Any

DB_SPEC_LABEL = "deployer.db-spec"  # a service label (its task's are not touched): no restart to write it


def db_spec_digest(service: dict[str, Any]) -> str:
    """What the database service is deployed with, its image left out: 16 hex digits."""
    rest = {k: v for k, v in service.items() if k != "image"}
    deploy = dict(rest.get("deploy") or {})
    deploy["labels"] = {k: v for k, v in (deploy.get("labels") or {}).items() if k != DB_SPEC_LABEL}
    rest["deploy"] = deploy
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]


def db_change(running: str, wanted: str, running_spec: str | None, spec: str, *, own_repository: str) -> str:
    """How the database service that runs (image `running`, deployed with `running_spec`,
    None before this was recorded) differs from the one `up` would deploy: '' not at all,
    "newer build" when only the image is another build of the deployer's own image from the
    same files (another base image, or --refresh-images), else what changed."""
    if running_spec is not None and running_spec != spec:
        return "settings"
    if running == wanted:
        return ""

    def own(ref: str) -> str:  # <registry>/<repository>:<inputs>-<base>@sha256:... -> <inputs>
        name, _, tag = ref.partition("@")[0].rpartition(":")
        return tag.split("-")[0] if name.endswith(f"/{own_repository}") or name == own_repository else ""

    return "newer build" if own(running) and own(running) == own(wanted) else "image"
