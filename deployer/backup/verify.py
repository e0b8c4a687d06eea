"""Verify a dump: its sha256, then every data block (`pg_restore -f /dev/null` over the whole
archive; `--list` alone reads only the table of contents). With restore=True, restore it into a
scratch server and run sanity queries, including a pgvector nearest-neighbour query."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from deployer import engine
from deployer.backup import catalogue, naming, pgexec, restore, scratch
from deployer.backup.naming import Metadata, Verification
from deployer.errors import BackupError

READ_ALL = 'pg_restore --exit-on-error -f /dev/null "$DEPLOYER_FILE"'
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha(folder: Path, meta: Metadata, step: str) -> None:
    recorded = naming.parse_sha_line(naming.sha_file(folder, meta.name).read_text(encoding="utf-8"))
    actual = file_sha256(naming.dump_file(folder, meta.name))
    if actual != recorded or recorded != meta.sha256:
        raise BackupError(f"{meta.name}: sha256 mismatch (file {actual[:12]}…, recorded {recorded[:12]}…)", step=step)


def read_all(container: str, folder: Path, meta: Metadata, step: str) -> None:
    inside = pgexec.upload(container, naming.dump_file(folder, meta.name), "/tmp", f"{meta.name}.verify", step=step)
    try:
        out = pgexec.run(container, READ_ALL, env={"DEPLOYER_FILE": inside}, step=step)
    finally:
        pgexec.run(container, 'rm -f "$DEPLOYER_FILE"', env={"DEPLOYER_FILE": inside}, step=step)
    if out.exit_code != 0:
        raise BackupError(f"{meta.name}: reading the archive failed: {out.stderr[-800:]}", step=step)


def nearest_neighbour_checks(container: str, database: str, step: str) -> list[str]:
    lines = restore.psql(container, database, VECTOR_COLUMNS, step=step).splitlines()
    results = []
    for line in filter(None, (x.strip() for x in lines)):
        table, column = line.rsplit("|", 1)
        col = '"' + column.replace('"', '""') + '"'
        sql = (
            f"select (select least(count(*), 10) from {table} where {col} is not null), "
            f"(select count(*) from (select 1 from {table} where {col} is not null order by {col} <-> "
            f"(select {col} from {table} where {col} is not null limit 1) limit 10) s)"
        )
        expected, got = restore.psql(container, database, sql, step=step).strip().split("|")
        if expected != got:
            raise BackupError(f"nearest-neighbour query on {table}.{column} gave {got} rows, expected {expected}", step=step)
        results.append(f"{table}.{column}: nearest-neighbour query ok ({got} rows)")
    return results


def restore_check(config, folder: Path, meta: Metadata, step: str) -> list[str]:
    with scratch.server(config, step=step) as name:
        restore.load(name, naming.dump_file(folder, meta.name), "verify", create=True, portable=True, step=step)
        report = [f"{t}: {n} rows" for t, n in restore.table_counts(name, "verify", step=step)]
        vector = restore.psql(name, "verify", "select extversion from pg_extension where extname = 'vector'", step=step)
        report.append(f"pgvector {vector.strip() or 'not installed'}")
        report.extend(nearest_neighbour_checks(name, "verify", step))
    return report


def verify(config, meta: Metadata, *, full_restore: bool, step: str = "verify") -> list[str]:
    """Run the checks and record the outcome in the dump's metadata; raises BackupError on failure."""
    folder = catalogue.folder_of(config)
    kind = "restore" if full_restore else "read"
    try:
        check_sha(folder, meta, step)
        if full_restore:
            report = restore_check(config, folder, meta, step)
        else:
            attrs = engine.container_state(config.db_container)
            if attrs and attrs["State"].get("Running"):
                read_all(config.db_container, folder, meta, step)
            else:
                with scratch.server(config, step=step) as name:
                    read_all(name, folder, meta, step)
            report = ["sha256 ok", "every data block read"]
    except BackupError as exc:
        _record(folder, meta, Verification(_now(), kind, False, str(exc)[-300:]))
        raise
    _record(folder, meta, Verification(_now(), kind, True))
    return report


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _record(folder: Path, meta: Metadata, check: Verification) -> None:
    current = catalogue.get(folder, meta.name)
    catalogue.save(folder, current.with_check(check))
