"""Point-in-time recovery, from the CLI's side: the pgBackRest stanza and its first full
backups at `up`, base backups (`deployer backup base`), the WAL pushed before a restore, and
the recoverable window. pgBackRest runs in the database container (an exec as postgres),
or, when that container is down, in a one-off of its image that sees the repositories alone.
A repository off the host ([backup.sftp], [backup.s3]) gets its secret files as compose
secrets (the database) or through the Engine API (a one-off), never in an environment.
What runs where, as data: core/pitr.py. Restores: flows/pitr_restore.py.
"""

from __future__ import annotations

import secrets
import shlex
from typing import Any

from deployer.adapters import oneoff
from deployer.adapters import volumes as ownership
from deployer.adapters.models import ExecResult
from deployer.adapters.polling import until
from deployer.core import names, oneoffs, pitr
from deployer.core.sql import TABLE_COUNTS
from deployer.core.steps import Step
from deployer.errors import BackupError, InputError
from deployer.flows import oneoffs as leftovers
from deployer.flows.context import Context

ONEOFF_LIFETIME = 6 * 3600
READY_SECONDS = 300  # a restored server replays the WAL up to its target before it takes writes
LOCK_WAIT = 1800  # a scheduled base backup of a large database holds the stanza's lock this long at most


def required(ctx: Context) -> None:
    """Bad input (exit 2) unless point-in-time recovery is on for a bundled database."""
    if ctx.config.database.external:
        raise InputError("point-in-time recovery needs the bundled database ([database] url_file is set)")
    if not ctx.config.backup.pitr:
        raise InputError(
            "point-in-time recovery is off: set [backup] pitr = true, then run `deployer up --recreate-db` "
            "(archiving changes the database's command line, so its container is made again)"
        )


