"""`RemoteHost`: a real remote Docker host (dockerd 26 + sshd in a container) for integration tests.

See the package docstring (tests/hosts/__init__.py) for the measured timings and the traps.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import os
import re
import shlex
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
BASE_IMAGE = os.environ.get("TESTHOST_BASE_IMAGE", "debian:trixie-slim")

#: Every container, volume and network made here carries these labels (see `remove_leftovers`).
LABEL = "deployer.testhost"
OWNER_LABEL = "deployer.testhost.owner"  # "<hostname>:<pid>" of the test process

#: Files of each image's build context; the image tag is a hash of exactly these files.
HOST_IMAGE = ("deployer-testhost", "Dockerfile", ("Dockerfile", "entrypoint.sh", "sshd_config"))
REGISTRY_IMAGE = ("deployer-testregistry", "registry.Dockerfile", ("registry.Dockerfile", "registry-config.yml"))
WEB_IMAGE = ("deployer-testweb", "web.Dockerfile", ("web.Dockerfile", "web_server.py"))

SSH = shutil.which("ssh") or "/usr/bin/ssh"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"

# Linux capability numbers -> Docker names (include/uapi/linux/capability.h).
_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)  # fmt: skip


class RemoteHostError(RuntimeError):
    """A test host (or cluster) did not start or misbehaved; the message ends with its last log lines."""


class HostExited(RemoteHostError):
    """The host container (or a daemon in it) exited: waiting longer cannot help."""


# --------------------------------------------------------------------------------------------- helpers


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def labels(**extra: str) -> dict[str, str]:
    return {LABEL: "1", OWNER_LABEL: owner(), **extra}


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def docker_client(timeout: int = 300) -> docker.DockerClient:
    """A client for the local (outer) engine."""
    return docker.from_env(timeout=timeout)


def content_hash(files: Iterable[str], folder: Path = HERE) -> str:
    """A hash of the named files (names and bytes), so an image is rebuilt whenever one of them changes."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


_build_locks: dict[str, threading.Lock] = {}
_build_locks_guard = threading.Lock()


def ensure_image(
    spec: tuple[str, str, Sequence[str]] = HOST_IMAGE,
    *,
    client: docker.DockerClient | None = None,
    base_image: str = BASE_IMAGE,
) -> str:
    """Build `<repo>:<content hash>` from the spec's files in tests/hosts unless it exists; return the tag.

    The build context holds only the spec's files (a tar made here), so editing the Python files in this
    folder does not rebuild. Classic builder through the docker SDK (there is no buildx here).
    """
    repo, dockerfile, files = spec
    client = client or docker_client()
    tag = f"{repo}:{content_hash([*files], HERE)}"
    with _build_locks_guard:
        lock = _build_locks.setdefault(tag, threading.Lock())
    with lock:
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            for name in files:
                info = tar.gettarinfo(str(HERE / name), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                with open(HERE / name, "rb") as fh:
                    tar.addfile(info, fh)
        context.seek(0)
        try:
            client.images.build(
                fileobj=context,
                custom_context=True,
                dockerfile=dockerfile,
                tag=tag,
                buildargs={"BASE_IMAGE": base_image},
                rm=True,
                forcerm=True,
                labels={LABEL: "1"},
            )
        except docker.errors.BuildError as exc:
            lines = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)
            raise RemoteHostError(f"building {tag} failed: {exc}\n{lines[-4000:]}") from exc
        return tag


def dockerd_capabilities() -> list[str] | None:
    """The capabilities in the local dockerd's bounding set, or None when it cannot be read.

    `--privileged` fails on this machine (`unable to apply caps: operation not permitted`): dockerd's bounding
    set lacks CAP_SYS_RESOURCE and Docker 20.10 asks for every capability. Adding exactly what dockerd has works.
    """
    pids: list[str] = []
    try:
        pids.append(Path("/var/run/docker.pid").read_text().strip())
    except OSError:
        pass
    try:
        out = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True, timeout=5).stdout
        pids += out.split()
    except (OSError, subprocess.SubprocessError):
        pass
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return [name for bit, name in enumerate(_CAPABILITIES) if mask >> bit & 1]
    return None


