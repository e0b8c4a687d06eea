"""`deployer top`: a live view of the traffic each colour gets, refreshed every second."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from deployer.cli.common import ConfigOption, EnvOption, context, handled

COLUMNS = ("colour", "role", "version", "route", "req/s", "5xx", "p50 ms", "p99 ms")
SERVICE_COLUMNS = ("service", "req/s", "5xx", "p50 ms", "p99 ms", "in flight", "upstream errors")


@handled
def top(
    once: Annotated[bool, typer.Option("--once", help="One reading, then exit.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON: one object per reading, one per line (with --once: one).")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between readings (0.5-60).")] = 1.0,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """A live view of each colour's traffic: req/s, 5xx share, p50 and p99 of the last 10 s,
    and which release is live. Ctrl-C ends it."""
    from deployer.errors import InputError

    if not 0.5 <= interval <= 60:
        raise InputError(f"--interval must be between 0.5 and 60 seconds: {interval:g}")
    from deployer.flows import top as flow

    with context(config, env, check_paths=False) as ctx:
        ctx.edge.require()
        reader = flow.Reader(ctx)
        try:
            if once:  # two readings a second apart: the services' rates need a change to measure
                reader.sample()
                time.sleep(1)
            if as_json or once or not sys.stdout.isatty():
                while True:
                    reading = reader.sample()
                    print(json.dumps(reading, sort_keys=True) if as_json else _plain(reading), flush=True)
                    if once:
                        return
                    time.sleep(interval)
            _live(reader, interval)
        except KeyboardInterrupt:  # how a live view ends, not a failure
            return


def _live(reader, interval: float) -> None:
    from rich.console import Console, Group
    from rich.live import Live

    def view():
        reading = reader.sample()
        return Group(_table(reading), _services(reading))

    with Live(view(), console=Console(), auto_refresh=False, screen=False) as live:
        while True:
            time.sleep(interval)
            live.update(view(), refresh=True)


def _rows(reading: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for colour, c in reading["colours"].items():
        for route in ("live", "preview"):
            f = c[route]
            rows.append(
                (
                    colour,
                    c["role"],
                    c["version"] or "-",
                    route,
                    f"{f['rate']:.1f}",
                    f"{100 * f['error_rate']:.1f}%",
                    "-" if f["p50_ms"] is None else f"{f['p50_ms']:g}",
                    "-" if f["p99_ms"] is None else f"{f['p99_ms']:g}",
                )
            )
    return rows


def _title(reading: dict[str, Any]) -> str:
    live = f"{reading['live']} {reading['live_version']}" if reading["live"] else "nothing yet"
    return f"{reading['at']}  live: {live}  (last {reading['window_s']} s)"


def _table(reading: dict[str, Any]):
    from rich.table import Table

    table = Table(*COLUMNS, title=_title(reading), title_justify="left")
    for row in _rows(reading):
        style = "bold" if row[1] == "live" and row[3] == "live" else None
        table.add_row(*row, style=style)
    return table


def _service_rows(reading: dict[str, Any]) -> list[tuple[str, ...]]:
    def shown(value: Any, text: str) -> str:
        return "-" if value is None else text

    return [
        (
            name,
            shown(s["rate"], f"{s['rate'] or 0:.1f}"),
            shown(s["error_rate"], f"{100 * (s['error_rate'] or 0):.1f}%"),
            shown(s["p50_ms"], f"{s['p50_ms']:g}" if s["p50_ms"] is not None else ""),
            shown(s["p99_ms"], f"{s['p99_ms']:g}" if s["p99_ms"] is not None else ""),
            str(s["in_flight"]),
            shown(s["upstream_errors"], str(s["upstream_errors"])),
        )
        for name, s in reading.get("services", {}).items()
    ]


def _services(reading: dict[str, Any]):
    from rich.table import Table

    table = Table(*SERVICE_COLUMNS, title="public traffic per service", title_justify="left")
    for row in _service_rows(reading):
        table.add_row(*row)
    return table


def _plain(reading: dict[str, Any]) -> str:
    lines = [_title(reading), "\t".join(COLUMNS)]
    lines += ["\t".join(row) for row in _rows(reading)]
    lines += ["\t".join(SERVICE_COLUMNS)] + ["\t".join(row) for row in _service_rows(reading)]
    return "\n".join(lines) + "\n"
