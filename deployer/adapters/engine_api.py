"""The Engine API's exec over a unix socket, with the standard library alone.

An exec into the edge is the whole of `deployer switch` and `rollback` (one operation,
whatever the number of services). Importing the docker SDK (requests, urllib3) took longer
than the rest of such a command together, so an engine reached through a unix socket (the
local one, or a remote one through the ssh tunnel) runs its captured execs and its
container inspections here: create, start, read the multiplexed output, read the exit
code. Every other call, and an engine
reached over TCP, goes through the SDK (engine.py). Errors are the same as the SDK path's:
they name the container, the program and the Engine API call."""

from __future__ import annotations

import json
import socket
from urllib.parse import quote

from deployer.adapters.failures import unreachable
from deployer.adapters.models import ExecResult
from deployer.adapters.polling import until
from deployer.core import masking
from deployer.core.steps import Step
from deployer.errors import EngineError, UnreachableError

STDERR = 2  # the stream type of a frame of a non-TTY exec's output


class Api:
    """Calls on one engine's socket; `where` names the engine in errors."""

    def __init__(self, path: str, where: str, timeout: float) -> None:
        self.path, self.where, self.timeout = path, where, timeout

    def call(self, method: str, url: str, body: dict | None = None, *, step: str) -> tuple[int, bytes]:
        """One HTTP/1.1 request on a connection of its own, read to its end (`Connection:
        close`: the engine closes it after the answer, or after an exec's output). Written
        here rather than with http.client, whose imports (email, ssl) cost a switch 10 ms."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
            except OSError as exc:
                raise UnreachableError(
                    f"cannot reach the Docker engine at {self.where}: {unreachable(exc)}", step=Step.ENGINE
                ) from None
            payload = json.dumps(body).encode() if body is not None else b""
            kind = "Content-Type: application/json\r\n" if body is not None else ""
            head = f"{method} {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{kind}"
            try:
                sock.sendall(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
                return answer(_read_all(sock))
            except (OSError, ValueError) as exc:
                raise UnreachableError(
                    f"lost the connection to the engine at {self.where}: {exc or type(exc).__name__} ({method} {url})",
                    step=step,
                ) from None
        finally:
            sock.close()

    def inspect(self, name: str, *, step: str) -> dict | None:
        """`docker inspect` of a container; None when there is none of that name."""
        url = f"/containers/{quote(name, safe='')}/json"
        status, body = self.call("GET", url, step=step)
        if status == 404:
            return None
        if status != 200:
            raise EngineError(f"cannot inspect {name} on {self.where}: {_message(body)} (GET {url})", step=step)
        return json.loads(body)

    def exec(self, container: str, argv: list[str], *, step: str, env: dict[str, str], user: str) -> ExecResult:
        """Run argv in a running container; its exit code and output. Interrupted while the
        program runs, it waits (up to 120 s) for the program to end before the interrupt goes on."""
        url = f"/containers/{quote(container, safe='')}/exec"
        spec = {"Cmd": argv, "Env": [f"{k}={v}" for k, v in env.items()], "User": user}
        status, body = self.call("POST", url, {**spec, "AttachStdout": True, "AttachStderr": True}, step=step)
        if status == 404:
            raise EngineError(f"container {container} does not exist (run `deployer up`)", step=step, command=argv[0])
        if status != 201:
            said = _message(body)
            raise EngineError(f"cannot run {argv[0]} in {container}: {said} (POST {url})", step=step, command=argv[0])
        exec_id = json.loads(body)["Id"]
        try:
            status, raw = self.call("POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False}, step=step)
        except KeyboardInterrupt:
            self._exit_code(exec_id, step=step, limit=120)
            raise
        if status != 200:
            said = _message(raw)
            raise EngineError(f"running {argv[0]} in {container} failed: {said}", step=step, command=argv[0])
        out, err = demux(raw)
        code = self._exit_code(exec_id, step=step, limit=10)
        return ExecResult(code, out.decode(errors="replace"), err.decode(errors="replace"))

    def _exit_code(self, exec_id: str, *, step: str, limit: float) -> int:
        def code() -> list[int]:  # [] while it runs
            status, body = self.call("GET", f"/exec/{exec_id}/json", step=step)
            info = json.loads(body) if status == 200 else {}
            done = not info.get("Running") and info.get("ExitCode") is not None
            return [int(info["ExitCode"])] if done else []

        # The exec's output ended; its exit code comes a moment later, and only when asked for.
        return (until(code, seconds=limit, every=0.02) or [-1])[0]


def _read_all(sock: socket.socket) -> bytes:
    parts = []
    while chunk := sock.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


def answer(raw: bytes) -> tuple[int, bytes]:
    """The status and the body of a whole HTTP/1.1 answer (a chunked one put together);
    ValueError when it is not one."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not sep or not version.startswith("HTTP/") or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP answer: {lines[0][:80]!r}" if raw else "the engine closed the connection")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return int(rest[:3]), _dechunk(body)
    if headers.get("content-length", "").isdigit():
        return int(rest[:3]), body[: int(headers["content-length"])]
    return int(rest[:3]), body


def _dechunk(body: bytes) -> bytes:
    out = []
    at = 0
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            raise ValueError("a chunked answer ended early")
        size = int(body[at:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[end + 2 : end + 2 + size])
        at = end + 2 + size + 2


def demux(raw: bytes) -> tuple[bytes, bytes]:
    """stdout and stderr of a non-TTY exec's stream: frames of an 8-byte header (the stream
    type, three zero bytes, the payload's size big-endian) and the payload."""
    out: list[bytes] = []
    err: list[bytes] = []
    at = 0
    while at + 8 <= len(raw):
        size = int.from_bytes(raw[at + 4 : at + 8], "big")
        (err if raw[at] == STDERR else out).append(raw[at + 8 : at + 8 + size])
        at += 8 + size
    return b"".join(out), b"".join(err)


def _message(body: bytes) -> str:
    try:
        said = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        said = body.decode(errors="replace")
    return masking.mask(str(said).strip() or "no reason given")
