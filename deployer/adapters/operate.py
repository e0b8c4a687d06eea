"""`deployer logs` and `deployer exec`: a container's or a swarm service's log streamed to the
terminal, and a program run in a container with its output and exit code passed through.

The logs and a non-interactive exec go through the Engine API (the SDK). An interactive exec
(stdin a terminal) needs the terminal itself, which the docker CLI handles: it runs through
python-on-whales on the engine's own connection (local, or the ssh tunnel)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from deployer.adapters import docker_cli
from deployer.adapters.engine import Engine
from deployer.adapters.failures import reason
from deployer.core import masking
from deployer.errors import EngineError

CONTAINER, SERVICE = "container", "service"


@dataclass(frozen=True)
class Source:
    """Where one service's log comes from: a container, or a swarm service (every task)."""

    label: str  # what the lines are prefixed with when several sources print
    kind: str  # CONTAINER or SERVICE
    name: str


def stream_logs(
    engine: Engine,
    sources: list[Source],
    *,
    follow: bool,
    since: int | None,
    tail: int | None,
    write: Callable[[str], None],
    step: str,
) -> None:
    """Each source's log, masked of known secrets, line by line; with `follow`, until Ctrl-C.
    Several sources are read at once, each line prefixed with its source's label."""
    api = engine.sdk.api
    prefix = len(sources) > 1
    lock = threading.Lock()

    def emit(source: Source, raw: bytes) -> None:
        text = masking.mask(raw.decode(errors="replace"))
        with lock:
            write(f"{source.label} | {text}" if prefix else text)

    def read(source: Source) -> None:
        options = {"stdout": True, "stderr": True, "follow": follow, "tail": "all" if tail is None else tail}
        if since is not None:
            options["since"] = since
        try:
            if source.kind == SERVICE:
                chunks = api.service_logs(source.name, **options)
            else:
                chunks = api.logs(source.name, stream=True, **options)
            pending = b""
            for chunk in chunks:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    emit(source, line)
            if pending:
                emit(source, pending)
        except Exception as exc:
            failed.append(EngineError(f"cannot read the log of {source.name}: {reason(exc)}", step=step))

    failed: list[EngineError] = []
    if len(sources) == 1:
        read(sources[0])
    else:
        threads = [threading.Thread(target=read, args=(s,), daemon=True) for s in sources]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # join in slices, so that Ctrl-C reaches this thread
                t.join(0.2)
    if failed:
        raise failed[0]


def run_exec(engine: Engine, container: str, argv: list[str], *, interactive: bool, step: str) -> int:
    """Run argv in the container; its exit code. Interactive: the terminal is the program's
    (a TTY, stdin open), through the docker CLI. Otherwise its stdout and stderr stream here."""
    if interactive:
        return _interactive(engine, container, argv, step=step)
    from docker.errors import APIError, NotFound

    api = engine.sdk.api
    try:
        exec_id = api.exec_create(container, argv, stdout=True, stderr=True)["Id"]
        for out, err in api.exec_start(exec_id, stream=True, demux=True):
            if out:
                sys.stdout.buffer.write(out)
                sys.stdout.buffer.flush()
            if err:
                sys.stderr.buffer.write(err)
                sys.stderr.buffer.flush()
        code = api.exec_inspect(exec_id).get("ExitCode")
    except NotFound:
        raise EngineError(f"container {container} is gone", step=step, command="exec_create") from None
    except APIError as exc:
        raise EngineError(f"cannot run {argv[0]} in {container}: {reason(exc)}", step=step) from None
    return 1 if code is None else int(code)


def _interactive(engine: Engine, container: str, argv: list[str], *, step: str) -> int:
    return docker_cli.interactive_exec(engine, container, argv, step=step)
