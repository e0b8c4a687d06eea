"""Human-readable output of `deployer status` (rich tables)."""

from __future__ import annotations

from typing import Any


def _mib(n: int | None) -> str:
    return f"{n / 1048576:.0f} MiB" if n else "-"


def _images(entry: dict[str, Any]) -> str:
    """Each service's image ID, short (the full IDs and digests are in --json)."""
    found = entry.get("images") or {}
    return " ".join(f"{s} {str(i).removeprefix('sha256:')[:12]}" for s, i in sorted(found.items()) if i)


# Tables without borders, two spaces between columns: they fit 80 columns (a CI log).
_PLAIN: dict[str, Any] = {"box": None, "padding": (0, 2, 0, 0), "header_style": "bold"}


def status(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Column, Table

    console = Console()
    env = f"\\[{data['environment']}] " if data.get("environment") else ""
    head = f"{env}[bold]{data['project']}[/bold] on {data['engine']}  live: [bold]{data['live'] or 'none'}[/bold]"
    if data.get("maintenance") is not None:
        head += "  [red]MAINTENANCE[/red]"
    console.print(head)
    if data.get("engine_warning"):
        from rich.markup import escape

        console.print(f"[red]warning:[/red] {escape(data['engine_warning'])}")
    _safety(console, data)
    # A row per service, the colour's own values on its first row; the traffic below. Short
    # columns never wrap, so it reads in 80 columns (a CI log) too.
    table = Table(
        *(Column(name, no_wrap=True) for name in ("colour", "role", "version", "release")),
        Column("service", overflow="fold"),
        Column("state", no_wrap=True),
        Column("memory", no_wrap=True, justify="right"),
        **_PLAIN,
    )
    notes = []
    for colour, info in data["colours"].items():
        head = [colour, info["role"], info["version"] or "-", info["release"] or "-"]
        services = info["services"] or {"-": None}
        for name, v in services.items():
            state = (
                "" if v is None else f"{v['status']}/{v['health']}" + (f" ↻{v['restarts']}" if v["restarts"] else "")
            )
            table.add_row(*head, name, state, _mib(v.get("memory")) if v else "")
            head = [""] * 4
        t = info.get("traffic")
        if t:
            p99 = t["p99_ms"] if t["p99_ms"] is not None else "-"
            line = f"last minute on {colour}: {t['rate']} req/s, 5xx {t['error_rate']:.1%}, p99 {p99} ms"
            if t.get("upstream_p99_ms") is not None:
                line += f" (upstream {t['upstream_p99_ms']} ms)"
            edge = ", ".join(f"{n} × {status}" for status, n in (t.get("edge_answers") or {}).items())
            line += f"; the edge's own answers: {edge}" if edge else ""
            line += f"; {t['aborted']} aborted by their client" if t.get("aborted") else ""
            notes.append(line)
        if info.get("other_releases"):
            notes.append(f"{colour} also runs: {'; '.join(info['other_releases'])}")
    console.print(table)
    for note in notes:
        console.print(note, highlight=False)
    edge, db, backup = data["edge"], data["database"], data["backup_service"]
    ports = (
        f"  live port {edge.get('live_port')}, preview port {edge.get('preview_port')}" if edge.get("live_port") else ""
    )
    hint = "  (run `deployer up`)" if edge["status"] == "missing" else ""
    console.print(f"edge: {edge['status']}/{edge['health']}{ports}{hint}", highlight=False)
    if db["status"] == "external":
        said = (
            f"PostgreSQL {db.get('server')}, pgvector {db.get('pgvector')}"
            if db["health"] == "reachable"
            else f"{db['health']}: {db.get('error')}"
        )
        console.print(f"database: external at {db['where']}: {said}", highlight=False)
    else:
        console.print(f"database: {db['status']}/{db['health']} {_mib(db.get('memory'))}{_on(db)}")
    console.print(f"backup service: {backup['status']}/{backup['health']}{_on(backup)}")
    _image_ages(console, data)
    dump = data.get("backup")
    if dump:
        if dump.get("name"):
            # `verified` starts with the state itself: "verified 2 min ago (read)", "DAMAGED: ..."
            console.print(f"last dump: {dump['name']} ({dump.get('age')}, {dump.get('verified')})")
        else:
            console.print("last dump: none yet")
        schedule = f"next scheduled dump: {dump.get('next_run') or '-'}"
        if dump.get("overdue"):
            schedule += "  [red]OVERDUE[/red]"
        console.print(schedule)
        _drill(console, dump)
        _backup_trouble(console, dump)
    _wal(console, data.get("pitr"))
    pending = data.get("pending")
    if pending:
        console.print(
            f"release in progress or unfinished: {pending['version']} to {pending['colour']} ({pending['release']})"
        )
    lock = data.get("lock")
    if lock and lock.get("held"):
        console.print(f"lock: held by {lock['holder']}" + (" (STALE)" if lock.get("stale") else ""))
    if data["releases"]:
        table = Table(
            *(Column(name, no_wrap=True) for name in ("time (UTC)", "action", "outcome", "version", "colour")),
            "step",
            Column("took", no_wrap=True, justify="right"),
            Column("by", overflow="fold"),
            title="history",
            title_justify="left",
            **_PLAIN,
        )
        for e in data["releases"]:
            table.add_row(
                _when(e.get("time", "")),
                e.get("action", ""),
                e.get("outcome", "ok"),
                e.get("version", ""),
                e.get("colour", ""),
                e.get("step", ""),
                _took(e.get("seconds")),
                e.get("by", ""),
            )
        console.print(table)
        for e in data["releases"]:
            if e.get("images"):
                console.print(
                    f"images of {e.get('version')} ({_when(e.get('time', ''))}): {_images(e)}",
                    highlight=False,
                    soft_wrap=True,
                )


def _wal(console, pitr: dict[str, Any] | None) -> None:
    """Each pgBackRest repository's newest archived WAL segment and its age: the actual RPO."""
    for r in (pitr or {}).get("repositories", []):
        where = f"WAL in repository {r['repository']} ({r['kind']})"
        if r.get("error"):
            console.print(f"{where}: [red]UNREADABLE[/red]: {r['error']}", highlight=False)
        elif not r.get("segment"):
            console.print(f"{where}: none archived yet")
        else:
            behind = f"  [red]BEHIND (max_lag {pitr['max_lag']:g} s)[/red]" if r.get("behind") else ""
            console.print(f"{where}: {r['segment']}, {r['age_seconds']:.0f} s ago{behind}", highlight=False)


def _drill(console, dump: dict[str, Any]) -> None:
    """The last restore drill (deployer/agent/drill.py), or that none ran yet."""
    last = dump.get("last_drill")
    if not last:
        when = f" (schedule {dump['drill_schedule']!r}, UTC)" if dump.get("drill_schedule") else " (drills are off)"
        console.print(f"last restore drill: none yet{when}", highlight=False)
    elif last.get("ok"):
        console.print(
            f"last restore drill: {_when(last['at'])}, {last['dump']}: ok in {last['seconds']:.1f} s "
            f"({last['tables']} tables, {last['rows']} rows, pg_amcheck {last['amcheck']})",
            highlight=False,
        )
    else:
        console.print(
            f"last restore drill: {_when(last['at'])}, {last.get('dump') or '-'}: [red]FAILED[/red]: {last.get('error')}",
            highlight=False,
        )


def _backup_trouble(console, dump: dict[str, Any]) -> None:
    """Why the backup service is unhealthy (the agent's own words), else its last error;
    damaged dumps; dumps whose metadata is gone."""
    from rich.markup import escape

    health, error = dump.get("health") or {}, dump.get("last_error") or {}
    if health.get("ok") is False:
        console.print(f"[red]backup schedule:[/red] {escape(str(health.get('message')))}", highlight=False)
    elif error:
        text = f"last backup error ({error.get('at')}, step '{error.get('step')}'): {error.get('error')}"
        console.print(escape(text), highlight=False)
    if dump.get("damaged"):
        console.print(f"[red]damaged dumps:[/red] {', '.join(dump['damaged'])}")
    if dump.get("without_metadata"):
        names = ", ".join(dump["without_metadata"])
        console.print(f"dumps without metadata (unverified; `deployer backup verify NAME`): {names}", highlight=False)


def _image_ages(console: Any, data: dict[str, Any]) -> None:
    """Each infra image's build date and age, and a warning for the old ones (core/freshness.py)."""
    from rich.markup import escape

    from deployer.core.freshness import PARTS

    found = data.get("images") or {}

    def age(days: Any) -> str:
        return "age unknown" if days is None else f"{days} day{'' if days == 1 else 's'} ago"

    lines = [
        f"{PARTS[part]} {found[part]['image']} built {found[part].get('built') or '?'} UTC ({age(found[part].get('age_days'))})"
        for part in PARTS
        if part in found
    ]
    if lines:
        console.print("images: " + "; ".join(lines), highlight=False, soft_wrap=True)
    if data.get("images_warning"):
        console.print(f"[red]warning:[/red] images {escape(data['images_warning'])}", soft_wrap=True)


def _when(text: str) -> str:
    """A history time as `YYYY-MM-DD HH:MM:SS` in UTC; as it is when it does not parse."""
    from datetime import UTC, datetime

    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return text


def _took(seconds: Any) -> str:
    return f"{seconds:.1f}s" if isinstance(seconds, (int, float)) else ""


def _on(part: dict[str, Any]) -> str:
    """Where a part runs, on a swarm (its tasks' nodes); nothing on one host."""
    return f" on {', '.join(part['nodes'])}" if part.get("nodes") else ""


def _safety(console: Any, data: dict[str, Any]) -> None:
    """Maintenance mode, the running watch and the disk."""
    from rich.markup import escape

    from deployer.core.durations import bytes_text

    page = data.get("maintenance")
    if page:
        console.print(
            f"[red]maintenance on[/red] since {page.get('since')} by {page.get('by')}: the public route answers "
            f"503 (Retry-After {page.get('retry_after')}s): {escape(str(page.get('message')))}"
        )
    watch = data.get("watch")
    if watch:
        who = watch["holder"] if watch.get("alive") else f"{watch['holder']}, GONE (`deployer watch` takes it over)"
        console.print(
            f"watch: {watch['version']} on {watch['colour']}, {watch['left_s']}s left, by {who}; "
            f"rollback target {watch['previous']}"
        )
    disk = data.get("disk") or {}
    if disk:

        def use(u: dict[str, Any] | None) -> str:
            return f"{bytes_text(u.get('used'))} ({bytes_text(u.get('free'))} free)" if u else "-"

        images = disk.get("images") or {}
        console.print(
            f"disk: images {images.get('count', 0)} ({bytes_text(images.get('bytes'))}), "
            f"dumps {use(disk.get('dumps'))}, database volume {use(disk.get('database'))}"
        )
        if disk.get("warning"):
            console.print(f"[red]warning:[/red] {disk['warning']}")
