"""A one-off task container: a release's migration, run to completion from the release's
own image on the data network, and removed whatever happens (a failure, a timeout, a
cancel).

Its secrets are files under /run/secrets, written into the created container before it
starts, in the body of one Engine API call: never in an argv, the environment or
`docker inspect`, as with the release's own containers.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass

from deployer.adapters.engine import Engine, debug
from deployer.adapters.failures import reason as _reason
from deployer.core import masking
from deployer.errors import EngineError


@dataclass(frozen=True)
class TaskResult:
    """How a one-shot swarm task ended."""

    exit_code: int  # -1: it did not finish in time
    output: str  # stdout and stderr, masked
    seconds: float


def _secrets_tar(secrets: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in ("run", "run/secrets"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for key, value in sorted(secrets.items()):
            data = value.encode()
            info = tarfile.TarInfo(f"run/secrets/{key}")
            info.size, info.mode, info.mtime = len(data), 0o444, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def run(
    engine: Engine,
    image: str,
    argv: list[str],
    *,
    name: str,
    network: str,
    environment: dict[str, str],
    secrets: dict[str, str],
    labels: dict[str, str],
    timeout: float,
    step: str,
) -> TaskResult:
    """Run argv (the image's entrypoint is replaced: argv is the whole command) and wait for
    it, up to `timeout` seconds; the container is removed afterwards in every case."""
    from docker.errors import APIError, ImageNotFound, NotFound

    api = engine.sdk.api
    debug(f"task {name} from {image}: {argv[:2]}")
    began = time.monotonic()
    container = None
    try:
        config = api.create_host_config(network_mode=network, init=True)
        container = api.create_container(
            image,
            argv,
            name=name,
            entrypoint=[],
            environment=environment,
            labels=labels,
            host_config=config,
            detach=True,
        )["Id"]
        if secrets:
            api.put_archive(container, "/", _secrets_tar(secrets))
        api.start(container)
        try:
            code = int(api.wait(container, timeout=timeout).get("StatusCode", -1))
        except Exception as exc:  # requests' ReadTimeout: it did not finish in time
            if "timed out" not in str(exc).lower() and "timeout" not in type(exc).__name__.lower():
                raise
            code = -1
        output = api.logs(container, stdout=True, stderr=True, tail=200).decode(errors="replace")
        return TaskResult(code, masking.mask(output.rstrip()), round(time.monotonic() - began, 2))
    except (APIError, ImageNotFound, NotFound) as exc:
        raise EngineError(f"cannot run {name} from {image}: {_reason(exc)}", step=step, command="run") from None
    finally:
        if container is not None:
            try:
                api.remove_container(container, v=True, force=True)
            except (APIError, NotFound):
                pass
