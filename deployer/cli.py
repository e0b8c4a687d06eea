"""The command line. Commands stay a few lines long; heavy imports happen inside them."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from deployer.backup.cli import app as backup_app
from deployer.console import ConfigOption, handled, load_config, say

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Zero-downtime blue-green releases of a backend, a front end and pgvector on one Docker host.",
)
lock_app = typer.Typer(no_args_is_help=True, help="Inspect or break the release lock.")
app.add_typer(lock_app, name="lock")
app.add_typer(backup_app, name="backup")

_config = load_config


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


@app.command()
@handled
def init(
    folder: Annotated[Path, typer.Argument(help="Project folder with backend/ and frontend/.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite deployer.toml and the Dockerfiles.")] = False,
) -> None:
    """Write a commented deployer.toml and Dockerfiles for a Spring Boot + Next.js project."""
    from deployer import init as setup

    for item in setup.init(folder, force=force):
        print(f"{item.action:9} {item.path}")
    print(setup.NEXT_STEPS)


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
    """Run one command, then leave without the interpreter's teardown.

    Tearing down the compose, HTTP and Engine API libraries costs 50-100 ms, a third of a
    `switch`. Every file, client and thread is closed or joined by its own `with` or join
    before a command returns, so only the standard streams need flushing."""
    try:
        app()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a closed pipe (`deployer status | head -1`)
            pass
    os._exit(code)
