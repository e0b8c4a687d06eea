"""The deployer's own images stay small to push, pull and load: no package manager's cache is
left in a layer (a base image without Debian's docker-clean setting keeps it: 177 MB in the
database image's), and the database image and the backup agent share their large first layer
(PostgreSQL 17, pgvector, pgBackRest), which the build cache makes one layer when its
instruction, and everything before it, is the same text in both."""

from __future__ import annotations

import re
from pathlib import Path

from deployer.flows import images

ASSETS = Path(__file__).resolve().parents[2] / "deployer" / "assets"
OWN = {name: ASSETS / name / "Dockerfile" for name in ("edge", "db", "agent")}


def instructions(path: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments and blanks left out."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [" ".join(line.split()) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_apt_install_removes_the_package_lists_and_the_cache_in_the_same_layer():
    for name, path in OWN.items():
        runs = [i for i in instructions(path) if i.startswith("RUN") and "apt-get install" in i]
        assert runs, name
        for run in runs:
            assert "rm -rf /var/lib/apt/lists/* /var/cache/apt/*" in run, (name, run)


def test_the_database_image_and_the_agent_begin_with_the_same_instructions_up_to_the_postgresql_layer():
    db, agent = instructions(OWN["db"]), instructions(OWN["agent"])
    shared = next(i for i, line in enumerate(db) if line.startswith("RUN"))
    assert db[: shared + 1] == agent[: shared + 1]
    assert db[:shared] == ["ARG BASE_IMAGE=debian:trixie-slim", "FROM ${BASE_IMAGE}", f"ARG {images.FRESH_ARG}="]
    assert "postgresql-17 postgresql-17-pgvector" in db[shared] and "pgbackrest" in db[shared]
    assert not any("python3" in line for line in db), "the database image has no Python"


def test_refresh_images_reaches_every_run_step_of_every_own_image():
    """`--refresh-images` sets DEPLOYER_FRESH (deployer/flows/images.py): it must be declared
    before the first RUN, or that step would come from the cache with last month's packages."""
    for name, path in OWN.items():
        lines = instructions(path)
        first_run = next(i for i, line in enumerate(lines) if line.startswith("RUN"))
        assert f"ARG {images.FRESH_ARG}=" in lines[:first_run], name
    assert images.fresh_token() != images.fresh_token() and len(images.fresh_token()) == 16
