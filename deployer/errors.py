"""The exception tree. The CLI turns each error into one line and an exit code.

Bad input (a config, an argument, a version string) is exit code 2 and is raised before
anything changes. Everything else is an operational failure: exit code 1, and the
message names the step that failed.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

# The engine the command's last engine call went to (adapters/engine.py sets it on each call),
# so an EngineError names its host wherever it is raised.
ENGINE_HOST: ContextVar[str] = ContextVar("engine_host", default="")

BAD_INPUT = 2
FAILED = 1


class DeployerError(Exception):
    """Base class. `step` names the step that failed, when there is one; `logs` are the
    last lines of the container that failed, shown under the message."""

    exit_code = FAILED

    def __init__(self, message: str, *, step: str | None = None, logs: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.logs = logs


class InputError(DeployerError):
    """Bad input on the command line: nothing has been changed."""

    exit_code = BAD_INPUT


class ConfigError(InputError):
    """The config file is missing or invalid; the message names the file and the key."""

    def __init__(self, path: object, key: str | None, message: str) -> None:
        where = f"{path}" + (f": {key}" if key else "")
        super().__init__(one_line(f"{where}: {message}"))
        self.path = path
        self.key = key


# A password in a URL (scheme://user:password@host), and a character that would break a line
# or drive the terminal (a key or a value quoted back may hold one).
URL_PASSWORD = re.compile(r"(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*://[^/:@\s]+:)[^@\s]+@", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """An error message as one printable line, with no password of a URL in it."""
    text = URL_PASSWORD.sub(r"\1***@", text)
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class EngineError(DeployerError):
    """A call to the Docker engine failed. Carries what was run, its exit code and its
    stderr, when there were any (masked of secrets before anyone prints them)."""

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        logs: str = "",
        command: str = "",
        exit_code: int | None = None,
        stderr: str = "",
        host: str | None = None,
    ) -> None:
        super().__init__(message, step=step, logs=logs)
        self.host = ENGINE_HOST.get() if host is None else host
        self.command = command
        self.status = exit_code
        self.stderr = stderr


class UnreachableError(EngineError):
    """The engine (local socket, or a remote host over ssh) cannot be reached."""


class LockError(DeployerError):
    """Another release or switch holds the lock, or the lock was lost."""


class EdgeError(DeployerError):
    """The edge refused a config, failed to reload, or is not running."""


class HealthError(DeployerError):
    """A release did not become healthy, or a smoke check or verification failed."""


class SwitchError(DeployerError):
    """The switch target has no release, or it is not healthy."""


class BackupError(DeployerError):
    """A dump, verification, restore, fetch or prune failed."""


class Cancelled(DeployerError):
    """The command was interrupted (Ctrl-C, or SIGTERM from a cancelled CI job)."""

    exit_code = 130
