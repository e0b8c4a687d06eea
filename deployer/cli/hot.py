"""`deployer switch`, the command an operator runs under pressure, without typer or click.

Importing typer and click, and building the click commands of every command, took about as
long as the rest of a switch's Python. So `main` (cli/__init__.py) first tries `command`:
a switch written in one of its plain forms (the options below, each once, with a value
that does not start with `-`, after at most one of the global -q/-v) runs from here, with
base.py's error handling. Anything else (--help, a usage error, another command) goes to
typer (commands.py), whose `switch` runs the same `switch` below.
"""

from __future__ import annotations

import os
from pathlib import Path

from deployer.cli.base import context, output, run, say

GLOBAL = {"-q": "quiet", "--quiet": "quiet", "-v": "verbose", "--verbose": "verbose"}
OPTIONS = {"--to": "to", "-c": "config", "--config": "config", "-e": "env", "--env": "env"}


def switch(to: str, config: Path | None, env: str | None) -> None:
    """Move live traffic to the other, still running colour (instant rollback)."""
    from deployer.core.versions import check_colour

    check_colour(to)
    from deployer.flows import switch as flow

    with context(config, env, check_paths=False) as ctx:
        outcome = flow.switch(ctx, to)
    if outcome.already:
        say(f"{to} ({outcome.version}) is already live")
    else:
        say(f"switched: {to} ({outcome.version}) is live, {outcome.previous or 'no colour'} is the standby")


def parse(argv: list[str]) -> dict[str, str] | None:
    """The values of a plain `switch` command line (with `quiet` or `verbose` set when given),
    or None: typer's to parse (and to explain, when it is wrong)."""
    found: dict[str, str] = {}
    args = list(argv)
    if args and args[0] in GLOBAL:
        found[GLOBAL[args.pop(0)]] = "yes"
    if not args or args.pop(0) != "switch":
        return None
    while args:
        name, eq, value = args.pop(0).partition("=")
        key = OPTIONS.get(name)
        if key is None or key in found or (eq and not name.startswith("--")):
            return None
        if not eq:
            if not args:
                return None
            value = args.pop(0)
        if not value or value.startswith("-"):
            return None
        found[key] = value
    return found if "to" in found else None


def command(argv: list[str]) -> int | None:
    """Run a plain `switch` command line and return its exit code; None for any other."""
    if any(key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ):
        return None  # a shell's completion request: typer answers it
    found = parse(argv)
    if found is None:
        return None
    output(quiet="quiet" in found, verbose="verbose" in found)
    config = found.get("config") or os.environ.get("DEPLOYER_CONFIG") or None  # as typer reads its envvar
    return run(switch, found["to"], Path(config) if config else None, found.get("env"))
