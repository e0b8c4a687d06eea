"""Human-readable output of `deployer status` (rich tables)."""

from __future__ import annotations

from typing import Any


def _mib(n: int | None) -> str:
    return f"{n / 1048576:.0f} MiB" if n else "-"


def status(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = f"[bold]{data['project']}[/bold] on {data['engine']}  live: [bold]{data['live'] or 'none'}[/bold]"
    if data.get("maintenance") is not None:
        head += "  [red]MAINTENANCE[/red]"
    console.print(head)
    table = Table(
        "colour", "role", "version", "release", "services (status/health, restarts, memory)", "last minute (live)"
    )
    for colour, info in data["colours"].items():
        services = ", ".join(
            f"{k} {v['status']}/{v['health']}"
            + (f" ↻{v['restarts']}" if v["restarts"] else "")
            + f" {_mib(v.get('memory'))}"
            for k, v in info["services"].items()
        )
        t = info.get("traffic")
        traffic = (
            f"{t['rate']} req/s, 5xx {t['error_rate']:.1%}, p99 {t['p99_ms'] if t['p99_ms'] is not None else '-'} ms"
            if t
            else "-"
        )
        if info.get("other_releases"):
            services += f"  (also: {'; '.join(info['other_releases'])})"
        table.add_row(colour, info["role"], info["version"] or "-", info["release"] or "-", services or "-", traffic)
    console.print(table)
    edge, db, backup = data["edge"], data["database"], data["backup_service"]
    ports = (
        f"  live port {edge.get('live_port')}, preview port {edge.get('preview_port')}" if edge.get("live_port") else ""
    )
    console.print(f"edge: {edge['status']}/{edge['health']}{ports}")
    console.print(f"database: {db['status']}/{db['health']} {_mib(db.get('memory'))}")
    console.print(f"backup service: {backup['status']}/{backup['health']}")
    dump = data.get("backup")
    if dump:
        if dump.get("name"):
            console.print(f"last dump: {dump['name']} ({dump.get('age')}, {dump.get('state')}, {dump.get('verified')})")
        else:
            console.print("last dump: none yet")
        schedule = f"next scheduled dump: {dump.get('next_run') or '-'}"
        if dump.get("overdue"):
            schedule += "  [red]OVERDUE[/red]"
        if dump.get("last_error"):
            schedule += f"  last error: {dump['last_error']}"
        console.print(schedule)
        if dump.get("damaged"):
            console.print(f"[red]damaged dumps:[/red] {', '.join(dump['damaged'])}")
    pending = data.get("pending")
    if pending:
        console.print(
            f"release in progress or unfinished: {pending['version']} to {pending['colour']} ({pending['release']})"
        )
    lock = data.get("lock")
    if lock and lock.get("held"):
        console.print(f"lock: held by {lock['holder']}" + (" (STALE)" if lock.get("stale") else ""))
    if data["releases"]:
        table = Table("time", "action", "outcome", "version", "colour", "step", "seconds", "by", title="history")
        for e in data["releases"]:
            table.add_row(
                e.get("time", ""),
                e.get("action", ""),
                e.get("outcome", "ok"),
                e.get("version", ""),
                e.get("colour", ""),
                e.get("step", ""),
                str(e.get("seconds", "")),
                e.get("by", ""),
            )
        console.print(table)
