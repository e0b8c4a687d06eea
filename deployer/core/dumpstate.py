"""How a dump is judged now, from what is on disk (pure: no I/O).

"Verified" means verified now: a full check (sha256 + every data block read, or a
restore) passed, the file has not changed on disk since (size, mtime and ctime as the
check saw them), and that check is younger than STALE_AFTER. Anything less is said
plainly: stale, unverified, or damaged with the reason. The cheap checks (sidecars
present and readable, agreeing with each other, the size as recorded) run on every
listing; bit rot that keeps size and times is found by the full checks the schedule
repeats, and by prune's re-hash before it relies on a dump.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deployer.core.dumps import Identity, Metadata, created_from_name, files, human_age, human_size, iso, parse_sha_line

STALE_AFTER = timedelta(hours=24)  # a full check older than this is stale
VERIFIED, STALE, UNVERIFIED, DAMAGED = "verified", "stale", "unverified", "damaged"
GOOD = (VERIFIED, STALE)  # passed a full check and unchanged since


@dataclass(frozen=True)
class Found:
    """What is on disk for one dump name. None: that file is missing; sha and meta carry
    their text (b'' read errors become '')."""

    name: str
    dump: Identity | None
    sha: str | None
    meta: str | None


@dataclass(frozen=True)
class Judged:
    """A dump and its state."""

    name: str
    state: str  # verified, stale, unverified, damaged
    problem: str  # why it is not verified ('' when it is)
    meta: Metadata | None
    dump: Identity | None

    @property
    def database(self) -> str | None:
        return self.meta.database if self.meta else None

    @property
    def created(self) -> datetime:
        return self.meta.created_at if self.meta else created_from_name(self.name)

    @property
    def good(self) -> bool:
        return self.state in GOOD

    @property
    def unrecorded(self) -> bool:
        """A dump file whose metadata is missing: listed as unverified, never pruned, until
        a full check (`verify`) writes its metadata again from the archive."""
        return self.meta is None and self.dump is not None and self.state == UNVERIFIED

    @property
    def usable(self) -> bool:
        """Not known to be damaged: may be restored (after a full sha256 check) and counts for retention."""
        return self.state != DAMAGED


def _damage(found: Found, recheck: bool) -> tuple[str, Metadata | None]:
    files_ = files(found.name)
    meta = None
    if found.meta is not None:
        try:
            meta = Metadata.from_json(found.meta)
        except ValueError:
            return f"its metadata file {files_['meta']} is unreadable", None
        if meta.name != found.name:
            return f"its metadata file {files_['meta']} describes {meta.name!r}", None
    if found.dump is None:
        return f"its dump file {files_['dump']} is missing (only sidecar files are left)", meta
    if meta is None:  # unrecorded: unverified unless its checksum file is garbage
        if found.sha is not None and not _sha_line_ok(found.sha, found.name):
            return f"its checksum file {files_['sha']} is unreadable", None
        return "", None
    if found.sha is None:
        return f"its checksum file {files_['sha']} is missing", meta
    try:
        recorded = parse_sha_line(found.sha, found.name)
    except ValueError:
        return f"its checksum file {files_['sha']} is unreadable", meta
    if recorded != meta.sha256:
        return "its checksum file and its metadata record different sha256 sums", meta
    if found.dump.size != meta.size:
        return f"it is {found.dump.size} bytes, its metadata records {meta.size} (truncated or overwritten)", meta
    last = meta.last_check
    if last is not None and not last.ok and last.saw(found.dump) and not recheck:
        return f"its last full check ({last.kind}, {last.at}) failed: {last.detail or 'no detail'}", meta
    return "", meta


def _sha_line_ok(text: str, name: str) -> bool:
    try:
        parse_sha_line(text, name)
    except ValueError:
        return False
    return True


def judge(found: Found, now: datetime, stale_after: timedelta = STALE_AFTER, *, recheck: bool = False) -> Judged:
    """The dump's state now. A failed full check makes it damaged while the file is as that
    check saw it; `recheck` (a new full check is about to run) looks past that."""
    problem, meta = _damage(found, recheck)
    if problem:
        return Judged(found.name, DAMAGED, problem, meta, found.dump)
    assert found.dump is not None
    if meta is None:
        missing = files(found.name)["meta"]
        why = f"its metadata file {missing} is missing: `deployer backup verify {found.name}` checks it and writes it again"
        return Judged(found.name, UNVERIFIED, why, None, found.dump)
    last = meta.last_check
    if last is None:
        return Judged(found.name, UNVERIFIED, "never fully checked", meta, found.dump)
    if not last.saw(found.dump):
        return Judged(found.name, UNVERIFIED, "the file changed on disk since its last full check", meta, found.dump)
    if not last.ok:  # only with recheck: a new check is about to decide
        return Judged(
            found.name, UNVERIFIED, f"its last full check failed: {last.detail or 'no detail'}", meta, found.dump
        )
    if now - last.at_time > stale_after:
        return Judged(
            found.name,
            STALE,
            f"its last full check is {human_age((now - last.at_time).total_seconds())}",
            meta,
            found.dump,
        )
    return Judged(found.name, VERIFIED, "", meta, found.dump)


def verified_text(j: Judged, now: datetime) -> str:
    last = j.meta.last_check if j.meta else None
    if j.state == VERIFIED and last:
        return f"verified {human_age((now - last.at_time).total_seconds())} ({last.kind})"
    if j.state == STALE and last:
        return f"stale: last full check {human_age((now - last.at_time).total_seconds())} ({last.kind})"
    if j.state == UNVERIFIED:
        return f"unverified: {j.problem}"
    return f"DAMAGED: {j.problem}"


def row(j: Judged, now: datetime) -> dict[str, Any]:
    """One dump as `backup list --json` and `status` show it."""
    meta, last = j.meta, (j.meta.last_check if j.meta else None)
    size = j.dump.size if j.dump else (meta.size if meta else 0)
    return {
        "name": j.name,
        "database": j.database,
        "created": iso(j.created),
        "age": human_age((now - j.created).total_seconds()),
        "size": size,
        "size_text": human_size(size),
        "label": meta.label if meta else "",
        "state": j.state,
        "ok": j.state == VERIFIED,
        "verified": verified_text(j, now),
        "problem": j.problem,
        "checked": last.at if last else None,
        "check_kind": last.kind if last else None,
        "sha256": meta.sha256 if meta else None,
        "server_version": meta.server_version if meta else None,
        "pgvector_version": meta.pgvector_version if meta else None,
    }
