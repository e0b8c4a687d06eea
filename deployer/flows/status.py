"""`deployer status`, one answer for both modes: what the runtime reads from the containers
or the tasks (ctx.runtime.observe(): runtime/compose_status.py on one host,
runtime/swarm_status.py on a swarm), with the route state, the history, the lock, the
backups and the edge's metrics (on a swarm, the control's sum over every edge replica).
Nothing is cached anywhere."""

from __future__ import annotations

from typing import Any

from deployer.core import exposure, freshness, lockrecord, names
from deployer.core import metrics as metrics_rule
from deployer.core.steps import Step
from deployer.flows import pitr
from deployer.flows.context import Context
from deployer.flows.images import ages

WINDOW = 60


def gather(ctx: Context, *, history: int = 8) -> dict[str, Any]:
    seen = ctx.runtime.observe()
    state = ctx.edge.state() if seen.edge_up else None
    traffic = metrics_rule.live_traffic(ctx.edge.metrics(WINDOW), WINDOW) if seen.edge_up else {}
    # What the edge and the backup service say first; the containers' states (and the memory
    # the runtime may still be reading) last.
    result: dict[str, Any] = {
        "project": ctx.config.name,
        "engine": ctx.engine.where,
        "live": state.live if state else None,
        "preview": state.preview if state else None,
        "lock": _lock(ctx) if seen.edge_up else None,
        "pending": _pending(state),
        "backup": _backup(ctx) if seen.backup_running else None,
        "releases": ctx.edge.history(history) if seen.edge_up else [],
        **seen.extra,
        **_safety(ctx, state),
    }
    result["engine_version"] = seen.engine_versions.get(ctx.engine.where, "")
    result["engine_warning"] = exposure.lan_warning(seen.engine_versions)
    result["images"] = ages(ctx, seen.images)
    result["images_warning"] = freshness.warning(result["images"])
    colours: dict[str, Any] = {}
    for colour in names.COLOURS:
        record = state.record(colour) if state else None
        release = record.release if record else None
        role = "unknown" if state is None else "live" if state.live == colour else "standby" if record else "-"
        colours[colour] = {
            "role": role,
            "release": release,
            "version": record.version if record else None,
            "services": seen.services(colour, release) if release else {},
            "other_releases": seen.other_releases(colour, release),
            "traffic": traffic.get(colour),
        }
    database = _external(ctx, seen.backup_running) if ctx.config.database.external else seen.part("db")
    result.update(colours=colours, edge=seen.part("edge"), database=database)
    result["backup_service"] = seen.part("backup")
    result["pitr"] = pitr.status(ctx) if ctx.config.backup.pitr and database.get("status") == "running" else None
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
        now = int(ctx.edge.run("date +%s", step=Step.STATUS).stdout.strip() or 0)
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


def _pending(state) -> dict[str, Any] | None:
    """A release that started and has not finished (running now, or killed)."""
    p = state.pending if state else None
    return {"colour": p.colour, "release": p.release, "version": p.version} if p else None


def _backup(ctx: Context) -> dict[str, Any] | None:
    from deployer.flows import backups

    return backups.summary(ctx)


def _external(ctx: Context, asked: bool) -> dict[str, Any]:
    """An external database ([database] url_file), as the backup agent reaches it: its
    server's version and pgvector, or why it does not answer."""
    from deployer.config.data import read_url
    from deployer.errors import ConfigError, DeployerError
    from deployer.flows import agent_call

    try:  # status reads no secret it does not need: a missing url_file only leaves "where" unknown
        where = read_url(ctx.config.database.url_file, where=ctx.config.path).where
    except ConfigError as exc:
        where = f"unknown ({exc})"
    part: dict[str, Any] = {"status": "external", "health": "unknown", "where": where}
    if not asked:
        part["error"] = "the backup service is not running, so the database was not asked"
        return part
    try:
        server = agent_call.ask(ctx, "server", step=Step.STATUS)
    except DeployerError as exc:
        return {**part, "health": "unreachable", "error": str(exc)}
    return {**part, "health": "reachable", "server": server.get("server"), "pgvector": server.get("pgvector")}


def _lock(ctx: Context) -> dict[str, Any]:
    held = ctx.edge.read_lock()
    if held is None:
        return {"held": False}
    left, record = held
    return {"held": True, "holder": lockrecord.describe(record), "lease_left_s": left, "stale": left < 0}
