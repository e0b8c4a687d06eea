"""Take one dump: pg_dump inside the db container (its binaries match the server), streamed to
a hidden partial file, fsync, rename, fsync the folder. A failed dump leaves no final file."""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from deployer.backup import naming, pgexec
from deployer.backup.naming import Metadata
from deployer.errors import BackupError

VERSIONS = (
    'psql -XAtq -U "$POSTGRES_USER" -d "${DEPLOYER_DB:-$POSTGRES_DB}" -c "show server_version" '
    "-c \"select coalesce((select extversion from pg_extension where extname = 'vector'), 'none')\" "
    "&& pg_dump --version"
)
PG_DUMP = 'exec pg_dump -U "$POSTGRES_USER" -d "${DEPLOYER_DB:-$POSTGRES_DB}" --format=custom $DEPLOYER_COMPRESS'


def major(version: str) -> int:
    m = re.search(r"(\d+)(?:\.\d+)?", version)
    if not m:
        raise ValueError(f"no version number in {version!r}")
    return int(m.group(1))


def compression_for(server_major: int) -> str:
    """zstd needs pg_dump 16 or later; older servers get the default gzip level."""
    return "zstd:3" if server_major >= 16 else "gzip:6"


def versions(container: str, database: str | None, *, step: str) -> tuple[str, str, str]:
    """(server version, pg_dump version, pgvector version); raises if the majors differ."""
    env = {"DEPLOYER_DB": database} if database else {}
    out = pgexec.run(container, VERSIONS, env=env, step=step)
    if out.exit_code != 0:
        raise BackupError(f"cannot reach the database in {container}: {out.stderr[-500:]}", step=step)
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    if len(lines) < 3:
        raise BackupError(f"unexpected version output from {container}: {out.stdout[-200:]!r}", step=step)
    server, vector, client = lines[0], lines[1], lines[2].replace("pg_dump (PostgreSQL) ", "")
    if major(server) != major(client):
        raise BackupError(f"pg_dump {client} does not match the server's major version {server}", step=step)
    return server, client, vector


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def take(container: str, folder: Path, *, database: str, label: str, step: str, name: str) -> Metadata:
    """Stream one dump of `database` into folder/name.dump, with its sha256 and metadata beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    server, client, vector = versions(container, database, step=step)
    compression = compression_for(major(server))
    partial = naming.partial_file(folder, name)
    digest = hashlib.sha256()
    started = time.monotonic()
    created = datetime.now(timezone.utc)
    try:
        with open(partial, "xb") as fh:
            outcome = pgexec.stream_to(
                container,
                PG_DUMP,
                fh,
                env={"DEPLOYER_DB": database, "DEPLOYER_COMPRESS": f"-Z {compression}"},
                step=step,
                on_chunk=digest.update,
            )
            fh.flush()
            os.fsync(fh.fileno())
        size = partial.stat().st_size
        if outcome.exit_code != 0:
            raise BackupError(
                f"pg_dump of {database} failed (exit {outcome.exit_code}): {outcome.stderr[-1500:] or 'no message'}",
                step=step,
            )
        if size == 0:
            raise BackupError(f"pg_dump of {database} wrote nothing", step=step)
        meta = Metadata(
            name=name,
            database=database,
            created=created.isoformat(timespec="seconds"),
            server_version=server,
            client_version=client,
            pgvector_version=vector,
            size=size,
            sha256=digest.hexdigest(),
            duration=round(time.monotonic() - started, 3),
            label=label,
            compression=compression,
        )
        write_atomic(naming.sha_file(folder, name), naming.sha_line(name, meta.sha256))
        write_atomic(naming.meta_file(folder, name), meta.to_json())
        os.replace(partial, naming.dump_file(folder, name))
        fsync_folder(folder)
        return meta
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
