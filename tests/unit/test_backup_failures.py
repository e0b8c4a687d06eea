"""A failing backup says so: a failed dump is reported whatever failed (the webhook gets it
from the agent, or from the CLI when the webhook did not take the agent's POST), health
does not stay `ok` when the folder cannot hold the agent's markers, and `status` says why."""

from __future__ import annotations

import errno
import json
from datetime import UTC, datetime, timedelta

import pytest

from deployer.agent import commands, health, report
from deployer.agent.boot import Agent
from deployer.agent.folder import Folder
from deployer.core import dumps
from deployer.core.agentconfig import AgentConfig
from deployer.errors import BackupError


def agent(tmp_path, expr: str = "0 3 * * *", webhook: str = "") -> Agent:
    config = AgentConfig("p", "app", "db", "app", expr, 1, 0, 0, 0, 1.0, dumps=str(tmp_path))
    return Agent(config, Folder(tmp_path), "sekrit-pw", webhook)


# -- a failed dump is reported, whatever failed ----------------------------------------------
def test_the_failure_event_is_one_shape_and_masks_secrets():
    from deployer.core import masking

    masking.register("sekrit-pw")
    body = dumps.failure_event("shop", "backup", "not enough free space; password sekrit-pw")
    assert set(body) == {"text", "project", "event", "step", "error"}
    assert body["event"] == "backup_failed" and body["step"] == "backup" and body["project"] == "shop"
    assert body["text"].startswith("[shop] backup failed in step 'backup': not enough free space")
    assert "sekrit-pw" not in json.dumps(body)


@pytest.mark.parametrize(
    "failure",
    [
        BackupError("not enough free space for a dump in the dumps folder: 0 B free", step="backup"),
        OSError(errno.ENOSPC, "No space left on device", "/tmp/deployer-pg-1/pgpass"),
        KeyError("a bug"),
    ],
)
def test_every_failed_dump_command_is_posted_and_names_its_step(tmp_path, monkeypatch, capsys, failure):
    from deployer.agent import boot
    from deployer.agent import dump as dumping

    a = agent(tmp_path, webhook="http://hook.invalid/x")
    posted = []
    monkeypatch.setattr(boot, "start", lambda: (a, []))
    monkeypatch.setattr(report, "webhook", lambda _, step, error: posted.append((step, error)) or False)

    def refuse(*args, **kw):
        raise failure

    monkeypatch.setattr(dumping, "take", refuse)
    assert commands.main(["dump", "--step", "backup"]) == 1
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["step"] == "backup" and last["input"] is False and last["notified"] is False
    assert posted == [("backup", last["error"])]
    assert report.read_status(a.folder)["last_error"]["step"] == "backup"


def test_the_cli_posts_what_the_agent_could_not(monkeypatch, shop):
    from deployer.errors import Cancelled, EngineError, InputError
    from deployer.flows import backups
    from deployer.runtime.mode import context

    ctx = context(shop)
    sent, said = [], []
    ctx.say = said.append
    monkeypatch.setattr(backups, "notify", lambda ctx, step, error: sent.append(step))
    cases = [
        (BackupError("refused", step="backup"), True, []),  # the agent's POST went through
        (BackupError("refused", step="backup"), False, ["backup"]),  # the webhook did not take it
        (BackupError("ended without an answer", step="backup"), None, ["backup"]),
        (EngineError("the engine went away", step="backup"), None, ["backup"]),
        (InputError("bad label"), None, []),
        (Cancelled("cancelled"), None, []),
    ]
    for exc, notified, expect in cases:
        sent.clear()
        exc.notified = notified

        def ask(ctx, *args, step, progress="", exc=exc):
            raise exc

        monkeypatch.setattr(backups, "ask", ask)
        with pytest.raises(type(exc)):
            backups.take(ctx, label="manual")
        assert sent == expect, exc
    assert said == ["the backup agent could not deliver the failure to the webhook: sending it from here"]


# -- health when the folder is full ----------------------------------------------------------
def test_without_a_marker_the_containers_start_counts_not_now(tmp_path, monkeypatch):
    a = agent(tmp_path, "* * * * * */10")
    now = datetime.now(UTC)
    monkeypatch.setattr(health, "container_started", lambda: now - timedelta(minutes=2))
    ok, message = health.health(a)  # no marker, no dump: two minutes after the start
    assert not ok and message.startswith("overdue: no good dump of app")
    monkeypatch.setattr(health, "container_started", lambda: None)
    assert health.health(a)[0]  # nothing says when it started: the schedule is starting now


