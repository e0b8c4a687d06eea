"""A failed health wait speaks of the user's service, path, port and config keys, never of
the edge's internal URL; a container listening on another port is recognised from /proc/net."""

from __future__ import annotations

from types import SimpleNamespace

from deployer.core import probe
from deployer.flows.checks import explained

PROC_NET_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1
   1: 0100007F:1F90 0100007F:A3C2 01 00000000:00000000 00:00000000 00000000  1000        0 2 1
   2: 0B00007F:9D1D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 0
"""


def test_listening_ports_are_read_from_proc_net():
    # 8080 is an established connection only; 40221 is Docker's DNS resolver on 127.0.0.11
    assert probe.listening_ports(PROC_NET_TCP) == {3000, 8081}
    assert probe.listening_ports("") == set()


def test_a_health_failure_names_the_service_its_path_port_and_keys(shop):
    ctx = SimpleNamespace(config=shop)
    url = probe.health_url("green", "backend", "r0000001")
    said = explained(ctx, [f"{url}: HTTP 404"], "green", "r0000001")
    assert said == [
        "backend: GET /health on port 8080 of its container answered HTTP 404 "
        "(services.backend.health, services.backend.port)"
    ]
    assert "8081" not in said[0] and "_deployer" not in said[0]
    worker = probe.health_url("green", "worker", "r0000001")
    quiet = explained(ctx, [f"{worker}: HTTP 502"], "green", "r0000001")
    assert quiet == [
        "worker: nothing answered GET /ready on port 9000 of its container (services.worker.health, services.worker.port)"
    ]
    other = "http://127.0.0.1:8081/api/version: HTTP 500"  # a smoke path: left as it is
    assert explained(ctx, [other], "green", "r0000001") == [other]
