"""The schedule's health and status, judged from the dumps folder at every call.

Health is a deadline: the next scheduled time after the newest good dump on disk (or
after the schedule's first start on this folder, a marker kept in the folder), plus a
grace. Neither a restart nor a crash loop moves it. A folder too full to hold the marker
does not make the deadline run away: the container's own start counts instead.

The container's healthcheck runs every few seconds, so it reads the deadline from the
file `.deployer-deadline` (deployer/agent/probe.py), which is written from the folder's
truth whenever it may change: when the schedule starts, after each of its runs, after
each command that dumps, verifies, prunes or restores. A hung schedule stops writing it,
and the deadline passes. A deadline that cannot be written (a full folder) is removed, so
that the check judges from the folder itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from deployer.agent import dump as dumping
from deployer.agent import pid1, report
from deployer.agent.boot import Agent
from deployer.core import dumps, dumpstate
from deployer.core import schedule as timing

DEADLINE = ".deployer-deadline"


def now() -> datetime:
    return datetime.now(UTC)


def container_started() -> datetime | None:
    """When this container's PID 1 started (read from /proc)."""
    began = pid1.container_started()
    return datetime.fromtimestamp(began, UTC) if began is not None else None


def started(agent: Agent, at: datetime) -> datetime:
    """The schedule's first start on this folder; the container's start when the folder
    holds no marker (it could not be written: a full disk)."""
    return report.read_first_start(agent.folder) or min(container_started() or at, at)


def deadline(agent: Agent, at: datetime) -> datetime:
    mine = [j for j in agent.folder.judged(at) if j.database == agent.config.database and j.good]
    return timing.deadline(agent.config.schedule, mine[-1].created if mine else None, started(agent, at))


def write_deadline(agent: Agent) -> None:
    """Never raises: the file is a cache of what `deadline` says now. One that cannot be
    rewritten is removed (removing needs no space), never left saying an old deadline."""
    path = agent.folder.path / DEADLINE
    try:
        due = deadline(agent, now())
        agent.folder.write_atomic(path, f"{int(due.timestamp())} {dumps.iso(due)}\n")
    except Exception as exc:
        report.log(f"cannot write the deadline file: {exc}")
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def space_problem(agent: Agent) -> str | None:
    """Why the next dump would be refused for want of space, or None."""
    free, needed, _ = dumping.room(agent, agent.config.database)
    if free >= needed:
        return None
    return f"the dumps folder has {dumps.human_size(free)} free, a dump needs about {dumps.human_size(needed)}"


def health(agent: Agent) -> tuple[bool, str]:
    at = now()
    due = deadline(agent, at)
    if at <= due:
        return True, f"ok: the next good dump is due by {dumps.iso(due)}"
    why = []
    last_error = report.read_status(agent.folder).get("last_error") or {}
    if last_error:
        why.append(f"last error ({last_error.get('at')}, {last_error.get('step')}): {last_error.get('error')}")
    try:
        why.append(space_problem(agent) or "")
    except OSError:
        pass
    return False, "; ".join(
        [f"overdue: no good dump of {agent.config.database} by {dumps.iso(due)}", *filter(None, why)]
    )


def status(agent: Agent) -> dict[str, Any]:
    at = now()
    judged = agent.folder.judged(at)
    mine = [j for j in judged if j.database == agent.config.database]
    good = [j for j in mine if j.good]
    state = report.read_status(agent.folder)
    due = deadline(agent, at)
    ok, message = health(agent)
    return {
        "database": agent.config.database,
        "schedule": agent.config.schedule,
        "newest": dumpstate.row(mine[-1], at) if mine else None,
        "newest_good": dumpstate.row(good[-1], at) if good else None,
        "dumps": len(mine),
        "damaged": [j.name for j in judged if not j.usable],
        "without_metadata": [j.name for j in judged if j.unrecorded],
        "other_databases": len([j for j in judged if j.database not in (agent.config.database, None) and j.usable]),
        "writing": agent.folder.writing(),
        "next_run": dumps.iso(timing.next_run(agent.config.schedule, at)),
        "deadline": dumps.iso(due),
        "overdue": at > due,
        "health": {"ok": ok, "message": message},
        "last_run": state.get("last_run"),
        "last_error": state.get("last_error"),
        "last_drill": state.get("last_drill"),
        "drill_schedule": agent.config.drill_schedule,
        "schedule_started": state.get("started"),
    }
