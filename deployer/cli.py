"""The command line. Commands stay a few lines long; heavy imports happen inside them."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Callable

import typer

from deployer.errors import DeployerError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Zero-downtime blue-green releases of a backend, a front end and pgvector on one Docker host.",
)
lock_app = typer.Typer(no_args_is_help=True, help="Inspect or break the release lock.")
app.add_typer(lock_app, name="lock")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Path to deployer.toml (default: ./deployer.toml).")
]


def say(message: str) -> None:
    print(f"· {message}", file=sys.stderr, flush=True)


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


def _config(path: Path | None):
    from deployer import config

    return config.load(path)


def _terminate_gracefully() -> None:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C, so every step is undone and the lock freed."""

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


@app.command()
@handled
def up(config: ConfigOption = None) -> None:
    """Create or update the networks, the edge and the database. Idempotent."""
    from deployer import infra

    infra.up(_config(config), say=say)


@app.command()
@handled
def release(
    version: Annotated[str, typer.Argument(help="Version to release: the image tag, [A-Za-z0-9._-]{1,128}.")],
    config: ConfigOption = None,
    build: Annotated[bool, typer.Option("--build", help="Build missing images from services.*.build.")] = False,
    backup: Annotated[bool, typer.Option("--backup/--no-backup", help="Dump the database first.")] = True,
) -> None:
    """Start the idle colour at VERSION, wait on health, then switch live traffic to it."""
    from deployer.plan import check_version

    check_version(version)
    cfg = _config(config)
    from deployer import release as flow

    _terminate_gracefully()
    flow.release(cfg, version, build=build, backup=backup, say=say)


@app.command()
@handled
def switch(
    to: Annotated[str, typer.Option("--to", help="The colour to make live: blue or green.")],
    config: ConfigOption = None,
) -> None:
    """Move live traffic to the other, still running colour (instant rollback)."""
    from deployer.plan import check_colour

    check_colour(to)
    cfg = _config(config)
    from deployer import switch as flow

    _terminate_gracefully()
    flow.switch(cfg, to, say=say)


@app.command()
@handled
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the live colour, each colour's version and health, the edge, the database and the last releases."""
    from deployer import status as report

    data = report.gather(_config(config))
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        report.render(data)


@app.command()
@handled
def build(
    version: Annotated[str, typer.Argument(help="The tag to build.")],
    config: ConfigOption = None,
) -> None:
    """Build and tag the image of every service that has a build context."""
    from deployer.plan import check_version

    check_version(version)
    cfg = _config(config)
    from deployer import build as flow

    flow.build_all(cfg, version)


@app.command()
@handled
def down(
    config: ConfigOption = None,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also delete the database and edge volumes.")] = False,
) -> None:
    """Remove both colours and the infrastructure."""
    from deployer import infra

    infra.down(_config(config), volumes=volumes, say=say)


@lock_app.command("status")
@handled
def lock_status(config: ConfigOption = None) -> None:
    """Show who holds the lock, and whether the holder is gone."""
    from deployer import infra, lock

    record = infra.require_edge(_config(config)).read_lock()
    print(f"held by {lock.describe_holder(record)}" if record else "free")


@lock_app.command("release")
@handled
def lock_release(config: ConfigOption = None) -> None:
    """Break the lock (for one left behind by a killed process)."""
    from deployer import infra, lock

    edge = infra.require_edge(_config(config))
    record = edge.read_lock()
    if not record:
        print("the lock was free")
        return
    edge.unlock()
    print(f"lock broken; it was held by {lock.describe_holder(record)}")


def main() -> None:
    app()
