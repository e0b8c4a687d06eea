"""A deployer project on a real three-node swarm (tests/hosts SwarmCluster), for the swarm test
(tests/integration/test_swarm.py) and the swarm benchmark (bench/swarm.py).

- The nodes pull every image from the cluster's registry. The deployer's own images are built
  on this machine (the nodes reach no package mirror) and loaded into the manager, where
  `deployer up` finds them and pushes them to the registry. The app's versions are pushed
  there before the test, as CI would; they are also on the manager, as `deployer push` leaves
  them.
- The app is the test app with a HEALTHCHECK for a busy machine (every 5 s, 10 s to answer):
  swarm replaces a task whose check fails, and three nested engines on two cores are slow
  to start a Python interpreter (the test app's own check allows 2 s).
- With `db_on_worker`, the first worker is labelled `deployer.db` as well and the config pins
  the database there (`[swarm] db_constraints`): the backup agent stays on the manager.
- Load runs in a container on the manager, in the node's network, against the edge replicas'
  host-mode ports on the node addresses: traffic never leaves the cluster's own containers.
- `second_cluster()` starts another environment's swarm for the same project (one manager,
  on this cluster's network, pulling from its registry), and `write_environments()` the config
  that names both (staging: this cluster, production: that one) for `deployer promote`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from hosts import SwarmCluster
from hosts.remote import SSH

PORT = 8080  # the edge's public port, in host mode on each edge node (inside the node containers)
HEALTHCHECK = (
    "HEALTHCHECK --interval=5s --timeout=10s --start-period=2s --retries=3 CMD python3 -c "
    "\"import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % "
    "(os.environ.get('PORT') or '8080'), timeout=9)\" || exit 1\n"
)

# Bounded load: one new connection per request, against each URL in turn, for SECONDS.
# Prints one JSON line: counts, latency, versions, and every failure or slow answer with its time.
LOAD = r"""
import json, sys, threading, time, urllib.request
seconds, urls = float(sys.argv[1]), sys.argv[2:]
start = time.time(); ok = failed = 0; lat = []; fails = []; slow = []; versions = {}; by_path = {}
stop = threading.Event()  # "stop" on stdin ends the load before its seconds (finish(load, stop=True))
threading.Thread(target=lambda: sys.stdin.readline().strip() == "stop" and stop.set(), daemon=True).start()
i = 0
while time.time() - start < seconds and not stop.is_set():
    url = urls[i % len(urls)]; i += 1
    t = time.time(); err = ""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body, code = r.read(), r.status
    except Exception as exc:
        body, code, err = b"", getattr(exc, "code", 0) or 0, type(exc).__name__
    d = time.time() - t; lat.append(d)
    path = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    stats = by_path.setdefault("/" + path, [0, 0])
    if code == 200:
        ok += 1; stats[0] += 1
        try:
            v = json.loads(body)["version"]; versions[v] = versions.get(v, 0) + 1
        except Exception:
            pass
    else:
        failed += 1; stats[1] += 1
        fails.append([round(t - start, 2), url, code, err])
    if d > 1:
        slow.append([round(t - start, 2), url, round(d, 2)])
    time.sleep(0.01)
lat.sort()
print(json.dumps({"ok": ok, "failed": failed, "start": start, "seconds": round(time.time() - start, 1),
                  "p99_s": round(lat[int(len(lat) * 0.99)], 3) if lat else None,
                  "max_s": round(lat[-1], 3) if lat else None, "versions": versions, "by_path": by_path,
                  "fails": fails[:200], "slow": slow[:200]}))
