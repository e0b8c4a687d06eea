"""The release lock: one release or switch at a time, with a holder record and stale detection.

The lock lives in the edge volume (a directory created atomically with mkdir), so
it holds for every CLI that talks to this Docker host, wherever it runs.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from deployer.edge import Edge
from deployer.plan import Routes


@dataclass(frozen=True)
class Holder:
    user: str
    host: str
    pid: int
    command: str
    since: float
    token: str

    @classmethod
    def me(cls, command: str) -> Holder:
        try:
            user = getpass.getuser()
        except Exception:
            user = str(os.getuid())
        return cls(user, socket.gethostname(), os.getpid(), command, time.time(), uuid.uuid4().hex)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in ("user", "host", "pid", "command", "since", "token")})
        except (ValueError, KeyError, TypeError):
            return None

    def is_stale(self) -> bool:
        """True when the holder ran on this host and its process is gone (it was killed)."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        age = int(time.time() - self.since)
        return f"{self.user}@{self.host} pid {self.pid} `{self.command}` since {started} ({age}s ago)"


def describe_holder(record: str) -> str:
    holder = Holder.from_json(record)
    if holder is None:
        return "an unreadable holder record (a holder may be writing it right now)"
    text = holder.describe()
    if holder.is_stale():
        text += "; that process is no longer running, so the lock is stale: break it with `deployer lock release`"
    return text


@dataclass
class Lease:
    """A held lock, the routes read when it was taken, and whether a commit already freed it."""

    holder: Holder
    routes: Routes
    freed: bool = False


@contextmanager
def held(edge: Edge, command: str) -> Iterator[Lease]:
    holder = Holder.me(command)
    lease = Lease(holder, edge.take_lock(holder.to_json()))
    try:
        yield lease
    finally:
        if not lease.freed:
            edge.unlock(holder.token)
