"""What every flow is handed: the config, the engine it talks to, the edge, the runtime
(where the releases run: deployer/runtime), and a way to report progress. The engine is
created on first use, so a command pays only for what it touches."""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from deployer.adapters.edge import Edge
from deployer.adapters.engine import Engine
from deployer.config import Config
from deployer.errors import ConfigError

if TYPE_CHECKING:
    from deployer.runtime.base import Runtime


def _quiet(message: str) -> None:
    pass


@dataclass
class Context:
    """What a flow is handed: the config, and the engine, edge and runtime it works with."""

    config: Config
    say: Callable[[str], None] = field(default=_quiet)
    runtime: Runtime = field(init=False, repr=False)  # compose or swarm: set by runtime/mode.py

    @cached_property
    def engine(self) -> Engine:
        return Engine(
            self.config.engine.host,
            connect_timeout=self.config.timeouts.request_timeout + 8,
        )

    @cached_property
    def edge(self) -> Edge:
        return self.runtime.edge()  # on a swarm, the scripts run in the control service

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


def host_folder(ctx: Context, raw: str | None, key: str) -> str | None:
    """A folder of the Docker host named in the config at `key` (None: not set). A relative
    path starts at the config's folder, which only means something for a local engine."""
    if not raw:
        return None
    if PurePosixPath(raw).is_absolute():
        return raw
    if ctx.engine.remote:
        raise ConfigError(
            ctx.config.path, key, f"{raw!r} is relative: with a remote engine it must be an absolute path on that host"
        )
    return str((ctx.config.root / raw).resolve())
