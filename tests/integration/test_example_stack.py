"""End to end on the bundled example: the Spring-style backend, the Next.js front end, pgvector.

build v1 -> release v1 -> write items through the edge -> build v2 -> release v2
under a background client -> items survive and search ranks them -> switch back
-> no request failed. Slow (it builds the real images), and it runs in CI.
"""

from __future__ import annotations

import secrets
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


class Client(threading.Thread):
    """A background user: GETs through the live route until stopped; counts failures."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.ok, self.failures = base, 0, []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.halt.is_set():
                for path in ("/api/version", "/api/items", "/"):
                    try:
                        response = client.get(self.base + path)
                        if response.status_code >= 400:
                            self.failures.append(f"{path}: HTTP {response.status_code}")
                        else:
                            self.ok += 1
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{path}: {type(exc).__name__}")
                time.sleep(0.02)


def test_example_stack_end_to_end(project):
    example_config(project)
    built = project.ok("build", "v1")
    assert f"built {project.name}-backend:v1" in built.stderr
    project.ok("up")
    project.ok("release", "v1")

    live = project.live_url
    with httpx.Client(base_url=live, timeout=10) as http:
        assert http.get("/api/version").json() == {"version": "v1", "colour": "blue"}
        page = http.get("/")
        assert page.status_code == 200 and "v1" in page.text
        for name in ITEMS:
            assert http.post("/api/items", json={"name": name}).status_code == 201

        project.ok("build", "v2")
        client = Client(live)
        client.start()
        try:
            project.ok("release", "v2")
            assert http.get("/api/version").json() == {"version": "v2", "colour": "green"}
            assert "v2" in http.get("/").text
            names = [item["name"] for item in http.get("/api/items").json()]
            assert sorted(n for n in names if n in ITEMS) == sorted(ITEMS)
            hits = [hit["name"] for hit in http.get("/api/items/search", params={"q": "green apple", "k": 3}).json()]
            assert hits[0] == "green apple"
            assert set(hits[1:]) <= {"red apple pie", "apple crumble"}

            project.ok("switch", "--to", "blue")
            assert http.get("/api/version").json() == {"version": "v1", "colour": "blue"}
            time.sleep(1)
        finally:
            client.halt.set()
            client.join(timeout=30)
    assert client.ok > 50
    assert client.failures == []


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
