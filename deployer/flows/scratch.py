"""The full check of `deployer backup verify --restore`: restore a dump into a throwaway
PostgreSQL server and query it.

The scratch server runs on the engine from the very image the database runs, with no
network (loopback only), trust auth (no password exists to leak) and the dumps folder
mounted read-only: pg_restore reads the dump where it lies, nothing is copied. It is
always removed; one left by a killed command is removed by the next command that looks for
one-offs (flows/oneoffs.py) once it has ended or outlived LIFETIME.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from deployer.adapters import oneoff
from deployer.adapters.polling import until
from deployer.core import dumps, names, oneoffs
from deployer.core.sql import TABLE_COUNTS
from deployer.errors import BackupError
from deployer.flows import oneoffs as leftovers
from deployer.flows.context import Context

LIFETIME = 6 * 3600  # a scratch server older than this was left by a killed command
USER, DATABASE = "scratch", "verify"
PSQL = ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "/var/run/postgresql", "-U", USER]
VECTOR_COLUMNS = """
select format('%I.%I', n.nspname, c.relname) || '|' || a.attname
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_type t on t.oid = a.atttypid
where t.typname = 'vector' and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
  and n.nspname not in ('pg_catalog', 'information_schema')
order by 1
"""


def db_image(ctx: Context, step: str) -> str:
    """The image the database container runs (the host's truth), else the configured or own one."""
    attrs = ctx.engine.inspect(names.infra_container(ctx.config.name, "db"))
    if attrs and attrs.get("Image"):
        return attrs["Image"]
    if ctx.config.database.image:
        return ctx.config.database.image
    from deployer.flows import images

    return images.own_image(ctx.engine, "db", base_image=ctx.config.base_image, say=ctx.say, step=step)


def dumps_mount(ctx: Context, agent: str, step: str) -> dict[str, dict[str, str]]:
    """The dumps as the backup agent's container `agent` has them (the host's truth): its volume
    or host folder, read-only. On a swarm the agent runs on the manager, and so does this server."""
    attrs = ctx.engine.inspect(agent) or {}
    for mount in attrs.get("Mounts") or []:
        if mount.get("Destination") == "/backups":
            source = mount.get("Name") if mount.get("Type") == "volume" else mount.get("Source")
            if source:
                return {source: {"bind": "/backups", "mode": "ro"}}
    raise BackupError("the backup service has no dumps folder mounted (run `deployer up`)", step=step)


def shm_bytes(ctx: Context) -> int:
    """The database container's /dev/shm, which sizes maintenance_work_mem for index builds."""
    attrs = ctx.engine.inspect(names.infra_container(ctx.config.name, "db")) or {}
    return int((attrs.get("HostConfig") or {}).get("ShmSize") or 0) or 64 * 1024 * 1024


@contextmanager
def server(ctx: Context, *, agent: str, step: str, deadline: float = 90) -> Iterator[str]:
    """Start a scratch server with the dumps of the backup agent's container `agent`; yields
    its container name. The container is always removed."""
    # What killed restore checks left (ended, or past their time); this command holds no lock,
    # so another command's one-offs are not its to judge.
    leftovers.clear(ctx, wait_for=(), only=(oneoffs.SCRATCH,))
    name = f"{ctx.config.name}-scratch-{secrets.token_hex(4)}"
    oneoff.run_detached(
        ctx.engine,
        db_image(ctx, step),
        name,
        step=step,
        environment={"POSTGRES_USER": USER, "POSTGRES_DB": USER, "POSTGRES_HOST_AUTH_METHOD": "trust"},
        labels=leftovers.oneoff_labels(ctx, oneoffs.SCRATCH, command="backup verify --restore", timeout=LIFETIME),
        volumes=dumps_mount(ctx, agent, step),
        shm_size=shm_bytes(ctx),
    )
    try:
        _wait_ready(ctx, name, deadline, step)
        yield name
    finally:
        oneoff.remove(ctx.engine, name)


def _wait_ready(ctx: Context, name: str, deadline: float, step: str) -> None:
    def ready() -> bool:
        c = ctx.engine.container(name)
        if c is None or not c.running:
            raise BackupError(f"the scratch database {name} stopped: {ctx.engine.logs(name, 10)}", step=step)
        # TCP: the server that initialises the cluster listens on its socket only
        return ctx.engine.exec(name, ["pg_isready", "-q", "-h", "127.0.0.1", "-U", USER], step=step).ok

    # PostgreSQL says nothing when it starts to accept connections: pg_isready is asked.
    if until(ready, seconds=deadline, every=0.3):
        return
    raise BackupError(f"the scratch database {name} was not ready after {deadline:.0f}s", step=step)


class RestoreFailed(BackupError):
    """The dump itself failed the check: it did not restore, or the restored copy is wrong.
    Only this marks a dump as failed; a scratch server that could not start, or ran out of
    disk or memory, says nothing about the dump."""


# pg_restore's and psql's words for a scratch server that failed, not a dump that did
NOT_THE_DUMP = (
    "No space left on device",
    "out of memory",
    "could not connect",
    "connection to server",
    "terminating connection",
    "the database system is shutting down",
)


def _failed(message: str, stderr: str, step: str) -> BackupError:
    kind = BackupError if any(words in stderr for words in NOT_THE_DUMP) else RestoreFailed
    return kind(message, step=step)


def _psql(ctx: Context, name: str, sql: str, step: str) -> str:
    out = ctx.engine.exec(name, [*PSQL, "-d", DATABASE, "-c", sql], step=step)
    if not out.ok:
        raise _failed(f"query on the restored copy failed: {out.stderr.strip()[-500:]}", out.stderr, step)
    return out.stdout


def restore_check(ctx: Context, dump: str, *, agent: str, step: str) -> list[str]:
    """Restore the dump into a scratch server; table counts, pgvector, nearest neighbours."""
    memory = dumps.restore_memory(shm_bytes(ctx))
    with server(ctx, agent=agent, step=step) as name:
        created = ctx.engine.exec(name, ["createdb", "-h", "/var/run/postgresql", "-U", USER, DATABASE], step=step)
        if not created.ok:
            raise BackupError(f"cannot create the scratch database: {created.stderr.strip()[-300:]}", step=step)
        argv = ["pg_restore", "-h", "/var/run/postgresql", "-U", USER, "-d", DATABASE, "--no-owner", "--no-privileges"]
        argv += ["--exit-on-error", "--single-transaction", f"/backups/{dump}{dumps.DUMP}"]
        loaded = ctx.engine.exec(name, argv, step=step, env={"PGOPTIONS": f"-c maintenance_work_mem={memory}"})
        if not loaded.ok:
            raise _failed(
                f"{dump}: restoring into a scratch server failed: {loaded.stderr.strip()[-800:]}", loaded.stderr, step
            )
        report = []
        for line in _psql(ctx, name, TABLE_COUNTS, step).splitlines():
            if "|" in line:
                table, count = line.rsplit("|", 1)
                report.append(f"{table}: {count} rows")
        vector = _psql(ctx, name, "select extversion from pg_extension where extname = 'vector'", step).strip()
        report.append(f"pgvector {vector or 'not installed'}")
        report.extend(_nearest_neighbours(ctx, name, step))
    return report


def _nearest_neighbours(ctx: Context, name: str, step: str) -> list[str]:
    """For each vector column: an ordered nearest-neighbour query returns as many rows as it should."""
    results = []
    for line in filter(None, (x.strip() for x in _psql(ctx, name, VECTOR_COLUMNS, step).splitlines())):
        table, column = line.rsplit("|", 1)
        col = '"' + column.replace('"', '""') + '"'
        sql = (
            f"select (select least(count(*), 10) from {table} where {col} is not null), "
            f"(select count(*) from (select 1 from {table} where {col} is not null order by {col} <-> "
            f"(select {col} from {table} where {col} is not null limit 1) limit 10) s)"
        )
        expected, got = _psql(ctx, name, sql, step).strip().split("|")
        if expected != got:
            raise RestoreFailed(
                f"nearest-neighbour query on {table}.{column} gave {got} rows, expected {expected}", step=step
            )
        results.append(f"{table}.{column}: nearest-neighbour query ok ({got} rows)")
    return results
