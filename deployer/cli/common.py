"""What every command shares: the --config and --env options, progress lines, and one
place that turns errors into a message and an exit code (2 bad input, 1 failure, 130
cancelled). With --env, every line the command prints says which environment it acts on.

No command prints a traceback: an unexpected exception is reported in one line too
(DEPLOYER_TRACEBACK=1 shows it). Every message is masked of known secrets.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from deployer.core.masking import mask
from deployer.errors import DeployerError, one_line

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

# The environment the command acts on, named at the start of every line it prints.
_label = ""


def _prefixed(message: str, label: str | None = None) -> str:
    label = _label if label is None else label
    return f"[{one_line(label)}] {message}" if label else message


_QUIET: list[bool] = [False]


def output(*, quiet: bool, verbose: bool) -> None:
    """The global -q and -v: no progress lines (warnings, errors and results stay), or every
    engine call as well (DEPLOYER_DEBUG=1, which the engine adapter reads)."""
    if quiet and verbose:
        import click

        raise click.UsageError("-q/--quiet and -v/--verbose go one at a time")
    _QUIET[0] = quiet
    if verbose:
        os.environ["DEPLOYER_DEBUG"] = "1"
    from deployer.adapters import progress as reports
    from deployer.cli.progress import build_log, transfer

    reports.BUILD_LOG[0] = functools.partial(build_log, quiet=quiet)
    reports.TRANSFER[0] = functools.partial(transfer, quiet=quiet)


def say(message: str) -> None:
    """A progress line, on stderr so that stdout stays parseable (--json)."""
    _say(f"· {mask(_prefixed(message))}", message)


def say_in(label: str) -> Callable[[str], None]:
    """`say` for one environment (a promotion speaks for two)."""
    return lambda message: _say(f"· {mask(_prefixed(message, label))}", message)


def _say(line: str, message: str) -> None:
    if not _QUIET[0] or message.startswith("warning"):
        print(line, file=sys.stderr, flush=True)


def error(message: str) -> None:
    print(mask(_prefixed(message)), file=sys.stderr, flush=True)


def _terminate_like_interrupt() -> None:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C, so every step is undone and the lock freed."""

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


def headline(exc: DeployerError) -> str:
    """`ERROR (EngineError in step 'up', on ssh://host): ...`: an engine's failure names the
    engine it happened on, unless its message does already."""
    step = f" in step '{exc.step}'" if exc.step else ""
    host = getattr(exc, "host", "")
    on = f", on {host}" if host and host not in str(exc) else ""
    return f"ERROR ({type(exc).__name__}{step}{on}): {exc}"


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command: our errors become one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _terminate_like_interrupt()
        try:
            return fn(*args, **kwargs)
        except DeployerError as exc:
            error(one_line(headline(exc)))
            if exc.logs:
                error(f"--- last lines ---\n{exc.logs}")
            if os.environ.get("DEPLOYER_TRACEBACK"):
                raise
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            error("cancelled: what the command had started was undone")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except BrokenPipeError:  # the reader left (`deployer config show | head`): what it read is all it wanted
            raise typer.Exit(0) from None
        except Exception as exc:  # a bug: still one line, never locals or a traceback
            if os.environ.get("DEPLOYER_TRACEBACK"):
                raise
            from deployer.adapters.failures import lost

            if (engine_error := lost(exc)) is not None:
                error(f"ERROR ({type(engine_error).__name__}): {engine_error}")
                raise typer.Exit(engine_error.exit_code) from None
            error(f"ERROR (internal {type(exc).__name__}): {exc} (DEPLOYER_TRACEBACK=1 shows where)")
            raise typer.Exit(1) from None

    return wrapper


def acting_on(env: str | None) -> None:
    """Check -e/--env and name it on every line printed from here on."""
    global _label
    from deployer.errors import InputError

    if env is not None and not env.strip():  # `-e ""` (an unset CI variable) is not the base config
        raise InputError("-e/--env (or --from/--to) is empty: name an environment of the config")
    if env is not None:
        _label = env  # an error while loading names the environment too


@contextmanager
def context(config_path: Path | None, env: str | None = None, *, check_paths: bool = True) -> Iterator[Any]:
    """Load the config (with the environment's overrides), and hand the command a Context
    whose engine is closed afterwards."""
    from deployer import config as config_mod
    from deployer.runtime import mode

    acting_on(env)
    loaded = config_mod.load(config_path, check_paths=check_paths, environment=env)
    from deployer.adapters.build import check_environment

    check_environment()  # the builder and the cache settings: bad input before anything builds
    for warning in loaded.warnings:
        say(f"warning: {warning}")
    ctx = mode.context(loaded, say_in(env or ""))
    try:
        yield ctx
    finally:
        ctx.close()
