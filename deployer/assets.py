"""Where the compose files, nginx files and Dockerfiles shipped with the deployer live."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def asset(*parts: str) -> Path:
    """A file of the repository (editable install) or of the wheel (`deployer/_assets`)."""
    for root in (_PACKAGE / "_assets", _PACKAGE.parent):
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    raise FileNotFoundError("/".join(parts))
