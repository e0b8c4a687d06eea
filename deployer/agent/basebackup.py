"""pgBackRest base backups ([backup] pitr), taken by the backup service: on its schedule
([backup] pitr_full_schedule, pitr_diff_schedule, pitr_incr_schedule, cron in UTC) and when
the CLI asks (`deployer backup base`, and `up`'s first full backup).

The service has no Docker socket and no access to the database's files, so it asks the
database to run pgBackRest in its own container: `COPY ... TO PROGRAM` as the superuser
(core/pitr.py program_sql). Each repository gets its own backup (pgBackRest backs up into
one at a time). A failure is reported like a failed dump (log, status, webhook).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from deployer.agent import report
from deployer.agent.boot import Agent
from deployer.agent.postgres import Postgres
from deployer.core import dumps, pitr
from deployer.core import schedule as timing
from deployer.errors import BackupError, InputError

STEP = "base backup"
LOCK = ".deployer-base.lock"
LOCK_WAIT = 600.0  # seconds a base backup waits for the CLI's pgBackRest command on the stanza
WAKE = 3600.0
_tried: dict[str, datetime] = {}  # a run whose record could not be written is not retried at once


def take(agent: Agent, kind: str, *, say: Callable[[str], None], repo: int | None = None) -> list[dict[str, Any]]:
    """A `kind` backup into each repository (or `repo` alone); their label, type and size."""
    if not agent.config.pitr_repos:
        raise InputError("point-in-time recovery is off ([backup] pitr)")
    if kind not in pitr.KINDS:
        raise InputError(f"--type: {kind!r} is not one of {', '.join(pitr.KINDS)}")
    done = []
    with _one_at_a_time(agent), Postgres(agent.config, agent.password) as pg:
        for number in [repo] if repo else range(1, agent.config.pitr_repos + 1):
            say(f"pgBackRest {kind} backup into repository {number}")
            _program(pg, pitr.backup_argv(kind, number), f"pgbackrest backup (repository {number})")
            info = _program(pg, ["pgbackrest", "info", "--output=json", f"--repo={number}"], "pgbackrest info")
            newest = pitr.backups(info)[-1]
            size = newest["info"]["repository"]["size"]
            done.append({"repo": number, "label": newest["label"], "type": newest["type"], "size": size})
    return done


@contextmanager
def _one_at_a_time(agent: Agent) -> Iterator[None]:
    """The schedule's backup and one the CLI asks for wait for each other (pgBackRest would
    refuse the second while the first holds its lock)."""
    fd = os.open(agent.folder.path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _program(pg: Postgres, argv: list[str], what: str) -> str:
    """Run argv in the database container; its output. While another pgBackRest command holds
    the stanza's lock (the CLI's, at `up` or before a restore), it is tried again."""
    waited = 0.0
    while True:
        try:
            pg.psql(pitr.program_sql(argv), "postgres", step=STEP)
            return pg.psql(pitr.READ_PROGRAM_LOG, "postgres", step=STEP)
        except BackupError as exc:
            try:
                said = " ".join(pg.psql(pitr.READ_PROGRAM_LOG, "postgres", step=STEP).split())[-600:]
            except BackupError:
                said = ""
            if pitr.LOCKED not in said or waited >= LOCK_WAIT:
                raise BackupError(f"{what} failed: {said or exc}", step=STEP) from None
        time.sleep(2)
        waited += 2


def _last(agent: Agent, kind: str) -> datetime | None:
    text = (report.read_status(agent.folder).get("last_base_backups") or {}).get(kind)
    try:
        recorded = datetime.fromisoformat(text) if text else None
    except ValueError:
        recorded = None
    return max(filter(None, (recorded, _tried.get(kind))), default=None)


def waits(agent: Agent, now: datetime, started: datetime) -> dict[str, float]:
    """Seconds until each scheduled kind is due (0: now)."""
    return {
        kind: timing.drill_wait(cron, _last(agent, kind), started, now) for kind, cron in agent.config.pitr_schedules
    }


def wait(agent: Agent, now: datetime, started: datetime) -> float:
    """Seconds until the next scheduled base backup; WAKE when there is none."""
    try:
        return min(waits(agent, now, started).values(), default=WAKE)
    except Exception as exc:  # a croniter surprise: say so, look again later
        report.log(f"cannot tell when the next base backup is due: {exc}")
        return WAKE


def if_due(agent: Agent, now: datetime, started: datetime) -> None:
    """The biggest kind due now (a full also stands for a differential due at the same time)."""
    try:
        due = [kind for kind, left in waits(agent, now, started).items() if left <= 0]
    except Exception as exc:
        report.log(f"cannot tell when the next base backup is due: {exc}")
        return
    if not due:
        return
    kind = min(due, key=pitr.KINDS.index)
    _tried.update((k, now) for k in due)
    try:
        take(agent, kind, say=report.log)
    except Exception as exc:
        report.failure(agent, STEP, str(exc))
        return
    last = report.read_status(agent.folder).get("last_base_backups") or {}
    report.update_status(agent.folder, last_base_backups={**last, **{k: dumps.iso(now) for k in due}})


def now() -> datetime:
    return datetime.now(UTC)
