"""Disk on the Docker host: release images (listed, removed), dangling build layers, and
how full the filesystems under the database volume and the dumps are.

Uses the engine adapter's client, like every adapter; never removes an image by force,
so the engine itself refuses to delete one that a container uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.adapters.engine import Engine, debug
from deployer.adapters.failures import reason as _reason
from deployer.core.steps import Step
from deployer.errors import EngineError


@dataclass(frozen=True)
class Image:
    """An image on the engine, as `prune` judges it."""

    id: str
    tags: tuple[str, ...]  # repository:tag
    created: int  # epoch seconds
    size: int  # bytes, with the layers it shares with other images


@dataclass(frozen=True)
class Usage:
    """The disk use of a folder of the Docker host (None: not known)."""

    used: int | None  # bytes under the folder
    free: int | None  # bytes free on its filesystem
    total: int | None


def images(engine: Engine, repository: str) -> list[Image]:
    """Every image with a tag of this repository."""
    try:
        found = engine.sdk.api.images(name=repository)
    except Exception as exc:
        raise EngineError(f"cannot list the images of {repository}: {_reason(exc)}", step=Step.PRUNE) from None
    return [
        Image(
            i["Id"],
            tuple(t for t in i.get("RepoTags") or () if t.rsplit(":", 1)[0] == repository),
            int(i.get("Created") or 0),
            int(i.get("Size") or 0),
        )
        for i in found
    ]


def used_image_ids(engine: Engine) -> set[str]:
    """The image of every container on the engine, in any state (ours or not)."""
    try:
        return {c.get("ImageID", "") for c in engine.sdk.api.containers(all=True)}
    except Exception as exc:
        raise EngineError(f"cannot list the containers: {_reason(exc)}", step=Step.PRUNE) from None


def remove_tag(engine: Engine, ref: str) -> str:
    """Remove one tag (the image goes with its last tag, unless a container uses it);
    returns why it could not, or ''."""
    from docker.errors import APIError, NotFound

    debug(f"remove image {ref}")
    try:
        engine.sdk.api.remove_image(ref, force=False, noprune=False)
    except NotFound:
        return ""
    except APIError as exc:
        return _reason(exc)
    return ""


def prune_dangling(engine: Engine, label: str) -> tuple[int, int]:
    """Remove dangling images (untagged build layers) that carry this label: (count, bytes)."""
    try:
        answer = engine.sdk.api.prune_images(filters={"dangling": True, "label": [label]})
    except Exception as exc:
        raise EngineError(f"cannot prune dangling images: {_reason(exc)}", step=Step.PRUNE) from None
    deleted = [d for d in answer.get("ImagesDeleted") or [] if d.get("Deleted")]
    return len(deleted), int(answer.get("SpaceReclaimed") or 0)


def usage(engine: Engine, container: str, folder: str) -> Usage:
    """Bytes under `folder` of a running container, and the free and total bytes of the
    filesystem it is on (the Docker host's disk, for a volume)."""
    script = (
        f'echo "used $(du -sb {folder} 2>/dev/null | cut -f1)"; '
        f'df -B1 -P {folder} 2>/dev/null | awk \'NR==2 {{print "free", $4; print "total", $2}}\''
    )
    try:
        result = engine.exec(container, ["sh", "-c", script], step=Step.STATUS)
    except EngineError:
        return Usage(None, None, None)
    found = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        found[key] = int(value) if value.strip().isdigit() else None
    return Usage(found.get("used"), found.get("free"), found.get("total"))
