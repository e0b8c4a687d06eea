"""A CD pipeline on real hosts, for tests/integration/test_cd.py and bench/cd_pipeline.py:
a build machine (the CI runner's engine), staging and production (dockerd + sshd test hosts
from tests/hosts) and a registry (Debian's docker-registry), on one docker network; and the
steps of the workflows that `deployer init --ci github` writes, run as the workflows run them.

The registry is named by its address on that network, which the hosts and this machine (the
CLI, which reads manifests before a promotion pulls) both reach; every dockerd trusts the
network's addresses as insecure (plain http) registries. `stray_registry()` adds a second
registry that logs every request it gets, for tests of what must never reach it. The CLI
reaches the three engines over ssh, with one ssh config that names them all
(DEPLOYER_SSH_COMMAND).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hosts.remote import REGISTRY_IMAGE, SSH, RemoteHost, docker_client, ensure_image, labels, wait_until
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "deployer" / "assets" / "ci" / "github"
BIN = Path(sys.executable).parent


def own_images() -> list[str]:
    """The deployer's own images, built on this machine's engine (the hosts reach no package mirror)."""
    from deployer.adapters.engine import Engine
    from deployer.config.model import DEFAULT_BASE_IMAGE
    from deployer.flows import images

    engine = Engine(None)
    try:
        return [images.own_image(engine, n, base_image=DEFAULT_BASE_IMAGE, say=print) for n in ("edge", "db", "agent")]
    finally:
        engine.close()


class Pipeline:
    """builder, staging and production hosts and a registry; `remove()` removes them all."""

    def __init__(self, folder: Path, *, preload: tuple[str, ...] = ()) -> None:
        self.name = f"cd{uuid.uuid4().hex[:8]}"
        self.folder = folder
        self.outer = docker_client()
        self.network = f"{self.name}-net"
        self.registry = ""  # <address on the network>:5000, once started
        self.registries: list = []  # the registry containers, to remove
        self.hosts = {
            role: RemoteHost(name=f"{self.name}-{role}", network=self.network, client=self.outer)
            for role in ("builder", "staging", "production")
        }
        self.preload = preload
        self.ssh_config = folder / "ssh_config"

    def __getattr__(self, role: str) -> RemoteHost:
        if role in ("builder", "staging", "production"):
            return self.hosts[role]
        raise AttributeError(role)

    def start(self) -> Pipeline:
        try:
            self._start()
        except BaseException:
            self.remove()
            raise
        return self

    def _start(self) -> None:
        own = own_images() + ["debian:trixie-slim"]
        network = self.outer.networks.create(self.network, driver="bridge", labels=labels())
        subnet = network.attrs["IPAM"]["Config"][0]["Subnet"]
        for host in self.hosts.values():
            host.dockerd_args = ["--insecure-registry", subnet]
        self.registry = self._registry("registry")
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda h: h.start(), self.hosts.values()))
            jobs = [pool.submit(self.staging.load_image, ref) for ref in own]
            jobs += [pool.submit(self.production.load_image, ref) for ref in own]
            jobs += [pool.submit(self.builder.load_image, ref) for ref in self.preload]
            for job in jobs:
                job.result()
        self.ssh_config.write_text("\n".join(h.ssh_config.read_text() for h in self.hosts.values()))
        wait_until(
            "the registry, from the builder",
            lambda: self.builder.exec(f"curl -fsS -o /dev/null http://{self.registry}/v2/")[0] == 0,
            timeout=30,
        )

    def _registry(self, role: str, **environment: str) -> str:
        container = self.outer.containers.run(
            ensure_image(REGISTRY_IMAGE, client=self.outer),
            name=f"{self.name}-{role}",
            detach=True,
            network=self.network,
            labels=labels(),
            environment=environment,
        )
        self.registries.append(container)
        container.reload()
        return f"{container.attrs['NetworkSettings']['Networks'][self.network]['IPAddress']}:5000"

    def stray_registry(self) -> tuple[str, object]:
        """Another registry on the network (the hosts may pull from it), which logs every request:
        (its address, its container)."""
        address = self._registry(f"stray{uuid.uuid4().hex[:4]}", REGISTRY_LOG_ACCESSLOG_DISABLED="false")
        wait_until(
            "the stray registry, from the builder",
            lambda: self.builder.exec(f"curl -fsS -o /dev/null http://{address}/v2/")[0] == 0,
            timeout=30,
        )
        return address, self.registries[-1]

    def env(self, config: Path, **extra: str) -> dict[str, str]:
        """The environment of a CI runner: the deployer on PATH, the build machine's engine,
        the hosts' ssh config."""
        return {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DOCKER_HOST": self.builder.docker_host,
            "DEPLOYER_SSH_COMMAND": f"{SSH} -F {self.ssh_config}",
            "DEPLOYER_CONFIG": str(config),
            **extra,
        }

    def remove(self) -> None:
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda h: h.remove(), self.hosts.values()))
        removals = [functools.partial(c.remove, force=True, v=True) for c in self.registries]
        for remove in (*removals, lambda: self.outer.networks.get(self.network).remove()):
            try:
                remove()
            except Exception as exc:  # gone already
                print(f"Pipeline: {exc}")


def workflow_step(workflow: str, job: str, step_id: str) -> str:
    """The `run` script of one step of a shipped workflow."""
    data = YAML(typ="safe").load((WORKFLOWS / workflow).read_text())
    return next(s["run"] for s in data["jobs"][job]["steps"] if s.get("id") == step_id)


def run_step(env: dict[str, str], workflow: str, job: str, step_id: str, timeout: float = 600, **variables: str):
    """Run a workflow step's script as Actions does (bash -e -o pipefail), with its variables."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", workflow_step(workflow, job, step_id)],
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
