"""What `deployer status` reads on one host (ComposeRuntime.observe; the answer is
flows/status.py's): the project's containers, labelled with colour and release, read once,
and the memory each running one uses."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deployer.core import edgelayout
from deployer.flows.context import Context

_BACKGROUND = ThreadPoolExecutor(max_workers=1)


class ComposeObserved:
    def __init__(self, ctx: Context) -> None:
        config, engine = ctx.config, ctx.engine
        containers = engine.containers(config.name, deployment=config.deployment)
        self._infra = {c.role: c for c in containers if c.role in ("edge", "db", "backup")}
        self._apps = [c for c in containers if c.role == "app"]
        # The engine samples stats once a second, so memory takes up to a second: it is read
        # in the background while status reads the edge, and waited for at the first answer.
        self._memory_read = _BACKGROUND.submit(_memory, ctx, [c for c in containers if c.running])
        edge, backup = self._infra.get("edge"), self._infra.get("backup")
        self.edge_up = bool(edge and edge.running)
        self.backup_running = bool(backup and backup.running)
        self.images = {role: c.image_id for role, c in self._infra.items()}
        self.engine_versions = {engine.where: engine.version()}
        self.extra: dict[str, Any] = {}
        self._ports = (
            {
                "live_port": ctx.edge.published_port(edgelayout.PUBLIC_PORT),
                "preview_port": ctx.edge.published_port(edgelayout.PREVIEW_PORT),
            }
            if self.edge_up
            else {}
        )

    def services(self, colour: str, release: str | None) -> dict[str, dict[str, Any]]:
        current = [c for c in self._apps if c.colour == colour and c.release == release]
        return {c.service: self._state(c) for c in sorted(current, key=lambda c: c.service)}

    def other_releases(self, colour: str, release: str | None) -> list[str]:
        return sorted({f"{c.release} ({c.version}, {c.status})" for c in self._apps
                       if c.colour == colour and c.release != release})  # fmt: skip

    def part(self, role: str) -> dict[str, Any]:
        c = self._infra.get(role)
        found = {"status": "missing", "health": "none"} if c is None else self._state(c)
        return {**found, **self._ports} if role == "edge" else found

    def _state(self, c) -> dict[str, Any]:
        return {
            "status": c.status,
            "health": c.health or "none",
            "restarts": c.restart_count,
            "memory": self._memory_read.result().get(c.name),
        }


def _memory(ctx: Context, containers: list) -> dict[str, int]:
    """Memory in use per running container, in bytes (one-shot stats, in parallel)."""
    if not containers:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
        used = pool.map(lambda c: (c.name, ctx.engine.memory_in_use(c.name)), containers)
        return {name: n for name, n in used if n is not None}
