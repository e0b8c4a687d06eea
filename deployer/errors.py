"""The exception tree. The CLI turns each error into one message and an exit code.

Bad input (a config, a version string, a colour) is exit code 2 and must be raised
before anything changes. Everything else is an operational failure: exit code 1,
and the message says which step failed.
"""

from __future__ import annotations

BAD_INPUT = 2
FAILED = 1


class DeployerError(Exception):
    """Base class. `step` names the release step that failed, when there is one."""

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
        super().__init__(f"{where}: {message}")
        self.path = path
        self.key = key


class LockError(DeployerError):
    """Another release or switch holds the lock, or the lock could not be changed."""


class EngineError(DeployerError):
    """A call to the Docker engine failed (container, image, network or compose)."""


class EdgeError(DeployerError):
    """The edge nginx refused a config, failed to reload or is not running."""


class HealthError(DeployerError):
    """A colour did not become healthy, or a smoke check or verification failed."""


class SwitchError(DeployerError):
    """The switch target is not running or not healthy."""


class BackupError(DeployerError):
    """A dump, verification, restore or prune failed."""
