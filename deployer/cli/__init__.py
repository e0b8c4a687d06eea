"""The command line. `main` runs a plain `deployer switch` without typer (hot.py) and every
other command line through typer (commands.py), so the instant rollback pays for no
command-line library."""

from __future__ import annotations

import os
import sys
from typing import Any


def _run() -> int:
    """Parse the command line and run the command; returns the exit code."""
    from deployer.cli.hot import command

    code = command(sys.argv[1:])
    if code is not None:
        return code
    from deployer.cli.commands import run

    return run()


def main() -> None:
    """Run one command, then leave without the interpreter's teardown.

    Tearing down the compose, HTTP and Engine API libraries costs 50-100 ms, a third of a
    `switch`. Every file, client, tunnel and thread is closed or joined before a command
    returns, so only the standard streams need flushing."""
    try:
        code: Any = _run()
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
