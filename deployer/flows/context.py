"""What every flow is handed: the config, the engine it talks to, the edge, and a way to
report progress. The engine is created on first use, so a command pays only for what it
touches."""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from deployer.adapters.edge import Edge
from deployer.adapters.engine import Engine
from deployer.config import Config


def _quiet(message: str) -> None:
    pass


@dataclass
class Context:
    config: Config
    say: Callable[[str], None] = field(default=_quiet)

    @cached_property
    def engine(self) -> Engine:
        return Engine(
            self.config.engine.host,
            connect_timeout=self.config.timeouts.request_timeout + 8,
        )

    @cached_property
    def edge(self) -> Edge:
        return Edge(self.engine, self.config.name, self.config.deployment)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.close()


def who() -> str:
    """user@host of the person or runner issuing the command, for the lock and the history."""
    try:
        user = getpass.getuser()
    except Exception:  # no name for this uid (a container)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
