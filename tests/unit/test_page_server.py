"""`deployer page` without an engine: which paths it passes on to the edge (and how it quotes
them), what it answers on its own, and its bad input (exit 2, one line)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import httpx
import pytest

from deployer.adapters import pageserver
from deployer.adapters.edge import Edge
from deployer.adapters.models import ExecResult
from deployer.core.adminpage import admin_path
from deployer.errors import EdgeError, InputError


@pytest.mark.parametrize(
    "path",
    ["/_deployer/page/", "/_deployer/page/series.json", "/_deployer/page/page.js", "/_deployer/metrics",
     "/_deployer/metrics?window=10&top=5", "/_deployer/page/?x=1"],
)  # fmt: skip
def test_the_page_and_the_metrics_are_passed_on(path):
    assert admin_path(path) == path


@pytest.mark.parametrize(
    "path",
    ["/", "/_deployer/sync", "/_deployer/health/blue", "/_deployer/metricsx", "/_deployer/page/../sync",
     "/_deployer/page/x'y", "/_deployer/page/$(id)", "/_deployer/page/a b", "/_deployer/page/%2e%2e/",
     "/_deployer/page/;id", "/_deployer/page//etc", "/api/version", "/_deployer/page/\n"],
)  # fmt: skip
def test_anything_else_is_not(path):
    assert admin_path(path) is None


class Recorder:
    def __init__(self, stdout: str = "", code: int = 0) -> None:
        self.argv: list[list[str]] = []
        self.stdout, self.code = stdout, code

    def exec(self, container, argv, *, step, env=None, user=""):
        self.argv.append(argv)
        return ExecResult(self.code, self.stdout, "")


def test_admin_get_curls_the_quoted_path_inside_the_edge_and_reads_status_and_type():
    engine = Recorder('{"services":{}}\n200 application/json')
    status, kind, body = Edge(engine, "shop").admin_get("/_deployer/metrics?window=10&top=5")
    assert (status, kind, body) == (200, "application/json", '{"services":{}}')
    (argv,) = engine.argv
    assert argv[:2] == ["sh", "-c"]
    assert argv[2].endswith(" 'http://127.0.0.1:8081/_deployer/metrics?window=10&top=5'")


def test_admin_get_refuses_another_path_without_an_exec():
    engine = Recorder()
    with pytest.raises(InputError):
        Edge(engine, "shop").admin_get("/_deployer/sync")
    assert engine.argv == []


def test_admin_get_fails_when_the_admin_port_does_not_answer():
    with pytest.raises(EdgeError):
        Edge(Recorder("\n000 ", 7), "shop").admin_get("/_deployer/page/")


class FakeEdge:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def admin_get(self, path):
        self.asked.append(path)
        return 200, "text/html", f"<html>{path}</html>"


@pytest.fixture
def served():
    server = pageserver.listen(free_port())
    edge = FakeEdge()
    thread = threading.Thread(target=pageserver.serve, args=(server, edge), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}", edge
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_server_passes_on_the_page_and_answers_the_rest_itself(served):
    url, edge = served
    with httpx.Client(base_url=url, timeout=5) as client:
        answer = client.get("/_deployer/page/status.json")
        assert (answer.status_code, answer.text) == (200, "<html>/_deployer/page/status.json</html>")
        assert answer.headers["content-type"] == "text/html"
        assert client.get("/_deployer/sync").status_code == 404
        assert client.get("/_deployer/page/x'y").status_code == 404
        first = client.get("/")
        assert (first.status_code, first.headers["location"]) == (302, "/_deployer/page/")
        assert client.get("/_deployer/metrics", headers={"Host": "evil.example:80"}).status_code == 403
    assert edge.asked == ["/_deployer/page/status.json"]  # nothing else ran an exec


def test_the_server_listens_on_127_0_0_1_only(served):
    url, _ = served
    server_port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", server_port)) == 0
    assert pageserver.ADDRESS == "127.0.0.1"


def deployer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deployer", *args], capture_output=True, text=True, timeout=60)


def test_a_port_in_use_or_out_of_range_is_bad_input():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for bad, named in ((str(port), f"127.0.0.1:{port}"), ("70000", "70000"), ("0", "0")):
            result = deployer("page", "--port", bad, "--config", "/nonexistent/deployer.toml")
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert result.returncode == 2 and len(lines) == 1, result.stderr
            assert named in lines[0] and "--port" in lines[0] and "Traceback" not in result.stderr
