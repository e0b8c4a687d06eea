"""The release lock's holder record and its lease.

The lock lives in the edge volume, so it holds for every CLI that talks to this engine,
wherever it runs. Its holder writes a lease (an epoch second, by the edge's clock) and
renews it every LEASE/3 seconds while it works; a lock whose lease has passed is stale,
because its holder was killed, on any machine, and the next command may take it over.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass

LEASE = 30  # seconds a lock stays live without a renewal; its holder renews it every third of that


@dataclass(frozen=True)
class Holder:
    """Who holds the lock: the command, its process and its token."""

    user: str
    host: str
    pid: int
    command: str
    since: float
    token: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in ("user", "host", "pid", "command", "since", "token")})
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self, now: float | None = None) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        age = int((now or time.time()) - self.since)
        return f"{self.user}@{self.host} pid {self.pid} `{self.command}` since {started} ({age}s ago)"


def decode(b64: str) -> Holder | None:
    try:
        return Holder.from_json(base64.b64decode(b64).decode(errors="replace")) if b64 else None
    except ValueError:
        return None


def describe(b64: str) -> str:
    holder = decode(b64)
    return holder.describe() if holder else "a holder whose record is unreadable (it may be writing it right now)"
