"""SDK and transport exceptions that escaped an adapter, as the project's own errors."""

from __future__ import annotations

from typing import Any

from deployer.core import masking
from deployer.errors import EngineError, UnreachableError


def lost(exc: BaseException, step: str | None = None) -> EngineError | None:
    """An SDK or transport exception that escaped an adapter (a dropped ssh tunnel, a timed
    out or refused connection, an API error), as the EngineError that names its step; None
    for anything else."""
    from docker.errors import APIError, DockerException
    from requests.exceptions import RequestException

    if isinstance(exc, RequestException):
        return UnreachableError(f"lost the connection to the engine: {reason(exc)}", step=step)
    if isinstance(exc, (APIError, DockerException)):
        return EngineError(f"the engine refused a call: {reason(exc)}", step=step)
    return None


def reason(exc: Any) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return masking.mask(str(text).strip().splitlines()[-1] if str(text).strip() else type(exc).__name__)