def test_an_unwritable_deadline_is_removed_and_health_says_why(tmp_path, monkeypatch, capsys):
    from deployer.agent import probe

    a = agent(tmp_path, "* * * * * */10")
    report.first_start(a.folder, datetime.now(UTC) - timedelta(minutes=5))
    (tmp_path / health.DEADLINE).write_text("99999999999 far away\n")

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(a.folder, "write_atomic", full)
    monkeypatch.setattr(a.folder, "free_bytes", lambda: 0)
    health.write_deadline(a)
    assert not (tmp_path / health.DEADLINE).exists()
    ok, message = health.health(a)
    assert not ok and "the dumps folder has 0 B free, a dump needs about 32.0 MB" in message
    status = health.status(a)
    assert status["overdue"] and status["health"] == {"ok": False, "message": message}

    monkeypatch.setattr(probe, "FOLDER", str(tmp_path))
    monkeypatch.setattr(health, "now", lambda: datetime.now(UTC))
    monkeypatch.setattr(commands.boot, "start", lambda: (a, []))
    assert probe.main() == 1 and "0 B free" in capsys.readouterr().out  # judged from the folder


def test_the_containers_start_is_read_from_proc():
    started = health.container_started()  # here: this machine's PID 1, started before this test
    assert started is not None and datetime(2000, 1, 1, tzinfo=UTC) < started <= datetime.now(UTC)


def test_status_shows_why_the_schedule_is_unhealthy(capsys, monkeypatch):
    from deployer.cli import render

    monkeypatch.setenv("COLUMNS", "80")
    part = {"status": "running", "health": "unhealthy"}
    render.status(
        {
            "project": "shop",
            "engine": "the local engine",
            "live": None,
            "colours": {},
            "edge": dict(part),
            "database": dict(part),
            "backup_service": dict(part),
            "backup": {
                "name": None,
                "overdue": True,
                "next_run": "2024-05-06T03:00:10+00:00",
                "health": {"ok": False, "message": "overdue: no good dump of app by X; the dumps folder has 0 B free"},
                "last_error": {"at": "x", "step": "scheduled dump", "error": "[disk] full"},
                "without_metadata": ["dump-20240506T030000Z"],
            },
            "releases": [],
        }
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "backup service: running/unhealthy" in out and "OVERDUE" in out
    assert "backup schedule: overdue: no good dump of app by X; the dumps folder has 0 B free" in out
    assert "dumps without metadata (unverified; `deployer backup verify NAME`): dump-20240506T030000Z" in out


# -- `up` asks the backup service's health once, at once --------------------------------------
class _Engine:
    where = "the local engine"

    def __init__(self, state: str, code: int, out: str) -> None:
        self.state, self.code, self.out, self.asked = state, code, out, []

    def container(self, name):
        from types import SimpleNamespace

        return None if self.state == "missing" else SimpleNamespace(running=self.state == "running", status=self.state)

    def exec(self, name, argv, *, step):
        from deployer.adapters.models import ExecResult

        self.asked.append((name, argv, step))
        return ExecResult(self.code, self.out, "")


@pytest.mark.parametrize(
    "state, code, out, words",
    [
        ("running", 0, "ok: the next good dump is due by ...", None),
        ("running", 1, "overdue: no good dump of app by 2026-12-07 03:30; last error: sekrit-pw", "is not healthy"),
        ("exited", 0, "", "is exited"),
        ("missing", 0, "", "does not exist"),
    ],
)
def test_up_asks_the_backup_services_health_once_and_says_why_it_is_not(state, code, out, words):
    from types import SimpleNamespace

    from deployer.core import masking
    from deployer.flows import agent_call

    masking.register("sekrit-pw")
    engine = _Engine(state, code, out)
    ctx = SimpleNamespace(engine=engine, runtime=SimpleNamespace(agent_container=lambda: "p-infra-backup-1"))
    if words is None:
        agent_call.healthy(ctx, "up")
        assert engine.asked == [("p-infra-backup-1", ["python3", "-m", "deployer.agent", "health"], "up")]
        return
    with pytest.raises(BackupError) as failed:
        agent_call.healthy(ctx, "up")
    assert words in str(failed.value) and failed.value.step == "up" and "p-infra-backup-1" in str(failed.value)
    assert "sekrit-pw" not in str(failed.value)
    if code:
        assert "overdue: no good dump of app" in str(failed.value)
