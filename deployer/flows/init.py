"""`deployer init [DIR]`: a commented deployer.toml and the two Dockerfiles for an existing app.

The config is the annotated example (examples/deployer.toml) with this project's
names and paths, so the reference and the generated file never drift apart.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from deployer.assets import asset, example_config
from deployer.errors import InputError

SUBSTITUTIONS = (
    ('name = "shop"', 'name = "{name}"'),
    ('id = "shopexample2026"', 'id = "{id}"'),
    ('image = "shop-backend"', 'image = "{name}-backend"'),
    ('image = "shop-frontend"', 'image = "{name}-frontend"'),
    ('dockerfile = "../deployer/assets/templates/spring-boot.Dockerfile"', 'dockerfile = "backend/Dockerfile"'),
    ('dockerfile = "../deployer/assets/templates/nextjs.Dockerfile"', 'dockerfile = "frontend/Dockerfile"'),
    ("public_port = 8080", "public_port = 80"),
)


@dataclass(frozen=True)
class Written:
    path: Path
    action: str  # "wrote", "overwrote" or "kept"


def project_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:32].rstrip("-")
    return name if len(name) >= 2 else "app"


def config_text(name: str) -> str:
    text = example_config().read_text(encoding="utf-8")
    for old, new in SUBSTITUTIONS:
        if old not in text:
            raise RuntimeError(f"examples/deployer.toml no longer contains {old!r}")
        text = text.replace(old, new.format(name=name, id=secrets.token_hex(8)), 1)
    header = f"# deployer.toml for {name}, written by `deployer init`. Every key is explained below.\n"
    return header + text.split("\n", 3)[3]


def env_files() -> dict[str, str]:
    password = secrets.token_hex(18)
    return {
        "db.env": f"POSTGRES_USER=app\nPOSTGRES_PASSWORD={password}\n",
        "backend.env": (
            "SPRING_DATASOURCE_URL=jdbc:postgresql://db:5432/app\n"
            f"SPRING_DATASOURCE_USERNAME=app\nSPRING_DATASOURCE_PASSWORD={password}\n"
        ),
    }


def init(folder: Path, *, force: bool) -> list[Written]:
    missing = [d for d in ("backend", "frontend") if not (folder / d).is_dir()]
    if missing:
        raise InputError(f"{folder}: no {missing[0]}/ folder (init expects backend/ and frontend/)")
    files = {
        folder / "deployer.toml": config_text(project_name(folder)),
        folder / "backend" / "Dockerfile": asset("templates", "spring-boot.Dockerfile").read_text(),
        folder / "frontend" / "Dockerfile": asset("templates", "nextjs.Dockerfile").read_text(),
    }
    existing = [p for p in files if p.exists()]
    if existing and not force:
        raise InputError(f"{existing[0]} exists; nothing was written (use --force to overwrite)")
    written = []
    for path, text in files.items():
        action = "overwrote" if path.exists() else "wrote"
        path.write_text(text, encoding="utf-8")
        written.append(Written(path, action))
    for name, text in env_files().items():  # secrets: never overwritten, owner-only
        path = folder / name
        if path.exists():
            written.append(Written(path, "kept"))
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        written.append(Written(path, "wrote"))
    return written


NEXT_STEPS = """
Next steps:
  1. Keep db.env and backend.env out of git (they hold the database password).
  2. Read deployer.toml: ports, health paths and routes are the ones to check.
  3. Build the images:        deployer build v1
     (or in CI: build the jar to backend/build/libs/ first; the Dockerfile then skips the JDK)
  4. Start the edge and db:   deployer up
  5. Release:                 deployer release v1
  6. Roll back at any time:   deployer switch --to blue
"""
