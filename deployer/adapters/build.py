"""Image builds: BuildKit through `docker buildx build` (python-on-whales wraps it), on the
engine the deployer talks to.

With buildx's `docker` driver the engine's own BuildKit builds: cache mounts
(`RUN --mount=type=cache`), the layer cache across builds, and cache import and export
(DEPLOYER_CACHE_FROM / DEPLOYER_CACHE_TO, in buildx's notation: a registry cache, or
`type=gha` in GitHub Actions with a builder that exports). The build's own output goes line
by line to the log the CLI set (progress.BUILD_LOG: folded on a terminal, plain lines on a pipe), and a
failure carries its last lines. The classic builder (the docker SDK) runs only where the
buildx plugin is missing, or with DEPLOYER_BUILDER=classic, and that is said once; it builds
the same Dockerfiles with their cache mounts left out."""

from __future__ import annotations

import os
import re
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from deployer.adapters import docker_cli, progress
from deployer.adapters.buildenv import asked_builder, cache_specs
from deployer.adapters.failures import reason
from deployer.core import masking
from deployer.errors import EngineError

if TYPE_CHECKING:
    from deployer.adapters.engine import Engine

TAIL = 60  # lines of the build's output an error carries


def _as_dict(spec: str) -> dict[str, str]:
    """`type=registry,ref=IMAGE` as {"type": "registry", "ref": "IMAGE"} (checked before)."""
    return {key.strip(): value.strip() for key, _, value in (item.partition("=") for item in spec.split(","))}


@cache
def builder() -> str:
    """'buildx', or 'classic' where the buildx plugin is missing (or DEPLOYER_BUILDER=classic)."""
    if asked_builder() == "classic":
        return "classic"
    return "buildx" if docker_cli.has_buildx() else "classic"


def build(
    engine: Engine,
    context: str,
    tag: str,
    *,
    dockerfile: str | None,
    buildargs: dict[str, str],
    step: str,
    say: Callable[[str], object],
    labels: dict[str, str] | None = None,
    cache_from: tuple[str, ...] = (),
    cache_to: str | None = None,
) -> str:
    """Build `tag` from `context`; returns the image ID. `labels` go on the image. `cache_from`/`cache_to`:
    [build] of the config; DEPLOYER_CACHE_FROM/DEPLOYER_CACHE_TO, when set, take their place
    (a CI job's own cache)."""
    if builder() == "classic":
        _say_classic_once(say)
        return _classic(engine, context, tag, dockerfile=dockerfile, buildargs=buildargs, step=step, labels=labels)
    docker = docker_cli.client(engine)
    imports = cache_specs("DEPLOYER_CACHE_FROM") or list(cache_from)
    exports = cache_specs("DEPLOYER_CACHE_TO") or ([cache_to] if cache_to else [])
    tail: deque[str] = deque(maxlen=TAIL)
    with (
        progress.BUILD_LOG[0](tag) as show,
        docker_cli.calling(f"building {tag}", step=step, command="docker buildx build", logs=lambda: "\n".join(tail)),
    ):
        lines = docker.buildx.build(
            context,
            file=dockerfile,
            tags=[tag],
            build_args=buildargs,
            labels=labels or {},
            # a list is python-on-whales's form for several imports, of dicts only
            cache_from=[_as_dict(spec) for spec in imports] or None,
            cache_to=exports[0] if exports else None,
            load=True,
            progress="plain",
            stream_logs=True,
        )
        for line in lines:
            line = masking.mask(line.rstrip("\n"))
            tail.append(line)
            show(line)
    image = engine.image_id(tag)
    if image is None:
        raise EngineError(f"building {tag} ended, but the engine has no image {tag}", step=step, command="buildx build")
    return image


_SAID: list[bool] = []


def _say_classic_once(say: Callable[[str], object]) -> None:
    if not _SAID:
        _SAID.append(True)
        why = (
            "DEPLOYER_BUILDER=classic" if os.environ.get("DEPLOYER_BUILDER") else "the docker buildx plugin is missing"
        )
        say(
            f"warning: building with the classic builder ({why}): slower, with no cache mounts "
            "(a Dockerfile's RUN --mount=type=cache options are left out) and no cache import or export"
        )


def _classic(engine: Engine, context: str, tag: str, *, dockerfile, buildargs, step: str, labels) -> str:
    from docker.errors import APIError, BuildError

    with _without_cache_mounts(context, dockerfile) as dockerfile:
        try:
            options = {"rm": True, "forcerm": True, "labels": labels}
            image, _ = engine.sdk.images.build(
                path=context, dockerfile=dockerfile, tag=tag, buildargs=buildargs, **options
            )
        except BuildError as exc:
            tail = "\n".join(
                str(chunk.get("stream", chunk.get("error", ""))).rstrip() for chunk in list(exc.build_log)[-15:]
            )
            raise EngineError(
                f"building {tag} failed: {exc.msg}", step=step, logs=masking.mask(tail), command="build"
            ) from None
        except APIError as exc:
            raise EngineError(f"building {tag} failed: {reason(exc)}", step=step, command="build") from None
    return image.id


CACHE_MOUNT = re.compile(r"--mount=type=cache\S*\s+(\\\n\s*)?")


@contextmanager
def _without_cache_mounts(context: str, dockerfile: str | None) -> Iterator[str | None]:
    """The Dockerfile with its `RUN --mount=type=cache,...` options left out (a copy, outside
    the context): the classic builder cannot read them, and without them the same steps run,
    only without the cache. Any other Dockerfile as it is."""
    path = Path(dockerfile) if dockerfile else Path(context) / "Dockerfile"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        text = ""
    if "--mount=type=cache" not in text:
        yield dockerfile
        return
    with tempfile.TemporaryDirectory(prefix="deployer-classic-") as tmp:
        plain = Path(tmp) / "Dockerfile"
        plain.write_text(CACHE_MOUNT.sub("", text), encoding="utf-8")
        yield str(plain)
