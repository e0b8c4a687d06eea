"""`deployer status`: what the host says, gathered from labels, the edge and the history."""

from __future__ import annotations

from typing import Any

from deployer import engine, history
from deployer.config import Config
from deployer.edge import Edge
from deployer.plan import COLOURS


def gather(config: Config) -> dict[str, Any]:
    edge = Edge(config)
    edge_attrs = engine.container_state(config.edge_container)
    edge_running = bool(edge_attrs and edge_attrs["State"].get("Running"))
    routes = edge.routes() if edge_running else None
    db_attrs = engine.container_state(config.db_container)
    containers = engine.colour_containers(config.name)
    colours = {}
    for colour in COLOURS:
        mine = [c for c in containers if c.colour == colour]
        colours[colour] = {
            "version": next((c.version for c in mine), None),
            "role": _role(colour, routes),
            "services": {
                c.service: {"status": c.status, "health": c.health or "none", "restarts": c.restart_count}
                for c in sorted(mine, key=lambda c: c.service)
            },
        }
    result: dict[str, Any] = {
        "project": config.name,
        "live": routes.live if routes else None,
        "preview": routes.preview if routes else None,
        "colours": colours,
        "edge": _state(edge_attrs),
        "database": _state(db_attrs),
        "releases": history.entries(edge, 5) if edge_running else [],
    }
    if edge_running:
        live, preview = edge.urls()
        result["edge"].update({"live_url": live, "preview_url": preview})
    result["backup"] = _last_dump(config)
    return result


def _role(colour: str, routes) -> str:
    if routes is None:
        return "unknown"
    if routes.live == colour:
        return "live"
    return "standby"


def _state(attrs: dict[str, Any] | None) -> dict[str, Any]:
    if attrs is None:
        return {"status": "missing", "health": "none"}
    state = attrs.get("State") or {}
    return {"status": state.get("Status", ""), "health": (state.get("Health") or {}).get("Status", "none")}


def _last_dump(config: Config) -> dict[str, Any] | None:
    try:
        from deployer.backup import catalogue
    except ImportError:
        return None
    return catalogue.last_summary(config)


def render(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{data['project']}[/bold]  live: [bold]{data['live'] or 'none'}[/bold]")
    table = Table("colour", "role", "version", "services")
    for colour, info in data["colours"].items():
        services = ", ".join(f"{k} {v['status']}/{v['health']}" for k, v in info["services"].items()) or "-"
        table.add_row(colour, info["role"] if info["version"] else "-", info["version"] or "-", services)
    console.print(table)
    edge, db = data["edge"], data["database"]
    console.print(f"edge: {edge['status']}/{edge['health']}  {edge.get('live_url', '')}  preview {edge.get('preview_url', '-')}")
    console.print(f"database: {db['status']}/{db['health']}")
    dump = data.get("backup")
    if dump:
        console.print(f"last dump: {dump['name']} ({dump['age']}, {dump['verified']})")
    else:
        console.print("last dump: none")
    if data["releases"]:
        table = Table("time", "action", "version", "colour", "by", title="last releases")
        for e in data["releases"]:
            table.add_row(e.get("time", ""), e.get("action", ""), e.get("version", ""), e.get("colour", ""), e.get("by", ""))
        console.print(table)
