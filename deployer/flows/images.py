"""Images: the deployer's own (edge, db, backup agent), built from the package's data, and the app's.

An own image is tagged `<hash of the files it is built from>-<base image ID>` (docs and
templates do not count): `deployer up` builds a new one when a build input changed or when
the base image (project.base_image) is another image than at the last build, for example a
newer debian:trixie-slim with security fixes. `deployer up --refresh-images` builds them
again without the build cache of earlier builds (apt fetches today's packages) under the
same tags: their Dockerfiles' DEPLOYER_FRESH argument gets a value no build had (`fresh_token`),
so every RUN step runs again, and the images of that one `up` still share the steps they
have in common (the database image's and the agent's PostgreSQL layer). Each
carries labels (core/names.py LABEL_OWN...) that say what it was built from; its build
date is the image's own creation time (`deployer status` shows its age).
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployer.adapters import build as builds
from deployer.adapters.engine import Engine
from deployer.assets import ROOT as ASSETS
from deployer.config import Service
from deployer.core import names, references
from deployer.core.steps import Step
from deployer.errors import EngineError, InputError
from deployer.flows.context import Context

PACKAGE = ASSETS.parent
NOT_INPUTS = (".md", ".j2", ".pyc")
OWN = {"edge": "deployer-edge", "db": "deployer-pgvector", "agent": "deployer-agent"}
FRESH_ARG = "DEPLOYER_FRESH"  # the own Dockerfiles' argument that `--refresh-images` sets


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


def own_tag(name: str, inputs: str, base_id: str) -> str:
    """`deployer-edge:<inputs>-<base>`: 12 hex digits of each."""
    return f"{OWN[name]}:{inputs}-{base_id.removeprefix('sha256:')[:12]}"


def pull_base(engine: Engine, base_image: str, say: Callable[[str], object], *, step: str) -> None:
    """Ask the base image's registry for its newest build; the local one stays when it cannot."""
    from deployer.adapters import images as transfer

    if "@" in base_image:
        say(f"base image {base_image}: pinned by its digest, so there is no newer build to pull")
        return
    repository = references.name_of(base_image)
    reference = base_image if repository != base_image else f"{base_image}:latest"  # as `docker pull NAME`
    try:
        transfer.pull(engine, reference, None, repository=repository, step=step)
        say(f"base image {base_image}: pulled its newest build")
    except EngineError as exc:
        have = engine.image_id(base_image)
        say(f"base image {base_image}: not pulled ({exc}); " + ("using the local one" if have else "none here"))


def fresh_token() -> str:
    """A value of DEPLOYER_FRESH for one `up --refresh-images`, that no build had before."""
    return secrets.token_hex(8)


def own_image(
    engine: Engine,
    name: str,
    *,
    base_image: str,
    say: Callable[[str], object] = print,
    step: str = Step.UP,
    fresh: str = "",
) -> str:
    """Build `<deployer-name>:<inputs>-<base>` on the engine unless it is there (`fresh`: one
    `--refresh-images`'s `fresh_token`, build it again with every step run anew); returns the tag."""
    folder, files, root = _context(name)
    inputs = content_tag(files, root)
    base_id = engine.image_id(base_image)
    if base_id is None:
        pull_base(engine, base_image, say, step=step)
        base_id = engine.image_id(base_image)
    if base_id is None:
        return _without_base(engine, name, inputs, base_image, say, step=step)
    tag = own_tag(name, inputs, base_id)
    if not fresh and engine.image_id(tag):
        return tag
    say(f"rebuilding {tag} without the build cache of earlier builds" if fresh else f"building {tag}")
    labels = {
        names.LABEL_OWN: name,
        names.LABEL_INPUTS: inputs,
        names.LABEL_BASE: base_image,
        names.LABEL_BASE_ID: base_id,
    }
    with tempfile.TemporaryDirectory(prefix="deployer-build-") as tmp:
        _copy(files, root, Path(tmp))
        builds.build(
            engine,
            tmp,
            tag,
            dockerfile=str(Path(tmp) / "assets/agent/Dockerfile") if name == "agent" else None,
            buildargs={"BASE_IMAGE": base_image, **({FRESH_ARG: fresh} if fresh else {})},
            step=step,
            say=say,
            labels=labels,
        )
    return tag


