"""Which registry digest a swarm release pins (docs/scale-out.md, "Images").

Swarm nodes pull each service's image by the digest its stack names, so that digest must be
the image whose ID the release records in its history, never whatever the tag names at that
moment: a tag pushed again after staging's release would otherwise reach production under
staging's image ID. A digest is a hash of the image's manifest, which names the image's
config by its hash (the image ID), so a digest an image was pulled or pushed by names that
image for as long as the registry keeps it:

    1. a promotion's digest, the one the source environment's nodes pulled;
    2. else a digest the image on the manager was pulled or pushed by (its RepoDigests in
       the registry repository) that the registry still has;
    3. else none: the manager pushes the image, and the digest of that push is pinned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from deployer.core import references


def candidates(repository: str, repo_digests: Iterable[str], first: str = "") -> list[str]:
    """The repository@sha256:... that name one image in the registry repository, `first` (a
    promotion's recorded digest) ahead of the rest; none but <repository>@sha256:<64 hex>
    (core/references.py), none twice."""
    found: list[str] = []
    for ref in (first, *repo_digests):
        if not references.problem(ref, repository) and ref not in found:
            found.append(ref)
    return found


def choose(repository: str, repo_digests: Iterable[str], exists: Callable[[str], bool], first: str = "") -> str:
    """The first candidate the registry still has (`exists`); "" when it has none, so the
    image must be pushed."""
    return next((ref for ref in candidates(repository, repo_digests, first) if exists(ref)), "")


def pinned(digest_ref: str, version: str) -> str:
    """repository@sha256:... as a stack's image: repository:version@sha256:... (the tag is
    for people reading the stack; the node pulls by the digest)."""
    repository, _, digest = digest_ref.partition("@")
    return f"{repository}:{version}@{digest}"


def unpinned(image: str) -> str:
    """A stack's repository:version@sha256:... back as repository@sha256:... ("" if none)."""
    named, sep, digest = image.partition("@")
    if not sep:
        return ""
    repository, colon, tag = named.rpartition(":")
    return f"{repository if colon and '/' not in tag else named}@{digest}"


def recorded(entry: dict[str, Any]) -> dict[str, str]:
    """service -> repository@sha256:... of a release's history entry: on a swarm, the digest
    its nodes pulled (swarm_images), else the one its image was pulled or pushed by (digests)."""
    recorded, pulled = entry.get("digests"), entry.get("swarm_images")
    found = {str(s): str(d) for s, d in (recorded if isinstance(recorded, dict) else {}).items() if d}
    for service, image in (pulled if isinstance(pulled, dict) else {}).items():
        if unpinned(str(image)):
            found[service] = unpinned(str(image))
    return found
