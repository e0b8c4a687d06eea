"""Point-in-time recovery with pgBackRest, as data: the database container's archiving
settings, the commands it runs, the recoverable window read from `pgbackrest info` and
`repo-ls`, and the grammar of a `--to-time`. No I/O (flows/pitr.py runs them).

pgBackRest takes its settings from PGBACKREST_* variables of the database container: the
archive command that the server runs inherits them, and so does every exec.
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from typing import Any

from deployer.core import names
from deployer.errors import InputError

STANZA = "main"
REPO = "/var/lib/pgbackrest"  # the repository volume <name>-pgbackrest, in the database container
PGDATA = "/var/lib/postgresql/data/pgdata"
SOCKET = "/var/run/postgresql"
KINDS = ("full", "diff", "incr")
LOCKED = "unable to acquire lock"  # pgBackRest's words while another of its commands runs on the stanza
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# As the postgres user: the repository and the data folder are its own.
AS_POSTGRES = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
SERVER_FLAGS = {
    "wal_level": "replica",
    "archive_mode": "on",
    "archive_command": f"pgbackrest --stanza={STANZA} archive-push %p",
    "archive_timeout": "60",
}


# The second repository's secret files: given to the database container as compose secrets
# (to a one-off through the Engine API), installed by root for postgres into FILES (0600).
FILES = "/var/lib/postgresql/.pgbackrest"
SECRET_FILES = {"sftp": ("pgbackrest_sftp_key", "pgbackrest_known_hosts"), "s3": ("pgbackrest_s3.conf",)}
INSTALL = (
    'for f in /run/secrets/pgbackrest_*; do [ -f "$f" ] || continue; '
    f'install -D -o postgres -g postgres -m 600 "$f" "{FILES}/${{f##*/}}"; done'
)
REPOS = {"local": 1, "sftp": 2, "s3": 2}


def offsite_env(offsite) -> dict[str, str]:
    """repo2: the SFTP or S3 repository off the host (its secrets are files, read by path)."""
    common = {"PGBACKREST_REPO2_PATH": offsite.path, "PGBACKREST_REPO2_BUNDLE": "y"}
    if offsite.kind == "sftp":
        key, known = SECRET_FILES["sftp"]
        return {
            **common,
            "PGBACKREST_REPO2_TYPE": "sftp",
            "PGBACKREST_REPO2_SFTP_HOST": offsite.host,
            "PGBACKREST_REPO2_SFTP_HOST_PORT": str(offsite.port),
            "PGBACKREST_REPO2_SFTP_HOST_USER": offsite.user,
            "PGBACKREST_REPO2_SFTP_PRIVATE_KEY_FILE": f"{FILES}/{key}",
            "PGBACKREST_REPO2_SFTP_KNOWN_HOST": f"{FILES}/{known}",
            "PGBACKREST_REPO2_SFTP_HOST_KEY_CHECK_TYPE": "strict",
            "PGBACKREST_REPO2_SFTP_HOST_KEY_HASH_TYPE": "sha256",
        }
    return {
        **common,
        "PGBACKREST_REPO2_TYPE": "s3",
        "PGBACKREST_REPO2_S3_ENDPOINT": offsite.host,
        "PGBACKREST_REPO2_S3_BUCKET": offsite.bucket,
        "PGBACKREST_REPO2_S3_REGION": offsite.region,
        "PGBACKREST_CONFIG_INCLUDE_PATH": FILES,  # pgbackrest_s3.conf: the key and its secret
    }


def repository_number(backup, source: str | None) -> int | None:
    """--from: the repository to restore from (None: the first that holds a fitting backup)."""
    if source is None:
        return None
    kind = backup.offsite.kind if backup.offsite is not None else None
    if source != "local" and source != kind:
        raise InputError(f"--from {source}: no [backup.{source}] repository is configured")
    return REPOS[source]


def repos(backup) -> list[int]:
    """The repositories: 1 on the host, 2 off it when configured."""
    return [1, 2] if backup.offsite is not None else [1]


def env(backup, user: str) -> dict[str, str]:
    """pgBackRest's settings for the database container (no secret among them)."""
    offsite = offsite_env(backup.offsite) if backup.offsite is not None else {}
    if offsite:
        offsite["PGBACKREST_REPO2_RETENTION_FULL"] = str(backup.pitr_full_keep)
    return {
        **offsite,
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


def secret_env(prefix: str, name: str) -> str:
    """The variable that carries a secret file's content to compose (never an argv)."""
    return prefix + name.upper().replace(".", "_")


def apply(doc: dict[str, Any], backup, user: str, project: str, prefix: str) -> None:
    """The infrastructure's compose file with archiving on (`[backup] pitr`): the database's
    command, settings and repository volume; with a repository off the host, its secret
    files and a network with a route out (the data network has none)."""
    db = doc["services"]["db"]
    db["command"] = command()
    db["environment"] = {**db["environment"], **env(backup, user)}
    db["volumes"] = [*db["volumes"], f"pgbackrest:{REPO}"]
    if backup.offsite is None:
        return
    names_ = SECRET_FILES[backup.offsite.kind]
    db["secrets"] = [*db["secrets"], *({"source": n, "target": n, "mode": 0o400} for n in names_)]
    doc["secrets"].update({n: {"environment": secret_env(prefix, n)} for n in names_})
    db["networks"] = {**db["networks"], "backup-out": {}}
    doc["networks"]["backup-out"] = {"external": True, "name": names.backup_out_network(project)}


def backup_argv(kind: str, repo: int = 1) -> list[str]:
    return ["pgbackrest", f"--repo={repo}", f"--type={kind}", "backup"]


# The backup service runs pgBackRest in the database container through the database itself:
# `COPY ... TO PROGRAM` (its login is the superuser's), as postgres, with the server's own
# PGBACKREST_* settings and secret files; the output goes to a file it then reads.
PROGRAM_LOG = "/tmp/deployer-pgbackrest.log"
READ_PROGRAM_LOG = f"select pg_read_file('{PROGRAM_LOG}')"


def program_sql(argv: list[str]) -> str:
    """A COPY that runs argv (fixed words of this module, quoted) in the database container."""
    command = " ".join(shlex.quote(a) for a in argv) + f" > {PROGRAM_LOG} 2>&1"
    return "copy (select 1) to program '" + command.replace("'", "''") + "'"


def restore_argv(target: datetime, *, delta: bool, repo: int | None = None) -> list[str]:
    """Restore to a moment, then promote: the restored server takes writes at once. `repo`:
    from that repository alone (default: the first that holds a fitting backup)."""
    argv = ["pgbackrest", "--type=time", f"--target={target_text(target)}", "--target-action=promote"]
    return argv + (["--delta"] if delta else []) + ([f"--repo={repo}"] if repo else []) + ["restore"]


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


def newest_segment(listing_text: str) -> tuple[str, float] | None:
    """(the newest WAL segment, when it reached the repository) in a `repo-ls` of the archive."""
    listing = json.loads(listing_text or "{}")
    found = [
        (k.rsplit("/", 1)[-1][:24], float(v["time"]))
        for k, v in listing.items()
        if "/" in k and v.get("type") == "file" and v.get("time") and segment_number(k.rsplit("/", 1)[-1]) is not None
    ]
    return max(found) if found else None


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


# -- how far archiving lags (the backup service watches it: deployer/agent/archiving.py) -----------
ARCHIVER = (
    "select pg_walfile_name(pg_current_wal_lsn()) || '|' || coalesce(last_archived_wal, '') || '|' || "
    "coalesce(extract(epoch from last_archived_time)::bigint::text, '') || '|' || "
    "coalesce(extract(epoch from last_failed_time)::bigint::text, '') || '|' || "
    "coalesce(extract(epoch from stats_reset)::bigint::text, '') from pg_stat_archiver"
)
BEHIND_MARKER = ".deployer-archive-behind"


def segment_number(name: str) -> int | None:
    """A WAL segment's place in its timeline (16 MB segments), or None for another file
    (a .history, a .partial's name is read up to the segment)."""
    head = name[:24]
    if len(head) != 24 or any(c not in "0123456789ABCDEF" for c in head):
        return None
    return int(head[8:16], 16) * 0x100 + int(head[16:24], 16)


def lag(row: str, now: float, max_lag: float) -> str:
    """Why archiving is behind ('' when it is not), from ARCHIVER's row: a finished segment
    is not in every repository yet (the archive command's newest attempt failed for one of
    them), and the last success is older than max_lag seconds. With no success since the
    archiver's counters were reset (a start after a restore or a crash resets them), the lag
    counts from that reset: a server restored a moment ago is not behind yet. An idle server
    that writes nothing new is never behind."""
    current, last, archived_at, failed_at, reset_at = (row.strip().split("|") + [""] * 5)[:5]
    now_at, last_at = segment_number(current), segment_number(last)
    if now_at is None or not failed_at:
        return ""
    if archived_at and float(archived_at) >= float(failed_at):
        return ""  # the archiver's newest attempt succeeded: a segment that waits is only queued
    waiting = now_at - last_at - 1 if last_at is not None else None
    since = archived_at or reset_at
    late = now - float(since) if since else None
    if (waiting is not None and waiting < 1) or (late is not None and late <= max_lag):
        return ""
    if archived_at:
        last_success = f"last archived {last}, {late:.0f} s ago"
    elif late is not None:
        last_success = f"nothing archived in the {late:.0f} s since the archiver's counters were reset"
    else:
        last_success = "nothing archived yet"
    count = f"{waiting} finished segment(s) wait" if waiting is not None else f"the segments before {current} wait"
    return (
        f"WAL archiving is behind: {count} for a repository ({last_success}; max_lag {max_lag:g} s): "
        "check `deployer exec db pgbackrest info` and the repository off the host"
    )
