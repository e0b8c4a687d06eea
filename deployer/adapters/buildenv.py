"""The build settings of the environment, checked by every command before anything else:
DEPLOYER_BUILDER and the cache settings. Apart from build.py, which builds with them, so
that checking them costs a command none of the builder's imports."""

from __future__ import annotations

import os

from deployer.errors import InputError

CACHE_SETTINGS = ("DEPLOYER_CACHE_FROM", "DEPLOYER_CACHE_TO")


def check_environment() -> None:
    """Bad input (exit 2) before anything builds: DEPLOYER_BUILDER, and the cache settings in
    buildx's notation (`type=registry,ref=...`; the import may list several, split by `;`).
    It runs no program: every command calls it, and only a build looks for the plugin."""
    from deployer.core import buildcache

    asked_builder()
    for name in CACHE_SETTINGS:
        for spec in cache_specs(name):
            if why := buildcache.problem(spec):
                raise InputError(f"{name}={spec!r}: {why}")
        if name == "DEPLOYER_CACHE_TO" and len(cache_specs(name)) > 1:
            raise InputError(f"{name}: one cache to export to, not {len(cache_specs(name))}")


def cache_specs(name: str) -> list[str]:
    return [spec.strip() for spec in os.environ.get(name, "").split(";") if spec.strip()]


def asked_builder() -> str:
    """DEPLOYER_BUILDER: '' (buildx where it is), 'buildx' or 'classic'; anything else is bad input."""
    asked = os.environ.get("DEPLOYER_BUILDER", "").strip().lower()
    if asked not in ("", "buildx", "classic"):
        raise InputError(f"DEPLOYER_BUILDER={asked!r}: buildx (the default) or classic")
    return asked
