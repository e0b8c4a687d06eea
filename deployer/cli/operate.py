"""`deployer logs` and `deployer exec`: the commands an operator reaches for daily."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from deployer.cli.common import ConfigOption, EnvOption, context, handled

ColourOption = Annotated[
    str, typer.Option("--colour", help="live, standby, blue or green (the infrastructure has no colour).")
]


@handled
def logs(
    service: Annotated[
        str | None, typer.Argument(help="A service of the config, or edge, db or backup (default: every service).")
    ] = None,
    colour: ColourOption = "live",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Only lines from this long ago on: 10m, 2h.")] = None,
    tail: Annotated[int | None, typer.Option("--tail", help="Only the last N lines of each container.")] = None,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Print a colour's service logs (on a swarm, every task's), secrets masked."""
    from deployer.flows import operate

    def write(line: str) -> None:
        print(line, flush=follow)

    with context(config, env, check_paths=False) as ctx:
        try:
            operate.logs(ctx, service, colour, follow=follow, since=since, tail=tail, write=write)
        except KeyboardInterrupt:  # the end of --follow, not a failure
            return


@handled
def exec(
    service: Annotated[str, typer.Argument(help="A service of the config, or edge, db or backup.")],
    argv: Annotated[list[str] | None, typer.Argument(help="The program and its arguments, after --.")] = None,
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
