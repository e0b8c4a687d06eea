"""A build cache setting in buildx's notation (`type=registry,ref=IMAGE`, `type=gha,scope=S`,
...): each part key=value, one of them type=. Pure; [build] cache_from/cache_to in
deployer.toml and DEPLOYER_CACHE_FROM/DEPLOYER_CACHE_TO are checked by the same rule."""

from __future__ import annotations


def problem(spec: str) -> str | None:
    """Why `spec` is not a cache setting, or None."""
    pairs = [item.partition("=") for item in spec.split(",")]
    if any(not key.strip() or not eq or not value.strip() for key, eq, value in pairs):
        return "each part is key=value, as in type=registry,ref=IMAGE"
    if "type" not in {key.strip() for key, _, _ in pairs}:
        return "names no type= (registry, gha, local, inline, ...)"
    return None
