"""The edge under a flood of uploads from one client, and its preview and admin server, through
the real edge: a client over edge.max_client_conn gets 429 while another client is served;
request bodies go to the edge's tmpfs (edge.temp_size), never to the disk, and a full tmpfs
is a 503 with Retry-After, not a 500, whose requests give their services.*.max_in_flight
slots back; the preview port answers only the deployer's own paths
(the Docker host through the published port, and commands inside the edge), never an app
container on the edge network; and `status` warns of an engine older than 28."""

from __future__ import annotations

import json
import socket
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from edge_clients import ContainerClient

pytestmark = pytest.mark.docker

CAP = 8
EDGE = f"""
max_client_conn = {CAP}
max_body = "2m"
temp_size = "4m"
{{trusted}}
"""
SLOTS = CAP + 4  # the backend's max_in_flight: room for the held uploads and the other clients
FLOODER, OTHER = "203.0.113.1", "203.0.113.2"
BODY = 2 << 20  # each upload announces the largest body the edge takes
CHUNK = 256 << 10


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    s = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("guard"), docker_client, test_app_image)
    try:
        s.write_config(edge=EDGE.format(trusted=""), backend=f"max_in_flight = {SLOTS}")
        s.release_all("v1")
        # The Docker host (the published port's connections come from the edge network's
        # gateway) is made a trusted proxy, so that X-Forwarded-For gives each test client
        # an address of its own.
        network = docker_client.networks.get(f"{s.name}-edge")
        s.gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        s.write_config(
            edge=EDGE.format(trusted=f'trusted_proxies = ["{s.gateway}"]'), backend=f"max_in_flight = {SLOTS}"
        )
        s.ok("up")
        yield s
    finally:
        s.destroy()


def upload(port: int, client: str) -> socket.socket:
    """A POST of a 2 MB body whose headers are sent, and none of the body yet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        f"POST /api/upload HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: {client}\r\n"
        f"Content-Length: {BODY}\r\n\r\n".encode()
    )
    return s


def answer(s: socket.socket, wait: float) -> tuple[int, str | None] | None:
    """(status, Retry-After) when the edge answered within `wait` seconds, else None."""
    s.settimeout(wait)
    try:
        head = s.recv(65536).decode(errors="replace")
    except TimeoutError:
        return None
    except ConnectionResetError:
        return (0, None)
    if not head:
        return (0, None)
    lines = head.split("\r\n")
    retry = next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("retry-after:")), None)
    return int(lines[0].split()[1]), retry


def post(stack, client: str, size: int, path: str = "/api/upload") -> httpx.Response:
    return httpx.post(stack.live_url + path, content=b"y" * size, headers={"X-Forwarded-For": client}, timeout=10)


def temp_space(stack) -> tuple[str, int]:
    """The filesystem type and the bytes in use of the edge's temporary folder."""
    code, out = stack.edge.exec_run(["df", "-B1", "--output=fstype,used", "/var/lib/nginx"])
    assert code == 0, out
    fstype, used = out.decode().split("\n")[1].split()
    return fstype, int(used)


OPEN_TEMP_FILES = textwrap.dedent(
    """
    for d in /proc/[0-9]*; do
      case "$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)" in "nginx: worker"*) ;; *) continue ;; esac
      for f in $d/fd/*; do
        case "$(readlink $f)" in /var/lib/nginx/*) echo "$(stat -f -L -c %T $f) $(stat -L -c %s $f)" ;; esac
      done
    done
    """
)


def open_temp_files(stack) -> list[tuple[str, int]]:
    """(filesystem type, size) of every temporary file nginx's workers hold open (nginx
    unlinks them as soon as they are made, so they are found through /proc; only the
    workers' own user may read their open files' links)."""
    code, out = stack.edge.exec_run(["sh", "-c", OPEN_TEMP_FILES], user="www-data")  # the workers' own user
    assert code == 0, out
    return [(kind, int(size)) for kind, size in (line.split() for line in out.decode().splitlines())]