def wait_until(what: str, probe, *, timeout: float, interval: float = 0.2, on_fail=None):
    """Call `probe()` until it returns a truthy value (returned) or `timeout` s pass (RemoteHostError).

    Exceptions from the probe count as "not yet"; the last one is quoted. `on_fail()` adds context (logs).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = probe()
            if result:
                return result
            last = result
        except HostExited:
            raise
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            extra = on_fail() if on_fail else ""
            raise RemoteHostError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){extra}")
        time.sleep(interval)


def container_logs(container, tail: int = 40) -> str:
    try:
        return container.logs(tail=tail).decode(errors="replace")
    except Exception as exc:
        return f"<no logs: {exc}>"


# ---------------------------------------------------------------------------------------------- RemoteHost

_live: weakref.WeakSet[RemoteHost] = weakref.WeakSet()


@atexit.register
def _remove_live_hosts() -> None:  # a safety net; fixtures and `with` blocks remove their hosts themselves
    for host in list(_live):
        host.remove()


class RemoteHost:
    """A container running dockerd 26 and sshd: a real remote Docker host reachable over ssh.

    >>> with RemoteHost() as host:
    ...     subprocess.run(["ssh", "-F", str(host.ssh_config), host.alias, "docker", "version"], check=True)

    - `ssh -F <ssh_config> <alias> docker version` works, and so does `<ssh_command> <alias> ...`.
    - `docker_host` is `ssh://<alias>`. The `ssh` binary only finds the alias through `-F ssh_config`; for
      tools that run plain `ssh` themselves (the docker CLI, compose, docker-py with `use_ssh_client=True`),
      `cli_env()` puts a wrapper `ssh` (= `ssh -F ssh_config`) first on PATH and sets DOCKER_HOST.
      docker-py through paramiko does NOT work with it (it reads only ~/.ssh/config and ~/.ssh/known_hosts).
    - `client` is a docker SDK client for the inner engine through its API on a published 127.0.0.1 port,
      for the test's own assertions only.
    - Port 22 and the API port 2375 are published on 127.0.0.1 with Docker-picked host ports.
    - `remove()` (also `stop()`, `__exit__`) removes the container, its /var/lib/docker volume, the ssh
      forwards and the temp dir, also after a failed start.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        network: str | None = None,
        network_aliases: Sequence[str] = (),
        dockerd_args: Sequence[str] = (),
        storage_driver: str | None = None,
        environment: Mapping[str, str] | None = None,
        image: str | None = None,
        base_image: str = BASE_IMAGE,
        client: docker.DockerClient | None = None,
        startup_timeout: float = 90.0,
        extra_labels: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name or unique_name("dhost")
        self.alias = self.name
        self.network = network
        self.network_aliases = list(network_aliases)
        self.dockerd_args = list(dockerd_args)
        self.storage_driver = storage_driver
        self.environment = dict(environment or {})
        self.base_image = base_image
        self.startup_timeout = startup_timeout
        self.extra_labels = dict(extra_labels or {})
        self.volume_name = f"{self.name}-docker"
        self._outer = client or docker_client()
        self._image = image
        self._container = None
        self._client: docker.DockerClient | None = None
        self._forwards: dict[str, subprocess.Popen] = {}
        self._removed = False
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.ssh_config = self.workdir / "ssh_config"
        self.identity_file = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.bin_dir = self.workdir / "bin"
        self.ssh_port: int | None = None
        self.api_port: int | None = None
        #: seconds spent in each start-up phase (image, run, docker, ssh, total)
        self.timings: dict[str, float] = {}
        _live.add(self)

    # ---------------------------------------------------------------- properties

    @property
    def container(self):
        if self._container is None:
            raise RemoteHostError(f"{self.name} is not started")
        return self._container

    @property
    def client(self) -> docker.DockerClient:
        """Docker SDK client for the inner engine (tcp://127.0.0.1:<published 2375>), for assertions."""
        if self._client is None:
            raise RemoteHostError(f"{self.name} is not started")
        return self._client

    @property
    def docker_host(self) -> str:
        """`ssh://<alias>`: resolvable only through `ssh -F ssh_config` (see `cli_env()`)."""
        return f"ssh://{self.alias}"

    @property
    def ssh_command(self) -> str:
        """`ssh -F <ssh_config>`: an ssh command line for tools that take one (`<cmd> <alias> ...`)."""
        return f"{shlex.quote(SSH)} -F {shlex.quote(str(self.ssh_config))}"

    @property
    def api_url(self) -> str:
        return f"tcp://127.0.0.1:{self.api_port}"

    @property
    def ip(self) -> str:
        """The container's IP on `network` (or on its only network)."""
        self.container.reload()
        networks = self.container.attrs["NetworkSettings"]["Networks"]
        entry = networks[self.network] if self.network else next(iter(networks.values()))
        return entry["IPAddress"]

    # ---------------------------------------------------------------- life cycle

    def __enter__(self) -> RemoteHost:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def start(self) -> RemoteHost:
        """Build the image if needed, run the container, wait for dockerd and sshd. Raises RemoteHostError."""
        if self._container is not None:
            return self
        t0 = time.monotonic()
        try:
            self._start(t0)
        except BaseException:
            self.remove()
            raise
        return self

    def _start(self, t0: float) -> None:
        image = self._image or ensure_image(HOST_IMAGE, client=self._outer, base_image=self.base_image)
        self._image = image
        self.timings["image"] = time.monotonic() - t0
        self._make_keys()

        caps = dockerd_capabilities()
        env = {"AUTHORIZED_KEY": (self.workdir / "id_ed25519.pub").read_text().strip(), **self.environment}
        if self.dockerd_args:
            if any(not a or any(c.isspace() for c in a) for a in self.dockerd_args):
                raise RemoteHostError(f"dockerd_args must be single words (no spaces): {self.dockerd_args}")
            env["DOCKERD_EXTRA_ARGS"] = " ".join(self.dockerd_args)  # word-split by the entry point
        if self.storage_driver:
            env["DOCKERD_STORAGE_DRIVER"] = self.storage_driver
        self._outer.volumes.create(self.volume_name, labels=labels(**self.extra_labels))
        t1 = time.monotonic()
        self._container = self._run_container(image, env, caps)
        self.ssh_port, self.api_port = wait_until(
            "published ports", self._published_ports, timeout=15, on_fail=self._log_tail
        )
        self.timings["run"] = time.monotonic() - t1

        t2 = time.monotonic()
        api = docker.APIClient(base_url=self.api_url, timeout=5, version="1.41")
        try:
            wait_until("dockerd inside the host", lambda: self._alive() and api.ping(),
                       timeout=self.startup_timeout, on_fail=self._log_tail)  # fmt: skip
        finally:
            api.close()
        self._client = docker.DockerClient(base_url=self.api_url, version="auto", timeout=300)
        self.timings["docker"] = time.monotonic() - t2

        t3 = time.monotonic()
        host_key = wait_until("the ssh host key", self._host_key, timeout=15, on_fail=self._log_tail)
        self._write_ssh_config(host_key)

        def ssh_docker_info() -> bool:
            self._alive()
            res = self.ssh("docker", "info", "--format", "{{.ServerVersion}}", check=False, timeout=15)
            if res.returncode != 0:
                raise RemoteHostError(res.stderr.strip() or res.stdout.strip())
            return bool(res.stdout.strip())

        wait_until("`docker info` over ssh", ssh_docker_info, timeout=self.startup_timeout, interval=0.3,
                   on_fail=self._log_tail)  # fmt: skip
        self.timings["ssh"] = time.monotonic() - t3
        self.timings["total"] = time.monotonic() - t0

    def _run_container(self, image: str, env: Mapping[str, str], caps: list[str] | None):
        """Create and start the host container with the flags that replace `--privileged` here.

        Low-level API because `systempaths=unconfined` is a CLI-only option: the CLI turns it into empty
        `MaskedPaths`/`ReadonlyPaths`, and the API rejects it as a security_opt ("invalid --security-opt 2").
        dockerd 20.10 also rejects capability names newer than its list ("unknown capability:
        \"CAP_PERFMON\"" for PERFMON, BPF, CHECKPOINT_RESTORE) although the kernel bounding set has them:
        those are dropped and the create retried.
        """
        api = self._outer.api
        caps = list(caps) if caps is not None else ["ALL"]
        for _ in range(len(_CAPABILITIES)):
            host_config = api.create_host_config(
                cap_add=caps,
                security_opt=["seccomp=unconfined", "apparmor=unconfined"],
                device_cgroup_rules=["a *:* rwm"],
                binds={self.volume_name: {"bind": "/var/lib/docker", "mode": "rw"}},
                port_bindings={22: ("127.0.0.1", None), 2375: ("127.0.0.1", None)},
                network_mode=self.network or "bridge",
            )
            host_config["MaskedPaths"] = []  # = --security-opt systempaths=unconfined
            host_config["ReadonlyPaths"] = []
            networking_config = None
            if self.network:
                endpoint = api.create_endpoint_config(aliases=self.network_aliases or None)
                networking_config = api.create_networking_config({self.network: endpoint})
            try:
                created = api.create_container(
                    image,
                    name=self.name,
                    hostname=self.name,
                    environment=dict(env),
                    labels=labels(**self.extra_labels),
                    ports=[22, 2375],
                    host_config=host_config,
                    networking_config=networking_config,
                )
            except docker.errors.APIError as exc:
                match = re.search(r'unknown capability: \\?"?(?:CAP_)?([A-Z_]+)', str(exc))
                if not match or match.group(1) not in caps:
                    raise
                caps.remove(match.group(1))
                continue
            container = self._outer.containers.get(created["Id"])
            self._container = container  # so that a failed start is still removed
            container.start()
            return container
        raise RemoteHostError("could not find a capability set the engine accepts")

    def _alive(self) -> bool:
        self.container.reload()
        if self.container.status in ("exited", "dead"):
            raise HostExited(f"container {self.name} exited{self._log_tail()}")
        return True

    def _published_ports(self) -> tuple[int, int] | None:
        self._alive()
        ports = self.container.attrs["NetworkSettings"]["Ports"] or {}
        try:
            return int(ports["22/tcp"][0]["HostPort"]), int(ports["2375/tcp"][0]["HostPort"])
        except (KeyError, IndexError, TypeError):
            return None

    def _host_key(self) -> str | None:
        self._alive()
        code, out = self.container.exec_run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
        parts = out.decode().split()
        return f"{parts[0]} {parts[1]}" if code == 0 and len(parts) >= 2 else None

    def _make_keys(self) -> None:
        subprocess.run(
            [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", self.name, "-f", str(self.identity_file)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def _write_ssh_config(self, host_key: str) -> None:
        self.known_hosts.write_text(f"[127.0.0.1]:{self.ssh_port} {host_key}\n")
        self.ssh_config.write_text(
            f"Host {self.alias}\n"
            f"  HostName 127.0.0.1\n"
            f"  Port {self.ssh_port}\n"
            f"  User root\n"
            f"  IdentityFile {self.identity_file}\n"
            f"  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            f"  GlobalKnownHostsFile /dev/null\n"
            f"  StrictHostKeyChecking yes\n"
            f"  CheckHostIP no\n"
            f"  BatchMode yes\n"
            f"  PasswordAuthentication no\n"
            f"  ConnectTimeout 10\n"
            f"  ServerAliveInterval 10\n"
            f"  LogLevel ERROR\n"
        )
        self.bin_dir.mkdir(exist_ok=True)
        wrapper = self.bin_dir / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(SSH)} -F {shlex.quote(str(self.ssh_config))} "$@"\n')
        wrapper.chmod(0o755)

    def _log_tail(self, tail: int = 40) -> str:
        if self._container is None:
            return ""
        return f"\n--- last {tail} log lines of {self.name} ---\n{container_logs(self._container, tail)}"

    def logs(self, tail: int = 40) -> str:
        return container_logs(self.container, tail)

    def remove(self) -> None:
        """Remove ssh forwards, the container, its volume and the temp dir. Idempotent; never raises."""
        if self._removed:
            return
        self._removed = True
        for proc in self._forwards.values():
            _terminate(proc)
        self._forwards.clear()
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
        try:
            container = self._container or self._outer.containers.get(self.name)
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except Exception as exc:
            print(f"RemoteHost: could not remove container {self.name}: {exc}")
        deadline = time.monotonic() + 30
        while True:  # the volume is busy for a moment after a forced removal
            try:
                self._outer.volumes.get(self.volume_name).remove(force=True)
                break
            except docker.errors.NotFound:
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    print(f"RemoteHost: could not remove volume {self.volume_name}: {exc}")
                    break
                time.sleep(0.5)
        shutil.rmtree(self.workdir, ignore_errors=True)
        _live.discard(self)

    stop = remove

    # ---------------------------------------------------------------- using the host

    def ssh(self, *argv: str, check: bool = True, timeout: float = 120, input: bytes | str | None = None,
            text: bool = True) -> subprocess.CompletedProcess:  # fmt: skip
        """Run `argv` on the host over ssh (each argument quoted for the remote shell)."""
        remote = " ".join(shlex.quote(a) for a in argv)
        return self.ssh_shell(remote, check=check, timeout=timeout, input=input, text=text)

    def ssh_shell(self, script: str, *, check: bool = True, timeout: float = 120, input: bytes | str | None = None,
                  text: bool = True) -> subprocess.CompletedProcess:  # fmt: skip
        """Run a shell command line on the host over ssh."""
        cmd = [SSH, "-F", str(self.ssh_config), self.alias, script]
        stdin = None if input is not None else subprocess.DEVNULL
        res = subprocess.run(cmd, input=input, stdin=stdin, capture_output=True, text=text, timeout=timeout)
        if check and res.returncode != 0:
            raise RemoteHostError(f"ssh {self.alias} {script!r} failed ({res.returncode}): {res.stderr}{res.stdout}")
        return res

    def exec(self, cmd: str | Sequence[str]) -> tuple[int, str]:
        """Run a command in the host container itself (outer `docker exec`), not over ssh."""
        code, out = self.container.exec_run(["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd))
        return code, out.decode(errors="replace")

    def cli_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for tools that run plain `ssh`: `PATH` starts with a `ssh -F ssh_config` wrapper and
        DOCKER_HOST is `ssh://<alias>`; e.g. `subprocess.run(["docker", "ps"], env=host.cli_env())`."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["DOCKER_HOST"] = self.docker_host
        env.pop("DOCKER_CONTEXT", None)
        return env

    def load_image(self, ref: str) -> str:
        """Copy the local image `ref` into the inner engine (save streamed into load); return its ID.

        Skipped when the inner engine already has that image ID (then only the tag is added).
        """
        local = self._outer.images.get(ref)
        try:
            inner = self.client.images.get(local.id)
        except docker.errors.ImageNotFound:
            named = ref if ref in local.tags else (local.tags[0] if local.tags else False)
            self.client.images.load(local.save(chunk_size=1 << 20, named=named))
            inner = self.client.images.get(local.id)
        if ":" not in ref.rsplit("/", 1)[-1] and not ref.startswith("sha256:"):
            ref += ":latest"
        if not ref.startswith("sha256:") and ref not in inner.tags:
            repo, tag = ref.rsplit(":", 1)
            inner.tag(repo, tag)
        return local.id

    def forward_docker_socket(self, path: str | os.PathLike | None = None, *,
                              remote: str = "/var/run/docker.sock", timeout: float = 20) -> str:  # fmt: skip
        """Forward a local unix socket to the host's docker socket (`ssh -F cfg -N -L path:remote alias`).

        Returns the local socket path once the engine answers through it (use `unix://<path>` as
        DOCKER_HOST). The ssh process ends with `stop_forward(path)` or `remove()`.
        """
        path = str(path or self.workdir / f"docker-{len(self._forwards)}.sock")
        if len(path) > 100:
            raise RemoteHostError(f"unix socket path too long ({len(path)} > 100 bytes): {path}")
        Path(path).unlink(missing_ok=True)
        cmd = [SSH, "-F", str(self.ssh_config), "-o", "ExitOnForwardFailure=yes", "-o", "StreamLocalBindUnlink=yes",
               "-N", "-L", f"{path}:{remote}", self.alias]  # fmt: skip
        errfile = open(self.workdir / f"forward-{len(self._forwards)}.err", "w+b")  # noqa: SIM115
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errfile)
        self._forwards[path] = proc

        def answers() -> bool:
            if proc.poll() is not None:
                errfile.seek(0)
                raise RemoteHostError(f"ssh forward exited {proc.returncode}: {errfile.read().decode()}")
            return _unix_ping(path)

        try:
            wait_until(f"the forwarded socket {path}", answers, timeout=timeout, on_fail=self._log_tail)
        except BaseException:
            self.stop_forward(path)
            raise
        return path

    def stop_forward(self, path: str) -> None:
        proc = self._forwards.pop(str(path), None)
        if proc is not None:
            _terminate(proc)
        Path(path).unlink(missing_ok=True)


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _unix_ping(path: str) -> bool:
    """GET /_ping on a docker unix socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0] and data.endswith(b"OK")


# ------------------------------------------------------------------------------------------- leftovers


def remove_leftovers(client: docker.DockerClient | None = None, *, all_owners: bool = False) -> list[str]:
    """Remove containers, volumes and networks labelled by these fixtures whose owning process is gone.

    Other test sessions may be running at the same time, so only objects whose owner pid (on this machine) no
    longer exists are removed, unless `all_owners`. Returns the names removed.
    """
    client = client or docker_client()
    me = socket.gethostname()

    def orphaned(obj_labels: Mapping[str, str] | None) -> bool:
        if all_owners:
            return True
        host, _, pid = (obj_labels or {}).get(OWNER_LABEL, ":").rpartition(":")
        if host != me or not pid.isdigit():
            return False
        return not Path(f"/proc/{pid}").exists()

    removed: list[str] = []
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        if orphaned(c.labels):
            c.remove(force=True, v=True)
            removed.append(c.name)
    for v in client.volumes.list(filters={"label": LABEL}):
        if orphaned(v.attrs.get("Labels")):
            try:
                v.remove(force=True)
                removed.append(v.name)
            except docker.errors.APIError:
                pass
    for n in client.networks.list(filters={"label": LABEL}):
        if orphaned(n.attrs.get("Labels")):
            try:
                n.remove()
                removed.append(n.name)
            except docker.errors.APIError:
                pass
    return removed
