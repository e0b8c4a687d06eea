"""The edge's access log, read back: `deployer logs --slow` and `deployer logs --request`.

One JSON line per request (site.conf.j2, `log_format deployer_json`); the edge's other lines
(nginx's errors, the relay's) are not JSON and are skipped. The upstream times are strings:
"" when the edge answered itself, one value per attempt (", " between them) when a request
was sent again, "-" for an attempt without a connection or an answer. Pure: the flow streams
the lines through `parse` and `Slowest`, so a long log is never held in memory."""

from __future__ import annotations

import heapq
import json
import re
from datetime import UTC, datetime
from typing import Any

from deployer.errors import InputError

# The ids the edge keeps (site.REQUEST_ID), nginx's own 32 hex digits among them.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")
TIMINGS = ("connect_time", "header_time", "upstream_time")
# The table's columns, and the order of a plain (tab-separated) line.
COLUMNS = ("time", "request id", "service", "prefix", "status", "connect", "header", "upstream", "total", "request")


def check_id(value: str) -> str:
    """A request id as the edge keeps it, else exit 2."""
    if not REQUEST_ID.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InputError(f"--request must be 1 to 200 characters of A-Z a-z 0-9 . _ -: {shown!r}")
    return value


def parse(line: str) -> dict[str, Any] | None:
    """One access log line as a dict; None for any other line (nginx's errors, the relay's,
    a line cut short) or one without a request id and a numeric total."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("request_id"), str):
        return None
    total = entry.get("time_total")
    if isinstance(total, bool) or not isinstance(total, (int, float)):
        return None
    return entry


def mentions(line: str, request_id: str) -> bool:
    """The line names the id as a whole word (an id "ab" is not found in "abc")."""
    return re.search(rf"(?<![A-Za-z0-9._-]){re.escape(request_id)}(?![A-Za-z0-9._-])", line) is not None


class Slowest:
    """The `limit` slowest requests at or above `threshold` seconds (of one service, when
    named), fed one line at a time; at most `limit` are kept."""

    def __init__(self, threshold: float, limit: int, service: str | None = None) -> None:
        self.threshold, self.limit, self.service = threshold, limit, service
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self.matched = 0  # every request at or above the threshold, kept or not

    def add(self, line: str) -> None:
        entry = parse(line)
        if entry is None or entry["time_total"] < self.threshold:
            return
        if self.service is not None and entry.get("service") != self.service:
            return
        self.matched += 1
        # the earlier request wins a tie (-matched is unique: no dict is ever compared)
        item = (float(entry["time_total"]), -self.matched, entry)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, item)
        elif self.limit and item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def result(self) -> list[dict[str, Any]]:
        """Slowest first; of equal totals, the earlier first."""
        return [entry for *_, entry in sorted(self._heap, reverse=True)]


def _ms(value: str) -> str:
    """One attempt's seconds as milliseconds; "-" as it is."""
    try:
        return f"{float(value) * 1000:.0f}"
    except ValueError:
        return value or "-"


def timing(entry: dict[str, Any]) -> dict[str, str]:
    """connect, header, upstream and total in ms: "edge" where no app was asked, one value
    per attempt when the request was sent again ("1, 3 ms")."""
    split = {}
    for field in TIMINGS:
        raw = str(entry.get(field) or "")
        attempts = [a.strip() for a in raw.split(",")] if raw.strip() else []
        split[field.removesuffix("_time")] = f"{', '.join(_ms(a) for a in attempts)} ms" if attempts else "edge"
    split["total"] = f"{_ms(str(entry.get('time_total', '')))} ms"
    return split


def when(entry: dict[str, Any]) -> str:
    """The request's time as `YYYY-MM-DD HH:MM:SS` in UTC; as logged when it does not parse."""
    text = str(entry.get("time", ""))
    try:
        return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text


def row(entry: dict[str, Any]) -> list[str]:
    """The request as the cells of COLUMNS."""
    split = timing(entry)
    return [
        when(entry),
        str(entry.get("request_id", "")),
        str(entry.get("service") or "-"),
        str(entry.get("prefix") or "-"),
        str(entry.get("status", "")),
        split["connect"],
        split["header"],
        split["upstream"],
        split["total"],
        f"{entry.get('method', '')} {entry.get('path', '')}".strip(),
    ]


def summary(entry: dict[str, Any]) -> str:
    """One line for a person: `GET /api/x 200, backend on green (release 1a2b3c4d): connect
    1 ms, header 301 ms, upstream 302 ms, total 302 ms`."""
    split = timing(entry)
    service = entry.get("service")
    by = (
        f"{service} on {entry.get('colour') or '-'} (release {entry.get('release') or '-'})"
        if service
        else "the edge itself"
    )
    times = ", ".join(f"{k} {v}" for k, v in split.items() if v != "edge")
    return f"{when(entry)} {entry.get('method', '')} {entry.get('path', '')} {entry.get('status', '')}, {by}: {times}"
