"""Images: the deployer's own (edge, db) built from this repository, and the app's."""

from __future__ import annotations

import hashlib
from pathlib import Path

from deployer import engine
from deployer.assets import asset
from deployer.config import Config, Service
from deployer.errors import EngineError


def content_tag(folder: Path) -> str:
    """A tag that changes whenever a file of the build context changes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def own_image(name: str, base_image: str) -> str:
    """Build `deployer-<name>:<content hash>` from the shipped folder unless it exists."""
    folder = asset(name)
    tag = f"deployer-{'edge' if name == 'nginx' else 'pgvector' if name == 'db' else name}:{content_tag(folder)}"
    if not engine.image_exists(tag):
        engine.build_image(str(folder), tag, dockerfile=None, base_image=base_image, step="up")
    return tag


def missing_app_images(config: Config, version: str) -> list[Service]:
    return [s for s in config.services.values() if not engine.image_exists(s.image_ref(version))]


def build_service(config: Config, service: Service, version: str, *, step: str = "build") -> str:
    if service.build is None:
        raise EngineError(
            f"image {service.image_ref(version)} is missing and services.{service.name}.build is not set",
            step=step,
        )
    dockerfile = str(service.dockerfile) if service.dockerfile else None
    tag = service.image_ref(version)
    engine.build_image(str(service.build), tag, dockerfile=dockerfile, base_image=config.base_image, step=step)
    return tag


def ensure_app_images(config: Config, version: str, *, build: bool, say=print) -> None:
    for service in missing_app_images(config, version):
        if not build:
            raise EngineError(
                f"image {service.image_ref(version)} does not exist: build it (`deployer build {version}`) "
                "or pass --build",
                step="images",
            )
        say(f"building {service.image_ref(version)}")
        build_service(config, service, version, step="images")
