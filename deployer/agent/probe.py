"""The container's healthcheck, fast: one small file read, no third-party import.

`.deployer-deadline` holds the epoch second by which a newer good dump must exist (see
deployer/agent/health.py). Without it (the schedule has not started yet), the full
judgment runs instead.
"""

from __future__ import annotations

import json
import os
import sys
import time

FOLDER = os.environ.get("DEPLOYER_AGENT_DUMPS", "/backups")


def main() -> int:
    try:
        with open(os.path.join(FOLDER, ".deployer-deadline"), encoding="utf-8") as fh:
            epoch, _, text = fh.read().strip().partition(" ")
        due = int(epoch)
    except (OSError, ValueError):
        from deployer.agent.commands import main as full

        return full(["health"])
    if time.time() <= due:
        try:  # [backup] pitr: WAL archiving behind by more than max_lag (deployer/agent/archiving.py)
            with open(os.path.join(FOLDER, ".deployer-archive-behind"), encoding="utf-8") as fh:
                print(fh.read().strip(), flush=True)
            return 1
        except OSError:
            pass
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
