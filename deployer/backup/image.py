"""The deployer's own image (top-level Dockerfile), tagged by a hash of the files it is built from."""

from __future__ import annotations

import hashlib
from pathlib import Path

from deployer import engine
from deployer.errors import EngineError

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCES = (
    "Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "deployer", "compose", "nginx", "db", "templates",
    "examples/deployer.toml",
)


def source_tag(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for entry in SOURCES:
        base = root / entry
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def own_image(base_image: str) -> str:
    """Build `deployer:<hash>` from this checkout unless it exists."""
    if not (ROOT / "Dockerfile").is_file():
        raise EngineError("the deployer's own image is built from a source checkout (Dockerfile not found)", step="up")
    tag = f"deployer:{source_tag()}"
    if not engine.image_exists(tag):
        engine.build_image(str(ROOT), tag, dockerfile=None, base_image=base_image, step="up")
    return tag
