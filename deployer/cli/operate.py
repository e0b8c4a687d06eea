"""`deployer logs` and `deployer exec`: the commands an operator reaches for daily."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from deployer.cli.common import ConfigOption, EnvOption, context, handled

ColourOption = Annotated[
    str, typer.Option("--colour", help="live, standby, blue or green (the infrastructure has no colour).")
]


@handled
def logs(
    service: Annotated[
        str | None,
        typer.Argument(
            metavar="SERVICE", help="A service of the config, or edge, db or backup (default: every service)."
        ),
    ] = None,
    colour: Annotated[
        str | None,
        typer.Option("--colour", help="live (the default), standby, blue or green (not the infrastructure)."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only lines from this long ago on: 10m, 2h (--slow: 1h, --request: 24h)."),
    ] = None,
    tail: Annotated[
        int | None, typer.Option("--tail", help="Only the last N lines of each container (--slow: the N slowest, 20).")
    ] = None,
    slow: Annotated[
        str | None,
        typer.Option("--slow", help="The slowest requests of the edge's access log that took this long or more: 1s."),
    ] = None,
    only: Annotated[str | None, typer.Option("--service", help="With --slow: only this service's requests.")] = None,
    request: Annotated[
        str | None, typer.Option("--request", help="A request id: its edge line and the app's lines naming it.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --slow: print JSON.")] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Print a colour's service logs (on a swarm, every task's), secrets masked; or the slowest
    requests (--slow), or where one request's time went (--request)."""
    from deployer.flows import operate

    threshold = _search_flags(service, colour, follow, tail, slow, only, request, as_json)
    if threshold is not None:
        _slow(threshold, slow or "", since, only, tail, as_json, config, env)
        return
    if request is not None:
        _request(request, since, config, env)
        return

    def write(line: str) -> None:
        print(line, flush=follow)

    with context(config, env, check_paths=False) as ctx:
        try:
            operate.logs(ctx, service, colour or "live", follow=follow, since=since, tail=tail, write=write)
        except KeyboardInterrupt:  # the end of --follow, not a failure
            return


def _alone(flag: str, mode: str) -> Exception:
    from deployer.errors import InputError

    return InputError(f"{flag} does not go with {mode}")


def _search_flags(
    service: str | None,
    colour: str | None,
    follow: bool,
    tail: int | None,
    slow: str | None,
    only: str | None,
    request: str | None,
    as_json: bool,
) -> float | None:
    """The flags of --slow and --request, checked before the config is read: --slow's
    seconds, or None when it is not asked. Exit 2 on a combination that does not go."""
    from deployer.core import accesslog
    from deployer.core.durations import parse_duration
    from deployer.errors import InputError

    mode = "--slow" if slow is not None else "--request" if request is not None else None
    if slow is not None and request is not None:
        raise _alone("--request", "--slow")
    if mode is None:
        for flag, given in (("--service", only), ("--json", as_json)):
            if given:
                raise InputError(f"{flag} goes with --slow")
        return None
    if mode == "--request":
        for flag, given in (("--service", only is not None), ("--json", as_json), ("--tail", tail is not None)):
            if given:
                raise _alone(flag, "--request")
    for flag, given in (("SERVICE", service), ("--colour", colour), ("-f/--follow", follow)):
        if given:
            hint = " (name a service with --service)" if flag == "SERVICE" and mode == "--slow" else ""
            raise InputError(f"{flag} does not go with {mode}{hint}")
    if request is not None:
        accesslog.check_id(request)
        return None
    seconds = parse_duration(slow or "")
    if seconds is None:
        raise InputError(f"--slow must be a duration such as 500ms, 1s or 2s: {slow!r}")
    return seconds


def _slow(
    threshold: float,
    least: str,
    since: str | None,
    only: str | None,
    tail: int | None,
    as_json: bool,
    config: Path | None,
    env: str | None,
) -> None:
    from deployer.cli.common import say
    from deployer.flows import logsearch, operate

    with context(config, env, check_paths=False) as ctx:
        operate.check(ctx, None, "live", since, tail)
        found = logsearch.slow(ctx, threshold, since=since, service=only, limit=tail)
    entries = found.result()
    if as_json:
        print(json.dumps(entries, indent=2))
        return
    window, of = since or logsearch.SLOW_SINCE, f" of {only}" if only else ""
    if not entries:
        say(f"no request{of} took {least} or more in the last {window}")
        return
    say(f"{len(entries)} of {found.matched} requests{of} that took {least} or more in the last {window}, slowest first")
    _table(entries)


def _table(entries: list) -> None:
    """A rich table on a terminal; tab-separated lines on a pipe (for grep, cut, awk)."""
    from deployer.core import accesslog
    from deployer.core.masking import mask

    rows = [[mask(cell) for cell in accesslog.row(e)] for e in entries]
    if not sys.stdout.isatty():
        for cells in rows:
            print("\t".join(cells))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Column, Table

    right = {"status", "connect", "header", "upstream", "total"}
    columns = [
        Column(name, no_wrap=name != "request", justify="right" if name in right else "left")
        for name in accesslog.COLUMNS
    ]
    table = Table(*columns, box=None, padding=(0, 2, 0, 0), header_style="bold")
    for cells in rows:
        table.add_row(*(escape(c) for c in cells))
    Console().print(table)


def _request(request_id: str, since: str | None, config: Path | None, env: str | None) -> None:
    from deployer.cli.common import say
    from deployer.core import accesslog
    from deployer.core.masking import mask
    from deployer.flows import logsearch, operate

    with context(config, env, check_paths=False) as ctx:
        operate.check(ctx, None, "live", since)
        found = logsearch.request(ctx, request_id, since=since)
    for entry in found.edge:
        print(mask(f"edge: {accesslog.summary(entry)}"))
        print(mask(f"edge: {json.dumps(entry)}"))
    if found.more:
        say(f"and {found.more} more edge lines of {request_id} (a client sent the id again)")
    for served in found.served:
        for line in served.lines:
            print(f"{served.service}: {line}")
        if served.note:
            say(served.note)


@handled
def exec(
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="A service of the config, or edge, db or backup.")],
    argv: Annotated[
        list[str] | None, typer.Argument(metavar="[ARGV]...", help="The program and its arguments, after --.")
    ] = None,
    colour: ColourOption = "live",
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Run a program in a running container of a colour's service: deployer exec backend -- sh.
    Interactive (a terminal) when stdin is one; the program's exit code is the command's."""
    from deployer.flows import operate

    with context(config, env, check_paths=False) as ctx:
        code = operate.run(ctx, service, colour, list(argv or []), interactive=sys.stdin.isatty())
    raise typer.Exit(code)
