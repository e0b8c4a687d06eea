"""The schedule's health and status, judged from the dumps folder at every call.

Health is a deadline: the next scheduled time after the newest good dump on disk (or
after the first start ever on this folder, a marker kept in the folder), plus a grace.
Neither a restart nor a crash loop moves it.

The container's healthcheck runs every few seconds, so it reads the deadline from the
file `.deployer-deadline` (deployer/agent/probe.py), which is written from the folder's
truth whenever it may change: when the schedule starts, after each of its runs, after
each command that dumps, verifies, prunes or restores. A hung schedule stops writing it,
and the deadline passes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from deployer.agent import report
from deployer.agent.boot import Agent
from deployer.core import dumps, dumpstate
from deployer.core import schedule as timing

DEADLINE = ".deployer-deadline"


def now() -> datetime:
    return datetime.now(UTC)


def deadline(agent: Agent, at: datetime) -> datetime:
    mine = [j for j in agent.folder.judged(at) if j.database == agent.config.database and j.good]
    started = report.read_first_start(agent.folder) or at
    return timing.deadline(agent.config.schedule, mine[-1].created if mine else None, started)


def write_deadline(agent: Agent) -> None:
    """Never raises: the file is a cache of what `deadline` says now."""
    try:
        due = deadline(agent, now())
        agent.folder.write_atomic(agent.folder.path / DEADLINE, f"{int(due.timestamp())} {dumps.iso(due)}\n")
    except Exception as exc:
        report.log(f"cannot write the deadline file: {exc}")


def health(agent: Agent) -> tuple[bool, str]:
    at = now()
    due = deadline(agent, at)
    last_error = report.read_status(agent.folder).get("last_error") or {}
    if at > due:
        why = (
            f"; last error ({last_error.get('at')}, {last_error.get('step')}): {last_error.get('error')}"
            if last_error
            else ""
        )
        return False, f"overdue: no good dump of {agent.config.database} by {dumps.iso(due)}{why}"
    return True, f"ok: the next good dump is due by {dumps.iso(due)}"


def status(agent: Agent) -> dict[str, Any]:
    at = now()
    judged = agent.folder.judged(at)
    mine = [j for j in judged if j.database == agent.config.database]
    good = [j for j in mine if j.good]
    state = report.read_status(agent.folder)
    due = deadline(agent, at)
    return {
        "database": agent.config.database,
        "schedule": agent.config.schedule,
        "newest": dumpstate.row(mine[-1], at) if mine else None,
        "newest_good": dumpstate.row(good[-1], at) if good else None,
        "dumps": len(mine),
        "damaged": [j.name for j in judged if not j.usable],
        "other_databases": len([j for j in judged if j.database != agent.config.database and j.usable]),
        "writing": agent.folder.writing(),
        "next_run": dumps.iso(timing.next_run(agent.config.schedule, at)),
        "deadline": dumps.iso(due),
        "overdue": at > due,
        "last_run": state.get("last_run"),
        "last_error": state.get("last_error"),
        "schedule_started": state.get("started"),
    }
