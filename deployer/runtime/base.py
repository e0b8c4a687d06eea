"""What a flow asks of the place where releases run: the interface of runtime/compose.py and
runtime/swarm.py. Nothing here imports a flow, so the flows can name it (flows/context.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from deployer.adapters.edge import Edge
from deployer.adapters.models import Container
from deployer.adapters.operate import Source
from deployer.core.state import EdgeState

if TYPE_CHECKING:
    from concurrent.futures import Future


@dataclass(frozen=True)
class Healthy:
    """A release's health wait that passed."""

    seconds: float  # waited for health
    smoke: list[str] | None = None  # the smoke check's failures, from the health wait's last exec


class Observed(Protocol):
    """One reading of the runtime for `deployer status` (flows/status.py builds the one answer
    for both modes from it, the route state, the history, the lock and the edge's metrics)."""

    edge_up: bool  # the edge that holds the route state runs: it can be read
    backup_running: bool  # the backup agent can be asked (flows/agent_call.py)
    images: dict[str, str]  # role (edge, db, backup) -> the image to give the build age of
    engine_versions: dict[str, str]  # host -> its engine's version (exposure.lan_warning)
    extra: dict[str, Any]  # the mode's own fields of the answer (a swarm's nodes)

    def services(self, colour: str, release: str | None) -> dict[str, dict[str, Any]]:
        """The release's services: status, health, restarts, memory (and a swarm's nodes)."""
        ...

    def other_releases(self, colour: str, release: str | None) -> list[str]:
        """The colour's releases other than `release`, as `<id> (<version>...)`."""
        ...

    def part(self, role: str) -> dict[str, Any]:
        """edge, db or backup, as a service above; the edge with its live and preview ports."""
        ...


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

    def log_sources(self, colour: str, release_id: str, services: list[str]) -> list[Source]:
        """Where each of these services of the release logs (`deployer logs`): its containers
        on one host, its swarm service (every task, on any node) on a swarm."""
        ...

    def infra_log(self, role: str) -> Source:
        """Where edge, db or backup logs."""
        ...

    def exec_container(self, colour: str, release_id: str, service: str) -> str:
        """A running container of the service on this engine's node (`deployer exec`)."""
        ...

    def infra_container(self, role: str) -> str:
        """The running container of edge, db or backup on this engine's node."""
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

    def install_certificate(self) -> str:
        """`deployer edge reload`: the certificate of [edge.tls] to every edge that serves
        HTTPS; returns what to say of it."""
        ...

    def volume_doubts(self) -> list[str]:
        """Before `down --volumes`: the volumes not shown to be this deployment's."""
        ...

    def down(self, *, volumes: bool, backup: bool = True, typed: bool = False) -> None:
        """`deployer down`: every release and the infrastructure (the database's volume only with `volumes`)."""
        ...

    def observe(self) -> Observed:
        """What `deployer status` reads from the containers or tasks, once (flows/status.py)."""
        ...
