"""Config validation: the annotated example loads, and each broken file names its key."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from deployer import config
from deployer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[project]
name = "shop"
[services.backend]
image = "shop-backend"
port = 8080
health = "/actuator/health"
[services.frontend]
image = "shop-frontend"
port = 3000
health = "/healthz"
[database]
env_file = "db.env"
"""


@pytest.fixture
def example(tmp_path) -> Path:
    """The shipped example, in a copy of examples/ with the git-ignored env files present."""
    folder = tmp_path / "examples"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "deployer.toml", folder)
    for name in ("backend", "frontend"):
        (folder / name).symlink_to(ROOT / "examples" / name)
    (tmp_path / "templates").symlink_to(ROOT / "templates")
    (folder / "db.env").write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=x\n")
    (folder / "backend.env").write_text("SPRING_DATASOURCE_PASSWORD=x\n")
    return folder / "deployer.toml"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "db.env").write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=x\n")
    path = tmp_path / "deployer.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_annotated_example_loads(example):
    cfg = config.load(example)
    assert cfg.name == "shop"
    assert cfg.services["backend"].routes == ("/api/", "/actuator/")
    assert cfg.services["backend"].image_ref("v1.2") == "shop-backend:v1.2"
    assert cfg.services["frontend"].dockerfile == (ROOT / "templates" / "nextjs.Dockerfile").resolve()
    assert cfg.edge.preview_port == 8081
    assert cfg.smoke == ("/api/version", "/healthz")
    assert cfg.backup.keep_last == 7
    assert cfg.backup.dir == example.parent / "backups"


def test_minimal_config_gets_defaults(tmp_path):
    cfg = config.load(write(tmp_path, MINIMAL))
    assert cfg.services["frontend"].routes == ("/",)
    assert cfg.edge.public_port == 80
    assert cfg.timeouts.health_deadline == 120
    assert cfg.restart == "unless-stopped"
    assert cfg.edge_container == "shop-infra-edge-1"
    assert cfg.networks == {"shop-edge": False, "shop-data": True}


@pytest.mark.parametrize(
    "change, key, words",
    [
        (('name = "shop"', 'name = "Shop!"'), "project.name", "2-32 characters"),
        (('port = 8080', 'port = "8080"'), "services.backend.port", "whole number"),
        (('port = 8080', 'port = 70000'), "services.backend.port", "between 0 and 65535"),
        (('image = "shop-backend"', 'image = "shop-backend:v1"'), "services.backend.image", "without a tag"),
        (('health = "/healthz"', 'health = "healthz"'), "services.frontend.health", "starting with '/'"),
        (('env_file = "db.env"', 'env_file = "missing.env"'), "database.env_file", "does not exist"),
        (('[database]', '[databse]'), "databse", "unknown section"),
        (('port = 3000', 'port = 3000\ncolour = "red"'), "services.frontend.colour", "unknown key"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path, change, key, words):
    path = write(tmp_path, MINIMAL.replace(*change, 1))
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert str(path) in str(caught.value)
    assert caught.value.key == key
    assert words in str(caught.value)
    assert caught.value.exit_code == 2


def test_missing_required_service(tmp_path):
    text = MINIMAL.split("[services.frontend]")[0] + "[database]\nenv_file = \"db.env\"\n"
    with pytest.raises(ConfigError, match=r"services: missing \[services.frontend\]"):
        config.load(write(tmp_path, text))


def test_unknown_service_is_refused(tmp_path):
    text = MINIMAL + '[services.worker]\nimage = "w"\nport = 1\nhealth = "/"\n'
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    assert caught.value.key == "services.worker"


def test_broken_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, MINIMAL + "\n[[[\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


def test_bad_cron_and_webhook(tmp_path):
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, MINIMAL + '[backup]\nschedule = "every day"\n'))
    assert caught.value.key == "backup.schedule"
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, MINIMAL + '[backup]\nwebhook = "ftp://x"\n'))
    assert caught.value.key == "backup.webhook"


def test_same_route_for_two_services(tmp_path):
    text = MINIMAL.replace('health = "/healthz"', 'health = "/healthz"\nroutes = ["/api/"]')
    with pytest.raises(ConfigError, match="same route"):
        config.load(write(tmp_path, text))


def test_interval_must_be_shorter_than_deadline(tmp_path):
    text = MINIMAL + "[timeouts]\nhealth_deadline = 5\nhealth_interval = 5\n"
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    assert caught.value.key == "timeouts.health_interval"
