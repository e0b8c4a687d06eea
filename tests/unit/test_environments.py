"""[environments.<name>] overlays and [registry]: what an environment may override, how
the overlay merges, and each bad input naming its key (exit 2)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deployer import config
from deployer.config import environments
from deployer.errors import BAD_INPUT, ConfigError

BASE = """
[project]
name = "shop"
id = "shopbase2026"
[services.backend]
image = "shop-backend"
port = 8080
health = "/health"
routes = ["/api/"]
[services.frontend]
image = "shop-frontend"
port = 3000
health = "/health"
routes = ["/"]
[edge]
public_port = 8080
[database]
env_file = "db.env"
"""

ENVIRONMENTS = """
[environments.staging]
engine.host = "ssh://deploy@staging.example.com"
edge.public_port = 8088

[environments.production]
project.id = "shopprod2026"
engine.host = "ssh://deploy@app.example.com:2222"
edge.public_port = 80
edge.domains = ["shop.example.com"]
services.backend.env_file = "backend.production.env"
services.backend.memory = "2g"
database.env_file = "db.production.env"
backup.schedule = "30 2 * * *"
"""


def secret(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def write(tmp_path: Path, extra: str = ENVIRONMENTS) -> Path:
    secret(tmp_path / "db.env", "POSTGRES_USER=app\nPOSTGRES_PASSWORD=base-password\n")
    path = tmp_path / "deployer.toml"
    path.write_text(textwrap.dedent(BASE) + textwrap.dedent(extra))
    return path


def production_files(tmp_path: Path) -> None:
    secret(tmp_path / "db.production.env", "POSTGRES_USER=app\nPOSTGRES_PASSWORD=prod-password\n")
    secret(tmp_path / "backend.production.env", "SPRING_DATASOURCE_PASSWORD=prod-password\n")


def test_the_base_config_is_itself_without_an_environment(tmp_path):
    loaded = config.load(write(tmp_path))
    assert loaded.environment == "" and loaded.environments == ("staging", "production")
    assert loaded.engine.host is None and loaded.edge.public_port == 8080


def test_the_base_image_is_a_key_of_its_own_and_an_environment_may_set_it(tmp_path):
    extra = '[environments.staging]\nproject.base_image = "registry.example:5000/debian:trixie-next"\n'
    path = write(tmp_path, extra.replace("[environments.staging]", '[environments.staging]\nengine.host = "ssh://s"'))
    assert config.load(path).base_image == "debian:trixie-slim"
    assert config.load(path, environment="staging").base_image == "registry.example:5000/debian:trixie-next"
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, '[environments.staging]\nproject.base_image = "no such image"\n'))
    assert caught.value.key == "environments.staging.project.base_image" and "image reference" in str(caught.value)


def test_an_environment_overrides_only_what_it_names(tmp_path):
    path = write(tmp_path)
    staging = config.load(path, environment="staging")
    assert staging.environment == "staging"
    assert staging.engine.host == "ssh://deploy@staging.example.com"
    assert staging.edge.public_port == 8088 and staging.edge.preview_port == 8081
    assert staging.deployment == "shopbase2026"
    production_files(tmp_path)
    production = config.load(path, environment="production")
    assert production.deployment == "shopprod2026" and production.name == "shop"
    assert production.engine.host == "ssh://deploy@app.example.com:2222"
    assert production.edge.domains == ("shop.example.com",)
    assert production.services["backend"].env_file == tmp_path / "backend.production.env"
    assert production.services["backend"].limits.memory == "2g"
    assert production.services["frontend"] == staging.services["frontend"]
    assert production.database.env_file == tmp_path / "db.production.env"
    assert production.backup.schedule == "30 2 * * *"


def test_another_environments_files_are_not_needed(tmp_path):
    """The staging runner has no production secrets: only the environment in use is checked for files."""
    assert config.load(write(tmp_path), environment="staging").environment == "staging"
    with pytest.raises(ConfigError, match=r"environments\.production\.services\.backend\.env_file: .*does not exist"):
        config.load(write(tmp_path), environment="production")


@pytest.mark.parametrize(
    "extra, key, words",
    [
        ("[environments.prod]\n", "environments.production", "no such environment"),
        ('[environments.staging]\nproject.name = "other"\n', "environments.staging.project.name", "may not override"),
        (
            '[environments.staging]\nservices.backend.image = "x"\n',
            "environments.staging.services.backend.image",
            "may not",
        ),
        (
            '[environments.staging]\nservices.worker.env_file = "x.env"\n',
            "environments.staging.services.worker",
            "no [services",
        ),
        ("[environments.staging]\nsmoke.paths = []\n", "environments.staging.smoke.paths", "may not override"),
        ('[environments.Staging]\nengine.host = "ssh://a"\n', "environments.Staging", "name is 1-24"),
        ("[environments]\nstaging = 3\n", "environments.staging", "must be a table"),
        ('[environments.production]\nedge.public_port = "x"\n', "environments.production.edge.public_port", "must be"),
        ('[environments.production]\nengine.host = "tcp://x"\n', "environments.production.engine.host", "ssh://"),
        ('[environments.staging]\nedge.tls.crt = "a.pem"\n', "environments.staging.edge.tls.crt", "unknown key"),
        (
            ENVIRONMENTS.replace('engine.host = "ssh://deploy@staging.example.com"', 'project.id = "shopprod2026"'),
            "environments.production.project.id",
            "environments.staging's too",
        ),
        (
            "[environments.staging]\nedge.public_port = 81\n[environments.production]\nedge.public_port = 80\n",
            "environments.production",
            "the same deployment as environments.staging",
        ),
    ],
)
def test_bad_environments_name_their_key(tmp_path, extra, key, words):
    path = write(tmp_path, extra)
    with pytest.raises(ConfigError) as caught:
        config.load(path, environment="production")
    assert caught.value.exit_code == BAD_INPUT
    assert f": {key}" in str(caught.value) and words in str(caught.value), str(caught.value)


def test_a_bad_key_in_any_environment_is_found_whichever_is_used(tmp_path):
    path = write(tmp_path, ENVIRONMENTS + '\n[environments.qa]\nproject.restart = "no"\n')
    for env in (None, "staging"):
        with pytest.raises(ConfigError, match=r"environments\.qa\.project\.restart: an environment may not"):
            config.load(path, environment=env)


@pytest.mark.parametrize(
    "extra, key",
    [
        ('\n[environments.qa]\nengine.host = "tcp://x"\n', "environments.qa.engine.host"),
        ("\n[environments.qa]\nbackup.keep_last = 0\n", "environments.qa.backup.keep_last"),
        ('\n[environments.qa]\nengine.host = ""\n', "environments.qa.engine.host"),
    ],
)
def test_a_bad_value_in_any_environment_is_found_whichever_is_used(tmp_path, extra, key):
    path = write(tmp_path, ENVIRONMENTS + extra)
    for env in (None, "staging"):
        with pytest.raises(ConfigError) as caught:
            config.load(path, environment=env)
        assert f": {key}: " in str(caught.value) and caught.value.exit_code == BAD_INPUT, str(caught.value)


def test_the_allowed_keys_live_in_one_list():
    assert environments.overridable("edge.tls.cert") and environments.overridable("backup.keep_daily")
    assert environments.overridable("services.api.env_file")
    assert not environments.overridable("services.api.image") and not environments.overridable("project.name")
    assert not environments.overridable("edge.tls") and not environments.overridable("registry.url")


# -- [registry] ------------------------------------------------------------------------
def test_a_registry_with_an_env_file(tmp_path):
    secret(tmp_path / "registry.env", "REGISTRY_USERNAME=ci\nREGISTRY_PASSWORD=registry-token-123\n")
    loaded = config.load(
        write(tmp_path, '[registry]\nurl = "registry.example.com:5000/shop"\nenv_file = "registry.env"\n')
    )
    assert loaded.registry is not None and loaded.registry.host == "registry.example.com:5000"
    assert loaded.registry.repository("shop-backend") == "registry.example.com:5000/shop/shop-backend"
    assert loaded.registry.env_file == tmp_path / "registry.env" and not loaded.registry.anonymous


@pytest.mark.parametrize(
    "table, env, key, words",
    [
        ('url = "https://registry.example.com"', None, "registry.url", "without a scheme"),
        ('url = "Registry.example.com"', None, "registry.url", "without a scheme"),
        ('url = "registry.example.com:99999/shop"', None, "registry.url", "not between 1 and 65535"),
        ('url = "registry.example.com:0"', None, "registry.url", "not between 1 and 65535"),
        ("anonymous = true", None, "registry.url", "missing"),
        (
            'url = "r.example.com"\nenv_file = "registry.env"',
            "REGISTRY_USERNAME=ci\n",
            "registry.env_file",
            "registry credentials missing",
        ),
        ('url = "r.example.com"\nenv_file = "nope.env"', None, "registry.env_file", "does not exist"),
        (
            'url = "r.example.com"\nenv_file = "registry.env"\nanonymous = true',
            "REGISTRY_USERNAME=a\nREGISTRY_PASSWORD=bbbb\n",
            "registry.anonymous",
            "contradicts",
        ),
        ('url = "r.example.com"\npassword = "x"', None, "registry.password", "unknown key"),
    ],
)
def test_bad_registries_name_their_key(tmp_path, table, env, key, words):
    if env:
        secret(tmp_path / "registry.env", env)
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, f"[registry]\n{table}\n"))
    assert f": {key}" in str(caught.value) and words in str(caught.value), str(caught.value)


def test_every_command_takes_env():
    """-e/--env on every command that acts on a deployment (init only writes files)."""
    import typer
    from typer.core import TyperCommand, TyperGroup

    from deployer.cli.commands import app

    def commands(group: TyperGroup, prefix: str = "") -> dict[str, TyperCommand]:
        out = {}
        for name, command in group.commands.items():
            if isinstance(command, TyperGroup):
                out.update(commands(command, f"{prefix}{name} "))
            else:
                out[f"{prefix}{name}"] = command
        return out

    found = commands(typer.main.get_command(app))
    assert {"release", "promote", "push", "switch", "status"} <= set(found)
    lacking = sorted(
        name
        for name, command in found.items()
        if name != "init" and name != "promote" and not any("--env" in p.opts for p in command.params)
    )
    assert not lacking, f"commands without -e/--env: {lacking}"
    promote = {opt for p in found["promote"].params for opt in p.opts}
    assert {"--from", "--to"} <= promote


def test_an_override_below_a_value_that_is_not_a_table_names_the_key(tmp_path):
    path = write(tmp_path, "[environments.production]\nedge.tls.port = 8443\n")
    path.write_text(path.read_text().replace("public_port = 8080", 'public_port = 8080\ntls = "x"', 1))
    with pytest.raises(ConfigError) as caught:
        config.load(path, environment="production")
    assert caught.value.key == "edge.tls" and "must be a table" in str(caught.value)
