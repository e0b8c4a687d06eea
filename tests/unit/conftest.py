"""Shared helpers of the unit tests: configs built in memory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deployer import config


@pytest.fixture
def make_config(tmp_path):
    """A Config from TOML text (the db env file is written for it)."""

    def make(text: str) -> config.Config:
        env = tmp_path / "db.env"
        env.write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=unit-test-pw\n")
        env.chmod(0o600)
        path = tmp_path / "deployer.toml"
        path.write_text(textwrap.dedent(text))
        return config.load(path)

    return make


TWO = """
[project]
name = "shop"
[services.backend]
image = "shop-backend"
port = 8080
health = "/health"
routes = ["/api/"]
stop_grace = 20
cpus = 0.5
memory = "256m"
[services.frontend]
image = "registry.example:5000/team/shop-web"
port = 3000
health = "/healthz"
routes = ["/"]
[services.worker]
image = "shop-worker"
port = 9000
health = "/ready"
[database]
env_file = "db.env"
"""


@pytest.fixture
def shop(make_config) -> config.Config:
    return make_config(TWO)


def root() -> Path:
    return Path(__file__).resolve().parents[2]
