"""How the agent reports: the status file in the dumps folder (the last run, the last
error, the next run: what `deployer status` shows), the webhook, and its log on stderr.
Reporting never raises: a report that fails must not hide the failure it reports."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from deployer.agent.boot import Agent
from deployer.agent.folder import Folder
from deployer.core import dumps
from deployer.core.masking import mask

STATUS = ".deployer-status.json"
FIRST_START = ".deployer-first-start"


def log(message: str) -> None:
    print(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {mask(message)}", file=sys.stderr, flush=True)


def read_status(folder: Folder) -> dict[str, Any]:
    try:
        data = json.loads((folder.path / STATUS).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def update_status(folder: Folder, **fields: Any) -> None:
    try:
        with folder.lock():
            data = {**read_status(folder), **fields, "updated": dumps.iso(datetime.now(UTC))}
            folder.write_atomic(folder.path / STATUS, json.dumps(data, indent=2, sort_keys=True) + "\n")
    except Exception as exc:  # a full disk, a read-only folder: the log still says it
        log(f"cannot write the status file: {exc}")


def first_start(folder: Folder, now: datetime) -> datetime:
    """When the schedule first ran on this folder (written once; a restart does not move it)."""
    path = folder.path / FIRST_START
    try:
        return datetime.fromisoformat(path.read_text(encoding="utf-8").strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log(f"the first-start marker is unreadable ({exc}): writing it again")
    try:
        folder.write_atomic(path, dumps.iso(now) + "\n")
    except Exception as exc:
        log(f"cannot write the first-start marker: {exc}")
    return now


def read_first_start(folder: Folder) -> datetime | None:
    try:
        return datetime.fromisoformat((folder.path / FIRST_START).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def webhook(agent: Agent, step: str, error: str) -> bool | None:
    """POST the failure; True when the webhook took it, False when it could not be
    reached or refused it, None when there is no webhook."""
    if not agent.webhook:
        return None
    import urllib.request

    body = json.dumps(dumps.failure_event(agent.config.project, step, error)).encode()
    request = urllib.request.Request(
        agent.webhook,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "deployer-agent"},
    )
    try:
        with urllib.request.urlopen(request, timeout=agent.config.webhook_timeout) as response:
            response.read(1024)
        return True
    except Exception as exc:  # urllib's URLError, HTTPError, timeouts: never raise, never print the URL
        log(f"webhook failed: {type(exc).__name__}: {getattr(exc, 'code', '') or getattr(exc, 'reason', '')}")
        return False


def failure(agent: Agent, step: str, error: str) -> bool | None:
    """Log the failure, POST it to the webhook, record it in the status file (a full
    folder cannot take the record; the POST does not depend on it). Returns what the
    webhook said (see `webhook`)."""
    log(f"ERROR in step '{step}': {error}")
    sent = webhook(agent, step, error)
    update_status(
        agent.folder, last_error={"at": dumps.iso(datetime.now(UTC)), "step": step, "error": mask(error)[-1000:]}
    )
    return sent
