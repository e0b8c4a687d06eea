"""What every command shares: the --config option, progress lines, and errors turned into exit codes."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable

import typer

from deployer.errors import DeployerError

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="DEPLOYER_CONFIG", help="Path to deployer.toml (default: ./deployer.toml)."
    ),
]


def say(message: str) -> None:
    """A progress line, on stderr so that stdout stays parseable (--json)."""
    print(f"· {message}", file=sys.stderr, flush=True)


def load_config(path: Path | None, *, check_paths: bool = True):
    from deployer import config

    return config.load(path, check_paths=check_paths)


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into one message and an exit code (2 bad input, 1 failure)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeployerError as exc:
            step = f" in step '{exc.step}'" if exc.step else ""
            print(f"ERROR ({type(exc).__name__}{step}): {exc}", file=sys.stderr)
            if exc.logs:
                print(f"--- last lines ---\n{exc.logs}", file=sys.stderr)
            if os.environ.get("DEPLOYER_TRACEBACK"):
                raise
            raise typer.Exit(exc.exit_code) from None

    return wrapper
