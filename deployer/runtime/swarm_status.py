"""What `deployer status` reads on a swarm (SwarmRuntime.observe; the answer is
flows/status.py's, as on one host): services and tasks instead of containers, a service as
`running 2/2` with the nodes its tasks run on, and every node's engine version. Live traffic
is the control's metrics, the sum over every public edge replica (lua/deployer/sync.lua)."""

from __future__ import annotations

from typing import Any

from deployer.adapters.swarm import Swarm
from deployer.core import names
from deployer.core import stack as stack_rule
from deployer.flows.context import Context


class SwarmObserved:
    def __init__(self, ctx: Context) -> None:
        config, cluster = ctx.config, Swarm(ctx.engine)
        cluster.manager_id()  # exit 2 unless the engine is a swarm manager
        self._cluster, self._project = cluster, config.name
        found = cluster.nodes()
        self._nodes = {n.id: n.hostname for n in found}
        self._stacks = cluster.stacks(config.name)
        self._by_stack = {stack: {s["Spec"]["Name"].removeprefix(f"{stack}_"): s for s in services}
                          for stack, services in self._stacks.items()}  # fmt: skip
        infra = self._by_stack.get(stack_rule.infra_stack(config.name), {})
        db = self._by_stack.get(stack_rule.db_stack(config.name), {})
        self._parts = {"edge": infra.get("edge"), "control": infra.get("control"), "db": db.get("db"),
                       "backup": db.get("backup")}  # fmt: skip
        ctx.edge.refresh()  # type: ignore[attr-defined]
        self.edge_up = ctx.engine.container(ctx.edge.container) is not None
        agent = stack_rule.service_name(stack_rule.db_stack(config.name), "backup")
        self.backup_running = cluster.local_container(agent) is not None  # the agent's task on this manager
        self.images = _images(ctx, {k: v for k, v in self._parts.items() if k != "control"})
        self.engine_versions = {n.hostname: n.engine_version for n in found}
        self.engine_versions[ctx.engine.where] = ctx.engine.version()
        self.extra: dict[str, Any] = {"mode": "swarm", "nodes": sorted(self._nodes.values())}
        self._public_port = config.edge.public_port

    def services(self, colour: str, release: str | None) -> dict[str, dict[str, Any]]:
        current = names.release_project(self._project, colour, release) if release else ""
        return {name: self._tasks(s) for name, s in sorted(self._by_stack.get(current, {}).items())}

    def other_releases(self, colour: str, release: str | None) -> list[str]:
        current = names.release_project(self._project, colour, release) if release else ""
        labels = {stack: s[0]["Spec"].get("Labels") or {} for stack, s in self._stacks.items() if s}
        return sorted(
            f"{found.get(names.LABEL_RELEASE)} ({found.get(names.LABEL_VERSION)})"
            for stack, found in labels.items()
            if stack.startswith(f"{self._project}-{colour}-") and stack != current
        )

    def part(self, role: str) -> dict[str, Any]:
        found = self._part(role)
        if role == "edge":
            found.update(live_port=self._public_port, preview_port=None, control=self._part("control"))
        return found

    def _part(self, role: str) -> dict[str, Any]:
        service = self._parts.get(role)
        return self._tasks(service) if service else {"status": "missing", "health": "none"}

    def _tasks(self, service: dict[str, Any]) -> dict[str, Any]:
        """A service's tasks as status shows a container: `running 2/2`, and the tasks that ended."""
        name = service["Spec"]["Name"]
        wanted = (service["Spec"].get("Mode") or {}).get("Replicated", {}).get("Replicas", 0)
        tasks = self._cluster.tasks(name)
        current = [t for t in tasks if t.get("DesiredState") == "running"]
        running = [t for t in current if (t.get("Status") or {}).get("State") == "running"]
        ended = [t for t in tasks if (t.get("Status") or {}).get("State") in ("failed", "rejected", "orphaned")]
        return {
            "status": f"running {len(running)}/{wanted}" if running else "missing",
            "health": "healthy" if running and len(running) >= wanted else "degraded" if running else "none",
            "restarts": len(ended),
            "memory": None,
            "nodes": sorted(self._nodes.get(t.get("NodeID", ""), "?") for t in running),
        }


def _images(ctx: Context, services: dict[str, Any]) -> dict[str, str]:
    """Each part's image, as the manager's local tag of the reference the service pins
    (<registry>/<tag>@sha256:...), for its build date and age."""
    prefix = f"{ctx.config.registry.url}/" if ctx.config.registry else ""
    refs = {}
    for part, service in services.items():
        spec = ((service or {}).get("Spec") or {}).get("TaskTemplate") or {}
        image = (spec.get("ContainerSpec") or {}).get("Image")
        if image:
            refs[part] = image.partition("@")[0].removeprefix(prefix)
    return refs
