"""What the engine says, as objects: the outcome of an exec and one container's state.

The one home of "running": `Container.running` (and of "will never become healthy by
waiting": `Container.dead`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deployer.core import names


@dataclass(frozen=True)
class ExecResult:
    """An exec's exit code and output."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


# The CPU weight of a container told to stop (the engine's minimum): its shutdown never takes
# CPU from serving containers, and a later command knows it was told (flows/cleanup.py).
TOLD_CPU_SHARES = 2


@dataclass(frozen=True)
class Container:
    """What the engine says about one container the deployer created."""

    name: str
    id: str
    role: str  # app, edge, db, backup, scratch
    service: str
    colour: str
    version: str
    release: str
    status: str  # created, running, paused, restarting, exited, dead
    health: str  # healthy, unhealthy, starting, or '' without a healthcheck
    restart_count: int
    exit_code: int
    started_at: str
    image_id: str = ""
    labels: dict[str, str] = field(default_factory=dict, compare=False)
    cpu_shares: int = 0  # CPU weight (0: the default); TOLD_CPU_SHARES marks a container told to stop
    stop_signal: str = ""  # the image's or compose's STOPSIGNAL ('' is SIGTERM)

    @property
    def running(self) -> bool:
        """Up and serving (a restarting or paused container is not)."""
        return self.status == "running"

    @property
    def dead(self) -> bool:
        """Exited, dead or restarting now: it will not become healthy by waiting."""
        return self.status in ("exited", "dead", "restarting")

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Container:
        labels = attrs["Config"].get("Labels") or {}
        state = attrs.get("State") or {}
        return cls(
            name=attrs["Name"].lstrip("/"),
            id=attrs["Id"],
            role=labels.get(names.LABEL_ROLE, ""),
            service=labels.get(names.LABEL_SERVICE, ""),
            colour=labels.get(names.LABEL_COLOUR, ""),
            version=labels.get(names.LABEL_VERSION, ""),
            release=labels.get(names.LABEL_RELEASE, ""),
            status="paused" if state.get("Paused") else state.get("Status", ""),
            health=(state.get("Health") or {}).get("Status", ""),
            restart_count=int(attrs.get("RestartCount") or 0),
            exit_code=int(state.get("ExitCode") or 0),
            started_at=state.get("StartedAt", ""),
            image_id=attrs.get("Image", ""),
            labels=labels,
            cpu_shares=int((attrs.get("HostConfig") or {}).get("CpuShares") or 0),
            stop_signal=attrs["Config"].get("StopSignal") or "",
        )
