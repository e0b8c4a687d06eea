"""Every command against a real remote engine: a container running dockerd and sshd, reached
over ssh on 127.0.0.1 with a key made for the test (tests/hosts). The CLI runs here; nothing
of the deployer runs on the host but its containers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from hosts import RemoteHost

pytestmark = pytest.mark.docker


def own_images() -> list[str]:
    """The deployer's own images, built on this machine's engine (they are copied to the host:
    building them there would need the host to reach a package mirror)."""
    from deployer.adapters.engine import Engine
    from deployer.config.model import DEFAULT_BASE_IMAGE
    from deployer.flows import images

    engine = Engine(None)
    try:
        return [images.own_image(engine, n, base_image=DEFAULT_BASE_IMAGE, say=print) for n in ("edge", "db", "agent")]
    finally:
        engine.close()


@pytest.fixture(scope="module")
def remote(tmp_path_factory, docker_client, test_app_image):
    """A remote host with the deployer's images and the test app as v1 and v2 loaded."""
    with RemoteHost() as host:
        for ref in own_images() + ["debian:trixie-slim"]:
            host.load_image(ref)
        name = f"r{uuid.uuid4().hex[:8]}"
        for version in ("v1", "v2"):
            for service in ("backend", "frontend"):
                ref = f"{name}-{service}:{version}"
                docker_client.images.get(test_app_image).tag(ref)
                host.load_image(ref)
                docker_client.images.remove(ref)
        folder = tmp_path_factory.mktemp("remote")
        env = folder / "db.env"
        env.write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=remote-secret-pw\n")
        env.chmod(0o600)
        (folder / "deployer.toml").write_text(
            textwrap.dedent(
                f"""
                [project]
                name = "{name}"
                restart = "no"
                [engine]
                host = "{host.docker_host}"
                [services.backend]
                image = "{name}-backend"
                port = 8080
                health = "/health"
                routes = ["/api/"]
                stop_grace = 5
                [services.frontend]
                image = "{name}-frontend"
                port = 8081
                health = "/health"
                routes = ["/"]
                stop_grace = 5
                [edge]
                public_port = 0
                preview_port = 0
                [database]
                env_file = "db.env"
                [smoke]
                paths = ["/api/version", "/"]
                [watch]
                window = "0"  # the watch has tests of its own (test_watch.py)
                """
            )
        )
        yield host, folder / "deployer.toml", name


def cli(remote, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    host, config, _ = remote
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**__import__("os").environ, "DEPLOYER_SSH_COMMAND": host.ssh_command, "DOCKER_HOST": ""},
    )


def ok(remote, *args: str) -> subprocess.CompletedProcess:
    result = cli(remote, *args)
    assert result.returncode == 0, f"deployer {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def live_port(remote) -> int:
    host, _, name = remote
    holder = host.client.containers.get(f"{name}-infra-ports-1")  # it publishes the edge's ports
    return int(holder.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])


def serving(remote) -> tuple[str, str]:
    """(version, colour) answering on the remote edge's live port, asked on the host itself."""
    host = remote[0]
    code, out = host.exec(["curl", "-s", f"http://127.0.0.1:{live_port(remote)}/api/version"])
    body = json.loads(out)
    return body["version"], body["colour"]


