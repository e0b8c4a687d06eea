"""The backup service's watch on WAL archiving (deployer/agent/archiving.py) and the marker
the container's healthcheck reads (deployer/agent/probe.py): a marker counts only when this
container's schedule wrote it."""

from __future__ import annotations

import os
import time

from deployer.agent import archiving, probe, report
from deployer.agent.boot import Agent
from deployer.agent.folder import Folder
from deployer.core import pitr
from deployer.core.agentconfig import AgentConfig

BEHIND = "00000003000000000000000A|||{failed}|{reset}"


class FakePostgres:
    row = ""

    def __init__(self, *args) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def psql(self, sql: str, database: str, *, step: str) -> str:
        assert sql == pitr.ARCHIVER and step == archiving.STEP
        return self.row


def agent(tmp_path, max_lag: float = 10) -> Agent:
    config = AgentConfig("p", "app", "db", "app", "0 3 * * *", 1, 0, 0, 0, 1.0, dumps=str(tmp_path), max_lag=max_lag)
    return Agent(config, Folder(tmp_path), "sekrit-pw", "")


def _watch(monkeypatch, row: str) -> list[str]:
    FakePostgres.row = row
    monkeypatch.setattr(archiving, "Postgres", FakePostgres)
    reported = []
    monkeypatch.setattr(report, "failure", lambda agent, step, error: reported.append(error))
    return reported


def test_a_lag_past_max_lag_writes_the_marker_and_reports_once_and_catching_up_removes_it(tmp_path, monkeypatch):
    a, now = agent(tmp_path), time.time()
    reported = _watch(monkeypatch, BEHIND.format(failed=int(now), reset=int(now - 100)))
    archiving.check(a)
    archiving.check(a)
    marker = tmp_path / pitr.BEHIND_MARKER
    assert marker.read_text().startswith("WAL archiving is behind") and len(reported) == 1
    FakePostgres.row = f"00000003000000000000000B|00000003000000000000000A|{int(now)}|{int(now)}|{int(now - 100)}"
    archiving.check(a)
    assert not marker.exists() and len(reported) == 1


def test_a_new_container_drops_an_earlier_ones_marker_and_judges_at_once(tmp_path, monkeypatch):
    """The earlier container judged under max_lag 600 while a repository was being made; the
    new one, started a moment after the server's counters were reset, is not behind."""
    marker = tmp_path / pitr.BEHIND_MARKER
    marker.write_text("WAL archiving is behind: ... max_lag 600 s\n")
    now = time.time()
    reported = _watch(monkeypatch, BEHIND.format(failed=int(now), reset=int(now - 5)))
    archiving.start(agent(tmp_path))
    assert not marker.exists() and reported == []
    archiving.start(agent(tmp_path, max_lag=2))
    assert marker.exists() and len(reported) == 1  # behind under this container's own max_lag


def test_the_healthcheck_ignores_a_marker_older_than_its_container(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(probe, "FOLDER", str(tmp_path))
    marker = tmp_path / pitr.BEHIND_MARKER
    marker.write_text("WAL archiving is behind: 3 finished segment(s) wait\n")
    began = probe.container_started()  # here: this machine's PID 1, started before this test
    assert began is not None and began <= time.time()
    assert probe.archive_behind().startswith("WAL archiving is behind")  # written after the start
    os.utime(marker, (began - 60, began - 60))
    assert probe.archive_behind() == ""  # an earlier container's
    monkeypatch.setattr(probe, "container_started", lambda: None)
    assert probe.archive_behind() != ""  # nothing says when this container started: it counts
