"""`deployer backup restore --to-time T`: the database as it was at a moment, from the
pgBackRest repository (flows/pitr.py; the commands as data: core/pitr.py).

- `--into scratch`: a new server from the database's image, restored to T in its own
  container's file system and started on the data network, where the apps' login works as
  on the database. Nothing else changes. It is a labelled one-off: the next command that
  clears one-offs removes it after 6 h (or `docker rm -f NAME`).
- In place (`--yes`): under the release lock, with the public route in maintenance mode
  (503, as `deployer maintenance on`), the newest WAL is pushed, the database stops, its
  data volume is copied to `<name>-db-before-<stamp>` (kept until `--drop-old`: nothing
  is lost), pgBackRest restores T into the data volume (`--delta`), the database starts,
  ends its recovery, and every table is counted. Maintenance goes off again (unless it was
  on before). A target outside the recoverable window is refused (exit 2) before anything
  stops.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
from datetime import UTC, datetime

from deployer.adapters import lifecycle, oneoff, volumes
from deployer.core import history, names, oneoffs, pitr
from deployer.core import volumes as ownership
from deployer.core.steps import Step
from deployer.errors import BackupError, InputError
from deployer.flows import oneoffs as leftovers
from deployer.flows import pitr as repo_
from deployer.flows.context import Context, now_text, who

COPY_SECONDS = 3600


def _checked_window(ctx: Context, when: datetime, repo: int | None, step: str) -> None:
    repo_.push(ctx, step=step)
    why = pitr.outside(when, repo_.window(ctx, step=step, repo=repo or 1))
    if why:
        raise InputError(why)


def scratch(ctx: Context, when: datetime, *, repo: int | None = None) -> list[str]:
    """A scratch server restored to `when`, started on the data network; what to say."""
    from deployer.flows.scratch import db_image

    step = Step.RESTORE
    repo_.required(ctx)
    repo_.archiving(ctx)
    _checked_window(ctx, when, repo, step)
    name = f"{ctx.config.name}-pitr-{secrets.token_hex(4)}"
    restore = " ".join(shlex.quote(a) for a in [*pitr.AS_POSTGRES, *pitr.restore_argv(when, delta=False, repo=repo)])
    user = repo_.db_user(ctx)
    offsite = ctx.config.backup.offsite is not None
    oneoff.run_detached(
        ctx.engine,
        db_image(ctx, step),
        name,
        step=step,
        environment={**pitr.env(ctx.config.backup, user), "PGDATA": pitr.PGDATA, "POSTGRES_USER": user},
        labels=leftovers.oneoff_labels(
            ctx, oneoffs.SCRATCH, command="backup restore --to-time", timeout=repo_.ONEOFF_LIFETIME
        ),
        volumes={repo_.repository(ctx): {"bind": pitr.REPO, "mode": "ro"}},
        network=names.data_network(ctx.config.name),
        command=["bash", "-c", f"{pitr.INSTALL}; {restore} && exec docker-entrypoint.sh postgres"],
        files={f"secrets/{n}": text.encode() for n, text in repo_.secret_files(ctx).items()},
        also=(names.backup_out_network(ctx.config.name),) if offsite else (),
    )
    try:
        repo_.wait_promoted(ctx, name, step)
        counts = repo_.table_counts(ctx, name, step=step)
    except BaseException:
        oneoff.remove(ctx.engine, name)
        raise
    return [
        f"scratch copy as of {pitr.show(when)}: container {name} on network {names.data_network(ctx.config.name)}",
        *(f"{table}\t{rows}" for table, rows in counts),
        f"reach it as host {name} with the database's login (for example `deployer exec db psql -h {name} "
        f"-U {user} {ctx.config.database.name}`); remove it with `docker rm -f {name}` (the next command "
        f"that clears one-offs removes it after {repo_.ONEOFF_LIFETIME // 3600} h)",
    ]


def in_place(ctx: Context, when: datetime, *, repo: int | None = None) -> list[str]:
    """Restore the database itself to `when`; what to say."""
    from deployer.flows import maintenance
    from deployer.flows.lock import held

    step = Step.RESTORE
    repo_.required(ctx)
    repo_.archiving(ctx)
    with held(ctx, "backup restore --to-time"):
        _checked_window(ctx, when, repo, step)
        edge = ctx.engine.container(ctx.edge.container)
        opened = edge is not None and edge.running and maintenance.current(ctx) is None
        if opened:
            maintenance.on(ctx, f"restoring the database to {pitr.show(when)}", 60)
            ctx.say("maintenance on: the public route answers 503 during the restore")
        try:
            kept, started = _replace_data(ctx, when, repo, step)
            counts = repo_.table_counts(ctx, repo_.db_container(ctx), step=Step.VERIFY) if started else []
        except BaseException:
            if opened:
                ctx.say("maintenance stays on: `deployer maintenance off` once the database answers again")
            raise
        if opened and started:
            maintenance.off(ctx)
            ctx.say("maintenance off")
        elif opened:
            ctx.say("maintenance stays on: `deployer maintenance off` after `deployer up`")
        if edge is not None and edge.running:
            _record(ctx, when, kept)
    kept_text = (
        f"its data before the restore is kept in volume {kept} (`deployer backup restore --drop-old --yes` removes it)"
        if kept
        else "it had no data volume left to keep"
    )
    then = "" if started else ". Its container is gone: `deployer up` starts it on the restored data"
    return [f"restored the database to {pitr.show(when)}; {kept_text}{then}", *(f"{t}\t{n}" for t, n in counts)]


def _replace_data(ctx: Context, when: datetime, repo: int | None, step: str) -> tuple[str, bool]:
    """Stop the database, keep a copy of its volume, restore into it, start it: (the copy's
    name, '' when there was no data volume; whether the database runs again)."""
    from deployer.adapters.volumes import labels as volume_labels_of
    from deployer.flows.scratch import db_image

    db, data = repo_.db_container(ctx), names.volume(ctx.config.name, "db-data")
    image = db_image(ctx, step)
    ours = ownership.volume_labels(ctx.config.name, ctx.config.deployment)
    ctx.say(f"database: stopping {db}")
    lifecycle.stop(ctx.engine, db, 60, step=step)
    kept = ""
    if volume_labels_of(ctx.engine, data) is not None:
        kept = pitr.kept_volume(ctx.config.name, datetime.now(UTC))
        volumes.ensure(ctx.engine, kept, ours, step=step)
        ctx.say(f"database: copying its data volume to {kept}")
        try:
            _copy(ctx, image, data, kept, step)
        except BaseException:  # failed or cancelled before its data changed: it runs again as it was
            lifecycle.start(ctx.engine, db, step=step)
            with contextlib.suppress(Exception):  # a partial copy, worth nothing
                volumes.remove(ctx.engine, kept, step=step)
            raise
    volumes.ensure(ctx.engine, data, ours, step=step)
    ctx.say(f"database: restoring to {pitr.show(when)}" + (f" from repository {repo}" if repo else ""))
    mounts = {data: ("/var/lib/postgresql/data", "rw"), repo_.repository(ctx): (pitr.REPO, "rw")}
    argv = pitr.restore_argv(when, delta=True, repo=repo)
    first = f"install -d -o postgres -g postgres -m 700 {pitr.PGDATA}"  # a new data volume has none
    try:
        done = repo_.one_off(ctx, argv, step=step, mounts=mounts, first=first, timeout=COPY_SECONDS)
        if not done.ok:
            raise BackupError(f"pgbackrest restore failed: {done.stdout.strip()[-600:]}", step=step)
        if not lifecycle.start(ctx.engine, db, step=step):
            return kept, False
        repo_.wait_promoted(ctx, db, step)
    except BackupError as exc:
        if not kept:
            raise BackupError(f"{exc}. The database is stopped", step=step) from None
        _put_back(ctx, image, kept, data, db, step, why=str(exc))
        raise BackupError(
            f"{exc}. The database runs again on its data from before the restore (kept in volume {kept} as well)",
            step=step,
        ) from None
    except BaseException:  # cancelled: the database goes back to its data from before as well
        if kept:
            _put_back(ctx, image, kept, data, db, step, why="cancelled")
        raise
    return kept, True


def _put_back(ctx: Context, image: str, kept: str, data: str, db: str, step: str, *, why: str) -> None:
    """A restore that failed or was cancelled: the data volume gets the kept copy back, and
    the database starts on it. Failing that, the message names the kept volume."""
    ctx.say(f"database: the restore did not finish ({why[:200]}); putting its data back from {kept}")
    try:
        lifecycle.stop(ctx.engine, db, 60, step=step)  # it may run on half-restored data
        _copy(ctx, image, kept, data, step, wipe=True)
        lifecycle.start(ctx.engine, db, step=step)
    except Exception as exc:
        raise BackupError(
            f"{why}; putting the data back failed too ({exc}): the database is stopped, and its data from "
            f"before the restore is in volume {kept}",
            step=step,
        ) from None


def _copy(ctx: Context, image: str, source: str, target: str, step: str, *, wipe: bool = False) -> None:
    """Copy a volume's files into another (`wipe`: what the target held goes first)."""
    copy = "cp -a /from/. /to/"
    done = oneoff.run_once(
        ctx.engine,
        image,
        ["sh", "-c", f"find /to -mindepth 1 -delete && {copy}" if wipe else copy],
        step=step,
        name=f"{ctx.config.name}-pitr-{secrets.token_hex(4)}",
        labels=leftovers.oneoff_labels(ctx, oneoffs.SCRATCH, command="backup restore", timeout=repo_.ONEOFF_LIFETIME),
        volumes={source: {"bind": "/from", "mode": "ro"}, target: {"bind": "/to", "mode": "rw"}},
        timeout=COPY_SECONDS,
    )
    if not done.ok:
        raise BackupError(f"copying the data volume to {target} failed: {done.stdout.strip()[-600:]}", step=step)


def _record(ctx: Context, when: datetime, kept: str) -> None:
    line = history.entry(
        "pitr-restore", when=now_text(), by=who(), outcome=history.OK, target=pitr.show(when), kept=kept
    )
    ctx.edge.append_history(line, step=Step.HISTORY)


def drop_old(ctx: Context) -> list[str]:
    """Remove the data volumes kept by earlier restores to a moment; their names."""
    prefix = f"{ctx.config.name}-db-before-"
    gone = []
    for name in volumes.named(ctx.engine, prefix):
        if pitr.is_kept_volume(ctx.config.name, name) and volumes.remove(ctx.engine, name, step=Step.REMOVE):
            gone.append(name)
    return gone