def test_a_flood_of_uploads_from_one_client_is_capped_and_kept_off_the_disk(stack):
    port = stack.port(80)
    kind, idle = temp_space(stack)
    assert kind == "tmpfs"
    flood = [upload(port, FLOODER) for _ in range(CAP + 4)]
    try:
        time.sleep(0.5)
        answers = [answer(s, 0.1) for s in flood]  # the two workers take them in any order
        assert sorted(a for a in answers if a) == [(429, "1")] * 4, answers  # over the cap: before any body
        held = [s for s, a in zip(flood, answers, strict=True) if a is None]  # the cap's worth are taken in
        for s in held:
            s.sendall(b"x" * CHUNK)
        time.sleep(0.5)
        files = open_temp_files(stack)
        assert len(files) == CAP and {k for k, _ in files} == {"tmpfs"}, files  # never the container's layer
        assert sum(size for _, size in files) >= CAP * (CHUNK - (16 << 10)), files
        assert temp_space(stack)[1] - idle >= CAP * (CHUNK - (16 << 10))
        # Everyone else is served meanwhile, uploads included.
        other = post(stack, OTHER, 300_000)
        assert other.status_code == 200, (other.status_code, other.text)
        assert other.json()["received"] == 300_000
        assert httpx.get(stack.live_url + "/api/version", headers={"X-Forwarded-For": OTHER}).status_code == 200
        # The cap's own 429 goes to the flooder alone.
        assert post(stack, FLOODER, 10).status_code == 429

        # The flood fills the tmpfs (4m): the bodies that find no room get 503, not 500.
        for s in held:
            try:
                s.sendall(b"x" * (320 << 10))
            except OSError:  # the edge answered this one and closed it
                pass
        outcomes = [answer(s, 1.0) for s in held]
        full = [a for a in outcomes if a]
        assert full and set(full) <= {(503, "1"), (0, None)} and (503, "1") in full, outcomes
        assert httpx.get(stack.live_url + "/api/version", headers={"X-Forwarded-For": OTHER}).status_code == 200
        # An app's own 500 is passed on as it is.
        assert httpx.get(stack.live_url + "/api/status/500", headers={"X-Forwarded-For": OTHER}).status_code == 500
    finally:
        for s in flood:
            s.close()
    deadline = time.monotonic() + 10
    while temp_space(stack)[1] - idle > (64 << 10) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert temp_space(stack)[1] - idle <= 64 << 10  # the space comes back when the bodies end
    assert post(stack, FLOODER, 300_000).json()["received"] == 300_000  # and the flooder is served again
    # Every max_in_flight slot came back, those of the bodies that found no room too (nginx's
    # 500 went to @deployer_no_room, an internal redirect, which empties the router's ngx.ctx):
    # the backend still takes its whole cap at once, each from a client of its own (each one
    # held longer than a request over the cap waits for a slot).
    with ThreadPoolExecutor(SLOTS) as pool:
        statuses = list(pool.map(lambda n: httpx.get(stack.live_url + "/api/slow?ms=3000", timeout=20,
                                                     headers={"X-Forwarded-For": f"203.0.113.{10 + n}"}).status_code,
                                 range(SLOTS)))  # fmt: skip
    assert statuses == [200] * SLOTS, statuses
    assert not [line for line in _diff(stack) if "/var/lib/nginx" in line]


def _diff(stack) -> list[str]:
    return [f"{c['Kind']} {c['Path']}" for c in stack.docker.api.diff(stack.edge.id) or []]


# Requests to the edge's preview port from inside an app container on the edge network:
# "closed" when the edge closed the connection without an answer.
PROBE = textwrap.dedent(
    """
    import http.client, json, os, sys
    out = []
    for host, path, headers in json.loads(os.environ["TARGETS"]):
        conn = http.client.HTTPConnection(host, 8081, timeout=5)
        try:
            conn.request("GET", path, headers=headers)
            out.append(conn.getresponse().status)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            out.append("closed")
        except OSError as exc:
            out.append(repr(exc))
        finally:
            conn.close()
    print(json.dumps(out))
    """
)


def test_the_preview_port_answers_the_deployer_and_no_app_container(stack):
    edge_ip = stack.ports_holder.attrs["NetworkSettings"]["Networks"][f"{stack.name}-edge"]["IPAddress"]
    paths = ["/", "/api/version", "/_deployer/edge", "/_deployer/metrics", "/_deployer/health/blue", "/_deployer/sync"]
    targets = [[f"{stack.name}-infra-edge-1", p, {}] for p in paths]
    targets += [[edge_ip, "/_deployer/metrics", {}], [edge_ip, "/_deployer/metrics", {"X-Forwarded-For": "127.0.0.1"}]]
    app = ContainerClient(stack, name="ssrf")
    try:
        exec_id = stack.docker.api.exec_create(
            app.container.id, ["python3", "-c", PROBE], environment={"TARGETS": json.dumps(targets)}
        )["Id"]
        seen = json.loads(stack.docker.api.exec_start(exec_id).decode().strip().splitlines()[-1])
        assert seen == ["closed"] * len(targets), list(zip(targets, seen, strict=True))
        # The same container reaches the public route: the refusal is the preview server's.
        (public,) = app.run([{"path": "/api/version"}])
        assert public["status"] == 200, public
    finally:
        app.remove()
    # The Docker host, through the port published on its 127.0.0.1 (from the gateway).
    assert httpx.get(stack.preview_url + "/_deployer/edge", timeout=5).status_code == 200
    assert "deployer_requests_total" in httpx.get(stack.preview_url + "/_deployer/metrics", timeout=5).text
    # Commands inside the edge (the deployer's probes and scripts).
    code, out = stack.edge.exec_run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "127.0.0.1:8081/_deployer/edge"]
    )
    assert out.decode() == "200", (code, out)
    # `status` names an engine older than 28 and what it exposes (this machine runs 20.10).
    from deployer.core import exposure

    data = json.loads(stack.ok("status", "--json").stdout)
    old = (exposure.major(data["engine_version"]) or 28) < 28
    assert bool(data["engine_warning"]) == old and (not old or "127.0.0.1" in data["engine_warning"]), data
    assert ("warning: Docker Engine older than 28" in stack.ok("status").stdout) == old
