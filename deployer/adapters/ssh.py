"""A remote engine over ssh: one ssh connection per command, forwarding the remote Docker
socket to a local one that the docker SDK and docker compose both use.

Why not `ssh://` in the SDK and the docker CLI: each would open ssh connections of its
own (the SDK one per HTTP connection, through paramiko or `ssh ... docker system
dial-stdio`), with no way to bound the connect time. One forwarded socket costs one
handshake per command, honours ~/.ssh/config (the `ssh` binary is used), and fails
within `ConnectTimeout` with ssh's own message when the host cannot be reached.

DEPLOYER_SSH_COMMAND replaces `ssh` (for example `ssh -F ci/ssh_config -i key`), as
GIT_SSH_COMMAND does for git.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from urllib.parse import urlsplit

from deployer.adapters.polling import until
from deployer.core import names
from deployer.core.steps import Step
from deployer.errors import InputError, UnreachableError, one_line

REMOTE_SOCKET = "/var/run/docker.sock"
HOST_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://")


@dataclass(frozen=True)
class Address:
    """An ssh://[user@]host[:port] engine address, parsed."""

    url: str
    host: str
    user: str | None
    port: int | None

    @classmethod
    def parse(cls, url: str) -> Address:
        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise ValueError(f"not an ssh:// address: {url!r}")
        return cls(url, parts.hostname, parts.username, parts.port)


def ssh_command() -> list[str]:
    """`ssh`, or DEPLOYER_SSH_COMMAND split like a shell would (exit 2 when it cannot be)."""
    raw = os.environ.get("DEPLOYER_SSH_COMMAND", "")
    try:
        command = shlex.split(raw)
    except ValueError as exc:  # an unclosed quote or a trailing backslash
        raise InputError(f"DEPLOYER_SSH_COMMAND: {exc}") from None
    return command or ["ssh"]


def check_host(host: str) -> None:
    """Bad input (exit 2), raised before anything connects: an engine host that is no Docker
    host URL or no ssh://[user@]host[:port] address, or, for an ssh host, a
    DEPLOYER_SSH_COMMAND that does not split. The config's engine.host is checked with the
    config, so a bad host comes from DOCKER_HOST."""
    name = "DOCKER_HOST" if host == os.environ.get("DOCKER_HOST") else "engine.host"
    if not host.startswith(HOST_SCHEMES):
        raise InputError(f"{name}: {host!r} is not a Docker host URL ({', '.join(HOST_SCHEMES)})")
    if host.startswith("ssh://"):
        m = names.SSH_HOST.fullmatch(host)
        if not m or not 1 <= int(m.group(1) or 22) <= 65535:
            shown = one_line(host)  # a password (ssh://user:password@host) is never shown
            raise InputError(f"{name}: {shown!r} is not an ssh://[user@]host[:port] address (no password)")
        ssh_command()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """The tunnel ends with the CLI, even when the CLI is killed (Linux)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _accepts(path: str) -> bool:
    """Whether ssh listens on the forwarded socket: it binds (the file appears) before it
    listens, and a connection in between is refused."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


class Tunnel:
    def __init__(self, url: str, *, connect_timeout: float, remote_socket: str = REMOTE_SOCKET) -> None:
        self.address = Address.parse(url)
        self.command = ssh_command()
        self.connect_timeout = max(1, int(round(connect_timeout)))
        self.remote_socket = remote_socket
        self._dir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> str:
        assert self._dir
        return os.path.join(self._dir, "docker.sock")

    def argv(self, local: str) -> list[str]:
        a = self.address
        return [
            *self.command,
            "-N",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes",
            "-o", "ServerAliveInterval=10",
            "-o", "ServerAliveCountMax=3",
            "-L", f"{local}:{self.remote_socket}",
            *(["-p", str(a.port)] if a.port else []),
            *(["-l", a.user] if a.user else []),
            "--", a.host,
        ]  # fmt: skip

    def open(self) -> str:
        """Start ssh and wait for the local socket; returns its path."""
        self._dir = tempfile.mkdtemp(prefix="deployer-ssh-")
        local = self.socket
        try:
            self._proc = subprocess.Popen(
                self.argv(local),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self.close()
            raise UnreachableError(
                f"cannot reach {self.address.url}: cannot run ssh: {exc.strerror}", step=Step.ENGINE
            ) from None
        proc = self._proc

        def answered() -> bool:  # the forwarded socket accepts, or ssh gave up
            return (os.path.exists(local) and _accepts(local)) or proc.poll() is not None

        # ssh says nothing when the forward is up: the socket is tried until it accepts.
        if until(answered, seconds=self.connect_timeout + 3, every=0.02) and proc.poll() is None:
            return local
        cause = self._stderr() or "no answer within the connect timeout"
        self.close()
        raise UnreachableError(f"cannot reach {self.address.url}: {cause}", step=Step.ENGINE)

    def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        lines = [
            line.strip() for line in self._proc.stderr.read().decode(errors="replace").splitlines() if line.strip()
        ]
        return lines[-1] if lines else ""

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
