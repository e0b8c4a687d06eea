"""[database] url_file: an external PostgreSQL. The URL's grammar, the config's refusals (one
line, naming the key, never the password), and an infrastructure with no database container."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from conftest import TWO

from deployer import config
from deployer.core import agentconfig, compose, dburl, masking
from deployer.errors import ConfigError

BASE = TWO.split("[database]")[0]  # the shared config, its [database] written by each test
URL = "postgresql://app:pa%23ss-word-1@db.internal.example:6432/shop?sslmode=require\n"


def write(tmp_path: Path, database: str, url: str = URL, mode: int = 0o600) -> Path:
    (tmp_path / "db.url").write_text(url)
    (tmp_path / "db.url").chmod(mode)
    (tmp_path / "db.env").write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=x-password\n")
    (tmp_path / "db.env").chmod(0o600)
    path = tmp_path / "deployer.toml"
    path.write_text(textwrap.dedent(BASE) + textwrap.dedent(database))
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    return str(caught.value)


def test_a_url_gives_each_part_and_defaults_port_and_sslmode():
    url = dburl.parse("# the production database\npostgresql://app:s%40cret@10.0.0.5/shop\n")
    assert (url.user, url.password, url.host, url.port, url.database, url.sslmode) == (
        "app",
        "s@cret",
        "10.0.0.5",
        5432,
        "shop",
        "prefer",
    )
    assert url.where == "10.0.0.5:5432/shop"
    assert dburl.parse(URL).port == 6432 and dburl.parse(URL).sslmode == "require"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("mysql://app:pw@h/db", "must start with postgresql://"),
        ("postgresql://app@h/db", "USER:PASSWORD@"),
        ("postgresql://app:pw@/db", "must name a host"),
        ("postgresql://app:pw@h/", "must end with /DATABASE"),
        ("postgresql://app:pw@h:99999/db", "its port"),
        ("postgresql://app:pw@h/db?sslmode=disable", "sslmode must be one of"),
        ("postgresql://app:pw@h/db?application_name=x", "takes only the option sslmode"),
        ("postgresql://app:p#w@h/db", "%23"),
        ("postgresql://app:pw@h/a\npostgresql://app:pw@h/b", "one URL on one line"),
        ("", "one URL on one line"),
    ],
)
def test_a_bad_url_is_named_without_its_text(text, named):
    with pytest.raises(ValueError) as caught:
        dburl.parse(text)
    assert named in str(caught.value)
    assert "pw" not in str(caught.value) and "p#w" not in str(caught.value)


def test_url_file_takes_the_database_name_from_the_url_and_masks_the_password(tmp_path):
    cfg = config.load(write(tmp_path, '[database]\nurl_file = "db.url"\n'))
    assert cfg.database.external and cfg.database.env_file is None
    assert cfg.database.name == "shop"
    said = masking.mask("login pa#ss-word-1 failed")
    assert "pa#ss-word-1" not in said and said.startswith("login *")


@pytest.mark.parametrize("key", ['env_file = "db.env"', 'image = "pg:17"', "cpus = 1", 'memory = "1g"'])
def test_a_setting_of_the_database_container_beside_url_file_is_refused(tmp_path, key):
    said = refused(write(tmp_path, f'[database]\nurl_file = "db.url"\n{key}\n'))
    assert f"database.{key.split(' ')[0]}" in said and "external database" in said


def test_url_file_is_checked_like_an_env_file(tmp_path):
    assert "chmod 600" in refused(write(tmp_path, '[database]\nurl_file = "db.url"\n', mode=0o644))
    said = refused(write(tmp_path, '[database]\nurl_file = "db.url"\n', url="postgresql://app:hunter22@h/\n"))
    assert "database.url_file" in said and "/DATABASE" in said and "hunter22" not in said
    said = refused(write(tmp_path, '[database]\nurl_file = "db.url"\nname = "other"\n'))
    assert "database.name" in said and "'shop'" in said


def test_url_file_is_refused_on_a_swarm(tmp_path):
    said = refused(write(tmp_path, '[engine]\nmode = "swarm"\n[database]\nurl_file = "db.url"\n'))
    assert "database.url_file" in said and "swarm" in said


def test_an_environment_may_name_its_own_external_database(tmp_path):
    (tmp_path / "staging.url").write_text("postgresql://app:stage-pw-1@10.0.0.9/shop_staging\n")
    (tmp_path / "staging.url").chmod(0o600)
    path = write(
        tmp_path, '[database]\nurl_file = "db.url"\n[environments.staging.database]\nurl_file = "staging.url"\n'
    )
    assert config.load(path, environment="staging").database.name == "shop_staging"
    assert config.load(path).database.name == "shop"


def test_the_infrastructure_of_an_external_database_has_no_database_container(tmp_path):
    cfg = config.load(write(tmp_path, '[database]\nurl_file = "db.url"\n'))
    spec = compose.infra(cfg, edge_image="e", db_image="none", backup_image="a", db_env={}, agent_config="{}")
    assert "db" not in spec["services"]
    # the agent reaches the server over the edge network: the data network has no route out
    assert spec["services"]["backup"]["networks"] == ["edge"]
    assert "db-data" not in spec["volumes"] and "edge-state" in spec["volumes"]
    bundled = dataclasses.replace(cfg, database=dataclasses.replace(cfg.database, url_file=None))
    spec = compose.infra(bundled, edge_image="e", db_image="d", backup_image="a", db_env={}, agent_config="{}")
    assert "db" in spec["services"] and "db-data" in spec["volumes"]


def test_the_agent_is_told_the_external_server_and_not_its_password(tmp_path):
    cfg = config.load(write(tmp_path, '[database]\nurl_file = "db.url"\n'))
    url = dburl.parse(URL)
    told = agentconfig.for_config(cfg, url.user, url)
    assert (told.db_host, told.db_port, told.db_sslmode, told.database, told.external) == (
        "db.internal.example",
        6432,
        "require",
        "shop",
        True,
    )
    assert "pa#ss" not in told.render() and "pa%23ss" not in told.render()
    assert agentconfig.AgentConfig.parse(told.render()) == told


def test_status_shows_an_external_database_whose_url_file_cannot_be_read(tmp_path):
    """status reads no secret it does not need: an unreadable url_file leaves the address
    unknown, named, instead of failing the command."""
    from types import SimpleNamespace

    from deployer.flows import status

    cfg = config.load(write(tmp_path, '[database]\nurl_file = "db.url"\n'))
    (tmp_path / "db.url").chmod(0o644)  # as a careless copy leaves it
    part = status._external(SimpleNamespace(config=cfg), asked=False)
    assert part["status"] == "external" and part["health"] == "unknown"
    assert part["where"].startswith("unknown (") and "chmod 600" in part["where"]
    assert "backup service is not running" in part["error"]
    (tmp_path / "db.url").chmod(0o600)
    assert status._external(SimpleNamespace(config=cfg), asked=False)["where"] == "db.internal.example:6432/shop"
