"""[build]: the build cache of `deployer build` and `release --build`, in buildx's notation.

    [build]
    cache_from = ["type=registry,ref=registry.example.com/shop/cache"]   # one or more
    cache_to = "type=registry,ref=registry.example.com/shop/cache,mode=max"

DEPLOYER_CACHE_FROM and DEPLOYER_CACHE_TO, when set (a CI job's `type=gha`), take their
place. The deployer's own images (edge, database, agent) build without them.
"""

from __future__ import annotations

import re

from deployer.config.data import IMAGE_REF
from deployer.config.model import Build
from deployer.config.reader import Reader
from deployer.core import buildcache

ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read(r: Reader) -> Build:
    if r.get("build") is None:
        return Build()
    r.table("build")
    raw = r.get("build.cache_from")
    if raw is None:
        raw = []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise r.error("build.cache_from", "must be a list of cache settings such as type=registry,ref=IMAGE")
    for spec in raw:
        if why := buildcache.problem(spec):
            raise r.error("build.cache_from", f"{spec!r}: {why}")
    cache_to = r.string("build.cache_to", default="") or None
    if cache_to and (why := buildcache.problem(cache_to)):
        raise r.error("build.cache_to", f"{cache_to!r}: {why}")
    return Build(cache_from=tuple(s.strip() for s in raw), cache_to=cache_to.strip() if cache_to else None)


def build_args(r: Reader, prefix: str, *, has_build: bool) -> tuple[tuple[str, str], ...]:
    """services.*.build_args: plain build arguments (they stay in the image's history, so
    never secrets); BASE_IMAGE replaces the Dockerfiles' default base."""
    table = r.table(f"{prefix}.build_args", required=False)
    if table and not has_build:
        raise r.error(f"{prefix}.build_args", f"needs {prefix}.build (the build context they are passed to)")
    args = []
    for name in table:
        key = f"{prefix}.build_args.{name}"
        if not ARG_NAME.fullmatch(name):
            raise r.error(key, "a build argument's name is letters, digits and '_'")
        value = r.string(key, default="")
        if name == "BASE_IMAGE" and not IMAGE_REF.fullmatch(value):
            raise r.error(key, f"must be an image reference such as eclipse-temurin:21-jre, not {value!r}")
        args.append((name, value))
    return tuple(args)
