"""Point-in-time recovery with pgBackRest, as data: the database container's archiving
settings, the commands it runs, the recoverable window read from `pgbackrest info` and
`repo-ls`, and the grammar of a `--to-time`. No I/O (flows/pitr.py runs them).

pgBackRest takes its settings from PGBACKREST_* variables of the database container: the
archive command that the server runs inherits them, and so does every exec.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

STANZA = "main"
REPO = "/var/lib/pgbackrest"  # the repository volume <name>-pgbackrest, in the database container
PGDATA = "/var/lib/postgresql/data/pgdata"
SOCKET = "/var/run/postgresql"
KINDS = ("full", "diff", "incr")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# As the postgres user: the repository and the data folder are its own.
AS_POSTGRES = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
SERVER_FLAGS = {
    "wal_level": "replica",
    "archive_mode": "on",
    "archive_command": f"pgbackrest --stanza={STANZA} archive-push %p",
    "archive_timeout": "60",
}


def env(backup, user: str) -> dict[str, str]:
    """pgBackRest's settings for the database container (no secret among them)."""
    return {
        "PGBACKREST_STANZA": STANZA,
        "PGBACKREST_PG1_PATH": PGDATA,
        "PGBACKREST_PG1_SOCKET_PATH": SOCKET,
        "PGBACKREST_PG1_USER": user,
        "PGBACKREST_REPO1_PATH": REPO,
        "PGBACKREST_REPO1_RETENTION_FULL": str(backup.pitr_full_keep),
        "PGBACKREST_COMPRESS_TYPE": "zst",
        "PGBACKREST_START_FAST": "y",
        "PGBACKREST_LOG_LEVEL_CONSOLE": "warn",
        "PGBACKREST_LOG_LEVEL_FILE": "off",
    }


def command() -> list[str]:
    """The server's command line: continuous archiving into the repository."""
    argv = ["postgres"]
    for key, value in SERVER_FLAGS.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def db_service(service: dict[str, Any], backup, user: str, volume_key: str = "pgbackrest") -> dict[str, Any]:
    """The database's compose service with archiving on (`[backup] pitr`)."""
    return {
        **service,
        "command": command(),
        "environment": {**service["environment"], **env(backup, user)},
        "volumes": [*service["volumes"], f"{volume_key}:{REPO}"],
    }


def backup_argv(kind: str) -> list[str]:
    return ["pgbackrest", f"--type={kind}", "backup"]


def restore_argv(target: datetime, *, delta: bool) -> list[str]:
    """Restore to a moment, then promote: the restored server takes writes at once."""
    argv = ["pgbackrest", "--type=time", f"--target={target_text(target)}", "--target-action=promote"]
    return argv + (["--delta"] if delta else []) + ["restore"]


def parse_time(text: str) -> datetime:
    """A `--to-time`: 'YYYY-MM-DD HH:MM:SS' in UTC, or ISO 8601 with its own offset."""
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: write it as 'YYYY-MM-DD HH:MM:SS' (UTC)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def target_text(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIME_FORMAT) + "+00"


def show(when: datetime | float) -> str:
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when, UTC)
    return when.astimezone(UTC).strftime(TIME_FORMAT) + " UTC"


def backups(info_text: str) -> list[dict[str, Any]]:
    """The backups of `pgbackrest info --output=json`, oldest first."""
    stanzas = json.loads(info_text or "[]")
    found = next((s for s in stanzas if s.get("name") == STANZA), None) or {}
    return list(found.get("backup") or [])


def last_segment(info_text: str) -> str:
    """The newest WAL segment the repository holds ('' for none)."""
    stanzas = json.loads(info_text or "[]")
    found = next((s for s in stanzas if s.get("name") == STANZA), None) or {}
    return max((a.get("max") or "" for a in found.get("archive") or []), default="")


def newest_file(listing_text: str) -> float | None:
    """The newest file's time in `pgbackrest repo-ls --recurse --output=json` of the archive."""
    listing = json.loads(listing_text or "{}")
    times = [v.get("time") for k, v in listing.items() if "/" in k and v.get("type") == "file" and v.get("time")]
    return float(max(times)) if times else None


def window(info_text: str, listing_text: str) -> tuple[float, float] | None:
    """(earliest, latest) recoverable moment as epoch seconds: the end of the oldest backup,
    and the time the newest WAL segment reached the repository. None: nothing to restore."""
    found = backups(info_text)
    newest = newest_file(listing_text)
    if not found or newest is None:
        return None
    first = min(float(b["timestamp"]["stop"]) for b in found)
    return first, max(first, newest)


def outside(when: datetime, span: tuple[float, float] | None) -> str:
    """Why a target cannot be restored to ('' when it can)."""
    if span is None:
        return "the repository holds no backup yet: take one with `deployer backup base`"
    first, last = span
    if first <= when.timestamp() <= last:
        return ""
    return f"{show(when)} is outside the recoverable window {show(first)} .. {show(last)}"


def kept_volume(project: str, stamp: datetime) -> str:
    """The data volume as it was before a restore to a moment: kept until `--drop-old`."""
    return f"{project}-db-before-{stamp.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def is_kept_volume(project: str, name: str) -> bool:
    prefix = f"{project}-db-before-"
    return name.startswith(prefix) and len(name) == len(prefix) + 16
