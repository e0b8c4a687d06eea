"""`SwarmCluster`: three `RemoteHost`s on their own bridge network forming a Docker swarm, plus a registry;
or a swarm of its own beside another one (its network, its registry), as a second environment.

See the package docstring (tests/hosts/__init__.py) for the measured timings and the traps.
"""

from __future__ import annotations

import atexit
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import docker
import docker.errors

from .remote import (
    BASE_IMAGE,
    HOST_IMAGE,
    REGISTRY_IMAGE,
    HostExited,
    RemoteHost,
    RemoteHostError,
    container_logs,
    docker_client,
    ensure_image,
    labels,
    unique_name,
    wait_until,
)

_live: weakref.WeakSet[SwarmCluster] = weakref.WeakSet()


@atexit.register
def _remove_live_clusters() -> None:  # a safety net; fixtures and `with` blocks remove their clusters
    for cluster in list(_live):
        cluster.remove()


class SwarmCluster:
    """One manager and `workers` workers (RemoteHosts) on a dedicated user-defined bridge network, swarm
    formed, and a registry container (Debian's docker-registry) on the same network.

    - `registry` is `<the registry's address on the network>:5000` (this machine reaches it too: the CLI
      reads manifests there before a promotion pulls); every node's dockerd has `--insecure-registry` for
      the network's subnet, so `docker pull/push <registry>/<repo>:<tag>` works on the nodes (plain http).
    - `push(ref)` copies a local image into the registry (load into the manager, tag, push from the manager)
      and returns the registry reference to use in services.
    - `timings["form"]` is the seconds from `start()` to all nodes Ready.
    - `beside=<a started SwarmCluster>`: a swarm of its own (its own `swarm init`) whose nodes join that
      cluster's network and use its registry (`--insecure-registry` for it); `remove()` leaves the network
      and the registry to their owner (remove this cluster first).
    - Service VIPs and the ingress mesh do not work on this kernel (no IPVS): use `endpoint_mode: dnsrr`
      and `mode: host` published ports.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        name: str | None = None,
        base_image: str = BASE_IMAGE,
        client: docker.DockerClient | None = None,
        startup_timeout: float = 90.0,
        beside: SwarmCluster | None = None,
    ) -> None:
        self.name = name or unique_name("dswarm")
        self.beside = beside
        self.network = beside.network if beside else self.name
        self.registry_name = beside.registry_name if beside else f"{self.name}-registry"
        self.registry = ""  # <address on the network>:5000, once started
        self.subnet = ""  # the network's, whose registries every node trusts
        self.base_image = base_image
        self.startup_timeout = startup_timeout
        self._outer = client or docker_client()
        self._labels = labels(**{"deployer.testhost.cluster": self.name})
        self.manager = RemoteHost(name=f"{self.name}-m1", network=self.network,
                                  client=self._outer, startup_timeout=startup_timeout, base_image=base_image,
                                  extra_labels={"deployer.testhost.cluster": self.name})  # fmt: skip
        self.workers = [
            RemoteHost(
                name=f"{self.name}-w{i}",
                network=self.network,
                client=self._outer,
                startup_timeout=startup_timeout,
                base_image=base_image,
                extra_labels={"deployer.testhost.cluster": self.name},
            )  # fmt: skip
            for i in range(1, workers + 1)
        ]
        self.registry_container = None
        self.registry_port: int | None = None  # the registry's :5000 published on 127.0.0.1, for assertions
        self.timings: dict[str, float] = {}
        self._started = False
        self._removed = False
        _live.add(self)

    @property
    def nodes(self) -> list[RemoteHost]:
        return [self.manager, *self.workers]

    def __enter__(self) -> SwarmCluster:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.remove()

    # ------------------------------------------------------------------ start

    def start(self) -> SwarmCluster:
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.remove()
            raise
        return self

    def _start(self) -> None:
        t0 = time.monotonic()
        specs = (HOST_IMAGE,) if self.beside else (HOST_IMAGE, REGISTRY_IMAGE)
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(ensure_image, spec, client=self._outer, base_image=self.base_image)
                       for spec in specs]  # fmt: skip
            found = [f.result() for f in futures]
        host_image, registry_image = found[0], found[-1]
        self.timings["images"] = time.monotonic() - t0

        t1 = time.monotonic()
        if self.beside is not None:  # its network and its registry are the other cluster's
            self.registry_container = self.beside.registry_container
            self.registry, self.subnet = self.beside.registry, self.beside.subnet
        else:
            network = self._outer.networks.create(self.network, driver="bridge", labels=self._labels)
            self.subnet = network.attrs["IPAM"]["Config"][0]["Subnet"]
            self.registry_container = self._outer.containers.run(
                registry_image,
                name=self.registry_name,
                hostname=self.registry_name,
                detach=True,
                network=self.network,
                labels=self._labels,
                ports={"5000/tcp": ("127.0.0.1", None)},
            )
            self.registry_container.reload()
            self.registry = (
                f"{self.registry_container.attrs['NetworkSettings']['Networks'][self.network]['IPAddress']}:5000"
            )
        for host in self.nodes:
            host._image = host_image
            host.dockerd_args = ["--insecure-registry", self.subnet]
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            for future in [pool.submit(host.start) for host in self.nodes]:
                future.result()
        self.timings["hosts"] = time.monotonic() - t1

        t2 = time.monotonic()

        def registry_answers() -> bool:
            self.registry_container.reload()
            if self.registry_container.status in ("exited", "dead"):
                raise HostExited(f"registry exited:\n{container_logs(self.registry_container)}")
            ports = self.registry_container.attrs["NetworkSettings"]["Ports"]["5000/tcp"]
            self.registry_port = int(ports[0]["HostPort"])
            code, _ = self.manager.exec(f"curl -fsS -o /dev/null http://{self.registry}/v2/")
            return code == 0

        wait_until(f"the registry {self.registry} from the manager", registry_answers, timeout=30,
                   on_fail=lambda: "\n" + container_logs(self.registry_container))  # fmt: skip

        manager_ip = self.manager.ip
        self.manager.client.swarm.init(advertise_addr=manager_ip, listen_addr="0.0.0.0:2377")
        self.manager.client.swarm.reload()
        token = self.manager.client.swarm.attrs["JoinTokens"]["Worker"]

        def join(worker: RemoteHost) -> None:
            worker.client.swarm.join(remote_addrs=[f"{manager_ip}:2377"], join_token=token,
                                     advertise_addr=worker.ip, listen_addr="0.0.0.0:2377")  # fmt: skip

        with ThreadPoolExecutor(max_workers=max(1, len(self.workers))) as pool:
            for future in [pool.submit(join, w) for w in self.workers]:
                future.result()

        def all_ready() -> bool:
            nodes = self.manager.client.nodes.list()
            return len(nodes) == len(self.nodes) and all(n.attrs["Status"]["State"] == "ready" for n in nodes)

        wait_until(f"{len(self.nodes)} ready swarm nodes", all_ready, timeout=self.startup_timeout,
                   on_fail=self.manager._log_tail)  # fmt: skip
        self.timings["swarm"] = time.monotonic() - t2
        self.timings["form"] = time.monotonic() - t0

    # ------------------------------------------------------------------ use

    def push(self, ref: str) -> str:
        """Get the local image `ref` into the registry; return `<registry>/<name>:<tag>` for services."""
        self.manager.load_image(ref)
        name = ref.rsplit("/", 1)[-1]
        if ":" not in name:
            name += ":latest"
        target = f"{self.registry}/{name}"
        repo, tag = target.rsplit(":", 1)
        self.manager.client.images.get(ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest").tag(repo, tag)
        errors = [
            line.get("error") or line.get("errorDetail")
            for line in self.manager.client.api.push(repo, tag=tag, stream=True, decode=True)
            if "error" in line or "errorDetail" in line
        ]
        if errors:
            raise RemoteHostError(f"pushing {target} failed: {errors}")
        return target

    # ------------------------------------------------------------------ remove

    def remove(self) -> None:
        """Remove the nodes (containers + volumes), the registry and the network. Idempotent; never raises."""
        if self._removed:
            return
        self._removed = True
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(lambda h: h.remove(), self.nodes))
        if self.beside is not None:  # the network and the registry are the other cluster's
            _live.discard(self)
            return
        try:
            (self.registry_container or self._outer.containers.get(self.registry_name)).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except Exception as exc:
            print(f"SwarmCluster: could not remove {self.registry_name}: {exc}")
        deadline = time.monotonic() + 30
        while True:
            try:
                self._outer.networks.get(self.network).remove()
                break
            except docker.errors.NotFound:
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    print(f"SwarmCluster: could not remove network {self.network}: {exc}")
                    break
                time.sleep(0.5)
        _live.discard(self)

    stop = remove
