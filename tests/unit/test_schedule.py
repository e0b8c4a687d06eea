"""The schedule's timing (pure) and the health deadline the agent derives from its folder."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from deployer.agent import health, report
from deployer.agent.boot import Agent
from deployer.agent.folder import Folder, identity
from deployer.core import dumps, schedule
from deployer.core.agentconfig import AgentConfig

T = datetime(2024, 5, 6, 3, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("0 3 * * *", None),
        ("* * * * * */10", None),  # croniter: a sixth field is seconds
        ("0 0 29 2 *", None),  # every leap year still fires
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4 *", "never fires"),
        ("61 * * * *", "not a valid cron expression"),
        ("every day", "not a valid cron expression"),
        ("", "not a valid cron expression"),
    ],
)
def test_problem_names_expressions_that_cannot_serve(expr, problem):
    found = schedule.problem(expr)
    assert (found is None) if problem is None else (problem in found)


def test_the_sixth_field_is_seconds():
    assert schedule.next_run("* * * * * */10", T + timedelta(seconds=3)) == T + timedelta(seconds=10)
    assert schedule.period("* * * * * */10", T) == timedelta(seconds=10)
    assert schedule.period("* * * * * */5", T) == timedelta(seconds=5)


def test_deadline_of_a_nightly_schedule():
    expr = "0 3 * * *"
    assert schedule.grace(expr, T) == timedelta(hours=1)
    assert schedule.deadline(expr, T, T) == T + timedelta(days=1, hours=1)
    assert not schedule.overdue(expr, T, T, T + timedelta(days=1, minutes=59))
    assert schedule.overdue(expr, T, T, T + timedelta(days=1, hours=1, seconds=1))


def test_without_a_good_dump_the_first_start_counts():
    started = T + timedelta(hours=5)
    assert schedule.deadline("0 3 * * *", None, started) == T + timedelta(days=1, hours=1)
    assert schedule.deadline("0 3 * * *", T - timedelta(days=9), started) == T + timedelta(days=1, hours=1)


def test_short_schedules_get_a_grace_of_at_least_15_seconds():
    assert schedule.grace("* * * * * */10", T) == timedelta(seconds=15)
    assert schedule.deadline("* * * * * */5", T, T) == T + timedelta(seconds=20)
    assert schedule.grace("*/30 * * * *", T) == timedelta(minutes=15)


# -- the agent's deadline, from the folder ---------------------------------------------------
def agent(tmp_path, expr: str = "0 3 * * *") -> Agent:
    config = AgentConfig("p", "app", "db", "app", expr, 1, 0, 0, 0, 1.0, dumps=str(tmp_path))
    return Agent(config, Folder(tmp_path), "", "")


def good_dump(a: Agent, created: datetime, database: str = "app", ok: bool = True) -> str:
    data = b"dump bytes"
    name = dumps.new_name(created, a.folder.names())
    meta = dumps.Metadata(
        name, database, dumps.iso(created), "17", "17", "0.8", len(data), hashlib.sha256(data).hexdigest(), 0.1
    )
    (a.folder.path / f".{name}.dump.partial").write_bytes(data)
    a.folder.publish(name, meta)
    a.folder.record(name, dumps.check(created, "read", ok, identity(a.folder.file(name, "dump"))))
    return name


def test_the_deadline_comes_from_the_folder_not_from_the_process(tmp_path):
    a = agent(tmp_path)
    assert report.first_start(a.folder, T) == T
    assert report.first_start(a.folder, T + timedelta(days=3)) == T  # a restart does not move it
    assert health.deadline(a, T + timedelta(days=3)) == T + timedelta(days=1, hours=1)

    good_dump(a, T + timedelta(days=1))
    assert health.deadline(a, T + timedelta(days=3)) == T + timedelta(days=2, hours=1)
    # a newer dump that failed its check, or one of another database, does not count
    good_dump(a, T + timedelta(days=2), ok=False)
    good_dump(a, T + timedelta(days=2, hours=1), database="other")
    assert health.deadline(a, T + timedelta(days=3)) == T + timedelta(days=2, hours=1)


def test_health_turns_and_the_probe_reads_the_deadline_file(tmp_path, monkeypatch, capsys):
    from deployer.agent import probe

    a = agent(tmp_path, "* * * * * */10")
    now = datetime.now(UTC)
    report.first_start(a.folder, now - timedelta(minutes=5))
    ok, message = health.health(a)
    assert not ok and message.startswith("overdue")
    good_dump(a, now)
    assert health.health(a)[0]

    monkeypatch.setattr(probe, "FOLDER", str(tmp_path))
    health.write_deadline(a)
    assert probe.main() == 0 and capsys.readouterr().out.startswith("ok:")
    (tmp_path / health.DEADLINE).write_text("1 2001-01-01T00:00:00+00:00\n")
    report.update_status(a.folder, last_error={"at": "x", "step": "scheduled dump", "error": "disk full"})
    assert probe.main() == 1 and "disk full" in capsys.readouterr().out


def test_a_garbled_status_file_or_marker_is_rewritten_not_fatal(tmp_path):
    a = agent(tmp_path)
    (tmp_path / report.STATUS).write_text("{nope")
    (tmp_path / report.FIRST_START).write_text("yesterday")
    assert report.read_status(a.folder) == {}
    assert report.first_start(a.folder, T) == T
    report.update_status(a.folder, next_run="soon")
    assert report.read_status(a.folder)["next_run"] == "soon"


def test_a_restore_drill_is_due_at_the_first_time_of_its_schedule_after_the_last_one():
    sundays = "0 4 * * 0"  # T is a Monday, 03:00
    first = datetime(2024, 5, 12, 4, 0, tzinfo=UTC)
    # none ran yet: the first Sunday after the schedule first started
    assert schedule.drill_wait(sundays, None, T, T) == (first - T).total_seconds()
    assert schedule.drill_wait(sundays, None, T, first) == 0
    # one ran at 04:00:07 that Sunday: the next is due a week later, not again at once
    ran = first + timedelta(seconds=7)
    assert schedule.drill_wait(sundays, ran, T, ran) == (timedelta(days=7) - timedelta(seconds=7)).total_seconds()
    # the service was down over a drill time: due at once when it is back
    assert schedule.drill_wait(sundays, ran, T, ran + timedelta(days=8)) == 0


def test_the_drill_schedule_reaches_the_agent_and_can_be_turned_off(make_config):
    from conftest import TWO

    from deployer.core import agentconfig

    told = agentconfig.for_config(make_config(TWO), "app")
    assert told.drill_schedule == "0 4 * * 0"
    assert AgentConfig.parse(told.render()).drill_schedule == "0 4 * * 0"
    off = make_config(TWO + '[backup]\ndrill_schedule = ""\n')
    assert off.backup.drill_schedule == "" and agentconfig.for_config(off, "app").drill_schedule == ""
