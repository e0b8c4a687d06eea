"""The SwarmCluster fixture: 3 dockerd-in-container nodes forming a swarm, plus an insecure registry."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from .fixtures import swarm_cluster, testweb_image  # noqa: F401  (fixtures)
from .remote import wait_until
from .swarm import SwarmCluster

# The harness's own check, nightly: test_swarm.py forms a cluster like it on every `make test`.
pytestmark = [pytest.mark.docker, pytest.mark.long]

# Run on a node, inside a container on the overlay: resolve the service both ways, then GET every task IP and
# the service name. Bounded: DNS entries appear a moment after the tasks run.
CLIENT = """
import json, socket, sys, time, urllib.request
service, want = sys.argv[1], set(sys.argv[2].split(","))
deadline = time.monotonic() + 30
while True:
    try:
        tasks = set(socket.gethostbyname_ex("tasks." + service)[2])
        name = set(socket.gethostbyname_ex(service)[2])
        if tasks == want and name == want:
            break
    except OSError as exc:
        tasks = name = repr(exc)
    if time.monotonic() > deadline:
        sys.exit(f"DNS never matched {sorted(want)}: tasks.{service}={tasks} {service}={name}")
    time.sleep(0.3)
by_ip = {ip: urllib.request.urlopen(f"http://{ip}:8080/", timeout=5).read().decode().strip() for ip in sorted(want)}
by_name = [urllib.request.urlopen(f"http://{service}:8080/", timeout=5).read().decode().strip() for _ in range(10)]
print(json.dumps({"tasks": sorted(tasks), "name": sorted(name), "by_ip": by_ip, "by_name": by_name}))
"""


def test_swarm_cluster(swarm_cluster: SwarmCluster, testweb_image: str, tmp_path: Path) -> None:  # noqa: F811
    cluster = swarm_cluster
    print(f"\ncluster formed in {cluster.timings['form']:.1f}s "
          f"({', '.join(f'{k} {v:.1f}s' for k, v in cluster.timings.items())})")  # fmt: skip
    for node in cluster.nodes:
        print(f"  {node.name}: {', '.join(f'{k} {v:.1f}s' for k, v in node.timings.items())}")

    # Three nodes, one manager, all ready.
    nodes = cluster.manager.client.nodes.list()
    assert len(nodes) == 3
    assert sorted(n.attrs["Spec"]["Role"] for n in nodes) == ["manager", "worker", "worker"]
    assert all(n.attrs["Status"]["State"] == "ready" for n in nodes)

    # An image pushed to the registry.
    t = time.monotonic()
    ref = cluster.push(testweb_image)
    print(f"push {ref}: {time.monotonic() - t:.1f}s")
    assert ref.startswith(f"{cluster.registry}/deployer-testweb:")
    catalog = cluster.manager.exec(f"curl -fsS http://{cluster.registry}/v2/_catalog")[1]
    assert "deployer-testweb" in json.loads(catalog)["repositories"]

    # ... runs as a dnsrr service with 2 replicas (on the workers) on an attachable overlay network.
    stack = f"s{uuid.uuid4().hex[:8]}"
    service, network = f"{stack}_web", f"{stack}_net"
    stack_file = tmp_path / "stack.yml"
    stack_file.write_text(
        f"""
version: "3.8"
services:
  web:
    image: {ref}
    networks: [net]
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      placement:
        constraints: [node.role == worker]
        max_replicas_per_node: 1
networks:
  net:
    driver: overlay
    attachable: true
"""
    )
    sock = cluster.manager.forward_docker_socket()
    dk = ["docker", "-H", f"unix://{sock}"]
    try:
        t = time.monotonic()
        res = subprocess.run([*dk, "stack", "deploy", "--detach=true", "--resolve-image", "never", "-c",
                              str(stack_file), stack], capture_output=True, text=True, timeout=120)  # fmt: skip
        assert res.returncode == 0, res.stderr + res.stdout
        svc = cluster.manager.client.services.get(service)
        assert svc.attrs["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"

        def running_tasks():
            tasks = svc.tasks(filters={"desired-state": "running"})
            if len(tasks) == 2 and all(task["Status"]["State"] == "running" for task in tasks):
                return tasks
            failed = [task["Status"].get("Err") for task in svc.tasks() if task["Status"].get("Err")]
            if failed:
                raise AssertionError(f"tasks failed: {failed}")
            return None

        tasks = wait_until(f"2 running tasks of {service}", running_tasks, timeout=90, interval=0.5)
        print(f"stack deploy -> 2 running tasks: {time.monotonic() - t:.1f}s")
        workers = {n.id for n in nodes if n.attrs["Spec"]["Role"] == "worker"}
        assert {task["NodeID"] for task in tasks} == workers, "one replica on each worker"
        task_ips = sorted(
            str(ipaddress.ip_interface(addr).ip)
            for task in tasks
            for att in task["NetworksAttachments"]
            if att["Network"]["Spec"]["Name"] == network
            for addr in att["Addresses"]
        )
        assert len(task_ips) == 2
        net_attrs = cluster.manager.client.networks.get(network).attrs
        assert net_attrs["Driver"] == "overlay" and net_attrs["Attachable"] is True

        # A container on another node (the manager runs no task) resolves the service and gets answers.
        t = time.monotonic()
        res = cluster.manager.ssh("docker", "run", "--rm", "--network", network, ref,
                                  "python3", "-c", CLIENT, service, ",".join(task_ips), timeout=90)  # fmt: skip
        print(f"client container on the manager: {time.monotonic() - t:.1f}s")
        answer = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"answers: {answer}")
        assert answer["tasks"] == task_ips and answer["name"] == task_ips
        assert len(set(answer["by_ip"].values())) == 2, "each task answered on its own IP"
        assert set(answer["by_name"]) <= set(answer["by_ip"].values())
    finally:
        subprocess.run([*dk, "stack", "rm", stack], capture_output=True, timeout=60)
        cluster.manager.stop_forward(sock)
