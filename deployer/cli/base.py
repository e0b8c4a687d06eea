"""What every command shares, without typer: progress lines, the environment named on each
line, the config loaded into a Context, and the one place that turns errors into a message
and an exit code (2 bad input, 1 failure, 130 cancelled). common.py wraps these for typer;
hot.py runs `switch` with them alone, so that it never imports typer or click.

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
from typing import Any

from deployer.core.masking import mask
from deployer.errors import DeployerError, InputError, one_line

# The environment the command acts on, named at the start of every line it prints.
_LABEL = [""]


def _prefixed(message: str, label: str | None = None) -> str:
    label = _LABEL[0] if label is None else label
    return f"[{one_line(label)}] {message}" if label else message


_QUIET: list[bool] = [False]


def output(*, quiet: bool, verbose: bool) -> None:
    """The global -q and -v: no progress lines (warnings, errors and results stay), or every
    engine call as well (DEPLOYER_DEBUG=1, which the engine adapter reads). Both at once is
    bad input (the typer path checks that before it gets here)."""
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


def _typer_exit(exc: BaseException) -> bool:
    """typer.Exit and typer.Abort: they go on to typer. Only a command run through typer can
    raise them, so typer is imported whenever one exists."""
    typer = sys.modules.get("typer.exceptions")
    return typer is not None and isinstance(exc, (typer.Exit, typer.Abort))


def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Run a command; our errors become one line and an exit code, which is returned."""
    _terminate_like_interrupt()
    try:
        fn(*args, **kwargs)
        return 0
    except DeployerError as exc:
        error(one_line(headline(exc)))
        if exc.logs:
            error(f"--- last lines ---\n{exc.logs}")
        if os.environ.get("DEPLOYER_TRACEBACK"):
            raise
        return exc.exit_code
    except KeyboardInterrupt:
        error("cancelled: what the command had started was undone")
        return 130
    except BrokenPipeError:  # the reader left (`deployer config show | head`): what it read is all it wanted
        return 0
    except Exception as exc:  # a bug: still one line, never locals or a traceback
        if _typer_exit(exc) or os.environ.get("DEPLOYER_TRACEBACK"):
            raise
        from deployer.adapters.failures import lost

        if (engine_error := lost(exc)) is not None:
            error(f"ERROR ({type(engine_error).__name__}): {engine_error}")
            return engine_error.exit_code
        error(f"ERROR (internal {type(exc).__name__}): {exc} (DEPLOYER_TRACEBACK=1 shows where)")
        return 1


def acting_on(env: str | None) -> None:
    """Check -e/--env and name it on every line printed from here on."""
    if env is not None and not env.strip():  # `-e ""` (an unset CI variable) is not the base config
        raise InputError("-e/--env (or --from/--to) is empty: name an environment of the config")
    if env is not None:
        _LABEL[0] = env  # an error while loading names the environment too


@contextmanager
def context(config_path: Path | None, env: str | None = None, *, check_paths: bool = True) -> Iterator[Any]:
    """Load the config (with the environment's overrides), and hand the command a Context
    whose engine is closed afterwards."""
    from deployer import config as config_mod
    from deployer.runtime import mode

    acting_on(env)
    loaded = config_mod.load(config_path, check_paths=check_paths, environment=env)
    from deployer.adapters.buildenv import check_environment

    check_environment()  # the builder and the cache settings: bad input before anything builds
    for warning in loaded.warnings:
        say(f"warning: {warning}")
    ctx = mode.context(loaded, say_in(env or ""))
    try:
        yield ctx
    finally:
        ctx.close()
