"""The append-only release history, kept in the edge volume. An audit log, never the truth."""

from __future__ import annotations

import getpass
import json
import socket
import time
from typing import Any

from deployer.edge import Edge


def line(action: str, **fields: Any) -> str:
    """One history entry as a JSON line."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "action": action, "by": f"{user}@{socket.gethostname()}"}
    entry.update({k: v for k, v in fields.items() if v is not None})
    return json.dumps(entry, sort_keys=True)


def entries(edge: Edge, last: int = 10) -> list[dict[str, Any]]:
    out = []
    for line in edge.history(last):
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
