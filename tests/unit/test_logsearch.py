"""`deployer logs --slow` and `--request` on a fake runtime (flows/logsearch.py): the edge's
log and the app's lines are read through the runtime's sources, as `deployer logs` reads them."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from deployer.adapters.operate import CONTAINER, Source
from deployer.errors import DeployerError, EngineError, InputError
from deployer.flows import logsearch

EDGE = Source("edge", CONTAINER, "shop-infra-edge-1")


def edge_line(request_id: str, total: float, service: str = "backend", release: str = "1a2b3c4d") -> str:
    return json.dumps(
        {
            "time": "2026-12-07T08:25:44+00:00",
            "request_id": request_id,
            "prefix": "/api/",
            "colour": "green",
            "release": release,
            "service": service,
            "method": "GET",
            "path": "/api/slow",
            "status": 200,
            "connect_time": "0.001" if service else "",
            "header_time": f"{total}" if service else "",
            "upstream_time": f"{total}" if service else "",
            "time_total": total,
            "bytes": 100,
        }
    )


class Logs:
    """The logs by source name; the runtime's sources of a release; what was read, since when."""

    def __init__(self, logs: dict[str, list[str]], releases: dict[tuple[str, str], list[Source]]) -> None:
        self.logs, self.releases, self.read = logs, releases, []

    def stream(self, engine, sources, *, follow, since, tail, write, step):
        assert not follow and tail is None and since > 0 and step == "logs"
        for source in sources:
            self.read.append(source.name)
            if source.name not in self.logs:
                raise EngineError(f"cannot read the log of {source.name}: no such service", step=step)
            for line in self.logs[source.name]:
                write(line)

    def runtime(self):
        return SimpleNamespace(
            infra_log=lambda role: EDGE,
            log_sources=lambda colour, release, services: self.releases.get((colour, release), []),
        )


@pytest.fixture
def world(shop, monkeypatch):
    def make(logs, releases=None):
        fake = Logs(logs, releases or {})
        monkeypatch.setattr(logsearch.operate, "stream_logs", fake.stream)
        return SimpleNamespace(config=shop, runtime=fake.runtime(), engine=None), fake

    return make


def test_slow_reads_the_edge_and_keeps_the_slowest(world):
    ctx, fake = world({EDGE.name: [edge_line("a", 0.1), "nginx: an error", edge_line("b", 2.0), edge_line("c", 1.0)]})
    found = logsearch.slow(ctx, 0.5, since=None, service=None, limit=None)
    assert [e["request_id"] for e in found.result()] == ["b", "c"] and fake.read == [EDGE.name]
    assert logsearch.slow(ctx, 0.5, since="5m", service="backend", limit=1).result()[0]["request_id"] == "b"
    with pytest.raises(InputError, match="--service: no service 'edge' in deployer.toml"):
        logsearch.slow(ctx, 0.5, since=None, service="edge", limit=None)


def test_a_request_s_edge_line_and_the_app_lines_that_name_it(world):
    app = Source("backend", CONTAINER, "shop-green-1a2b3c4d-backend-1")
    ctx, fake = world(
        {
            EDGE.name: [edge_line("other", 0.1), edge_line("abc", 0.3), "abc in an error line"],
            app.name: ["listening", "slow request id=abc GET /api/slow", "id=abcd", "done abc"],
        },
        {("green", "1a2b3c4d"): [app]},
    )
    found = logsearch.request(ctx, "abc", since=None)
    assert [e["request_id"] for e in found.edge] == ["abc"] and found.more == 0
    [served] = found.served
    assert (served.service, served.colour, served.release) == ("backend", "green", "1a2b3c4d")
    assert served.lines == ["slow request id=abc GET /api/slow", "done abc"] and served.note == ""
    assert fake.read == [EDGE.name, app.name]


def test_a_gone_release_the_edge_s_own_answer_and_an_app_without_the_id(world):
    ctx, _ = world(
        {EDGE.name: [edge_line("gone", 0.3, release="0f0f0f0f"), edge_line("own", 0.0, service="")]},
        {("green", "0f0f0f0f"): []},
    )
    [served] = logsearch.request(ctx, "gone", since="1h").served
    assert served.lines == [] and "the release 0f0f0f0f of green is gone: the edge line only" in served.note
    assert logsearch.request(ctx, "own", since=None).served == []  # no app was asked

    swarm = Source("backend", "service", "shop-green-0f0f0f0f_backend")  # a removed swarm service
    ctx, _ = world({EDGE.name: [edge_line("gone", 0.3, release="0f0f0f0f")]}, {("green", "0f0f0f0f"): [swarm]})
    [served] = logsearch.request(ctx, "gone", since=None).served
    assert "is gone" in served.note and "no such service" in served.note

    quiet = Source("backend", CONTAINER, "quiet")
    ctx, _ = world({EDGE.name: [edge_line("q", 0.3)], "quiet": ["nothing"]}, {("green", "1a2b3c4d"): [quiet]})
    [served] = logsearch.request(ctx, "q", since=None).served
    assert served.note == "no line of backend in green (release 1a2b3c4d) names q"


def test_an_id_not_in_the_window_fails_naming_the_step(world):
    ctx, _ = world({EDGE.name: [edge_line("abcd", 0.3), "abc"]})
    with pytest.raises(DeployerError, match="request abc is not in the edge's access log of the last 24h") as e:
        logsearch.request(ctx, "abc", since=None)
    assert e.value.step == "logs" and e.value.exit_code == 1
