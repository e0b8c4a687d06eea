"""The compose files, as data: what a release and the infrastructure run."""

from __future__ import annotations

import json

from deployer.core import compose, volumes


def test_a_release_runs_every_service_under_names_of_its_own(shop):
    spec = compose.release(shop, "green", "1a2b3c4d", "v1.2", deployment="d1")
    assert set(spec["services"]) == {"backend", "frontend", "worker"}
    backend = spec["services"]["backend"]
    assert backend["image"] == "shop-backend:v1.2"
    assert spec["services"]["frontend"]["image"] == "registry.example:5000/team/shop-web:v1.2"
    assert backend["networks"]["edge"]["aliases"] == ["backend-green-1a2b3c4d"]
    assert backend["stop_grace_period"] == "20s"
    assert backend["deploy"]["resources"]["limits"] == {"cpus": "0.5", "memory": "256m"}
    assert "deploy" not in spec["services"]["frontend"]
    assert backend["labels"]["deployer.release"] == "1a2b3c4d"
    assert backend["labels"]["deployer.port"] == "8080"
    env = spec["services"]["frontend"]["environment"]
    assert env["BACKEND_URL"] == "http://backend-green-1a2b3c4d:8080"  # siblings of the same release
    assert env["WORKER_URL"] == "http://worker-green-1a2b3c4d:9000"
    assert env["PORT"] == "3000" and env["APP_VERSION"] == "v1.2"
    assert spec["networks"]["data"] == {"external": True, "name": "shop-data"}
    json.dumps(spec)  # it is JSON as it is


def test_every_string_is_escaped_for_compose_interpolation():
    assert compose.escape({"a": ["$HOME", {"b": "x$${y}"}], "n": 3}) == {"a": ["$$HOME", {"b": "x$$$${y}"}], "n": 3}


