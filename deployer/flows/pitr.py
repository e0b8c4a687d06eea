"""Point-in-time recovery, from the CLI's side: the pgBackRest stanza and its first full
backup at `up`, base backups (`deployer backup base`), the WAL pushed before a restore, and
the recoverable window. pgBackRest runs in the database container (an exec as postgres),
or, when that container is down, in a one-off of its image with the repository mounted
read-only. What runs where, as data: core/pitr.py. Restores: flows/pitr_restore.py.
"""

from __future__ import annotations

import secrets
from typing import Any

from deployer.adapters import oneoff
from deployer.adapters.models import ExecResult
from deployer.core import names, oneoffs, pitr
from deployer.core.sql import TABLE_COUNTS
from deployer.core.steps import Step
from deployer.errors import BackupError, InputError
from deployer.flows import oneoffs as leftovers
from deployer.flows.context import Context

ONEOFF_LIFETIME = 6 * 3600


def required(ctx: Context) -> None:
    """Bad input (exit 2) unless point-in-time recovery is on for a bundled database."""
    if ctx.config.database.external:
        raise InputError("point-in-time recovery needs the bundled database ([database] url_file is set)")
    if not ctx.config.backup.pitr:
        raise InputError(
            "point-in-time recovery is off: set [backup] pitr = true, then run `deployer up --recreate-db` "
            "(archiving changes the database's command line, so its container is made again)"
        )


def db_container(ctx: Context) -> str:
    return names.infra_container(ctx.config.name, "db")


def db_user(ctx: Context) -> str:
    """The database's owner (its env file's POSTGRES_USER): point-in-time recovery is for the bundled one."""
    from deployer.config import envfile

    found = envfile.read(ctx.config.database.env_file, where=ctx.config.path, key="database.env_file")
    return found.values.get("POSTGRES_USER", "postgres")


def repository(ctx: Context) -> str:
    return names.volume(ctx.config.name, "pgbackrest")


def db_running(ctx: Context) -> bool:
    found = ctx.engine.container(db_container(ctx))
    return found is not None and found.running


def run(ctx: Context, argv: list[str], *, step: str, timeout: float | None = None) -> ExecResult:
    """pgbackrest (argv) as postgres: in the database container when it runs, else in a
    one-off of its image that sees the repository alone, read-only."""
    if db_running(ctx):
        return ctx.engine.exec(db_container(ctx), argv, step=step, user="postgres")
    from deployer.flows.scratch import db_image

    return oneoff.run_once(
        ctx.engine,
        db_image(ctx, step),
        [*pitr.AS_POSTGRES, *argv],
        step=step,
        name=f"{ctx.config.name}-pgbackrest-{secrets.token_hex(4)}",
        labels=leftovers.oneoff_labels(ctx, oneoffs.SCRATCH, command="pgbackrest", timeout=ONEOFF_LIFETIME),
        environment=pitr.env(ctx.config.backup, db_user(ctx)),
        volumes={repository(ctx): {"bind": pitr.REPO, "mode": "ro"}},
        timeout=timeout,
    )


def checked(result: ExecResult, what: str, step: str) -> str:
    """The output of a command that must succeed; otherwise a BackupError naming it."""
    if not result.ok:
        detail = (result.stderr.strip() or result.stdout.strip())[-600:]
        raise BackupError(f"{what} failed: {detail}", step=step)
    return result.stdout


def psql(ctx: Context, container: str, sql: str, *, step: str) -> str:
    """One query in a running database container, over its socket, as the database's owner."""
    argv = ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", pitr.SOCKET, "-U", db_user(ctx)]
    argv += ["-d", ctx.config.database.name, "-c", sql]
    return checked(ctx.engine.exec(container, argv, step=step), "a query on the database", step)


def table_counts(ctx: Context, container: str, *, step: str) -> list[tuple[str, int]]:
    found = []
    for line in psql(ctx, container, TABLE_COUNTS, step=step).splitlines():
        if "|" in line:
            table, count = line.rsplit("|", 1)
            found.append((table, int(count)))
    return found


def setup(ctx: Context, *, step: str = Step.UP) -> str | None:
    """After `up`: the stanza exists (made once), and the repository holds a full backup
    (the first is taken now): a restore to a moment has something to start from. Returns
    what it did, or None when there was nothing to do."""
    checked(run(ctx, ["pgbackrest", "stanza-create"], step=step), "pgbackrest stanza-create", step)
    if pitr.backups(info(ctx, step=step)):
        return None
    done = base(ctx, "full", step=step)
    return f"first full backup {done['label']} taken"


def info(ctx: Context, *, step: str) -> str:
    return checked(run(ctx, ["pgbackrest", "info", "--output=json"], step=step), "pgbackrest info", step)


def base(ctx: Context, kind: str, *, step: str = Step.BACKUP) -> dict[str, Any]:
    """A pgBackRest backup (full, diff or incr) of the running database; its info row."""
    if kind not in pitr.KINDS:
        raise InputError(f"--type: {kind!r} is not one of {', '.join(pitr.KINDS)}")
    if not db_running(ctx):
        raise BackupError(f"the database container {db_container(ctx)} is not running (run `deployer up`)", step=step)
    checked(
        ctx.engine.exec(db_container(ctx), pitr.backup_argv(kind), step=step, user="postgres"),
        "pgbackrest backup",
        step,
    )
    newest = pitr.backups(info(ctx, step=step))[-1]
    return {"label": newest["label"], "type": newest["type"], "size": newest["info"]["repository"]["size"]}


def restore_point(ctx: Context, label: str, *, step: str = Step.BACKUP) -> str:
    """A named restore point (instant): where a release began, for a restore to that moment."""
    name = f"{label[:50]}-{secrets.token_hex(3)}"
    quoted = name.replace("'", "''")
    psql(ctx, db_container(ctx), f"select pg_create_restore_point('{quoted}')", step=step)
    return name


def push(ctx: Context, *, step: str) -> None:
    """Make the newest commits recoverable: a committed transaction (a recovery to a moment
    stops at the first commit after it), then `pgbackrest check`, which switches to a new
    WAL segment and waits until the full one is in the repository."""
    if not db_running(ctx):
        return  # nothing new to push: the repository holds all there is
    psql(ctx, db_container(ctx), "select pg_current_xact_id()", step=step)
    checked(run(ctx, ["pgbackrest", "check"], step=step), "pgbackrest check (archiving the newest WAL)", step)


def window(ctx: Context, *, step: str) -> tuple[float, float] | None:
    """The recoverable window (core/pitr.py window)."""
    listing = run(ctx, ["pgbackrest", "repo-ls", "--recurse", "--output=json", f"archive/{pitr.STANZA}"], step=step)
    return pitr.window(info(ctx, step=step), checked(listing, "pgbackrest repo-ls", step))