"""


def own_images() -> list[str]:
    """The deployer's own images, built on this machine's engine."""
    from deployer.adapters.engine import Engine
    from deployer.config.model import DEFAULT_BASE_IMAGE
    from deployer.flows import images

    engine = Engine(None)
    try:
        return [images.own_image(engine, n, base_image=DEFAULT_BASE_IMAGE, say=print) for n in ("edge", "db", "agent")]
    finally:
        engine.close()


class SwarmProject:
    """A started cluster (edge nodes: the manager and the first worker, labelled) and a project on it."""

    def __init__(
        self,
        folder: Path,
        docker_client,
        app_image: str,
        versions: tuple[str, ...] = ("v1", "v2", "v3"),
        *,
        db_on_worker: bool = False,
    ):
        self.folder = folder
        self.db_on_worker = db_on_worker
        self.docker = docker_client
        self.name = f"s{uuid.uuid4().hex[:7]}"
        self.cluster = SwarmCluster()
        self.timings: dict[str, float] = {}
        self._app = f"{self.name}-app:swarm"
        self._app_image = app_image
        self.versions = versions

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> SwarmProject:
        t = time.monotonic()
        self.cluster.start()
        self.timings["cluster"] = time.monotonic() - t
        for node in self.cluster.manager.client.nodes.list():
            hostname = node.attrs["Description"]["Hostname"]
            if hostname in (self.manager.name, self.edge_worker.name):
                spec = node.attrs["Spec"]
                spec["Labels"] = {**(spec.get("Labels") or {}), "deployer.edge": "true"}
                if self.db_on_worker and hostname == self.edge_worker.name:
                    spec["Labels"]["deployer.db"] = "true"
                node.update(spec)
        t = time.monotonic()
        for ref in own_images():
            self.manager.load_image(ref)
        self.timings["own images"] = time.monotonic() - t
        t = time.monotonic()
        dockerfile = f"FROM {self._app_image}\n{HEALTHCHECK}"
        self.docker.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=self._app, rm=True)
        for version in self.versions:
            for service in ("backend", "frontend"):
                ref = f"{self.name}-{service}:{version}"
                self.docker.images.get(self._app).tag(ref)
                self.cluster.push(ref)
                self.docker.images.remove(ref)
        self.timings["app images"] = time.monotonic() - t
        env = self.folder / "db.env"
        env.write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=swarm-secret-pw\n")
        env.chmod(0o600)
        app_env = self.folder / "backend.env"  # a secret of the app's own, as a swarm secret
        app_env.write_text("APP_TOKEN=swarm-app-token-1\nAPP_MODE=swarm\n")
        app_env.chmod(0o600)
        self.write_config()
        return self

    def remove(self) -> None:
        self.cluster.remove()
        try:
            self.docker.images.remove(self._app, force=True)
        except Exception:
            pass

    @property
    def manager(self):
        return self.cluster.manager

    @property
    def edge_worker(self):
        return self.cluster.workers[0]

    @property
    def other_worker(self):
        """The worker with no edge replica: the one a node-loss test stops."""
        return self.cluster.workers[1]

    @property
    def edge_urls(self) -> list[str]:
        return [f"http://{self.manager.ip}:{PORT}", f"http://{self.edge_worker.ip}:{PORT}"]

    # -- config and CLI ---------------------------------------------------------------------
    def write_config(
        self,
        *,
        backend: int = 2,
        frontend: int = 2,
        swarm: str = "",
        placement: str = "",
        extra: str = "",
        file: str = "deployer.toml",
        database: str = "",
    ) -> None:
        """`placement`: the backend's placement constraints, as TOML; `database`: one more line of [database]."""
        swarm = swarm or 'edge_replicas = 2\nedge_constraints = ["node.labels.deployer.edge == true"]\n' + (
            'db_constraints = ["node.labels.deployer.db == true"]\n' if self.db_on_worker else ""
        )
        (self.folder / file).write_text(
            textwrap.dedent(
                f"""
                [project]
                name = "{self.name}"
                restart = "always"
                [engine]
                host = "{self.manager.docker_host}"
                mode = "swarm"
                [registry]
                url = "{self.cluster.registry}"
                anonymous = true
                [services.backend]
                image = "{self.name}-backend"
                port = 8080
                health = "/health"
                routes = ["/api/"]
                stop_grace = 5
                replicas = {backend}
                placement = {placement or "[]"}
                env_file = "backend.env"
                secrets = ["APP_TOKEN"]
                [services.frontend]
                image = "{self.name}-frontend"
                port = 8081
                health = "/health"
                routes = ["/"]
                stop_grace = 5
                replicas = {frontend}
                [edge]
                public_port = {PORT}
                expose_colour = true
                [database]
                env_file = "db.env"
                {database.strip()}
                [timeouts]
                health_deadline = 120
                [smoke]
                paths = ["/api/version", "/"]
                [watch]
                window = 0
                """
            )
            + "[swarm]\n"
            + swarm
            + extra
        )

    @property
    def config(self) -> Path:
        return self.folder / "deployer.toml"

    def _command(self, args: tuple[str, ...], host=None, config: Path | None = None, env=None):
        """(argv, environment) of the CLI on this cluster; `config`: another config of the folder
        (environments.toml reaches both clusters' managers); `env`: test hooks."""
        host = host or self.manager
        if args[:1] == ("up",):  # the deployer's images as the tree is now (another edit changes their tags)
            for ref in own_images():
                self.manager.load_image(ref)
        ssh = f"{SSH} -F {self.folder / 'ssh_config'}" if config == self.environments else host.ssh_command
        argv = [sys.executable, "-m", "deployer", *args, "--config", str(config or self.config)]
        return argv, {**os.environ, "DEPLOYER_SSH_COMMAND": ssh, "DOCKER_HOST": "", **(env or {})}

    def cli(
        self, *args: str, host=None, timeout: float = 400, config: Path | None = None, env=None
    ) -> subprocess.CompletedProcess:
        argv, environment = self._command(args, host, config, env)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=environment)

    def popen(self, env: dict[str, str], *args: str) -> subprocess.Popen:
        """The CLI in the background, with test hooks in its environment."""
        argv, environment = self._command(args, env=env)
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)

    def typed(self, answer: str, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
        """The CLI with a terminal on stdin, where `answer` is typed at its prompt."""
        argv, environment = self._command(args)
        master, terminal = os.openpty()
        try:
            proc = subprocess.Popen(
                argv, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
            )
            os.write(master, f"{answer}\n".encode())
            out, err = proc.communicate(timeout=timeout)
        finally:
            os.close(terminal)
            os.close(master)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def ok(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
        result = self.cli(*args, config=config)
        assert result.returncode == 0, f"deployer {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def timed(self, *args: str) -> float:
        t = time.monotonic()
        self.ok(*args)
        return time.monotonic() - t

    # -- what users see ---------------------------------------------------------------------
    def get(self, url: str) -> dict:
        """One request from inside the manager node (its network reaches every node)."""
        code, out = self.manager.exec(["curl", "-s", "--max-time", "5", url])
        return json.loads(out) if code == 0 and out.startswith("{") else {"error": code, "body": out[:200]}

    def serving(self, path: str = "/api/version") -> set[tuple[str, str]]:
        """(version, colour) answered by each edge replica."""
        return {(a.get("version"), a.get("colour")) for a in (self.get(u + path) for u in self.edge_urls)}

    def load(self, seconds: float, paths: tuple[str, ...] = ("/api/version",)) -> subprocess.Popen:
        """Bounded load in a container on the manager (its node's network); `finish(load)` reads it."""
        urls = [u + p for p in paths for u in self.edge_urls]
        image = f"{self.name}-backend:{self.versions[0]}"
        cmd = ["docker", "exec", "-i", self.manager.container.name, "docker", "run", "-i", "--rm", "--network",
               "host", image, "python3", "-c", LOAD, str(seconds), *urls]  # fmt: skip
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def finish(load: subprocess.Popen, timeout: float = 300, *, stop: bool = False) -> dict:
        """The load's figures once it ends: at its seconds, or at once with `stop`."""
        out, err = load.communicate("stop\n" if stop else None, timeout=timeout)
        lines = [x for x in out.splitlines() if x.startswith("{")]
        assert lines, f"the load generator printed nothing: {err[-2000:]}"
        return json.loads(lines[-1])

    # -- the cluster's view -----------------------------------------------------------------
    def tasks(self, service: str) -> list[dict]:
        """Running tasks of a stack service (`<stack>_<service>`)."""
        found = self.manager.client.api.tasks(filters={"service": service, "desired-state": "running"})
        return [t for t in found if t["Status"]["State"] == "running"]

    def node_of(self, service: str) -> str:
        """The hostname of the node that runs a one-task stack service (`<stack>_<service>`)."""
        (task,) = self.tasks(service)
        return self.manager.client.nodes.get(task["NodeID"]).attrs["Description"]["Hostname"]

    def psql(self, sql: str) -> str:
        """A query in the database's own container, on whichever node runs it (as the app's login)."""
        for node in self.cluster.nodes:
            found = node.client.containers.list(filters={"label": f"com.docker.swarm.service.name={self.name}-db_db"})
            if found:
                code, out = found[0].exec_run(
                    ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "app",
                     "-d", "app", "-c", sql], environment={"PGPASSWORD": "swarm-secret-pw"}
                )  # fmt: skip
                assert code == 0, out.decode()
                return out.decode().strip()
        raise AssertionError("no node runs the database's container")

    def services(self) -> list[str]:
        return sorted(s["Spec"]["Name"] for s in self.manager.client.api.services())

    def control(self, manager=None) -> str:
        """The control container's name on the manager (or on another cluster's `manager`)."""
        found = (manager or self.manager).client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={self.name}-infra_control"}
        )
        return found[0].name

    def history(self, manager=None) -> list[dict]:
        """The history entries, as the control container on the manager (or `manager`) keeps them."""
        manager = manager or self.manager
        control = self.control(manager)
        out = manager.client.containers.get(control).exec_run(["cat", "/var/lib/deployer/history.jsonl"])
        assert out.exit_code == 0, f"the history could not be read in {control}: {out.output.decode()[-500:]}"
        return [json.loads(line) for line in out.output.decode().splitlines() if line.startswith("{")]

    def resolve(self, name: str) -> set[str]:
        """What Docker's DNS answers for a name on the edge network, asked from the control container."""
        out = self.manager.client.containers.get(self.control()).exec_run(["getent", "ahostsv4", name]).output
        return {line.split()[0] for line in out.decode().splitlines() if line.strip()}

    def push_again(self, version: str, lines: str) -> None:
        """Push each service's tag `version` to the registry again, as another image: the app's
        plus the Dockerfile `lines` (as a CI re-run that built something else would). The
        manager's own `<service image>:<version>` tags stay as they were."""
        built = f"{self.name}-again:{version}"
        self.docker.images.build(fileobj=io.BytesIO(f"FROM {self._app}\n{lines}".encode()), tag=built, rm=True)
        try:
            for service in ("backend", "frontend"):
                ref = f"{self.name}-again/{self.name}-{service}:{version}"
                self.docker.images.get(built).tag(ref)
                self.cluster.push(ref)  # to <registry>/<name>-<service>:<version>
                self.docker.images.remove(ref)
        finally:
            self.docker.images.remove(built, force=True)

    # -- a second environment ---------------------------------------------------------------
    def second_cluster(self) -> SwarmCluster:
        """Another environment's swarm for this project: one manager beside this cluster (its
        network, its registry), labelled for the edge and the database, holding the deployer's
        images (`deployer up` there pushes none: this cluster's `up` did)."""
        other = SwarmCluster(workers=0, name=f"{self.cluster.name}-p", beside=self.cluster).start()
        try:
            (node,) = other.manager.client.nodes.list()
            spec = node.attrs["Spec"]
            spec["Labels"] = {**(spec.get("Labels") or {}), "deployer.edge": "true", "deployer.db": "true"}
            node.update(spec)
            for ref in own_images():
                other.manager.load_image(ref)
        except BaseException:
            other.remove()
            raise
        return other

    @property
    def environments(self) -> Path:
        return self.folder / "environments.toml"

    def write_environments(self, production: SwarmCluster) -> None:
        """environments.toml: this project as [environments.staging] (this cluster, its
        deployment as `up` made it) and [environments.production] (`production`'s manager), and
        an ssh config that reaches both. The swarm settings are the config's, which no
        environment overrides: one edge replica and one replica of each service, on the nodes
        labelled for them (production has a single node)."""
        swarm = (
            'edge_replicas = 1\nedge_constraints = ["node.labels.deployer.edge == true"]\n'
            'db_constraints = ["node.labels.deployer.db == true"]\n'
        )
        hosts = (
            f'[environments.staging]\nengine.host = "{self.manager.docker_host}"\n'
            f'[environments.production]\nengine.host = "{production.manager.docker_host}"\n'
        )
        self.write_config(backend=1, frontend=1, swarm=swarm, extra=hosts, file=self.environments.name)
        (self.folder / "ssh_config").write_text(
            "\n".join(h.ssh_config.read_text() for h in (self.manager, production.manager))
        )
