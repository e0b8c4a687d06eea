"""`deployer status` on one host (runtime/compose.py; a swarm's is runtime/swarm_status.py):
what the host says, from the route state, the labels, the history, the lock and the edge's
metrics. Nothing is cached anywhere."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deployer.core import edgelayout, exposure, freshness, lockrecord, names
from deployer.core import metrics as metrics_rule
from deployer.flows.context import Context
from deployer.flows.images import ages

WINDOW = 60


def gather(ctx: Context, *, history: int = 8) -> dict[str, Any]:
    config, engine = ctx.config, ctx.engine
    project = config.name
    containers = engine.containers(project, deployment=config.deployment)
    infra = {c.role: c for c in containers if c.role in ("edge", "db", "backup")}
    apps = [c for c in containers if c.role == "app"]
    edge_up = bool(infra.get("edge") and infra["edge"].running)
    state = ctx.edge.state() if edge_up else None
    memory = _memory(ctx, [c for c in containers if c.running])
    traffic = _traffic(ctx) if edge_up else {}
    colours: dict[str, Any] = {}
    for colour in names.COLOURS:
        record = state.record(colour) if state else None
        mine = [c for c in apps if c.colour == colour]
        current = [c for c in mine if record and c.release == record.release]
        role = "unknown" if state is None else "live" if state.live == colour else "standby" if record else "-"
        colours[colour] = {
            "role": role,
            "release": record.release if record else None,
            "version": record.version if record else None,
            "services": {
                c.service: {
                    "status": c.status,
                    "health": c.health or "none",
                    "restarts": c.restart_count,
                    "memory": memory.get(c.name),
                }
                for c in sorted(current, key=lambda c: c.service)
            },
            "other_releases": sorted({f"{c.release} ({c.version}, {c.status})" for c in mine if c not in current}),
            "traffic": traffic.get(colour),
        }
    result: dict[str, Any] = {
        "project": project,
        "engine": engine.where,
        "live": state.live if state else None,
        "preview": state.preview if state else None,
        "maintenance": state.maintenance if state else None,
        "colours": colours,
        "edge": _infra_state(infra.get("edge"), memory),
        "database": _infra_state(infra.get("db"), memory),
        "backup_service": _infra_state(infra.get("backup"), memory),
        "lock": _lock(ctx) if edge_up else None,
        "pending": _pending(state),
        "backup": _backup(ctx, infra.get("backup")),
        "releases": ctx.edge.history(history) if edge_up else [],
    }
    if edge_up:
        result["edge"]["live_port"] = ctx.edge.published_port(edgelayout.PUBLIC_PORT)
        result["edge"]["preview_port"] = ctx.edge.published_port(edgelayout.PREVIEW_PORT)
    result.update(_safety(ctx, state))
    result["engine_version"] = engine.sdk.version().get("Version", "")
    result["engine_warning"] = exposure.lan_warning({engine.where: result["engine_version"]})
    result["images"] = ages(ctx, {role: c.image_id for role, c in infra.items()})
    result["images_warning"] = freshness.warning(result["images"])
    return result


def _safety(ctx: Context, state) -> dict[str, Any]:
    """Maintenance mode, the running watch, and the disk (flows/maintenance.py, watch.py, prune.py)."""
    from deployer.core.maintenance import Maintenance
    from deployer.core.watch import Marker
    from deployer.flows.prune import disk_usage

    page = Maintenance.parse(state.maintenance) if state else None
    marker = Marker.parse(state.watch) if state else None
    watch = None
    if marker:
        now = int(ctx.edge.run("date +%s", step="status").stdout.strip() or 0)
        watch = {
            "version": marker.version,
            "colour": marker.colour,
            "release": marker.release,
            "previous": marker.previous,
            "left_s": marker.left(now),
            "holder": marker.holder,
            "alive": marker.alive(now),
        }
    return {"maintenance": vars(page) if page else None, "watch": watch, "disk": disk_usage(ctx)}


def _infra_state(c, memory: dict[str, int]) -> dict[str, Any]:
    if c is None:
        return {"status": "missing", "health": "none"}
    return {"status": c.status, "health": c.health or "none", "restarts": c.restart_count, "memory": memory.get(c.name)}


def _memory(ctx: Context, containers: list) -> dict[str, int]:
    """Memory in use per running container, in bytes (one-shot stats, in parallel)."""

    def one(name: str) -> tuple[str, int | None]:
        try:
            stats = ctx.engine.sdk.api.stats(name, stream=False, one_shot=True)
            usage = (stats.get("memory_stats") or {}).get("usage")
            cache = ((stats.get("memory_stats") or {}).get("stats") or {}).get("inactive_file", 0)
            return name, (usage - cache) if usage else None
        except Exception:  # gone, or stats unsupported
            return name, None

    if not containers:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(containers))) as pool:
        return {k: v for k, v in pool.map(lambda c: one(c.name), containers) if v is not None}


def _traffic(ctx: Context) -> dict[str, dict[str, Any]]:
    """The last minute of live traffic per colour: rate, 5xx rate, p99."""
    return metrics_rule.live_traffic(ctx.edge.metrics(WINDOW), WINDOW)


def _pending(state) -> dict[str, Any] | None:
    """A release that started and has not finished (running now, or killed)."""
    p = state.pending if state else None
    return {"colour": p.colour, "release": p.release, "version": p.version} if p else None


def _backup(ctx: Context, container) -> dict[str, Any] | None:
    if container is None or not container.running:
        return None
    from deployer.flows import backups

    return backups.summary(ctx)


def _lock(ctx: Context) -> dict[str, Any]:
    held = ctx.edge.read_lock()
    if held is None:
        return {"held": False}
    left, record = held
    return {"held": True, "holder": lockrecord.describe(record), "lease_left_s": left, "stale": left < 0}
