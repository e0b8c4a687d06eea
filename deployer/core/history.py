"""History entries: one JSON line per release, switch or other change, kept in the edge
volume. An audit log, never the truth (the route state and the labels are)."""

from __future__ import annotations

import json
from typing import Any

OK, FAILED, CANCELLED = "ok", "failed", "cancelled"


def entry(action: str, *, when: str, by: str, **fields: Any) -> str:
    record: dict[str, Any] = {"time": when, "action": action, "by": by}
    record.update({k: v for k, v in fields.items() if v is not None})
    return json.dumps(record, sort_keys=True)


def parse(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out
