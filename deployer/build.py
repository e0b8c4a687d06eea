"""`deployer build VERSION`: build and tag every service image that has a build context."""

from __future__ import annotations

import time

from deployer import images
from deployer.config import Config
from deployer.errors import InputError


def build_all(config: Config, version: str) -> list[str]:
    from rich.console import Console

    targets = [s for s in config.services.values() if s.build]
    if not targets:
        raise InputError(f"{config.path}: no service has a `build` context to build")
    console = Console(stderr=True)
    built = []
    for service in targets:
        started = time.monotonic()
        with console.status(f"building {service.image_ref(version)} from {service.build} ..."):
            built.append(images.build_service(config, service, version))
        console.print(f"built {service.image_ref(version)} in {time.monotonic() - started:.1f}s")
    return built
