"""How every agent command starts: settings, secrets, the folder, then least privilege.

The container starts the agent as root (and `docker exec` runs it as root) only so that
it can (1) make /backups belong to uid/gid 10001 with mode 0700, its files 0600, even
when it is a host folder created by someone else, and (2) read the compose secrets,
which compose injects as root-owned 0400 files. Then it drops to 10001 for good
(setgroups, setgid, setuid) before it touches the database or a dump. Started as 10001
already, it skips both and reads what it can.
"""

from __future__ import annotations

import os
import signal
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.agent.folder import Folder
from deployer.core import agentconfig, dumps, masking
from deployer.core.agentconfig import AgentConfig
from deployer.core.steps import Step
from deployer.errors import BackupError

UID = GID = 10001


class Stopped(BaseException):
    """SIGTERM or SIGINT: unwind now (not an error to survive)."""


def stop_on_signals() -> None:
    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


@dataclass(frozen=True)
class Agent:
    """What the backup agent runs with."""

    config: AgentConfig
    folder: Folder
    password: str
    webhook: str


def _read_secret(name: str) -> str:
    path = Path(os.environ.get("DEPLOYER_AGENT_SECRETS", agentconfig.SECRETS)) / name
    try:
        return path.read_text(encoding="utf-8").strip("\r\n")
    except (FileNotFoundError, PermissionError):  # none set, or not ours to read (not started as root)
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(
            f"cannot read the secret {path.name}: {getattr(exc, 'strerror', None) or exc}", step=Step.START
        ) from None


def ours(filename: str) -> bool:
    """A file the agent writes in the dumps folder: a dump, its sidecars, a partial, its
    markers and lock (.deployer-*, .deployer.lock), a temporary file (.NAME.PID.tmp)."""
    hidden = filename.startswith(".")
    return (
        dumps.name_of(filename) is not None
        or filename.startswith(".deployer")
        or (hidden and filename.endswith(".tmp"))
    )


def prepare(folder: Path) -> list[str]:
    """As root: the folder and our files belong to 10001, 0700/0600. Returns warnings.

    A folder that holds other files is not taken over: `backup.dir` naming a folder in use
    (/etc, a home) must not have its owner and modes changed."""
    warnings = []
    try:
        foreign = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.is_symlink() and not ours(p.name))
    except FileNotFoundError:
        foreign = []
    except OSError as exc:
        raise BackupError(f"cannot read the dumps folder {folder}: {exc.strerror}", step=Step.START) from None
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise BackupError(
            f"the dumps folder (backup.dir) holds files that are not dumps ({shown}): it must be an empty"
            " folder or the deployer's own; nothing in it was changed",
            step=Step.START,
        )
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        for path in [folder, *folder.iterdir()]:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or not (stat.S_ISREG(st.st_mode) or path == folder):
                continue
            if (st.st_uid, st.st_gid) != (UID, GID):
                os.chown(path, UID, GID, follow_symlinks=False)
            wanted = 0o700 if path == folder else 0o600
            if stat.S_IMODE(st.st_mode) != wanted:
                os.chmod(path, wanted)
    except OSError as exc:  # a read-only or root-squashed mount: go on, say so
        warnings.append(f"cannot set the owner or mode of {folder}: {exc.strerror}")
    return warnings


def drop() -> None:
    os.setgroups([])
    os.setgid(GID)
    os.setuid(UID)
    os.environ["HOME"] = "/nonexistent"


def start() -> tuple[Agent, list[str]]:
    """Read the settings and the secrets, prepare the folder, drop privileges."""
    os.umask(0o077)
    path = Path(os.environ.get("DEPLOYER_AGENT_CONFIG", agentconfig.PATH))
    try:
        config = AgentConfig.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise BackupError(f"cannot read the agent's settings {path}: {exc}", step=Step.START) from None
    warnings: list[str] = []
    password = webhook = ""
    if os.geteuid() == 0:
        warnings = prepare(Path(config.dumps))
    password = _read_secret("db_password")
    webhook = _read_secret("webhook")
    if os.geteuid() == 0:
        drop()
    masking.register(password, webhook)
    return Agent(config, Folder(config.dumps), password, webhook), warnings