def test_up_release_under_load_switch_and_status_on_a_remote_host(remote):
    host, _, name = remote
    up = ok(remote, "up")
    assert host.docker_host in up.stderr
    assert host.client.containers.get(f"{name}-infra-edge-1").status == "running"
    ok(remote, "release", "v1", "--no-backup")
    assert serving(remote) == ("v1", "blue")

    # Load on the host itself, against the edge's live port: 0 failures through a release and a switch.
    port = live_port(remote)
    load = subprocess.Popen(
        ["docker", "exec", host.container.name, "sh", "-c",
         f"ok=0; bad=0; for i in $(seq 1 600); do "
         f"c=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://127.0.0.1:{port}/api/version); "
         f'if [ "$c" = 200 ]; then ok=$((ok+1)); else bad=$((bad+1)); fi; sleep 0.02; done; echo "$ok $bad"'],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.5)
    released = ok(remote, "release", "v2", "--no-backup")
    assert "released v2: green is live" in released.stderr
    switched = ok(remote, "switch", "--to", "blue")
    assert "switched: blue (v1) is live" in switched.stderr
    answered, failed = (int(x) for x in load.communicate(timeout=120)[0].split())
    assert failed == 0 and answered == 600
    assert serving(remote) == ("v1", "blue")

    # A dump is written on the host, and fetched here checked against its sha256.
    name = ok(remote, "backup", "now", "--label", "remote").stdout.strip().splitlines()[-1]
    target = remote[1].parent / "fetched.dump"
    fetched = ok(remote, "backup", "fetch", name, "--output", str(target))
    assert "sha256" in fetched.stderr and target.stat().st_size > 0
    import hashlib

    listed = {d["name"]: d for d in json.loads(ok(remote, "backup", "list", "--json").stdout)}
    assert hashlib.sha256(target.read_bytes()).hexdigest() == listed[name]["sha256"]
    assert oct(target.stat().st_mode & 0o777) == "0o600"

    status = json.loads(ok(remote, "status", "--json").stdout)
    assert status["engine"] == host.docker_host
    assert status["backup"]["name"] == name
    assert status["live"] == "blue" and status["colours"]["green"]["version"] == "v2"
    assert status["edge"]["health"] == "healthy"
    assert [e["action"] for e in status["releases"]][-3:] == ["release", "release", "switch"]

    # top reads the remote edge the same way: its route state and its metrics, over the tunnel
    top = json.loads(ok(remote, "top", "--once", "--json").stdout)
    assert top["live"] == "blue" and top["colours"]["green"]["role"] == "standby"
    assert top["colours"]["green"]["version"] == "v2" and "backend" in top["services"]


def test_logs_exec_and_rollback_over_ssh(remote):
    host, config, name = remote
    assert serving(remote) == ("v1", "blue")  # v2 is the warm standby on green
    logs = ok(remote, "logs", "backend", "--tail", "5")
    assert "version=v1 colour=blue service=backend" in logs.stdout, logs.stdout
    assert ok(remote, "logs", "edge", "--tail", "2").stdout.strip()
    bad = cli(remote, "logs", "nosuch")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr

    # exec: the options before `--`, everything after it is the program's
    env = {**__import__("os").environ, "DEPLOYER_SSH_COMMAND": host.ssh_command, "DOCKER_HOST": ""}
    run = subprocess.run(
        [sys.executable, "-m", "deployer", "exec", "--config", str(config), "backend", "--colour", "standby",
         "--", "sh", "-c", "cat /etc/hostname; exit 4"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert run.returncode == 4, run.stderr
    green = {c.id[:12] for c in host.client.containers.list(filters={"label": "deployer.colour=green"})}
    assert run.stdout.strip() in green

    assert "would switch live traffic from blue (v1) to green (v2)" in ok(remote, "rollback", "--dry-run").stderr
    ok(remote, "rollback")
    assert serving(remote) == ("v2", "green")
    ok(remote, "rollback", "v1")
    assert serving(remote) == ("v1", "blue")


def test_images_only_on_this_machine_are_a_clear_error(remote):
    missing = cli(remote, "release", "v9", "--no-backup")
    assert missing.returncode == 2  # bad input: the image is nowhere to move it from
    assert f"does not exist on {remote[0].docker_host}" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_an_unreachable_host_fails_fast_naming_the_host_and_the_cause(tmp_path):
    env = tmp_path / "db.env"
    env.write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=x-password\n")
    env.chmod(0o600)
    config = tmp_path / "deployer.toml"
    config.write_text(
        '[project]\nname = "gone"\n[engine]\nhost = "ssh://deploy@127.0.0.1:9"\n'
        '[services.web]\nimage = "web"\nport = 80\nhealth = "/"\nroutes = ["/"]\n'
        '[database]\nenv_file = "db.env"\n[timeouts]\nrequest_timeout = 2\n'
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "deployer", "status", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "DEPLOYER_SSH_COMMAND": "ssh -o StrictHostKeyChecking=no"},
    )
    took = time.monotonic() - started
    assert result.returncode == 1
    assert "cannot reach ssh://deploy@127.0.0.1:9" in result.stderr
    assert "Connection refused" in result.stderr
    assert "Traceback" not in result.stderr
    assert took < 2 + 10 + 5, took
