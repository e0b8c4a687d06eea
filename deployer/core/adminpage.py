"""The paths of the edge's admin port that `deployer page` passes on to this machine
(docs/observability.md#the-status-page): the status page and what it reads, and the metrics,
each with its query string. Nothing else: not the preview route, the health paths or the
replicas' sync. A path is a fixed set of characters, so it can be written into the edge's
shell command quoted, with nothing left for the shell or curl to read into it."""

from __future__ import annotations

import re

PAGE = "/_deployer/page/"
METRICS = "/_deployer/metrics"
_SAFE = re.compile(r"[A-Za-z0-9._/?=&-]+")


def admin_path(path: str) -> str | None:
    """`path` when it is one of the admin port's paths that may be passed on, else None."""
    if not _SAFE.fullmatch(path) or ".." in path or "//" in path:
        return None
    route = path.partition("?")[0]
    return path if route.startswith(PAGE) or route == METRICS else None
