"""Swarm mode as data: the config keys, placement checks against nodes, and the stacks."""

from __future__ import annotations

import json

import pytest
from conftest import TWO

from deployer.core import stack
from deployer.errors import ConfigError

SWARM = TWO.replace('[project]\nname = "shop"', '[project]\nname = "shop"\n[engine]\nmode = "swarm"') + (
    '[registry]\nurl = "registry.example:5000/shop"\nanonymous = true\n'
)

NODES = [
    stack.Node("m1", "manager-1", "manager", {"deployer.db": "true"}),
    stack.Node("w1", "worker-1", "worker", {"deployer.edge": "true"}),
    stack.Node("w2", "worker-2", "worker", {"deployer.edge": "true"}),
    stack.Node("w3", "worker-3", "worker", {"deployer.edge": "true"}, ready=False),
]


def swarm_config(make_config, swarm: str = "", backend: str = ""):
    text = SWARM.replace("stop_grace = 20", "stop_grace = 20\n" + backend)
    return make_config(text + ("[swarm]\n" + swarm if swarm else ""))


def key_of(make_config, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        make_config(text)
    return caught.value.key


def test_swarm_keys_are_read_in_swarm_mode(make_config):
    cfg = swarm_config(
        make_config,
        'edge_replicas = 2\nedge_constraints = ["node.labels.deployer.edge == true"]\n',
        'replicas = 3\nplacement = ["node.role  ==  worker"]',
    )
    assert cfg.engine.mode == "swarm"
    assert cfg.swarm.edge_replicas == 2
    assert cfg.swarm.edge_constraints == ("node.labels.deployer.edge == true",)
    assert cfg.services["backend"].replicas == 3
    assert cfg.services["backend"].placement == ("node.role == worker",)
    assert cfg.services["frontend"].replicas == 1


def test_bad_swarm_keys_name_the_key(make_config):
    assert key_of(make_config, SWARM.replace("stop_grace = 20", "replicas = 0")) == "services.backend.replicas"
    assert (
        key_of(make_config, SWARM + '[swarm]\nedge_constraints = ["node.colour = red"]\n') == "swarm.edge_constraints"
    )
    assert key_of(make_config, SWARM.replace('mode = "swarm"', 'mode = "k8s"')) == "engine.mode"
    no_registry = SWARM.split("[registry]")[0]
    assert key_of(make_config, no_registry) == "registry"
    # swarm-only keys in compose mode
    assert key_of(make_config, TWO.replace("stop_grace = 20", "replicas = 2")) == "services.backend.replicas"
    assert key_of(make_config, TWO + "[swarm]\nedge_replicas = 2\n") == "swarm"


def test_constraints_follow_swarm_rules():
    manager, worker = NODES[0], NODES[1]
    assert stack.satisfies(manager, "node.role == manager")
    assert stack.satisfies(manager, "node.hostname == MANAGER-1")  # hostnames compare without case
    assert not stack.satisfies(worker, "node.labels.deployer.db == true")  # a missing label never equals
    assert stack.satisfies(worker, "node.labels.deployer.db != true")
    assert stack.matching(NODES, ["node.labels.deployer.edge == true"]) == NODES[1:3], "a node not ready is left out"


def test_placement_no_node_satisfies_is_refused_naming_the_key(make_config):
    ok = swarm_config(make_config, 'edge_replicas = 2\nedge_constraints = ["node.labels.deployer.edge == true"]\n')
    stack.check_placement(ok, NODES, "m1")
    three = swarm_config(make_config, 'edge_replicas = 3\nedge_constraints = ["node.labels.deployer.edge == true"]\n')
    with pytest.raises(ConfigError) as caught:
        stack.check_placement(three, NODES, "m1")
    assert caught.value.key == "swarm.edge_constraints"
    nowhere = swarm_config(make_config, backend='placement = ["node.hostname == nowhere"]')
    with pytest.raises(ConfigError) as caught:
        stack.check_placement(nowhere, NODES, "m1")
    assert caught.value.key == "services.backend.placement"
    two_dbs = swarm_config(make_config, 'db_constraints = ["node.role == worker"]\n')
    with pytest.raises(ConfigError) as caught:
        stack.check_placement(two_dbs, NODES, "m1")
    assert caught.value.key == "swarm.db_constraints"
    stack.check_placement(
        swarm_config(make_config, 'db_constraints = ["node.labels.deployer.db == true"]\n'), NODES, "m1"
    )
    stack.check_placement(swarm_config(make_config), NODES, "m1")  # no db_constraints: the manager


def test_the_database_may_be_pinned_to_one_labelled_worker_never_to_two_or_none(make_config):
    labelled = swarm_config(make_config, 'db_constraints = ["node.labels.deployer.db == true"]\n')
    db_on_w1 = [
        stack.Node("m1", "manager-1", "manager"),
        stack.Node("w1", "worker-1", "worker", {"deployer.db": "true"}),
    ]
    stack.check_placement(labelled, db_on_w1, "m1")  # a worker, not the manager: accepted
    stack.check_placement(swarm_config(make_config, 'db_constraints = ["node.hostname == worker-1"]\n'), NODES, "m1")
    for nodes, count, where in (
        (NODES[:1] + [stack.Node("w1", "worker-1", "worker", {"deployer.db": "true"})], "2", "manager-1, worker-1"),
        ([stack.Node("m1", "manager-1", "manager")], "0", "none"),
        # the only labelled node cannot take tasks (drained or down): none is ready
        ([stack.Node("m1", "manager-1", "manager"), stack.Node("w1", "worker-1", "worker", {"deployer.db": "true"},
                                                              ready=False)], "0", "none"),
    ):  # fmt: skip
        with pytest.raises(ConfigError) as caught:
            stack.check_placement(labelled, nodes, "m1")
        assert caught.value.key == "swarm.db_constraints"
        assert f"exactly one ready node (the database's volume lives on one node), but {count} do: {where}" in str(
            caught.value
        )


def test_the_database_runs_on_its_node_and_the_backup_agent_on_the_manager(make_config):
    from deployer.core import compose

    infra_data = compose.infra(
        make_config(SWARM), edge_image="e", db_image="d", backup_image="b", db_env={}, agent_config="{}"
    )
    objects = {"configs": {"agent": "shop-agent-1"}, "secrets": {"db_password": "shop-db-password-1"}}
    labelled = swarm_config(make_config, 'db_constraints = ["node.labels.deployer.db == true"]\n')
    data = stack.database(labelled, infra_data, manager_id="m1", **objects)
    db, backup = data["services"]["db"], data["services"]["backup"]
    assert db["deploy"]["placement"]["constraints"] == ["node.labels.deployer.db == true"]
    assert db["volumes"][0].startswith("db-data:"), "the database's volume goes where it runs"
    assert backup["deploy"]["placement"]["constraints"] == ["node.id == m1"], "exec'd through the manager's engine"
    assert backup["volumes"] == ["dumps:/backups"], "the dumps live on the manager"
    assert [s["source"] for s in backup["secrets"]] == ["db_password"], "no webhook: no empty secret"
    whose = {"deployer.project": "shop", "deployer.deployment": labelled.deployment}
    assert data["volumes"]["db-data"] == {"name": "shop-db-data", "labels": whose}, "made on its node, labelled"
    assert "external" not in data["volumes"]["dumps"] and "edge-state" not in data["volumes"]
    default = stack.database(swarm_config(make_config), infra_data, manager_id="m1", **objects)
    assert default["services"]["db"]["deploy"]["placement"]["constraints"] == ["node.id == m1"]
    assert default["services"]["backup"]["deploy"]["placement"]["constraints"] == ["node.id == m1"]
    json.dumps(data)


def test_a_release_stack_has_replicas_placement_dnsrr_and_the_route_alias(make_config):
    cfg = swarm_config(make_config, backend='replicas = 3\nplacement = ["node.role == worker"]')
    images = {s: f"registry.example:5000/shop/{s}@sha256:{'a' * 64}" for s in cfg.services}
    data = stack.release(cfg, "green", "1a2b3c4d", "v2", images=images)
    backend = data["services"]["backend"]
    assert backend["image"] == images["backend"], "the nodes pull the pinned digest"
    assert backend["deploy"]["replicas"] == 3
    assert backend["deploy"]["endpoint_mode"] == "dnsrr"
    assert backend["deploy"]["placement"]["constraints"] == ["node.role == worker"]
    assert backend["deploy"]["resources"]["limits"] == {"cpus": "0.5", "memory": "256m"}
    assert backend["networks"]["edge"]["aliases"] == ["backend-green-1a2b3c4d"], "route host names as in compose mode"
    assert "restart" not in backend and "container_name" not in backend
    assert data["services"]["frontend"]["deploy"]["replicas"] == 1
    json.dumps(data)


def test_the_infra_stack_pins_control_to_the_manager_and_publishes_edges_in_host_mode(make_config):
    cfg = swarm_config(make_config, 'edge_replicas = 2\nedge_constraints = ["node.labels.deployer.edge == true"]\n')
    objects = {"site": "shop-site-1", "sync-control": "shop-sc-1", "sync-replica": "shop-sr-1"}
    data = stack.infra(cfg, edge_image="edge:1", manager_id="m1", configs=objects, secrets={"sync": "shop-sync-1"})
    control, edge = data["services"]["control"], data["services"]["edge"]
    assert control["deploy"]["replicas"] == 1
    assert control["deploy"]["placement"]["constraints"] == ["node.id == m1"]
    temp = {"type": "tmpfs", "target": "/var/lib/nginx", "tmpfs": {"size": 256 << 20}}  # request bodies
    assert "ports" not in control and control["volumes"] == ["edge-state:/var/lib/deployer", temp]
    assert edge["deploy"]["replicas"] == 2
    assert edge["deploy"]["placement"]["max_replicas_per_node"] == 1
    assert edge["ports"][0]["mode"] == "host"
    assert edge["volumes"] == [temp], "replicas hold no state of their own: they take it from control"
    assert stack.sync_conf("shop", "replica").startswith("role replica\ncontrol shop-infra_control")


def test_with_tls_each_edge_replica_publishes_https_and_reads_the_certificate_from_a_secret(make_config, tmp_path):
    from test_edge_config import cert

    c, k = cert(tmp_path, "site")
    tls = SWARM.replace("[registry]", f'[edge.tls]\ncert = "{c}"\nkey = "{k}"\nport = 8443\n[registry]')
    cfg = make_config(tls)
    objects = {"site": "s", "sync-control": "sc", "sync-replica": "sr"}
    data = stack.infra(cfg, edge_image="e:1", manager_id="m1", configs=objects, secrets={"sync": "y", "tls": "t"})
    control, edge = data["services"]["control"], data["services"]["edge"]
    assert {"target": 443, "published": 8443, "protocol": "tcp", "mode": "host"} in edge["ports"]
    assert {"source": "tls", "target": "deployer_tls", "mode": 0o400} in edge["secrets"]
    assert all(s["source"] != "tls" for s in control["secrets"]), "control serves no HTTPS: it holds no key"
    assert data["secrets"]["tls"] == {"external": True, "name": "t"}


def test_acme_webroot_is_refused_on_a_swarm(make_config):
    with pytest.raises(ConfigError, match="edge.acme_webroot"):
        make_config(SWARM.replace("[registry]", '[edge]\nacme_webroot = "/srv/acme"\n[registry]'))


def test_replica_probe_reports_each_replica_that_did_not_answer():
    targets = [("backend", "10.0.0.5", 8080, "/health"), ("backend", "10.0.0.6", 8080, "/health")]
    script = stack.replica_probe_script(targets, 2)
    assert "http://10.0.0.5:8080/health" in script and "http://10.0.0.6:8080/health" in script
    output = "replica 200 http://10.0.0.5:8080/health\nreplica 503 http://10.0.0.6:8080/health\n"
    assert stack.replica_failures(targets, output) == ["backend replica 10.0.0.6: HTTP 503"]
    assert stack.replica_failures(targets, "") == [
        "backend replica 10.0.0.5: no answer",
        "backend replica 10.0.0.6: no answer",
    ]


def test_a_volume_of_another_node_is_removed_by_a_retried_delete_on_its_engine_socket():
    from deployer.core import node_volume

    script = node_volume.removal_script("shop-db-data", attempts=5)
    assert "--unix-socket /var/run/docker.sock -X DELETE http://engine/volumes/shop-db-data" in script
    assert "204) exit 0;; 404) exit 44;;" in script, "removed, or no such volume: told apart by the exit code"
    assert "-lt 5 ]" in script and "sleep 1" in script, "retried while a container that is going away uses it"
    assert node_volume.ABSENT == 44
    assert "grep" not in script, "without an owner, any volume of that name goes"
    owned = node_volume.removal_script("shop-db-data", owner=("shop", "d1"))
    check, _, removal = owned.partition("i=0;")
    assert '"deployer.deployment":"d1"' in check and '"deployer.project":"shop"' in check
    assert "exit 45" in check and "-X DELETE" in removal, "checked before anything is removed"


def test_the_check_of_another_nodes_volume_removes_nothing_and_tells_ours_absent_and_not_ours_apart():
    from deployer.core import node_volume

    script = node_volume.check_script("shop-db-data", ("shop", "d1"))
    assert "DELETE" not in script and "-X" not in script, "a check only reads the volume"
    assert '"deployer.deployment":"d1"' in script and '"deployer.project":"shop"' in script
    assert script.endswith("exit 0") and "exit 44" in script and "exit 45" in script


def test_a_release_stack_takes_each_services_secrets_from_the_swarm_secrets_made_for_them(make_config):
    """secret_values names each secret as the compose data does, so the stack can refer to it."""
    import dataclasses

    cfg = swarm_config(make_config)
    backend = dataclasses.replace(cfg.services["backend"], secrets=("SPRING_DATASOURCE_PASSWORD", "API_TOKEN"))
    cfg = dataclasses.replace(cfg, services={**cfg.services, "backend": backend})
    env = {"backend": {"SPRING_DATASOURCE_PASSWORD": "pw-1", "API_TOKEN": "tok-2"}}
    values = stack.secret_values(cfg, env)
    assert sorted(values.values()) == ["pw-1", "tok-2"]
    made = {key: f"shop-{key}-made" for key in values}  # what runtime/swarm_release.start creates
    images = {s: f"registry.example:5000/shop/{s}@sha256:{'a' * 64}" for s in cfg.services}
    data = stack.release(cfg, "green", "1a2b3c4d", "v2", images=images, env=env, secrets=made)
    targets = {s["target"]: data["secrets"][s["source"]]["name"] for s in data["services"]["backend"]["secrets"]}
    assert {t: next(k for k, v in made.items() if v == name) for t, name in targets.items()} == {
        "SPRING_DATASOURCE_PASSWORD": next(k for k, v in values.items() if v == "pw-1"),
        "API_TOKEN": next(k for k, v in values.items() if v == "tok-2"),
    }
    assert "pw-1" not in json.dumps(data) and "tok-2" not in json.dumps(data)


def test_a_writer_waits_longer_for_reload_than_a_swarm_publish_can_take():
    """The control answers /reload once the replicas took the state or got the old one back,
    after a read already under way: the scripts' curl must outwait both publishes, or they
    undo their write while a publish runs on; and a read's mark must outlast its publish."""
    import re

    from deployer.assets import asset
    from deployer.core import scripts

    sync = asset("edge", "lua", "deployer", "sync.lua").read_text()
    state = asset("edge", "lua", "deployer", "state.lua").read_text()
    push_s = int(re.search(r"local PUSH_TIMEOUT_MS = (\d+)", sync)[1]) / 1000
    attempts = int(re.search(r"attempts or (\d+), timeout or PUSH_TIMEOUT_MS", sync)[1])
    back_s = int(re.search(r"push_all\(addrs, next_seq\(\), old, 1, (\d+)\)", sync)[1]) / 1000
    queue_s = int(re.search(r"waited > (\d+) then", sync)[1])
    publish = attempts * push_s + (attempts - 1) * 0.2 + back_s
    load = int(re.search(r"local LOAD_SECONDS = (\d+)", state)[1])
    assert load >= publish + queue_s, (load, publish, queue_s)
    notify = scripts.NOTIFY_SECONDS
    assert notify >= 2 * publish + 5, (notify, publish)  # 5 s to spare on a busy host
    assert f"--max-time {scripts.NOTIFY_SECONDS} " in scripts.NOTIFY