def archiving(ctx: Context) -> None:
    """Bad input (exit 2) when the database container runs without WAL archiving: it was
    made before [backup] pitr was turned on."""
    found = ctx.engine.inspect(db_container(ctx))
    env = ((found or {}).get("Config") or {}).get("Env") or []
    if found is not None and not any(e.startswith("PGBACKREST_STANZA=") for e in env):
        raise InputError(
            "the database runs without WAL archiving (it was started before [backup] pitr was turned on): "
            "run `deployer up --recreate-db` first"
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


# -- the repository off the host: its secret files ------------------------------------------------
def secret_files(ctx: Context) -> dict[str, str]:
    """The second repository's secret files (name: content), read from this machine."""
    from deployer.config.envfile import read_mode_checked

    offsite = ctx.config.backup.offsite
    if offsite is None:
        return {}
    paths = (offsite.key_file, offsite.known_hosts) if offsite.kind == "sftp" else (offsite.credentials_file,)
    key = f"backup.{offsite.kind}"
    return {
        n: read_mode_checked(p, where=ctx.config.path, key=key)
        for n, p in zip(pitr.SECRET_FILES[offsite.kind], paths, strict=True)
    }


def compose_secrets(ctx: Context, prefix: str) -> dict[str, str]:
    """The secret files as compose's environment for `up` (core/pitr.py apply names them)."""
    if not ctx.config.backup.pitr:
        return {}
    return {pitr.secret_env(prefix, n): text for n, text in secret_files(ctx).items()}


def one_off(
    ctx: Context, argv: list[str], *, step: str, mounts: dict[str, tuple[str, str]], first: str = "", **extra
) -> ExecResult:
    """pgbackrest (argv) as postgres in a one-off of the database's image: the second
    repository's secret files installed first (and the shell command `first`, as root), on
    the network out when there is one."""
    from deployer.core.volumes import volume_labels
    from deployer.flows.scratch import db_image

    labels = volume_labels(ctx.config.name, ctx.config.deployment)
    if repository(ctx) in mounts:  # never an unlabelled one, made by a mount
        ownership.ensure(ctx.engine, repository(ctx), labels, step=step)
    script = f"{pitr.INSTALL}; {first or 'true'} && exec {' '.join(shlex.quote(a) for a in [*pitr.AS_POSTGRES, *argv])}"
    return oneoff.run_once(
        ctx.engine,
        db_image(ctx, step),
        ["bash", "-c", script],
        step=step,
        name=f"{ctx.config.name}-pgbackrest-{secrets.token_hex(4)}",
        labels=leftovers.oneoff_labels(ctx, oneoffs.SCRATCH, command="pgbackrest", timeout=ONEOFF_LIFETIME),
        environment=pitr.env(ctx.config.backup, db_user(ctx)),
        volumes={source: {"bind": target, "mode": mode} for source, (target, mode) in mounts.items()},
        files={f"secrets/{n}": text.encode() for n, text in secret_files(ctx).items()},
        network=names.backup_out_network(ctx.config.name) if ctx.config.backup.offsite else "none",
        **extra,
    )


def run(ctx: Context, argv: list[str], *, step: str) -> ExecResult:
    """pgbackrest (argv) as postgres: in the database container when it runs, else in a
    one-off of its image that sees the repositories alone (the local one read-only). While
    another pgBackRest command holds the stanza's lock (a base backup of the schedule), it
    is tried again, for up to LOCK_WAIT seconds."""

    def once() -> ExecResult:
        if db_running(ctx):
            return ctx.engine.exec(db_container(ctx), argv, step=step, user="postgres")
        return one_off(ctx, argv, step=step, mounts={repository(ctx): (pitr.REPO, "ro")})

    last = [once()]

    def free() -> bool:
        if last[0].ok or pitr.LOCKED not in last[0].stdout + last[0].stderr:
            return True
        last[0] = once()
        return last[0].ok or pitr.LOCKED not in last[0].stdout + last[0].stderr

    # pgBackRest says nothing when its lock is freed: it is asked again.
    until(free, seconds=LOCK_WAIT, every=2)
    return last[0]


def probe(ctx: Context, *, step: str = Step.UP) -> None:
    """`up`: the repository off the host answers, before anything changes (exit 2 otherwise;
    the network out is made for the probe, and removed again when it was new)."""
    offsite = ctx.config.backup.offsite
    if offsite is None or not ctx.config.backup.pitr:
        return
    network = names.backup_out_network(ctx.config.name)
    made = ctx.engine.ensure_network(network, internal=False, labels={names.LABEL_PROJECT: ctx.config.name}, step=step)
    done = one_off(ctx, ["pgbackrest", "--repo=2", "repo-ls"], step=step, mounts={}, timeout=120)
    if not done.ok:
        if made:
            ctx.engine.remove_network(network)
        where = f"{offsite.user}@{offsite.host}:{offsite.port}" if offsite.kind == "sftp" else offsite.host
        detail = " ".join(done.stdout.split())[-300:]
        raise InputError(f"backup.{offsite.kind}: the repository at {where} does not answer: {detail}")


# -- commands ----------------------------------------------------------------------------------
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
    """After `up`: the stanza exists in every repository (made once), and each holds a full
    backup (the first is taken now): a restore to a moment has something to start from.
    Returns what it did, or None when there was nothing to do."""
    wait_promoted(ctx, db_container(ctx), step)  # a database started on restored data recovers first
    checked(run(ctx, ["pgbackrest", "stanza-create"], step=step), "pgbackrest stanza-create", step)
    taken = []
    for repo in pitr.repos(ctx.config.backup):
        if not pitr.backups(info(ctx, step=step, repo=repo)):
            taken += base(ctx, "full", step=step, repos=[repo])
    return ", ".join(f"first full backup {d['label']} in repository {d['repo']}" for d in taken) or None


def info(ctx: Context, *, step: str, repo: int | None = None) -> str:
    argv = ["pgbackrest", "info", "--output=json", *([f"--repo={repo}"] if repo else [])]
    return checked(run(ctx, argv, step=step), "pgbackrest info", step)


def base(ctx: Context, kind: str, *, step: str = Step.BACKUP, repos: list[int] | None = None) -> list[dict[str, Any]]:
    """A pgBackRest backup (full, diff or incr) of the running database into each repository
    (or `repos`), taken by the backup service as its schedule takes them
    (deployer/agent/basebackup.py); their label, type and size."""
    from deployer.flows.agent_call import ask

    if kind not in pitr.KINDS:
        raise InputError(f"--type: {kind!r} is not one of {', '.join(pitr.KINDS)}")
    if not db_running(ctx):
        raise BackupError(f"the database container {db_container(ctx)} is not running (run `deployer up`)", step=step)
    archiving(ctx)
    done = []
    for repo in repos or [None]:
        done += ask(ctx, "base", "--type", kind, *(["--repo", str(repo)] if repo else []), step=step)
    return done


def wait_promoted(ctx: Context, name: str, step: str) -> None:
    """Until a server (restored, or started on restored data) has replayed up to its target
    and takes writes."""

    argv = ["psql", "-X", "-A", "-t", "-q", "-h", pitr.SOCKET, "-U", db_user(ctx), "-d", "postgres"]
    argv += ["-c", "select pg_is_in_recovery()"]  # the env file read once, not at every poll

    def promoted() -> bool:
        found = ctx.engine.container(name)
        if found is None or not found.running:
            raise BackupError(f"{name} stopped during its recovery: {ctx.engine.logs(name, 15)}", step=step)
        out = ctx.engine.exec(name, argv, step=step)
        return out.ok and out.stdout.strip() == "f"

    # PostgreSQL says nothing when its recovery ends: it is asked.
    if not until(promoted, seconds=READY_SECONDS, every=0.5):
        raise BackupError(f"{name} had not finished its recovery after {READY_SECONDS} s", step=step)


def restore_point(ctx: Context, label: str, *, step: str = Step.BACKUP) -> str:
    """A named restore point (instant): where a release began, for a restore to that moment."""
    name = f"{label[:50]}-{secrets.token_hex(3)}"
    quoted = name.replace("'", "''")
    psql(ctx, db_container(ctx), f"select pg_create_restore_point('{quoted}')", step=step)
    return name


def push(ctx: Context, *, step: str) -> None:
    """Make the newest commits recoverable: a committed transaction (a recovery to a moment
    stops at the first commit after it), then `pgbackrest check`, which switches to a new
    WAL segment and waits until the full one is in every repository."""
    if not db_running(ctx):
        return  # nothing new to push: the repositories hold all there is
    psql(ctx, db_container(ctx), "select pg_current_xact_id()", step=step)
    checked(run(ctx, ["pgbackrest", "check"], step=step), "pgbackrest check (archiving the newest WAL)", step)


def window(ctx: Context, *, step: str, repo: int = 1) -> tuple[float, float] | None:
    """The recoverable window of one repository (core/pitr.py window)."""
    return pitr.window(info(ctx, step=step, repo=repo), archive_listing(ctx, repo, step=step))


def archive_listing(ctx: Context, repo: int, *, step: str) -> str:
    """The repository's WAL archive, as `pgbackrest repo-ls --output=json` lists it."""
    argv = ["pgbackrest", f"--repo={repo}", "repo-ls", "--recurse", "--output=json", f"archive/{pitr.STANZA}"]
    return checked(run(ctx, argv, step=step), "pgbackrest repo-ls", step)


def status(ctx: Context) -> dict[str, Any]:
    """Each repository's newest archived WAL segment and its age: the actual RPO. A
    repository whose newest segment is older than another's by more than max_lag is behind.
    Never raises: `status` shows what it could not read."""
    import time

    found: list[dict[str, Any]] = []
    kinds = {1: "local", 2: ctx.config.backup.offsite.kind if ctx.config.backup.offsite else ""}
    for repo in pitr.repos(ctx.config.backup):
        row: dict[str, Any] = {"repository": repo, "kind": kinds[repo]}
        try:
            newest = pitr.newest_segment(archive_listing(ctx, repo, step=Step.STATUS))
        except Exception as exc:  # an unreachable repository is what status must show
            row["error"] = str(exc)[-300:]
        else:
            if newest:
                row.update(segment=newest[0], archived_at=newest[1], age_seconds=max(0.0, time.time() - newest[1]))
        found.append(row)
    best = max((r["segment"] for r in found if r.get("segment")), default="")
    for r in found:
        r["behind"] = bool(r.get("error")) or (
            r.get("segment", "") < best and r.get("age_seconds", 0) > ctx.config.backup.max_lag
        )
    return {"repositories": found, "max_lag": ctx.config.backup.max_lag}
