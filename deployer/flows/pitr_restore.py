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

import secrets
import shlex
from datetime import UTC, datetime

from deployer.adapters import lifecycle, oneoff, volumes
from deployer.adapters.polling import until
from deployer.core import history, names, oneoffs, pitr
from deployer.core import volumes as ownership
from deployer.core.steps import Step
from deployer.errors import BackupError, InputError
from deployer.flows import oneoffs as leftovers
from deployer.flows import pitr as repo
from deployer.flows.context import Context, now_text, who

READY_SECONDS = 300  # the restored server replays the WAL up to T before it takes connections
COPY_SECONDS = 3600


def _checked_window(ctx: Context, when: datetime, step: str) -> None:
    repo.push(ctx, step=step)
    why = pitr.outside(when, repo.window(ctx, step=step))
    if why:
        raise InputError(why)


def scratch(ctx: Context, when: datetime) -> list[str]:
    """A scratch server restored to `when`, started on the data network; what to say."""
    from deployer.flows.scratch import db_image

    step = Step.RESTORE
    repo.required(ctx)
    _checked_window(ctx, when, step)
    name = f"{ctx.config.name}-pitr-{secrets.token_hex(4)}"
    restore = " ".join(shlex.quote(a) for a in [*pitr.AS_POSTGRES, *pitr.restore_argv(when, delta=False)])
    user = repo.db_user(ctx)
    oneoff.run_detached(
        ctx.engine,
        db_image(ctx, step),
        name,
        step=step,
        environment={**pitr.env(ctx.config.backup, user), "PGDATA": pitr.PGDATA, "POSTGRES_USER": user},
        labels=leftovers.oneoff_labels(
            ctx, oneoffs.SCRATCH, command="backup restore --to-time", timeout=repo.ONEOFF_LIFETIME
        ),
        volumes={repo.repository(ctx): {"bind": pitr.REPO, "mode": "ro"}},
        network=names.data_network(ctx.config.name),
        command=["bash", "-c", f"{restore} && exec docker-entrypoint.sh postgres"],
    )
    try:
        _wait_promoted(ctx, name, step)
        counts = repo.table_counts(ctx, name, step=step)
    except BaseException:
        oneoff.remove(ctx.engine, name)
        raise
    return [
        f"scratch copy as of {pitr.show(when)}: container {name} on network {names.data_network(ctx.config.name)}",
        *(f"{table}\t{rows}" for table, rows in counts),
        f"reach it as host {name} with the database's login (for example `deployer exec db psql -h {name} "
        f"-U {user} {ctx.config.database.name}`); remove it with `docker rm -f {name}` (the next command "
        f"that clears one-offs removes it after {repo.ONEOFF_LIFETIME // 3600} h)",
    ]


def in_place(ctx: Context, when: datetime) -> list[str]:
    """Restore the database itself to `when`; what to say."""
    from deployer.flows import maintenance
    from deployer.flows.lock import held

    step = Step.RESTORE
    repo.required(ctx)
    with held(ctx, "backup restore --to-time"):
        _checked_window(ctx, when, step)
        edge = ctx.engine.container(ctx.edge.container)
        opened = edge is not None and edge.running and maintenance.current(ctx) is None
        if opened:
            maintenance.on(ctx, f"restoring the database to {pitr.show(when)}", 60)
            ctx.say("maintenance on: the public route answers 503 during the restore")
        kept = _replace_data(ctx, when, step)
        counts = repo.table_counts(ctx, repo.db_container(ctx), step=Step.VERIFY)
        if opened:
            maintenance.off(ctx)
            ctx.say("maintenance off")
        if edge is not None and edge.running:
            _record(ctx, when, kept)
    return [
        f"restored the database to {pitr.show(when)}; its data before the restore is kept in volume {kept} "
        "(`deployer backup restore --drop-old --yes` removes it)",
        *(f"{table}\t{rows}" for table, rows in counts),
    ]


def _replace_data(ctx: Context, when: datetime, step: str) -> str:
    """Stop the database, keep a copy of its volume, restore into it, start it; the copy's name."""
    from deployer.flows.scratch import db_image

    db, data = repo.db_container(ctx), names.volume(ctx.config.name, "db-data")
    image = db_image(ctx, step)
    kept = pitr.kept_volume(ctx.config.name, datetime.now(UTC))
    ctx.say(f"database: stopping {db}")
    lifecycle.stop(ctx.engine, db, 60, step=step)
    volumes.ensure(ctx.engine, kept, ownership.volume_labels(ctx.config.name, ctx.config.deployment), step=step)
    ctx.say(f"database: copying its data volume to {kept}")
    _one_off(ctx, image, ["cp", "-a", "/from/.", "/to/"], {data: "/from", kept: "/to"}, step, "copying the data volume")
    ctx.say(f"database: restoring to {pitr.show(when)}")
    mounts = {data: "/var/lib/postgresql/data", repo.repository(ctx): pitr.REPO}
    argv = [*pitr.AS_POSTGRES, *pitr.restore_argv(when, delta=True)]
    try:
        _one_off(ctx, image, argv, mounts, step, "pgbackrest restore")
    except BackupError as exc:
        raise BackupError(
            f"{exc}. The database is stopped; its data before the restore is in volume {kept}", step=step
        ) from None
    lifecycle.start(ctx.engine, db, step=step)
    _wait_promoted(ctx, db, step)
    return kept


def _one_off(ctx: Context, image: str, argv: list[str], mounts: dict[str, str], step: str, what: str) -> None:
    done = oneoff.run_once(
        ctx.engine,
        image,
        argv,
        step=step,
        name=f"{ctx.config.name}-pitr-{secrets.token_hex(4)}",
        labels=leftovers.oneoff_labels(ctx, oneoffs.SCRATCH, command="backup restore", timeout=repo.ONEOFF_LIFETIME),
        environment=pitr.env(ctx.config.backup, repo.db_user(ctx)),
        volumes={source: {"bind": target, "mode": "rw"} for source, target in mounts.items()},
        timeout=COPY_SECONDS,
    )
    if not done.ok:
        raise BackupError(f"{what} failed: {done.stdout.strip()[-600:]}", step=step)


def _wait_promoted(ctx: Context, name: str, step: str) -> None:
    """Until the restored server has replayed up to the target and takes writes."""

    def promoted() -> bool:
        found = ctx.engine.container(name)
        if found is None or not found.running:
            raise BackupError(f"{name} stopped during its recovery: {ctx.engine.logs(name, 15)}", step=step)
        argv = ["psql", "-X", "-A", "-t", "-q", "-h", pitr.SOCKET, "-U", repo.db_user(ctx), "-d", "postgres"]
        out = ctx.engine.exec(name, [*argv, "-c", "select pg_is_in_recovery()"], step=step)
        return out.ok and out.stdout.strip() == "f"

    # PostgreSQL says nothing when its recovery ends: it is asked.
    if not until(promoted, seconds=READY_SECONDS, every=0.5):
        raise BackupError(f"{name} had not finished its recovery after {READY_SECONDS} s", step=step)


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