def test_the_infrastructure_carries_no_secret(shop):
    spec = compose.infra(
        shop,
        edge_image="e:1",
        db_image="d:1",
        backup_image="a:1",
        db_env={"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "s3cret-pw"},
        agent_config='{"x": 1}',
    )
    text = json.dumps(spec)
    assert "s3cret-pw" not in text
    db = spec["services"]["db"]
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert db["environment"]["POSTGRES_USER"] == "app"
    assert spec["secrets"]["db_password"] == {"environment": "DEPLOYER_SECRET_DB_PASSWORD"}
    assert "ports" not in db  # the database is never published
    ports = spec["services"]["ports"]  # the edge's ports belong to its ports holder
    assert ports["ports"][1] == {"target": 8081, "host_ip": "127.0.0.1", "protocol": "tcp", "published": "8081"}
    assert spec["volumes"]["dumps"] == {"name": "shop-dumps", "external": True}  # made labelled by `up`
    assert "/var/run/docker.sock" not in text  # the backup service has no Docker socket


def test_the_edge_runs_in_the_network_of_a_ports_holder_that_only_sleeps(shop):
    spec = compose.infra(
        shop, edge_image="e:1", db_image="d", backup_image="a", db_env={}, agent_config="{}",
        ports_image="sha256:" + "b" * 64, edge_image_id="sha256:" + "e" * 64, edge_sysctls={"net.x": "1"},
    )  # fmt: skip
    ports, edge = spec["services"]["ports"], spec["services"]["edge"]
    assert edge["network_mode"] == "service:ports"
    assert not {"ports", "networks", "sysctls"} & set(edge)  # docker refuses them in another's namespace
    assert ports["image"] == "sha256:" + "b" * 64  # by ID: a newer base image never replaces it
    assert ports["command"] == ["sleep", "infinity"] and ports["init"] is True
    assert ports["cap_drop"] == ["ALL"] and ports["read_only"] is True
    # queued connections of a closing listener go to the new edge's; the test hook's sysctls too
    assert ports["sysctls"] == {"net.ipv4.tcp_migrate_req": "1", "net.x": "1"}
    # `edge` and the edge container's name still name the edge on its network
    assert ports["networks"] == {"edge": {"aliases": ["edge", "shop-infra-edge-1"]}}
    old_kernel = compose.infra(
        shop, edge_image="e", db_image="d", backup_image="a", db_env={}, agent_config="{}", migrate_requests=False
    )
    assert "sysctls" not in old_kernel["services"]["ports"]  # before Linux 5.14 the sysctl does not exist
    assert ports["labels"]["deployer.role"] == "ports"


def test_the_edge_spec_label_changes_with_its_image_id_and_settings(shop):
    def label(**kw) -> str:
        args = {"edge_image": "e:1", "db_image": "d", "backup_image": "a", "db_env": {}, "agent_config": "{}"}
        return compose.infra(shop, **{**args, **kw})["services"]["edge"]["labels"][compose.EDGE_SPEC]

    assert label(edge_image_id="sha256:1") == label(edge_image_id="sha256:1")
    assert label(edge_image_id="sha256:1") != label(edge_image_id="sha256:2")  # rebuilt under the same tag
    assert label(edge_image_id="sha256:1") != label(edge_image_id="sha256:1", edge_image="e:2")
    assert label(edge_image_id="sha256:1") == label(edge_image_id="sha256:1", ports_image="sha256:9")


def test_every_log_is_rotated_and_the_edge_uses_the_cheaper_driver(shop):
    spec = compose.infra(shop, edge_image="e", db_image="d", backup_image="a", db_env={}, agent_config="{}")
    services = spec["services"]
    assert services["edge"]["logging"]["driver"] == "local"  # a line per request: the cheaper store
    assert services["edge"]["logging"]["options"]["compress"] == "false"
    for name in ("db", "backup"):
        assert services[name]["logging"]["driver"] == "json-file"
    for service in services.values():
        assert service["logging"]["options"]["max-size"] == "50m"


def test_the_port_the_engine_could_not_publish_is_found_in_its_error():
    from deployer.adapters.compose import busy_port

    proxy = (
        "Error response from daemon: driver failed programming external connectivity on endpoint "
        "shop-infra-edge-1 (1505842d): Error starting userland proxy: listen tcp4 0.0.0.0:8080: "
        "bind: address already in use"
    )
    assert busy_port(proxy) == 8080
    assert busy_port("Bind for 127.0.0.1:8443 failed: port is already allocated") == 8443
    assert busy_port("listen tcp6 [::]:80: bind: address already in use") == 80
    assert busy_port("Error response from daemon: No such image: x:v1") is None
    assert busy_port("") is None


def test_the_edge_keeps_its_temporary_files_on_a_tmpfs(shop):
    """Request bodies being received never reach the disk the database lives on."""
    spec = compose.infra(shop, edge_image="e", db_image="d", backup_image="a", db_env={}, agent_config="{}")
    temp = {"type": "tmpfs", "target": "/var/lib/nginx", "tmpfs": {"size": shop.edge.temp_size}}
    assert temp in spec["services"]["edge"]["volumes"]


def test_every_volume_says_whose_it_is_and_one_that_cannot_show_it_is_doubted():
    assert volumes.volumes("shop") == {
        "edge-state": "shop-edge-state",
        "db-data": "shop-db-data",
        "dumps": "shop-dumps",
    }
    assert "dumps" not in volumes.volumes("shop", "/srv/dumps")
    ours = volumes.volume_labels("shop", "d1")
    assert ours == {"deployer.project": "shop", "deployer.deployment": "d1"}
    assert volumes.volume_doubt("shop-db-data", {**ours, "x": "y"}, "shop", "d1", used_by_ours=False) == ""
    other = volumes.volume_doubt("shop-db-data", volumes.volume_labels("shop", "d2"), "shop", "d1", used_by_ours=True)
    assert "belongs to deployment 'd2'" in other and "not to this config's ('d1')" in other
    bare = {"com.docker.compose.project": "shop-infra"}  # made before volumes were labelled
    assert volumes.volume_doubt("shop-db-data", bare, "shop", "d1", used_by_ours=True) == ""
    assert "carries no deployment label" in volumes.volume_doubt("shop-db-data", {}, "shop", "d1", used_by_ours=False)
