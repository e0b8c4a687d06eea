"""What a flow asks of the place where releases run: the interface of runtime/compose.py and
runtime/swarm.py. Nothing here imports a flow, so the flows can name it (flows/context.py)."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from deployer.adapters.edge import Edge
from deployer.adapters.models import Container
from deployer.core.state import EdgeState


@dataclass(frozen=True)
class Healthy:
    seconds: float  # waited for health
    smoke: list[str] | None = None  # the smoke check's failures, from the health wait's last exec


class Runtime(Protocol):
    """One Docker host (compose) or a swarm. Every method acts on the Context the runtime
    was made for (runtime/mode.py); `step` names come from core/steps.py."""

    def edge(self) -> Edge:
        """The adapter of the edge, where every route state script runs."""
        ...

    def prepare(self) -> None:
        """Before a release changes anything: exit 2 when the engine cannot run it."""
        ...

    def pin(self, version: str, pinned: Any = None) -> dict[str, str]:
        """Each service's image as the release names it, when that is not its tag (a registry
        digest the nodes pull); {} when the tag is enough. `pinned`: a promotion's artifacts.Pinned."""
        ...

    def start(
        self, colour: str, release_id: str, version: str, env: dict[str, dict[str, str]], images: dict[str, str]
    ) -> None:
        """Start the release beside the colour's old standby. `images`: what `pin` returned."""
        ...

    def wait_healthy(self, colour: str, release_id: str) -> Healthy:
        """Until every service of the release answers its health path (HealthError at the deadline)."""
        ...

    def containers(self, colour: str, release_id: str) -> list[Any]:
        """The release's containers (compose) or running tasks (swarm)."""
        ...

    def logs(self, colour: str, release_id: str) -> str:
        """The last log lines of the release, the failing parts first ('' when none can be read)."""
        ...

    def agent_container(self) -> str:
        """The container a backup agent command execs in."""
        ...

    def explain(self, colour: str, exc: Exception) -> None:
        """Name, in a refused switch's error, the colour's services that are not healthy and why."""
        ...

    def remove(self, colour: str, release_id: str) -> None:
        """Remove one release (the undo of a release that did not complete)."""
        ...

    def clear_told(self, keep: set[tuple[str, str]]) -> Future | None:
        """Start removing, in a thread, what earlier releases told to stop (cleanup.clear_told)."""
        ...

    def retire(
        self,
        state: EdgeState | None = None,
        *,
        wait: bool = True,
        among: list[Container] | None = None,
        keep: set[tuple[str, str]] | None = None,
    ) -> list[str]:
        """Remove every release the route state no longer names (cleanup.retire); returns them."""
        ...

    def up(self, *, recreate_db: bool = False, refresh: bool = False) -> None:
        """`deployer up`: the networks, the edge, the database and the backup service."""
        ...

    def volume_doubts(self) -> list[str]:
        """Before `down --volumes`: the volumes not shown to be this deployment's."""
        ...

    def down(self, *, volumes: bool, backup: bool = True, typed: bool = False) -> None:
        """`deployer down`: every release and the infrastructure (the database's volume only with `volumes`)."""
        ...

    def status(self, *, history: int = 8) -> dict[str, Any]:
        """`deployer status`'s answer."""
        ...
