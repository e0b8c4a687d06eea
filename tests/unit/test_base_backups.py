"""The backup service's pgBackRest base backups on their schedule (deployer/agent/basebackup.py):
which kind is due, that a full stands for a differential due at the same time, and that a
failure is reported, with the database's part faked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deployer.agent import basebackup, report
from deployer.agent.boot import Agent
from deployer.agent.folder import Folder
from deployer.core.agentconfig import AgentConfig

T = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)  # a Sunday


def agent(tmp_path, schedules=(("full", "0 1 * * 0"), ("diff", "0 1 * * *"), ("incr", "0 */4 * * *"))) -> Agent:
    config = AgentConfig(
        "p", "app", "db", "app", "0 3 * * *", 1, 0, 0, 0, 1.0, dumps=str(tmp_path), pitr_repos=2,
        pitr_schedules=schedules,
    )  # fmt: skip
    return Agent(config, Folder(tmp_path), "", "")


@pytest.fixture(autouse=True)
def fresh():
    basebackup._tried.clear()


def test_the_next_base_backup_and_the_biggest_kind_due(tmp_path, monkeypatch):
    a = agent(tmp_path)
    assert basebackup.wait(a, T, T) == 30 * 60  # 01:00: full and diff, before the incr at 04:00
    taken = []
    monkeypatch.setattr(basebackup, "take", lambda agent, kind, say: taken.append(kind) or [])
    basebackup.if_due(a, T + timedelta(minutes=31), T)
    assert taken == ["full"]
    last = report.read_status(a.folder)["last_base_backups"]
    assert set(last) == {"full", "diff"}  # the full stood for the differential
    basebackup.if_due(a, T + timedelta(minutes=40), T)
    assert taken == ["full"]  # nothing due until the incr at 04:00
    assert basebackup.wait(a, T + timedelta(minutes=40), T) == (2 * 60 + 50) * 60


def test_a_failed_base_backup_is_reported_and_not_retried_at_once(tmp_path, monkeypatch):
    a = agent(tmp_path, schedules=(("incr", "0 * * * *"),))

    def fail(agent, kind, say):
        raise RuntimeError("pgbackrest backup (repository 2) failed: unable to connect")

    monkeypatch.setattr(basebackup, "take", fail)
    basebackup.if_due(a, T + timedelta(hours=1), T)
    error = report.read_status(a.folder)["last_error"]
    assert error["step"] == "base backup" and "repository 2" in error["error"]
    assert basebackup.wait(a, T + timedelta(hours=1, seconds=1), T) > 0


def test_no_schedule_no_base_backup(tmp_path):
    assert basebackup.wait(agent(tmp_path, schedules=()), T, T) == basebackup.WAKE


def test_a_base_backup_waits_while_another_pgbackrest_command_holds_the_lock(tmp_path, monkeypatch):
    from deployer.errors import BackupError

    said = iter(["ERROR: [050]: unable to acquire lock on file", "{}"])
    calls = []

    class Pg:
        def psql(self, sql, database, *, step):
            calls.append(sql)
            if sql.startswith("copy") and len(calls) == 1:
                raise BackupError("program failed", step=step)
            return next(said) if sql.startswith("select") else ""

    monkeypatch.setattr(basebackup.time, "sleep", lambda s: None)
    assert basebackup._program(Pg(), ["pgbackrest", "check"], "pgbackrest check") == "{}"
    assert [c.split()[0] for c in calls] == ["copy", "select", "copy", "select"]
