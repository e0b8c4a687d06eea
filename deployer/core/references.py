"""Image references that another host wrote, checked before anything pulls them.

A promotion pulls each service's image by the digest that the source environment's history
recorded, and that history is written on the source's host: a host taken over could name an
image of any registry, and the pull carries the configured registry's credentials. So a
recorded reference is pulled only when it is exactly

    <[registry] url>/<the service's image name>@sha256:<64 hex>

compared part by part (host, port, path) with nothing normalised that could make two names
equal: another case, port, user name, host suffix, `..` or path is refused.

Before the pull, the manifest that the registry serves for that digest must hash to the
digest and name the expected image ID as its config (`config_step`); the engine then checks
every layer against the manifest as it pulls.
"""

from __future__ import annotations

import hashlib
import json
import re

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(
    rf"(?P<host>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[1-9][0-9]{{0,4}}))?(?P<path>(?:/{_COMPONENT})+)"
)

MANIFESTS = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
INDEXES = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
ACCEPT = (*MANIFESTS, *INDEXES)


def _registry(match: re.Match[str]) -> str:
    return match["host"] + (f":{match['port']}" if match["port"] else "")


def problem(ref: object, repository: str) -> str:
    """Why `ref` is not <repository>@sha256:<64 hex> ("" when it is)."""
    want = REPOSITORY.fullmatch(repository)
    assert want, repository  # the config's registry.url and image name were checked
    if not isinstance(ref, str):
        return "not a string"
    if ref.count("@") != 1:
        return "it has no digest (@sha256:<64 hex>)" if "@" not in ref else "it has more than one '@'"
    name, _, digest = ref.partition("@")
    got = REPOSITORY.fullmatch(name)
    if not got:
        return "it is not a repository name (lowercase host[:port]/path, no tag, no user name)"
    if _registry(got) != _registry(want):
        return f"it names the registry {_registry(got)}, not {_registry(want)}"
    if got["path"] != want["path"]:
        return f"it names the repository {got['path'][1:]}, not {want['path'][1:]}"
    if not DIGEST.fullmatch(digest):
        return "its digest is not sha256:<64 hex>"
    return ""


def within(ref: str, repository: str) -> bool:
    """Whether `ref` is <repository>@sha256:<64 hex> or <repository>:<tag>: the only
    references the registry's credentials are sent with."""
    if ref.startswith(repository + "@"):
        return not problem(ref, repository)
    return ref.startswith(repository + ":") and bool(TAG.fullmatch(ref[len(repository) + 1 :]))


def name_of(ref: str) -> str:
    """The repository of `name[:tag]` or `name@digest` (a registry port's colon is no tag's)."""
    name = ref.partition("@")[0]
    head, colon, tail = name.rpartition(":")
    return head if colon and "/" not in tail else name


def split(repository: str) -> tuple[str, str]:
    """(host[:port], path) of a repository name."""
    match = REPOSITORY.fullmatch(repository)
    assert match, repository
    return _registry(match), match["path"][1:]


def config_step(body: bytes, digest: str, platform: tuple[str, str]) -> tuple[str, str]:
    """What a manifest says, once it hashes to `digest`: ("config", image ID) for an image
    manifest, ("manifest", digest) of the platform's (os, architecture) image in an index.
    ValueError when it hashes to something else or names neither."""
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise ValueError(f"the registry's manifest does not hash to {digest}")
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("the registry's manifest is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the registry's manifest is not a JSON object")
    config = data.get("config")
    if isinstance(config, dict) and DIGEST.fullmatch(str(config.get("digest", ""))):
        return "config", config["digest"]
    for entry in data.get("manifests") or []:
        found = entry.get("platform") if isinstance(entry, dict) else None
        ours = isinstance(found, dict) and (found.get("os"), found.get("architecture")) == platform
        if ours and DIGEST.fullmatch(str(entry.get("digest", ""))):
            return "manifest", entry["digest"]
    if "manifests" in data:
        raise ValueError(f"the registry's index has no image for {platform[0]}/{platform[1]}")
    raise ValueError("the registry's manifest names no image config (schema 1?)")
