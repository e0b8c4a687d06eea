"""SDK and transport exceptions that escaped an adapter, as the project's own errors."""

from __future__ import annotations

import re
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
    """The engine's own words for a failed call, and the Engine API call it answered
    (`POST /containers/create`) when the exception carries the request."""
    text = getattr(exc, "explanation", None) or str(exc)
    said = str(text).strip().splitlines()[-1] if str(text).strip() else type(exc).__name__
    call = api_call(exc)
    return masking.mask(f"{said} ({call})" if call and call not in said else said)


def api_call(exc: Any) -> str:
    """`METHOD /path` of the Engine API request an SDK exception answers, without the API
    version and the query (filters may name anything); '' when it carries none."""
    from urllib.parse import urlsplit

    request = getattr(getattr(exc, "response", None), "request", None)
    method, url = getattr(request, "method", None), getattr(request, "url", None)
    if not method or not url:
        return ""
    path = re.sub(r"^/v[0-9.]+(?=/)", "", urlsplit(str(url)).path)
    return f"{method} {path}"


def unreachable(exc: BaseException) -> str:
    """Why the engine could not be reached, and what to check, in words rather than the
    transport's exception chain. The ssh tunnel's own error (an UnreachableError) says it already."""
    if isinstance(exc, UnreachableError):
        return str(exc)
    chain, seen = [], exc
    while seen is not None and len(chain) < 8:  # the cause at the bottom of requests' wrapping
        chain.append(seen)
        seen = (
            seen.__cause__
            or seen.__context__
            or next((a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)), None)
        )
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, FileNotFoundError) for e in chain) or "No such file or directory" in text:
        why = "no Docker socket there"
    elif any(isinstance(e, PermissionError) for e in chain) or "Permission denied" in text:
        why = "permission denied on the socket (is this user in the docker group?)"
    elif any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        why = "connection refused"
    else:
        why = reason(exc)
    return f"{why}; check that Docker runs there, and DOCKER_HOST or engine.host"
