"""The backup schedule (PID 1 of the backup container), its health, and its status.

At every time of the cron expression (UTC; a sixth field is seconds) it dumps, verifies
and prunes. At every time of [backup] drill_schedule it restores the newest dump into a
scratch server and checks it (deployer/agent/drill.py). Between runs it re-verifies the newest dump before its full check turns
stale, and now and then the dump whose check is oldest. It survives every error: each
is logged, written to the status file and POSTed to the webhook, and the loop goes on.
SIGTERM stops it at once; the dump it was writing is removed.

Its health and status: deployer/agent/health.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from deployer.agent import archiving, basebackup, checks, health, prune, report
from deployer.agent import dump as dumping
from deployer.agent.boot import Agent, Stopped, stop_on_signals
from deployer.core import dumps, dumpstate
from deployer.core import schedule as timing
from deployer.core.steps import Step
from deployer.errors import DeployerError

STEP = "scheduled dump"
WAKE = 3600  # seconds between housekeeping rounds while waiting for the next run
REVERIFY_NEWEST = dumpstate.STALE_AFTER / 2
REVERIFY_ANY = timedelta(days=7)


def now() -> datetime:
    return datetime.now(UTC)


def _describe(exc: BaseException) -> tuple[str, str | None]:
    if isinstance(exc, DeployerError):
        return str(exc), exc.step
    return f"{type(exc).__name__}: {exc}", None


# -- the loop ---------------------------------------------------------------------------------
def run_once(agent: Agent) -> None:
    try:
        j = dumping.take(agent, label="scheduled", step=STEP, say=report.log)
        report.update_status(agent.folder, last_run={"at": dumps.iso(now()), "ok": True, "name": j.name})
    except Stopped:
        raise
    except BaseException as exc:  # every error: a full disk, a corrupt record, a bug
        message, step = _describe(exc)
        report.update_status(
            agent.folder, last_run={"at": dumps.iso(now()), "ok": False, "step": step or STEP, "error": message[-1000:]}
        )
        report.failure(agent, step or STEP, message)
        return
    try:
        prune.prune(agent, dry_run=False, step=Step.SCHEDULED_PRUNE, say=report.log)
    except Stopped:
        raise
    except BaseException as exc:
        message, step = _describe(exc)
        report.failure(agent, step or Step.SCHEDULED_PRUNE, message)


def housekeeping(agent: Agent) -> None:
    """Re-verify the newest dump before its check turns stale, and the one checked longest ago."""
    try:
        at = now()
        mine = [j for j in agent.folder.judged(at) if j.database == agent.config.database and j.usable]
        due = []
        if mine:
            newest = mine[-1]
            last = newest.meta.last_check if newest.meta else None
            if newest.state != dumpstate.VERIFIED or last is None or at - last.at_time > REVERIFY_NEWEST:
                due.append(newest)
        rest = [
            j
            for j in mine[:-1]
            if j.meta and (j.meta.last_check is None or at - j.meta.last_check.at_time > REVERIFY_ANY)
        ]
        rest.sort(key=lambda j: j.meta.last_check.at if j.meta and j.meta.last_check else "")
        due.extend(rest[:1])
        for j in due:
            checks.full(agent.folder, j.name, step=Step.RE_VERIFY)
            report.log(f"re-verified {j.name}: sha256 and every data block ok")
    except Stopped:
        raise
    except BaseException as exc:
        message, step = _describe(exc)
        report.failure(agent, step or Step.RE_VERIFY, message)


_last_drill_try: datetime | None = None  # a drill whose record could not be written is not retried at once


def drill_in(agent: Agent) -> float:
    """Seconds until the next restore drill ([backup] drill_schedule), or WAKE when there is none."""
    if not agent.config.drill_schedule:
        return WAKE
    try:
        state = report.read_status(agent.folder).get("last_drill") or {}
        last = datetime.fromisoformat(state["at"]) if state.get("at") else None
        last = max(filter(None, (last, _last_drill_try)), default=None)
        started = report.read_first_start(agent.folder) or now()
        return timing.drill_wait(agent.config.drill_schedule, last, started, now())
    except Exception as exc:  # an odd status file or a croniter surprise must not stop the schedule
        report.log(f"cannot tell when the next restore drill is due: {exc}")
        return WAKE


def drill_if_due(agent: Agent) -> None:
    """Run the restore drill when its time has come; a failure is reported (log, status,
    webhook) and the loop goes on."""
    global _last_drill_try
    try:
        if drill_in(agent) > 0:
            return
        from deployer.agent import drill

        _last_drill_try = now()
        drill.drill(agent, say=report.log)
    except Stopped:
        raise
    except BaseException as exc:
        message, step = _describe(exc)
        report.failure(agent, step or Step.DRILL, message)


def run(agent: Agent) -> int:
    stop_on_signals()
    try:
        began = health.started(agent, now())  # the marker's time, or this container's start
        report.first_start(agent.folder, began)
        report.update_status(agent.folder, started=dumps.iso(now()))
        report.log(
            f"backup schedule {agent.config.schedule!r} (UTC) for {agent.config.database}; dumps in {agent.folder.path}"
        )
        archiving.start(agent)
        try:
            for removed in agent.folder.clean():
                report.log(f"removed a leftover of an interrupted command: {removed}")
        except Exception as exc:
            report.failure(agent, "clean up", _describe(exc)[0])
        housekeeping(agent)
        if now() > health.deadline(agent, now()):  # a scheduled run was missed while the service was down
            report.log("a scheduled dump was missed while the backup service was down: taking it now")
            run_once(agent)
        health.write_deadline(agent)
        while True:
            try:
                due = timing.next_run(agent.config.schedule, now())
            except Exception as exc:  # a croniter surprise: say so, try again later
                report.failure(agent, "schedule", f"cannot compute the next run: {exc}")
                time.sleep(60)
                continue
            report.update_status(agent.folder, next_run=dumps.iso(due))
            rounded = now()
            while (left := (due - now()).total_seconds()) > 0:
                watch = (
                    archiving.every(agent.config.max_lag) if agent.config.max_lag else WAKE
                )  # [backup] pitr: archiving's lag
                time.sleep(max(0.0, min(left, watch, drill_in(agent), basebackup.wait(agent, now(), began))))
                archiving.check(agent)
                basebackup.if_due(agent, now(), began)
                drill_if_due(agent)
                if left > WAKE and (now() - rounded).total_seconds() >= WAKE - watch:
                    housekeeping(agent)
                    rounded = now()
            report.first_start(agent.folder, began)  # once the folder can hold it (a full disk)
            run_once(agent)
            housekeeping(agent)
            drill_if_due(agent)
            health.write_deadline(agent)
    except Stopped as stop:
        report.log(f"stopped ({stop}): no dump was left half-written")
        return 0
