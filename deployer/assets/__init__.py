"""Files the deployer ships as package data: image build contexts and templates.

    edge/        the edge image: nginx + Lua (routing, balancing, metrics), the site template
    db/          the PostgreSQL + pgvector image
    agent/       the backup agent's image (dumps, the schedule, restores)
    templates/   Dockerfile templates for your own Spring Boot and Next.js apps
    ci/          the app's CI/CD workflows that `deployer init --ci github` writes
    example.toml the annotated example config, the source of `deployer init` (in a wheel;
                 a checkout reads examples/deployer.toml)

They live inside the package, so a wheel carries them and every image the deployer
needs builds from an installed copy as well as from a checkout.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def asset(*parts: str) -> Path:
    path = ROOT.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"deployer package data is missing {'/'.join(parts)}: reinstall the deployer")
    return path


def example_config() -> Path:
    """The annotated example config: package data in a wheel, examples/ in a checkout."""
    for path in (ROOT / "example.toml", ROOT.parent.parent / "examples" / "deployer.toml"):
        if path.is_file():
            return path
    raise FileNotFoundError("deployer package data is missing the example config: reinstall the deployer")
