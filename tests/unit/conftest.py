"""Shared helpers of the unit tests: configs built in memory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deployer import config


def write_config(folder: Path, text: str) -> Path:
    """deployer.toml from TOML text in `folder`, with the db env file it names (chmod 600)."""
    env = folder / "db.env"
    env.write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=unit-test-pw\n")
    env.chmod(0o600)
    path = folder / "deployer.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def make_config(tmp_path):
    """A Config from TOML text (the db env file is written for it)."""
    return lambda text: config.load(write_config(tmp_path, text))


@pytest.fixture
def config_file(tmp_path):
    """write_config in the test's folder: TOML text -> the path of deployer.toml."""
    return lambda text: write_config(tmp_path, text)


@pytest.fixture
def shop_file(tmp_path) -> Path:
    """The path of a valid deployer.toml (TWO), for tests that run the CLI on it."""
    return write_config(tmp_path, TWO)


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
