"""What every typer command shares: the --config and --env options, and `handled`, which
runs a command through base.run (each error one line and an exit code: 2 bad input, 1
failure, 130 cancelled). With --env, every line the command prints says which environment
it acts on. The rest lives in base.py, which imports no typer (hot.py's `switch` uses it)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from deployer.cli.base import acting_on, context, error, headline, say, say_in
from deployer.cli.base import output as _output
from deployer.cli.base import run as _run

__all__ = ["ConfigOption", "EnvOption", "acting_on", "context", "error", "handled", "headline", "output", "say"]
__all__ += ["say_in"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="DEPLOYER_CONFIG", help="Path to deployer.toml (default: ./deployer.toml)."),
]
EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env", "-e", help="The [environments.<name>] of deployer.toml to act on (default: the base config)."
    ),
]


def output(*, quiet: bool, verbose: bool) -> None:
    """The global -q and -v (base.output), one at a time."""
    if quiet and verbose:
        from typer._click.exceptions import UsageError

        raise UsageError("-q/--quiet and -v/--verbose go one at a time")
    _output(quiet=quiet, verbose=verbose)


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command: our errors become one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        code = _run(fn, *args, **kwargs)
        if code:
            raise typer.Exit(code)

    return wrapper
