"""Dumps as files: names, sidecars, metadata (pure: no I/O).

A dump NAME is three files beside each other in the dumps folder:

    NAME.dump          pg_dump custom format (zstd), 0600
    NAME.dump.sha256   `sha256sum` format: "<hex>  NAME.dump"
    NAME.json          metadata: database, versions, size, sha256, label, and its checks

While it is written the dump is `.NAME.dump.partial` (hidden; its writer holds a lock
on it, so a partial nobody holds was left by a killed process). The sidecars are
written before the rename, so a `NAME.dump` never exists without them unless someone
removed them.

How a dump is judged now (verified, stale, unverified, damaged): deployer/core/dumpstate.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from deployer.core.masking import mask

STAMP = "%Y%m%dT%H%M%SZ"
NAME = re.compile(r"dump-([0-9]{8}T[0-9]{6}Z)(?:-([0-9]{1,4}))?")
LABEL = re.compile(r"[\w .:,+@/()-]{0,100}")
DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
SHA256 = re.compile(r"[0-9a-f]{64}")

DUMP, SHA, META, PARTIAL = ".dump", ".dump.sha256", ".json", ".dump.partial"
COMPRESSION = "zstd:3"
KEEP_CHECKS = 10  # checks remembered in the metadata
RESERVE = 32 * 1024 * 1024  # free space a dump must leave beyond its expected size
LOCK_WAIT = 60  # seconds pg_dump waits for a table lock before it gives up


# -- names ------------------------------------------------------------------------------
def new_name(now: datetime, taken: set[str]) -> str:
    """dump-20250101T030000Z, with -2, -3... when a name of that second exists."""
    base = f"dump-{now.astimezone(UTC).strftime(STAMP)}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def is_name(text: str) -> bool:
    return bool(NAME.fullmatch(text))


def check_name(text: str) -> str:
    if not is_name(text):
        raise ValueError(f"{text!r} is not a dump name (they look like dump-20250101T030000Z)")
    return text


def created_from_name(name: str) -> datetime:
    m = NAME.fullmatch(name)
    if not m:
        raise ValueError(f"not a dump name: {name!r}")
    return datetime.strptime(m.group(1), STAMP).replace(tzinfo=UTC)


def name_of(filename: str) -> str | None:
    """The dump a file of the folder belongs to (dump, sidecar or partial), or None."""
    base = filename[1:] if filename.startswith(".") and filename.endswith(PARTIAL) else filename
    for suffix in (PARTIAL, SHA, DUMP, META):
        if base.endswith(suffix):
            stem = base[: -len(suffix)]
            if is_name(stem) and (suffix != PARTIAL or filename.startswith(".")):
                return stem
            return None
    return None


def files(name: str) -> dict[str, str]:
    return {"dump": name + DUMP, "sha": name + SHA, "meta": name + META, "partial": f".{name}{PARTIAL}"}


def check_label(label: str) -> str:
    if not LABEL.fullmatch(label):
        raise ValueError("a label is up to 100 letters, digits, spaces and . : , + @ / ( ) - _")
    return label


def check_database(name: str) -> str:
    if not DATABASE.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain database name (letters, digits, '_'; up to 63)")
    if name.lower() in ("template0", "template1"):
        raise ValueError(f"{name!r} is a template of PostgreSQL (every new database is copied from it): not a target")
    return name


def sha_line(name: str, digest: str) -> str:
    return f"{digest}  {name}{DUMP}\n"


def parse_sha_line(text: str, name: str) -> str:
    parts = text.split()
    if len(parts) != 2 or not SHA256.fullmatch(parts[0]) or parts[1].lstrip("*") != name + DUMP:
        raise ValueError("not a sha256sum line for this dump")
    return parts[0]


# -- metadata ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """The dump file as stat() saw it: a write, a truncation or a copy changes it."""

    size: int
    mtime_ns: int
    ctime_ns: int


@dataclass(frozen=True)
class Check:
    """One check of a dump: a full read, or a restore into a scratch server."""

    at: str  # ISO time, UTC
    kind: str  # "read" (sha256 + every data block) or "restore" (into a scratch server)
    ok: bool
    detail: str = ""
    size: int = -1  # the file as the check saw it
    mtime_ns: int = -1
    ctime_ns: int = -1

    @property
    def at_time(self) -> datetime:
        return datetime.fromisoformat(self.at)

    def saw(self, identity: Identity) -> bool:
        return (self.size, self.mtime_ns, self.ctime_ns) == (identity.size, identity.mtime_ns, identity.ctime_ns)


def check(at: datetime, kind: str, ok: bool, identity: Identity, detail: str = "") -> Check:
    return Check(iso(at), kind, ok, detail[-300:], identity.size, identity.mtime_ns, identity.ctime_ns)


@dataclass(frozen=True)
class Metadata:
    """What is known of a dump when it is written."""

    name: str
    database: str
    created: str  # ISO time, UTC
    server_version: str
    client_version: str
    pgvector_version: str
    size: int
    sha256: str
    duration: float
    label: str = ""
    compression: str = COMPRESSION
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.created)

    @property
    def last_check(self) -> Check | None:
        return self.checks[-1] if self.checks else None

    def with_check(self, new: Check) -> Metadata:
        return replace(self, checks=(*self.checks, new)[-KEEP_CHECKS:])

    def to_json(self) -> str:
        data = asdict(self)
        data["checks"] = [asdict(c) for c in self.checks]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Metadata:
        """Raises ValueError on anything that is not a complete, well-typed record."""
        try:
            data: dict[str, Any] = json.loads(text)
            checks = tuple(
                Check(**{k: v for k, v in c.items() if k in Check.__dataclass_fields__}) for c in data.pop("checks", [])
            )
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            meta = cls(**known, checks=checks)
            datetime.fromisoformat(meta.created)
            for c in checks:
                datetime.fromisoformat(c.at)
        except (TypeError, AttributeError, KeyError) as exc:
            raise ValueError(str(exc)) from None
        if (
            not isinstance(meta.size, int)
            or not SHA256.fullmatch(str(meta.sha256))
            or not isinstance(meta.database, str)
        ):
            raise ValueError("size, sha256 or database is not what a dump's metadata holds")
        return meta


# -- small rules --------------------------------------------------------------------------
def space_needed(last_size: int | None) -> int:
    """Free bytes a new dump needs: the last dump of its database plus 10 %, plus RESERVE."""
    return (last_size or 0) * 11 // 10 + RESERVE


def failure_event(project: str, step: str, error: str) -> dict[str, str]:
    """The webhook's JSON for a failed dump, check or schedule run: `text` for people
    (Slack-compatible), the fields for programs. The agent sends it, and the CLI when the
    agent could not. Masked: no secret in it."""
    error = mask(error)
    return {
        "text": f"[{project}] backup failed in step '{step}': {error[-300:]}",
        "project": project,
        "event": "backup_failed",
        "step": step,
        "error": error[-1000:],
    }


def major(version: str) -> int:
    m = re.search(r"([0-9]+)(?:\.[0-9]+)?", version)
    if not m:
        raise ValueError(f"no version number in {version!r}")
    return int(m.group(1))


def restore_memory(shm_bytes: int) -> str:
    """maintenance_work_mem for a restore's index builds: 3/4 of the server's /dev/shm, 64 MB to 2 GB."""
    return f"{max(64, min(2048, shm_bytes * 3 // 4 // (1024 * 1024)))}MB"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def human_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"
