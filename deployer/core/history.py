"""History entries: one JSON line per release, switch or other change, kept in the edge
volume. An audit log, never the truth (the route state and the labels are)."""

from __future__ import annotations

import json
from typing import Any

OK, FAILED, CANCELLED = "ok", "failed", "cancelled"
# What the status page shows of a dump (the agent's row: core/dumpstate.row): no checksum, no path.
DUMP_FIELDS = ("name", "database", "created", "size_text", "label", "state", "problem", "checked", "check_kind")


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


def dump_note(row: dict[str, Any]) -> str:
    """A dump's line for the status page (scripts.note_dump): its fields of DUMP_FIELDS, the
    texts masked like every message the CLI prints."""
    from deployer.core.masking import mask

    fields = {k: row[k] for k in DUMP_FIELDS if row.get(k) is not None}
    return json.dumps({k: mask(v) if isinstance(v, str) else v for k, v in fields.items()}, sort_keys=True)
