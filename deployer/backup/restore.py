"""Restore a dump into a database of the db container (or of a scratch server).

Into an existing database: `pg_restore --clean --if-exists --single-transaction --exit-on-error`,
so it either fully replaces the dumped objects or changes nothing. A missing database is created
first. `maintenance_work_mem` is raised through PGOPTIONS for the HNSW index rebuild, sized to the
container's /dev/shm (parallel index builds allocate their shared memory there).
"""

from __future__ import annotations

from pathlib import Path

from deployer.backup import pgexec
from deployer.errors import BackupError

PSQL = 'psql -XAtq -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$DEPLOYER_DB" -c "$DEPLOYER_SQL"'
PG_RESTORE = (
    'pg_restore -U "$POSTGRES_USER" -d "$DEPLOYER_DB" --exit-on-error --single-transaction '
    '--clean --if-exists $DEPLOYER_FLAGS "$DEPLOYER_FILE"'
)
CREATE_DB = 'createdb -U "$POSTGRES_USER" "$DEPLOYER_DB"'
SHM = "df -k /dev/shm | awk 'NR==2 {print $2}'"
TABLE_COUNTS = """
select format('%I.%I', n.nspname, c.relname) || '|' ||
  (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
order by 1
"""
MB = 1024 * 1024


def memory_for(shm_bytes: int) -> str:
    """maintenance_work_mem for a restore: 3/4 of /dev/shm, between 64 MB and 2 GB."""
    return f"{max(64, min(2048, shm_bytes * 3 // 4 // MB))}MB"


def psql(container: str, database: str, sql: str, *, step: str) -> str:
    out = pgexec.run(container, PSQL, env={"DEPLOYER_DB": database, "DEPLOYER_SQL": sql}, step=step)
    if out.exit_code != 0:
        raise BackupError(f"query on {database} failed: {out.stderr[-500:]}", step=step)
    return out.stdout


def database_exists(container: str, database: str, *, step: str) -> bool:
    sql = f"select count(*) from pg_database where datname = '{database}'"  # database is a checked identifier
    return psql(container, "postgres", sql, step=step).strip() == "1"


def shm_bytes(container: str, *, step: str) -> int:
    out = pgexec.run(container, SHM, step=step)
    try:
        return int(out.stdout.strip()) * 1024
    except ValueError:
        return 256 * MB


def load(
    container: str,
    dump: Path,
    database: str,
    *,
    create: bool,
    portable: bool,
    step: str,
    memory: str | None = None,
) -> str:
    """Copy the dump in and pg_restore it; returns the maintenance_work_mem used."""
    if create:
        out = pgexec.run(container, CREATE_DB, env={"DEPLOYER_DB": database}, step=step)
        if out.exit_code != 0:
            raise BackupError(f"cannot create database {database}: {out.stderr[-300:]}", step=step)
    memory = memory or memory_for(shm_bytes(container, step=step))
    inside = pgexec.upload(container, dump, "/tmp", f"{dump.name}.restore", step=step)
    env = {
        "DEPLOYER_DB": database,
        "DEPLOYER_FILE": inside,
        "DEPLOYER_FLAGS": "--no-owner --no-privileges" if portable else "",
        "PGOPTIONS": f"-c maintenance_work_mem={memory}",
    }
    try:
        out = pgexec.run(container, PG_RESTORE, env=env, step=step)
    finally:
        pgexec.run(container, 'rm -f "$DEPLOYER_FILE"', env={"DEPLOYER_FILE": inside}, step=step)
    if out.exit_code != 0:
        raise BackupError(
            f"pg_restore into {database} failed and was rolled back (exit {out.exit_code}): {out.stderr[-1200:]}",
            step=step,
        )
    return memory


def table_counts(container: str, database: str, *, step: str) -> list[tuple[str, int]]:
    rows = []
    for line in psql(container, database, TABLE_COUNTS, step=step).splitlines():
        if "|" in line:
            table, count = line.rsplit("|", 1)
            rows.append((table, int(count)))
    return rows
