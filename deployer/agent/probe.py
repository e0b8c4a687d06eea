"""The container's healthcheck, fast: a few small file reads, no third-party import.

`.deployer-deadline` holds the epoch second by which a newer good dump must exist (see
deployer/agent/health.py). Without it (the schedule has not started yet), the full
judgment runs instead.
"""

from __future__ import annotations

import json
import os
import sys
import time

from deployer.agent.pid1 import container_started

FOLDER = os.environ.get("DEPLOYER_AGENT_DUMPS", "/backups")


def archive_behind() -> str:
    """[backup] pitr: why WAL archiving is behind by more than max_lag, from the marker this
    container's schedule writes (deployer/agent/archiving.py); '' when it is not. A marker an
    earlier container left was judged under that container's settings, and does not count."""
    try:
        with open(os.path.join(FOLDER, ".deployer-archive-behind"), encoding="utf-8") as fh:
            written, why = os.fstat(fh.fileno()).st_mtime, fh.read().strip()
    except OSError:
        return ""
    began = container_started()
    return "" if began is not None and written < began else why


def main() -> int:
    try:
        with open(os.path.join(FOLDER, ".deployer-deadline"), encoding="utf-8") as fh:
            epoch, _, text = fh.read().strip().partition(" ")
        due = int(epoch)
    except (OSError, ValueError):
        from deployer.agent.commands import main as full

        return full(["health"])
    if time.time() <= due:
        behind = archive_behind()
        if behind:
            print(behind, flush=True)
            return 1
        print(f"ok: the next good dump is due by {text}", flush=True)
        return 0
    why = ""
    try:
        with open(os.path.join(FOLDER, ".deployer-status.json"), encoding="utf-8") as fh:
            last = json.load(fh).get("last_error") or {}
        if last:
            why = f"; last error ({last.get('at')}, {last.get('step')}): {last.get('error')}"
    except (OSError, ValueError, AttributeError):
        pass
    print(f"overdue: no good dump by {text}{why}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
