"""`deployer status` on a swarm: the same answer as on one host (flows/status.py's, through the swarm runtime),
from services and tasks instead of containers, and live traffic summed over every public
edge replica (each counts its own requests)."""

from __future__ import annotations

from typing import Any

from deployer.adapters.swarm import Swarm
from deployer.core import exposure, freshness, lockrecord, names
from deployer.core import metrics as metrics_rule
from deployer.core import stack as stack_rule
from deployer.flows.context import Context

WINDOW = 60


def _tasks(cluster: Swarm, service: dict[str, Any], nodes: dict[str, str]) -> dict[str, Any]:
    """A service's tasks as status shows a container: `running 2/2`, and the tasks that ended."""
    name = service["Spec"]["Name"]
    wanted = (service["Spec"].get("Mode") or {}).get("Replicated", {}).get("Replicas", 0)
    tasks = cluster.tasks(name)
    current = [t for t in tasks if t.get("DesiredState") == "running"]
    running = [t for t in current if (t.get("Status") or {}).get("State") == "running"]
    ended = [t for t in tasks if (t.get("Status") or {}).get("State") in ("failed", "rejected", "orphaned")]
    return {
        "status": f"running {len(running)}/{wanted}" if running else "missing",
        "health": "healthy" if running and len(running) >= wanted else "degraded" if running else "none",
        "restarts": len(ended),
        "memory": None,
        "nodes": sorted(nodes.get(t.get("NodeID", ""), "?") for t in running),
    }


def _traffic(ctx: Context) -> dict[str, dict[str, Any]]:
    """The last minute of live traffic per colour: the control's metrics are the sum over
    every public edge replica (lua/deployer/sync.lua)."""
    return metrics_rule.live_traffic(ctx.edge.metrics(WINDOW), WINDOW)


def gather(ctx: Context, *, history: int = 8) -> dict[str, Any]:
    config, cluster = ctx.config, Swarm(ctx.engine)
    cluster.manager_id()  # exit 2 unless the engine is a swarm manager
    project = config.name
    found = cluster.nodes()
    nodes = {n.id: n.hostname for n in found}
    stacks = cluster.stacks(project)
    by_stack = {stack: {s["Spec"]["Name"].removeprefix(f"{stack}_"): s for s in services}
                for stack, services in stacks.items()}  # fmt: skip
    infra = by_stack.get(stack_rule.infra_stack(project), {})
    db = by_stack.get(stack_rule.db_stack(project), {})
    ctx.edge.refresh()  # type: ignore[attr-defined]
    edge_up = ctx.engine.container(ctx.edge.container) is not None
    state = ctx.edge.state() if edge_up else None
    traffic = _traffic(ctx) if edge_up else {}
    colours: dict[str, Any] = {}
    for colour in names.COLOURS:
        record = state.record(colour) if state else None
        current = names.release_project(project, colour, record.release) if record else ""
        others = sorted(
            f"{(s[0]['Spec'].get('Labels') or {}).get(names.LABEL_RELEASE)} "
            f"({(s[0]['Spec'].get('Labels') or {}).get(names.LABEL_VERSION)})"
            for stack, s in stacks.items()
            if stack.startswith(f"{project}-{colour}-") and stack != current
        )
        role = "unknown" if state is None else "live" if state.live == colour else "standby" if record else "-"
        colours[colour] = {
            "role": role,
            "release": record.release if record else None,
            "version": record.version if record else None,
            "services": {name: _tasks(cluster, s, nodes) for name, s in sorted(by_stack.get(current, {}).items())},
            "other_releases": others,
            "traffic": traffic.get(colour),
        }

    def part(services: dict[str, Any], name: str) -> dict[str, Any]:
        return _tasks(cluster, services[name], nodes) if name in services else {"status": "missing", "health": "none"}

    edge = part(infra, "edge")
    edge.update(live_port=config.edge.public_port, preview_port=None, control=part(infra, "control"))
    images = _images(ctx, {"edge": infra.get("edge"), "db": db.get("db"), "backup": db.get("backup")})
    return {
        "images": images,
        "images_warning": freshness.warning(images),
        "project": project,
        "engine": ctx.engine.where,
        "mode": "swarm",
        "nodes": sorted(nodes.values()),
        "live": state.live if state else None,
        "preview": state.preview if state else None,
        "maintenance": state.maintenance if state else None,
        "colours": colours,
        "edge": edge,
        "database": part(db, "db"),
        "backup_service": part(db, "backup"),
        "lock": _lock(ctx) if edge_up else None,
        "pending": _pending(state),
        "backup": _backup(ctx) if "backup" in db else None,
        "releases": ctx.edge.history(history) if edge_up else [],
        "engine_version": ctx.engine.sdk.version().get("Version", ""),
        "engine_warning": exposure.lan_warning({n.hostname: n.engine_version for n in found}),
    }


def _images(ctx: Context, services: dict[str, Any]) -> dict[str, Any]:
    """Build date and age of each part's image, from the manager's local tag of the reference
    the service pins (<registry>/<tag>@sha256:...)."""
    from deployer.flows.images import ages

    prefix = f"{ctx.config.registry.url}/" if ctx.config.registry else ""
    refs = {}
    for part, service in services.items():
        image = ((((service or {}).get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get(
            "Image"
        )
        if image:
            refs[part] = image.partition("@")[0].removeprefix(prefix)
    return ages(ctx, refs)


def _pending(state) -> dict[str, Any] | None:
    p = state.pending if state else None
    return {"colour": p.colour, "release": p.release, "version": p.version} if p else None


def _backup(ctx: Context) -> dict[str, Any] | None:
    from deployer.flows import backups

    try:
        return backups.summary(ctx)
    except Exception:  # the agent's task is not running (yet) on the manager the CLI talks to
        return None


def _lock(ctx: Context) -> dict[str, Any]:
    held = ctx.edge.read_lock()
    if held is None:
        return {"held": False}
    left, record = held
    return {"held": True, "holder": lockrecord.describe(record), "lease_left_s": left, "stale": left < 0}
