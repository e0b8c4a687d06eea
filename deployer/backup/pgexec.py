"""The one place that runs programs inside the database containers (Docker Engine API exec).

Output is streamed, never buffered whole, so a dump of any size goes straight to its file.
Scripts and argv never hold a secret: the containers' own env (POSTGRES_USER, POSTGRES_DB)
and the local socket's trust auth do the rest. Values such as a database name travel as
environment variables of the exec, not inside the script text.
"""

from __future__ import annotations

import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from deployer import engine
from deployer.errors import BackupError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def _api():
    return engine.client().api


def _start(container: str, script: str, env: dict[str, str] | None, step: str) -> str:
    from docker.errors import APIError, NotFound

    try:
        created = _api().exec_create(container, ["sh", "-c", script], environment=env or {}, stdout=True, stderr=True)
    except NotFound:
        raise BackupError(f"container {container} does not exist (run `deployer up`)", step=step) from None
    except APIError as exc:
        raise BackupError(f"cannot exec in {container}: {exc.explanation or exc}", step=step) from None
    return created["Id"]


def _exit_code(exec_id: str) -> int:
    for _ in range(100):
        info = _api().exec_inspect(exec_id)
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        time.sleep(0.05)
    return -1


def stream_to(
    container: str,
    script: str,
    sink: BinaryIO,
    *,
    env: dict[str, str] | None = None,
    step: str,
    on_chunk: Callable[[bytes], None] | None = None,
) -> Outcome:
    """Run `sh -c script`, writing its stdout to sink as it comes; returns exit code and stderr."""
    exec_id = _start(container, script, env, step)
    errors: list[bytes] = []
    for out, err in _api().exec_start(exec_id, stream=True, demux=True):
        if out:
            sink.write(out)
            if on_chunk:
                on_chunk(out)
        if err:
            errors.append(err)
            if len(errors) > 200:
                del errors[:100]
    return Outcome(_exit_code(exec_id), "", b"".join(errors).decode(errors="replace").strip())


def run(container: str, script: str, *, env: dict[str, str] | None = None, step: str) -> Outcome:
    """Run `sh -c script` and capture its (small) output."""
    exec_id = _start(container, script, env, step)
    out, err = _api().exec_start(exec_id, stream=False, demux=True)
    return Outcome(
        _exit_code(exec_id), (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace").strip()
    )


def _tar_stream(source: Path, name: str) -> Iterator[bytes]:
    info = tarfile.TarInfo(name)
    info.size = source.stat().st_size
    info.mode = 0o644
    info.mtime = int(time.time())
    yield info.tobuf(format=tarfile.GNU_FORMAT)
    with source.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk
    pad = (-info.size) % tarfile.BLOCKSIZE
    yield b"\0" * pad + b"\0" * (2 * tarfile.BLOCKSIZE)


def upload(container: str, source: Path, folder: str, name: str, *, step: str) -> str:
    """Stream a local file into the container as folder/name; returns the path inside."""
    from docker.errors import APIError, NotFound

    try:
        ok = _api().put_archive(container, folder, _tar_stream(source, name))
    except (APIError, NotFound) as exc:
        raise BackupError(f"cannot copy {source.name} into {container}: {exc}", step=step) from None
    if not ok:
        raise BackupError(f"cannot copy {source.name} into {container}", step=step)
    return f"{folder.rstrip('/')}/{name}"
