"""The RemoteHost fixture: a real Docker host over ssh (dockerd 26 + sshd in a container)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import docker
import pytest

from .fixtures import remote_host, testweb_image  # noqa: F401  (fixtures)
from .remote import HostExited, RemoteHost

pytestmark = pytest.mark.docker
# The harness's own checks. test_remote.py and test_cd.py run these hosts on every
# `make test`; the ones below that start a host of their own are the nightly tier's.
nightly = pytest.mark.long


def run(cmd: list[str], *, timeout: float = 120, env=None, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


@nightly
def test_remote_host_end_to_end(remote_host: RemoteHost, testweb_image: str, tmp_path: Path) -> None:  # noqa: F811
    host = remote_host
    print(f"\nstart-up: {', '.join(f'{k} {v:.2f}s' for k, v in host.timings.items())}")

    # ssh with the generated config: the remote engine answers.
    t = time.monotonic()
    res = run(["ssh", "-F", str(host.ssh_config), host.alias, "docker", "info", "--format", "{{.ServerVersion}}"])
    print(f"docker info over ssh: {time.monotonic() - t:.2f}s -> {res.stdout.strip()}")
    assert res.stdout.strip().startswith("26.")
    assert host.docker_host == f"ssh://{host.alias}"
    assert host.client.info()["Driver"] == "overlay2"

    # Tools that run plain `ssh` (docker CLI, compose) work through cli_env()'s wrapper.
    res = run(["docker", "version", "--format", "{{.Server.Version}}"], env=host.cli_env())
    assert res.stdout.strip().startswith("26.")

    # load_image: debian slim and the web image; a second load of the same ID is skipped.
    t = time.monotonic()
    image_id = host.load_image("debian:trixie-slim")
    host.load_image(testweb_image)
    print(f"load_image (2 images): {time.monotonic() - t:.2f}s")
    t = time.monotonic()
    assert host.load_image("debian:trixie-slim") == image_id
    assert time.monotonic() - t < 2, "a second load of the same image ID must be skipped"
    assert host.client.images.get("debian:trixie-slim").id == image_id

    # A local unix socket forwarded to the remote docker socket over ssh (how the deployer reaches engines).
    sock = f"/tmp/{host.name}-{uuid.uuid4().hex[:6]}.sock"
    forward = subprocess.Popen(
        ["ssh", "-F", str(host.ssh_config), "-o", "ExitOnForwardFailure=yes", "-N", "-L",
         f"{sock}:/var/run/docker.sock", host.alias],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            assert forward.poll() is None, f"ssh -L exited: {forward.stderr.read().decode()}"
            if Path(sock).exists() and run(["docker", "-H", f"unix://{sock}", "version"], check=False).returncode == 0:
                break
            assert time.monotonic() < deadline, "the forwarded docker socket never answered"
            time.sleep(0.2)
        dk = ["docker", "-H", f"unix://{sock}"]

        res = run([*dk, "run", "--rm", "debian:trixie-slim", "cat", "/etc/debian_version"])
        assert res.stdout.strip()

        # Nested containers on a user-defined bridge network, and a published port inside the host.
        net, srv = f"n-{uuid.uuid4().hex[:8]}", f"srv-{uuid.uuid4().hex[:8]}"
        run([*dk, "network", "create", net])
        run([*dk, "run", "-d", "--name", srv, "--network", net, "-p", "8080", testweb_image])
        res = run([*dk, "run", "--rm", "--network", net, testweb_image, "python3", "-c",
                   "import time,urllib.request,sys\n"
                   "for _ in range(50):\n"
                   "    try: print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()); break\n"
                   "    except OSError: time.sleep(0.2)\n"
                   "else: sys.exit('no answer')\n",
                   f"http://{srv}:8080/"])  # fmt: skip
        srv_id = run([*dk, "inspect", "-f", "{{.Config.Hostname}}", srv]).stdout.strip()
        assert res.stdout.strip() == srv_id, "a container reached another by name on the user-defined network"
        port = run([*dk, "port", srv, "8080/tcp"]).stdout.split()[0].rsplit(":", 1)[1]
        res = host.ssh("curl", "-fsS", "--retry", "10", "--retry-connrefused", "--retry-delay", "1",
                       f"http://127.0.0.1:{port}/")  # fmt: skip
        assert res.stdout.strip() == srv_id, "the published port answered inside the host container"

        # docker compose (local v2 plugin) through the forwarded socket.
        project = f"t{uuid.uuid4().hex[:8]}"
        compose = tmp_path / "compose.yml"
        compose.write_text(
            "services:\n"
            "  sleeper:\n"
            "    image: debian:trixie-slim\n"
            "    command: [sleep, infinity]\n"
            "    stop_signal: SIGKILL\n"
        )
        try:
            t = time.monotonic()
            run([*dk, "compose", "-p", project, "-f", str(compose), "up", "-d", "--wait"])
            print(f"compose up through the forwarded socket: {time.monotonic() - t:.2f}s")
            ps = run([*dk, "compose", "-p", project, "-f", str(compose), "ps", "--format", "json"]).stdout
            states = [json.loads(line)["State"] for line in ps.splitlines() if line.strip()]
            assert states == ["running"]
            remote = host.client.containers.list(filters={"label": f"com.docker.compose.project={project}"})
            assert len(remote) == 1 and remote[0].status == "running"
            # The same project is visible with DOCKER_HOST=ssh://<alias> (compose runs the ssh wrapper).
            ps = run(["docker", "compose", "-p", project, "-f", str(compose), "ps", "-q"], env=host.cli_env())
            assert ps.stdout.strip()
        finally:
            run([*dk, "compose", "-p", project, "-f", str(compose), "down", "-v", "-t", "0"], check=False)
        assert not host.client.containers.list(filters={"label": f"com.docker.compose.project={project}"})
    finally:
        forward.terminate()
        try:
            forward.wait(timeout=5)
        except subprocess.TimeoutExpired:
            forward.kill()
        Path(sock).unlink(missing_ok=True)


@nightly
def test_forward_docker_socket_helper(remote_host: RemoteHost) -> None:  # noqa: F811
    path = remote_host.forward_docker_socket()
    try:
        res = run(["docker", "-H", f"unix://{path}", "info", "--format", "{{.ServerVersion}}"])
        assert res.stdout.strip().startswith("26.")
    finally:
        remote_host.stop_forward(path)
    assert not Path(path).exists()


def test_failed_start_raises_with_logs_and_cleans_up() -> None:
    """A host whose dockerd cannot start fails within its deadline, quotes its log and leaves nothing behind."""
    host = RemoteHost(dockerd_args=["--no-such-flag"], startup_timeout=20)
    t = time.monotonic()
    with pytest.raises(HostExited) as info:
        host.start()
    assert time.monotonic() - t < 15, "an exited host must fail at once, not at the deadline"
    assert "unknown flag: --no-such-flag" in str(info.value), "the error quotes the container's log"
    client = docker.from_env()
    assert not client.containers.list(all=True, filters={"name": host.name})
    assert not [v for v in client.volumes.list() if v.name == host.volume_name]
    assert not host.workdir.exists()


@nightly
@pytest.mark.parametrize("driver", ["vfs", "fuse-overlayfs"])
def test_storage_driver_fallbacks(driver: str) -> None:
    """overlay2 is the default here; the fallbacks dockerd would pick without it work as well."""
    with RemoteHost(storage_driver=driver) as host:
        assert host.client.info()["Driver"] == driver
        host.load_image("debian:trixie-slim")
        assert host.ssh("docker", "run", "--rm", "debian:trixie-slim", "echo", "ok").stdout.strip() == "ok"
