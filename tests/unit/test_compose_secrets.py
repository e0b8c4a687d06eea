"""Compose data for service secrets and the edge's HTTPS port and ACME folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from deployer.config.model import Tls
from deployer.core import compose


def test_a_service_secret_is_a_file_and_the_env_file_is_data(shop):
    backend = dataclasses.replace(shop.services["backend"], secrets=("SPRING_DATASOURCE_PASSWORD",))
    cfg = dataclasses.replace(shop, services={**shop.services, "backend": backend})
    env = {"backend": {"SPRING_DATASOURCE_PASSWORD": "s3cret-pw-123", "NOTE": "a$HOME#b", "PORT": "1"}}
    spec = compose.release(cfg, "blue", "1a2b3c4d", "v1", env=env)
    assert "s3cret-pw-123" not in json.dumps(spec)
    service = spec["services"]["backend"]
    assert "env_file" not in service  # compose never reads an env file: no interpolation, no quoting
    environment = service["environment"]
    assert environment["NOTE"] == "a$$HOME#b"  # escaped: compose hands the app a$HOME#b
    assert environment["PORT"] == "8080"  # the deployer's own values win
    assert environment["SPRING_DATASOURCE_PASSWORD_FILE"] == "/run/secrets/SPRING_DATASOURCE_PASSWORD"
    assert "SPRING_DATASOURCE_PASSWORD" not in environment
    (secret,) = service["secrets"]
    assert secret["target"] == "SPRING_DATASOURCE_PASSWORD"
    variable = spec["secrets"][secret["source"]]["environment"]
    assert compose.release_secrets(cfg, env) == {variable: "s3cret-pw-123"}
    assert "secrets" not in spec["services"]["frontend"]


def test_the_edge_publishes_https_and_mounts_the_acme_folder(shop):
    edge = dataclasses.replace(shop.edge, tls=Tls(cert=Path("/c"), key=Path("/k"), port=0))
    spec = compose.infra(
        dataclasses.replace(shop, edge=edge),
        edge_image="e:1",
        db_image="d:1",
        backup_image="a:1",
        db_env={"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "pw-pw-pw"},
        agent_config="{}",
        acme_on_host="/srv/www/acme $x",
    )
    ports = spec["services"]["ports"]["ports"]  # the edge's ports holder publishes them
    assert [p["target"] for p in ports] == [80, 443, 8081] and "published" not in ports[1]
    mount = spec["services"]["edge"]["volumes"][1]
    assert mount["source"] == "/srv/www/acme $$x" and mount["read_only"] and mount["target"] == "/srv/acme"
    plain = compose.infra(shop, edge_image="e", db_image="d", backup_image="a", db_env={}, agent_config="{}")
    assert [p["target"] for p in plain["services"]["ports"]["ports"]] == [80, 8081]


def test_a_dotted_key_is_a_spring_configtree_property(shop):
    backend = dataclasses.replace(shop.services["backend"], secrets=("spring.datasource.password",))
    cfg = dataclasses.replace(shop, services={**shop.services, "backend": backend})
    env = {"backend": {"spring.datasource.password": "pw-dotted-1", "SPRING_CONFIG_IMPORT": "configtree:/run/secrets/"}}
    service = compose.release(cfg, "blue", "1a2b3c4d", "v1", env=env)["services"]["backend"]
    assert service["secrets"][0]["target"] == "spring.datasource.password"
    assert not any(k.endswith("_FILE") for k in service["environment"])  # not a variable name
    assert service["environment"]["SPRING_CONFIG_IMPORT"] == "configtree:/run/secrets/"
    assert list(compose.release_secrets(cfg, env).values()) == ["pw-dotted-1"]
