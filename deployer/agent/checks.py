"""Full checks of a dump, streamed from the dumps folder (nothing is copied anywhere):
its sha256 against both sidecars, then every data block read by pg_restore. The outcome
is recorded in the dump's metadata with the file's identity, so that `list` can tell
later whether the file changed since."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import BinaryIO

from deployer.agent import postgres
from deployer.agent.folder import Folder, identity
from deployer.core import dumps
from deployer.core.dumpstate import Judged
from deployer.core.steps import Step
from deployer.errors import BackupError

CHUNK = 1 << 20


def now() -> datetime:
    return datetime.now(UTC)


def file_sha256(folder: Folder, name: str, step: str) -> str:
    digest = hashlib.sha256()
    try:
        with folder.file(name, "dump").open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise BackupError(f"{name}: cannot read the dump: {exc.strerror}", step=step) from None
    return digest.hexdigest()


def sha_problem(folder: Folder, j: Judged, step: str) -> str | None:
    """Re-hash the whole file; None when it matches what was recorded."""
    assert j.meta is not None
    actual = file_sha256(folder, j.name, step)
    if actual != j.meta.sha256:
        return f"sha256 mismatch (file {actual[:12]}…, recorded {j.meta.sha256[:12]}…)"
    return None


def usable(folder: Folder, name: str, step: str, *, recheck: bool = False) -> Judged:
    """The dump, refused when it is known to be damaged (with `recheck`, a failed earlier
    check does not count: a new one is about to run)."""
    j = folder.get(name, now(), recheck=recheck)
    if not j.usable:
        raise BackupError(f"{name} is damaged: {j.problem}", step=step)
    return j


def recorded(folder: Folder, name: str, step: str) -> Judged:
    """A usable dump with its metadata (its sha256 on record): what restore and fetch need."""
    j = usable(folder, name, step)
    if j.meta is None:
        raise BackupError(f"{name} cannot be used yet: {j.problem}", step=step)
    return j


def full(folder: Folder, name: str, *, step: str, record: bool = True) -> list[str]:
    """sha256 and every data block; records the outcome; raises BackupError when it fails."""
    j = usable(folder, name, step, recheck=True)
    if j.meta is None:
        return _rebuild(folder, j, step=step)
    before = identity(folder.file(name, "dump"))
    problem = sha_problem(folder, j, step)
    if problem is None:
        unreadable = postgres.read_archive(folder.file(name, "dump"))
        problem = f"reading the archive failed: {unreadable}" if unreadable else None
    if record and before is not None:
        folder.record(name, dumps.check(now(), "read", problem is None, before, problem or ""))
    if problem:
        raise BackupError(f"{name}: {problem}", step=step)
    return ["sha256 ok", "every data block read"]


def _rebuild(folder: Folder, j: Judged, *, step: str) -> list[str]:
    """The full check of a dump whose metadata is missing: its sha256 against its checksum
    file (when there is one), every data block, then its metadata written again from the
    archive's own header, with this check in it (a failed one makes the dump damaged)."""
    name, path = j.name, folder.file(j.name, "dump")
    before = identity(path)
    if before is None:
        raise BackupError(f"{name}: its dump file is gone", step=step)
    actual = file_sha256(folder, name, step)
    sha = folder.found(name).sha
    on_record = dumps.parse_sha_line(sha, name) if sha else None  # judged readable already
    problem = None
    if on_record and on_record != actual:
        problem = f"sha256 mismatch (file {actual[:12]}…, its checksum file {on_record[:12]}…)"
    if problem is None:
        unreadable = postgres.read_archive(path)
        problem = f"reading the archive failed: {unreadable}" if unreadable else None
    header = postgres.archive_header(path)
    meta = dumps.Metadata(
        name=name,
        database=header.get("database", ""),
        created=dumps.iso(j.created),
        server_version=header.get("server_version", "unknown"),
        client_version=header.get("client_version", "unknown"),
        pgvector_version="unknown",
        size=before.size,
        sha256=on_record or actual,
        duration=0.0,
        label="metadata rebuilt by verify",
        compression=header.get("compression", dumps.COMPRESSION),
        checks=(dumps.check(now(), "read", problem is None, before, problem or ""),),
    )
    folder.rebuild(name, meta, step=step)
    if problem:
        raise BackupError(f"{name}: {problem}", step=step)
    database = meta.database or "an unknown database"
    return [
        "sha256 ok" if on_record else "sha256 computed (no checksum file was left)",
        "every data block read",
        f"metadata written again from the archive (a dump of {database})",
    ]


def rehash(folder: Folder, j: Judged, *, step: str, record: bool) -> bool:
    """The cheap-but-whole re-check prune does before it trusts a dump: sha256 only."""
    before = identity(folder.file(j.name, "dump"))
    problem = sha_problem(folder, j, step)
    if problem and record and before is not None:
        folder.record(j.name, dumps.check(now(), "read", False, before, problem))
    return problem is None


def newest(folder: Folder, database: str) -> str:
    mine = [j for j in folder.judged(now()) if j.database == database]
    if not mine:
        raise BackupError(f"there is no dump of {database} yet", step=Step.VERIFY)
    return mine[-1].name


def record(folder: Folder, name: str, kind: str, ok: bool, detail: str) -> Judged:
    """Record a full check made elsewhere (the CLI's restore into a scratch server)."""
    j = folder.get(name, now(), recheck=True)
    seen = identity(folder.file(name, "dump"))
    if seen is None or folder.record(name, dumps.check(now(), kind, ok, seen, detail)) is None:
        raise BackupError(f"{name} is damaged: {j.problem or 'its metadata cannot hold a check'}", step=Step.VERIFY)
    return folder.get(name, now())


def stream(folder: Folder, name: str, out: BinaryIO) -> None:
    """The dump's bytes, as they are on disk (the receiver checks them against the sha256)."""
    recorded(folder, name, "fetch")
    try:
        with folder.file(name, "dump").open("rb") as fh:
            while chunk := fh.read(CHUNK):
                out.write(chunk)
        out.flush()
    except BrokenPipeError:
        raise BackupError(f"{name}: the receiver went away", step=Step.FETCH) from None
    except OSError as exc:
        raise BackupError(f"{name}: cannot read the dump: {exc.strerror}", step=Step.FETCH) from None
