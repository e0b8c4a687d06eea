"""End to end on the bundled example: the Spring-style backend, the Next.js front end, pgvector.

`make demo`'s own script: build v1 and v2 -> release v1 -> write items through the
edge -> release v2 under a background client -> items survive and search ranks them ->
switch back -> no request failed. Slow (it builds the real images): one demo runs in CI, and
the demo run twice in the nightly tier.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
ITEMS = ["green apple", "red apple pie", "apple crumble", "car engine oil", "bicycle chain grease"]


def example_config(project) -> None:
    """The shipped example config with this test's names, free ports and fresh secrets."""
    password = secrets.token_hex(12)
    (project.folder / "db.env").write_text(f"POSTGRES_USER=app\nPOSTGRES_PASSWORD={password}\n")
    (project.folder / "backend.env").write_text(
        "SPRING_DATASOURCE_URL=jdbc:postgresql://db:5432/app\n"
        f"SPRING_DATASOURCE_USERNAME=app\nSPRING_DATASOURCE_PASSWORD={password}\n"
    )
    for name in ("db.env", "backend.env"):
        (project.folder / name).chmod(0o600)
    text = (ROOT / "examples" / "deployer.toml").read_text()
    for old, new in (
        ('name = "shop"', f'name = "{project.name}"'),
        ('image = "shop-', f'image = "{project.name}-'),
        ('build = "backend"', f'build = "{ROOT}/examples/backend"'),
        ('build = "frontend"', f'build = "{ROOT}/examples/frontend"'),
        ('"../deployer/assets/templates/', f'"{ROOT}/deployer/assets/templates/'),
        ("public_port = 8080", "public_port = 0"),
        ('public_bind = "0.0.0.0"', 'public_bind = "127.0.0.1"'),
        ("preview_port = 8081", "preview_port = 0"),
        ('restart = "unless-stopped"', 'restart = "no"'),
        ('window = "3m"', 'window = "20s"'),  # the watch after v2's switch, on the background client's traffic
    ):
        assert old in text, old
        text = text.replace(old, new)
    project.config.write_text(text)
    for version in ("v1", "v2"):
        project.images += [f"{project.name}-backend:{version}", f"{project.name}-frontend:{version}"]


def run_demo(project) -> str:
    demo = subprocess.run(
        [sys.executable, "-u", str(ROOT / "examples" / "demo.py"), str(project.config)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = demo.stdout + demo.stderr
    assert demo.returncode == 0, out
    client = re.search(r"background client: (\d+) requests, (\d+) failed, versions seen \['v1', 'v2'\]", out)
    assert client, out
    assert int(client[1]) > 50 and client[2] == "0"
    assert f"after v2: {len(ITEMS)}/{len(ITEMS)} items are still there; search 'green apple' -> green apple," in out
    return out


def test_example_stack_end_to_end(project):
    """`make demo`'s script itself (examples/demo.py), on this test's copy of the example
    config."""
    demo_once(project)


@pytest.mark.long
def test_make_demo_twice(project):
    """The demo again on the demo that is up, as a user who runs `make demo` twice: the
    nightly tier (a second full demo costs two minutes; the first is in every run)."""
    demo_once(project)
    again = run_demo(project)  # v1 now goes to the idle colour, green
    assert "live now answers {'version': 'v2', 'colour': 'blue'}" in again
    assert "live now answers {'version': 'v1', 'colour': 'green'}" in again
    names = [item["name"] for item in project.get("/api/items").json()]
    assert sorted(n for n in names if n in ITEMS) == sorted(ITEMS)  # stored once, not twice


def demo_once(project) -> None:
    example_config(project)
    out = run_demo(project)
    assert f"built {project.name}-backend:v1" in out
    assert "live now answers {'version': 'v2', 'colour': 'green'}" in out
    assert "live now answers {'version': 'v1', 'colour': 'blue'}" in out
    # the front end through the edge, after the switch back
    page = project.get("/", headers={"X-Request-ID": "demo-page-1"})
    assert page.status_code == 200 and "v1" in page.text and page.headers["x-request-id"] == "demo-page-1"
    assert_request_id_logged(project, "demo-page-1")
    assert_no_delayed_ack_stall(project)


def assert_request_id_logged(project, request_id: str) -> None:
    """The page's X-Request-ID is in the front end's log line of the page and in the backend's
    line of the front end's call to it: the front end passes it on."""
    for _ in range(50):
        logs = {"backend": "", "frontend": ""}
        for c in project.containers("blue"):
            logs[c.labels["deployer.service"]] = logs.get(c.labels["deployer.service"], "") + c.logs().decode()
        backend = re.search(rf"GET /api/items 200 \d+ms id={request_id}\n", logs["backend"])
        if backend and re.search(rf"GET / \d+ items id={request_id}\n", logs["frontend"]):
            return
        time.sleep(0.1)
    raise AssertionError(f"id {request_id} not logged by both: {logs['frontend'][-500:]} {logs['backend'][-500:]}")


def assert_no_delayed_ack_stall(project, requests: int = 60) -> None:
    """The edge reuses its connections to the backend. A server without TCP_NODELAY that
    writes headers and body apart makes the body wait for the edge's delayed ACK: about
    40 ms on many requests (the example's JDK HttpServer did, on about half of them)."""
    slow = 0
    with httpx.Client(timeout=10) as client:
        for _ in range(requests):
            began = time.monotonic()
            assert client.get(f"{project.live_url}/api/version").status_code == 200
            slow += time.monotonic() - began >= 0.035
    assert slow < requests // 4, f"{slow} of {requests} answers took 35 ms or more"


def test_backend_finishes_in_flight_requests_on_stop(project):
    example_config(project)
    project.ok("build", "v1")
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    backend = next(c for c in project.containers("blue") if c.labels["deployer.service"] == "backend")
    result: dict = {}

    def slow_request() -> None:
        url = f"{project.live_url}/api/slow?seconds=3"
        try:
            result["response"] = httpx.get(url, timeout=20)
        except httpx.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(1)  # the request is in flight
    backend.stop(timeout=25)
    thread.join(timeout=30)
    assert "error" not in result, result
    assert result["response"].status_code == 200
    backend.reload()
    assert backend.attrs["State"]["ExitCode"] == 0
