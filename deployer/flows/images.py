"""Images: the deployer's own (edge, db, backup agent), built from the package's data, and the app's.

An own image is tagged by a hash of the files it is built from (docs and templates do
not count), so `deployer up` rebuilds, and recreates a container, only when a build input
changed.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from deployer.adapters.engine import Engine
from deployer.assets import ROOT as ASSETS
from deployer.config import Service
from deployer.core import names
from deployer.errors import EngineError, InputError
from deployer.flows.context import Context

PACKAGE = ASSETS.parent
NOT_INPUTS = (".md", ".j2", ".pyc")
OWN = {"edge": "deployer-edge", "db": "deployer-pgvector", "agent": "deployer-agent"}


def _inputs(folder: Path, *, skip: tuple[str, ...] = ()) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not p.name.endswith(NOT_INPUTS)
        and not any(part in skip for part in p.relative_to(folder).parts)
    )


def content_tag(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _context(name: str) -> tuple[Path, list[Path], Path]:
    """(build context root, its input files, root the paths are relative to)."""
    if name in ("edge", "db"):
        folder = ASSETS / name
        return folder, _inputs(folder), folder
    # The agent: the code it runs (deployer.agent, the pure core it uses) and its Dockerfile;
    # a change anywhere else in the package does not recreate the backup service.
    files = [PACKAGE / "__init__.py", PACKAGE / "errors.py", ASSETS / "agent" / "Dockerfile"]
    files += _inputs(PACKAGE / "core") + _inputs(PACKAGE / "agent")
    return PACKAGE, sorted(files), PACKAGE


def own_image(
    engine: Engine, name: str, *, base_image: str, say: Callable[[str], object] = print, step: str = "up"
) -> str:
    """Build `<deployer-name>:<content hash>` on the engine unless it is there; returns the tag."""
    folder, files, root = _context(name)
    tag = f"{OWN[name]}:{content_tag(files, root)}"
    if engine.image_id(tag):
        return tag
    say(f"building {tag}")
    with tempfile.TemporaryDirectory(prefix="deployer-build-") as tmp:
        context = Path(tmp)
        for path in files:
            target = context / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        dockerfile = "assets/agent/Dockerfile" if name == "agent" else None
        engine.build(str(context), tag, dockerfile=dockerfile, buildargs={"BASE_IMAGE": base_image}, step=step)
    return tag


def missing(ctx: Context, version: str) -> list[Service]:
    return [s for s in ctx.config.services.values() if not ctx.engine.image_id(s.image_ref(version))]


def ids(ctx: Context, version: str) -> dict[str, str]:
    """The image ID of every service at a version (for the history, and promotion by digest)."""
    return {s.name: ctx.engine.image_id(s.image_ref(version)) or "" for s in ctx.config.services.values()}


def build_service(ctx: Context, service: Service, version: str, *, step: str = "build") -> str:
    if service.build is None:
        raise EngineError(
            f"image {service.image_ref(version)} is missing and services.{service.name}.build is not set", step=step
        )
    dockerfile = str(service.dockerfile) if service.dockerfile else None
    tag = service.image_ref(version)
    ctx.engine.build(
        str(service.build),
        tag,
        dockerfile=dockerfile,
        buildargs={"BASE_IMAGE": ctx.config.base_image, **dict(service.build_args)},
        step=step,
        labels={names.LABEL_PROJECT: ctx.config.name},  # `deployer prune` removes its dangling layers
    )
    return tag


def ensure_app_images(ctx: Context, version: str, *, build: bool) -> None:
    for service in missing(ctx, version):
        if not build:
            where = f" on {ctx.engine.host}" if ctx.engine.remote else ""
            raise EngineError(
                f"image {service.image_ref(version)} does not exist{where}: build it (`deployer build {version}`) "
                + ("on that engine, or move it there" if ctx.engine.remote else "or pass --build"),
                step="images",
            )
        ctx.say(f"building {service.image_ref(version)}")
        build_service(ctx, service, version, step="images")


def build_all(ctx: Context, version: str, progress: Callable[[Service], object] | None = None) -> list[str]:
    targets = [s for s in ctx.config.services.values() if s.build]
    if not targets:
        raise InputError(f"{ctx.config.path}: no service has a `build` context to build")
    built = []
    for service in targets:
        if progress:
            progress(service)
        built.append(build_service(ctx, service, version))
    return built
