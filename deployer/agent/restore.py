"""Restore a dump into a database of the server, over the data network.

The dump is re-hashed in full first (a damaged dump is never restored). An existing
target gets a verified safety dump before anything changes; a missing one is created.
pg_restore then runs in one transaction and stops at the first error, reading the
dump where it lies: it replaces every dumped object, or changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.agent import checks
from deployer.agent import dump as dumping
from deployer.agent.boot import Agent
from deployer.agent.postgres import Postgres
from deployer.core.steps import Step
from deployer.errors import BackupError


@dataclass(frozen=True)
class Restored:
    """A restore's outcome: the database, its safety dump, its tables."""

    name: str
    database: str
    safety: str | None
    created: bool
    tables: list[tuple[str, int]]


def restore(
    agent: Agent,
    name: str,
    database: str,
    *,
    memory: str,
    step: str = Step.RESTORE,
    say=lambda m: None,
    progress=lambda done, total=None: None,
) -> Restored:
    folder = agent.folder
    j = checks.recorded(folder, name, step)
    problem = checks.sha_problem(folder, j, step)
    if problem:
        checks.rehash(folder, j, step=step, record=True)
        raise BackupError(f"{name} is damaged: {problem}; nothing was restored", step=step)
    say(f"{name}: sha256 ok")
    with Postgres(agent.config, agent.password) as pg:
        exists = pg.exists(database, step=step)
    safety = None
    if exists:
        safety_dump = dumping.take(
            agent, label=f"pre-restore safety ({database})", step=Step.SAFETY_DUMP, database=database, say=say
        )
        safety = safety_dump.name
        say(f"safety dump of {database}: {safety}")
    with Postgres(agent.config, agent.password) as pg:
        if not exists:
            say(f"database {database} does not exist: creating it")
            pg.create(database, step=step)
        pg.restore(folder.file(name, "dump"), database, memory=memory, step=step, progress=progress)
        say(f"restored {name} into {database} (maintenance_work_mem={memory})")
        tables = pg.table_counts(database, step=step)
    return Restored(name, database, safety, not exists, tables)