def _copy(files: list[Path], root: Path, context: Path) -> None:
    """The build inputs, and nothing else, into a build context."""
    for path in files:
        target = context / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _without_base(engine: Engine, name: str, inputs: str, base_image: str, say, *, step: str) -> str:
    """The newest image built from these inputs, when the base image is gone (untagged by an
    image prune, say) and cannot be pulled."""
    from deployer.adapters import images as transfer

    for found in transfer.labelled(engine, {names.LABEL_OWN: name, names.LABEL_INPUTS: inputs}):
        tag = next((t for t in found.get("RepoTags") or [] if t.startswith(f"{OWN[name]}:")), None)
        if tag:
            say(f"the base image {base_image} is not on {engine.where}: keeping {tag}, built from it before")
            return tag
    raise EngineError(
        f"the base image {base_image} (project.base_image) is not on {engine.where} and could not be pulled: "
        "load it there (docker pull, or docker save | docker load), or set another project.base_image",
        step=step,
    )


def drop_replaced(engine: Engine) -> list[str]:
    """Remove the deployer's own images that a build under the same tag replaced (untagged now),
    unless a container still runs one; returns the IDs removed."""
    from deployer.adapters import images as transfer

    found = transfer.labelled(engine, {names.LABEL_OWN: None}, untagged=True)
    return [i["Id"] for i in found if transfer.remove_unused(engine, i["Id"])]


def missing(ctx: Context, version: str) -> list[Service]:
    return [s for s in ctx.config.services.values() if not ctx.engine.image_id(s.image_ref(version))]


def ids(ctx: Context, version: str) -> dict[str, str]:
    """The image ID of every service at a version (for the history, and promotion by digest)."""
    return {s.name: ctx.engine.image_id(s.image_ref(version)) or "" for s in ctx.config.services.values()}


def build_service(ctx: Context, service: Service, version: str, *, step: str = Step.BUILD) -> str:
    if service.build is None:
        raise EngineError(
            f"image {service.image_ref(version)} is missing and services.{service.name}.build is not set", step=step
        )
    dockerfile = str(service.dockerfile) if service.dockerfile else None
    tag = service.image_ref(version)
    builds.build(
        ctx.engine,
        str(service.build),
        tag,
        dockerfile=dockerfile,
        say=ctx.say,
        # the templates' HEALTHCHECK probes the service's health path: set in deployer.toml alone
        buildargs={"BASE_IMAGE": ctx.config.base_image, "HEALTHCHECK_PATH": service.health, **dict(service.build_args)},
        step=step,
        # `deployer prune` removes its dangling layers; the OCI labels say what it was built from
        labels={names.LABEL_PROJECT: ctx.config.name, **oci_labels(service.build, version)},
        cache_from=ctx.config.build.cache_from,
        cache_to=ctx.config.build.cache_to,
    )
    return tag


def oci_labels(context: Path, version: str) -> dict[str, str]:
    """org.opencontainers.image.{version,revision,source}: the release version, and the git
    commit and remote of the build context when it is in a git work tree (the remote's
    credentials, if its URL has any, are left out)."""
    from urllib.parse import urlsplit, urlunsplit

    labels = {"org.opencontainers.image.version": version}
    git = shutil.which("git")
    if git is None:
        return labels

    def ask(*args: str) -> str:
        try:
            done = subprocess.run([git, "-C", str(context), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    if revision := ask("rev-parse", "HEAD"):
        labels["org.opencontainers.image.revision"] = revision
    if remote := ask("config", "--get", "remote.origin.url"):
        parts = urlsplit(remote)
        if parts.scheme and "@" in parts.netloc:
            remote = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
        labels["org.opencontainers.image.source"] = remote
    return labels


def ensure_app_images(ctx: Context, version: str, *, build: bool) -> None:
    for service in missing(ctx, version):
        if not build:
            where = f" on {ctx.engine.host}" if ctx.engine.remote else ""
            raise EngineError(
                f"image {service.image_ref(version)} does not exist{where}: build it (`deployer build {version}`) "
                + ("on that engine, or move it there" if ctx.engine.remote else "or pass --build"),
                step=Step.IMAGES,
            )
        ctx.say(f"building {service.image_ref(version)}")
        build_service(ctx, service, version, step=Step.IMAGES)


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


def ages(ctx: Context, refs: dict[str, str]) -> dict[str, Any]:
    """Each infra part's image (by reference or ID): its tag, build date and age (core/freshness.py)."""
    from datetime import UTC, datetime

    from deployer.adapters import images
    from deployer.core import freshness

    now, out = datetime.now(UTC), {}
    for part, ref in refs.items():
        info = images.image(ctx.engine, ref) if ref else None
        if info:
            tags = [t for t in info.get("RepoTags") or [] if not t.startswith("<none>")]
            labels = (info.get("Config") or {}).get("Labels") or {}
            out[part] = freshness.entry(tags[0] if tags else info["Id"][:19], info.get("Created", ""), labels, now)
    return out
