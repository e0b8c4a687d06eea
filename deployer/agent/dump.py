"""Take one dump: pg_dump over the data network, streamed into a locked hidden partial
file while it is hashed, fsync, sidecars, rename, fsync the folder. Whatever fails (the
database, a table lock, a full disk, a signal), no file that looks like a dump is left."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from datetime import UTC, datetime

from deployer.agent import checks
from deployer.agent.boot import Agent
from deployer.agent.postgres import Postgres
from deployer.core import dumps
from deployer.core.dumps import Metadata
from deployer.core.dumpstate import Judged
from deployer.errors import BackupError


def room(agent: Agent, database: str) -> tuple[int, int, str]:
    """(free bytes in the dumps folder, bytes a new dump of `database` needs, why that much)."""
    last = next(
        (j for j in reversed(agent.folder.judged(datetime.now(UTC))) if j.database == database and j.dump), None
    )
    needed = dumps.space_needed(last.dump.size if last and last.dump else None)
    basis = (
        f"the last dump of {database} was {dumps.human_size(last.dump.size)}"
        if last and last.dump
        else "no earlier dump"
    )
    return agent.folder.free_bytes(), needed, basis


def _space(agent: Agent, database: str, step: str) -> None:
    """Refuse to start when the folder cannot hold a dump like the last one, plus a margin."""
    free, needed, basis = room(agent, database)
    if free < needed:
        raise BackupError(
            f"not enough free space for a dump in the dumps folder: {dumps.human_size(free)} free, "
            f"needs about {dumps.human_size(needed)} ({basis}, plus a margin); free some space or prune",
            step=step,
        )


def take(
    agent: Agent,
    *,
    label: str,
    step: str,
    database: str | None = None,
    verify: bool = True,
    lock_wait: int = dumps.LOCK_WAIT,
    say=lambda message: None,
    progress=lambda done, total=None: None,
) -> Judged:
    """Dump `database` (the configured one by default); returns the new dump, judged.
    `progress(bytes written)` is called as the dump grows."""
    database = database or agent.config.database
    folder = agent.folder
    cleaned = folder.clean()
    if cleaned:
        say(f"removed leftovers of interrupted commands: {', '.join(cleaned)}")
    with Postgres(agent.config, agent.password) as pg:
        server, client, vector = pg.versions(database, step=step)
        _space(agent, database, step)
        created = datetime.now(UTC)
        started = time.monotonic()
        digest = hashlib.sha256()
        try:
            with folder.partial(created) as (name, fh):
                written = [0]

                def chunk(data: bytes) -> None:
                    digest.update(data)
                    written[0] += len(data)
                    progress(written[0])

                pg.dump(database, fh, lock_wait=lock_wait, on_chunk=chunk, step=step)
                fh.flush()
                os.fsync(fh.fileno())
                size = os.fstat(fh.fileno()).st_size
                if size == 0:
                    raise BackupError(f"pg_dump of {database} wrote nothing", step=step)
                meta = Metadata(
                    name=name,
                    database=database,
                    created=dumps.iso(created),
                    server_version=server,
                    client_version=client,
                    pgvector_version=vector,
                    size=size,
                    sha256=digest.hexdigest(),
                    duration=round(time.monotonic() - started, 3),
                    label=label,
                )
                folder.publish(name, meta)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise BackupError(
                    f"the dumps folder ran out of space while dumping {database} (no space left on device): "
                    "nothing was kept; free some space or prune",
                    step=step,
                ) from None
            raise BackupError(f"writing the dump of {database} failed: {exc.strerror or exc}", step=step) from None
    say(f"dump {name}: {dumps.human_size(size)} in {meta.duration:.1f}s (pg_dump {client}, server {server})")
    if verify:
        checks.full(folder, name, step=step)
        say(f"dump {name}: sha256 and every data block verified")
    return folder.get(name, datetime.now(UTC))
