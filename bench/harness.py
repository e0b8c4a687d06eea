"""What the benchmarks share: their images, wrk runs on the project's network, and socket counts.

- Images are built with the classic builder through the docker SDK, tagged by a hash of
  their folder's files (built once per content, like the test app in tests/conftest.py):
  `bench/images/load` (wrk + the slow-client holder), `bench/images/fastapp` (nginx
  answering a fixed JSON with the test app's identity headers).
- Load runs in a container on the project's edge network and talks to the proxies by
  container name, never through a host port. Every run is bounded by wrk's `-d` (and a
  hard timeout here); the containers are named `<project>-bench-...` and labelled
  `deployer.project=<project>`, so `Stack.destroy()` removes any that is left.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for _p in (str(ROOT), str(ROOT / "tests"), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from deployer.config.model import DEFAULT_BASE_IMAGE as BASE_IMAGE  # noqa: E402
from deployer.core import edgelayout  # noqa: E402

TIME_WAIT = "06"


# -- images ------------------------------------------------------------------------
def folder_tag(folder: Path) -> str:
    """A hash of a folder's files (names and bytes), as tests/conftest.py tags the test app."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def ensure_image(client, folder: Path, repo: str) -> str:
    tag = f"{repo}:{folder_tag(folder)}"
    try:
        client.images.get(tag)
    except Exception:  # not built yet
        print(f"building {tag}", file=sys.stderr)
        client.images.build(path=str(folder), tag=tag, rm=True, forcerm=True, buildargs={"BASE_IMAGE": BASE_IMAGE})
    return tag


def test_app_image(client) -> str:
    """The test app (tests/app), with the same tag as the tests' fixture gives it."""
    return ensure_image(client, ROOT / "tests" / "app", "deployer-testapp")


def load_image(client) -> str:
    return ensure_image(client, BENCH / "images" / "load", "deployer-benchload")


def fastapp_image(client) -> str:
    return ensure_image(client, BENCH / "images" / "fastapp", "deployer-fastapp")


# -- the project's network -------------------------------------------------------
def address(container, network: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def tcp_states(
    container, listen_ports: tuple[int, ...] = (edgelayout.PUBLIC_PORT, edgelayout.PREVIEW_PORT)
) -> dict[str, int]:
    """TIME_WAIT sockets in a container's network namespace (read from /proc/net/tcp inside it):
    `client_side` (local port one of the proxy's listening ports: the clients' connections),
    `upstream_side` (every other: the proxy's own connections to the app) and `established`."""
    code, out = container.exec_run(["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"])
    counts = {"time_wait": 0, "client_side": 0, "upstream_side": 0, "established": 0}
    if code != 0:
        return counts
    for line in out.decode(errors="replace").splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4 or ":" not in parts[1]:
            continue
        state, local_port = parts[3], int(parts[1].rsplit(":", 1)[1], 16)
        if state == "01":
            counts["established"] += 1
        elif state == TIME_WAIT:
            counts["time_wait"] += 1
            counts["client_side" if local_port in listen_ports else "upstream_side"] += 1
    return counts


def cpu_ns(container) -> int | None:
    """CPU time the container has used so far (ns, the engine's stats), None when unknown."""
    if container is None:
        return None
    try:
        return int(container.stats(stream=False, one_shot=True)["cpu_stats"]["cpu_usage"]["total_usage"])
    except Exception:  # an engine without one-shot stats
        return None


def logging_cpu_ns(container) -> int | None:
    """CPU time (ns) of what carries a container's stdout to its log on this machine: dockerd and
    the container's containerd shim. Local engine only (None elsewhere); dockerd serves every
    container, so this is only meaningful on an otherwise quiet engine."""
    import os

    if container is None:
        return None
    try:
        pids = [int(Path("/var/run/docker.pid").read_text().strip())]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"-id" in cmd and container.id.encode() in cmd and b"containerd-shim" in cmd[0]:
                    pids.append(int(entry))
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        return total * 1_000_000_000 // tick
    except (OSError, ValueError, IndexError):
        return None


def cpu_times() -> list[int] | None:
    """This machine's CPU time by kind since boot (the `cpu` line of /proc/stat, in ticks: user,
    nice, system, idle, iowait, irq, softirq, steal, ...); None where there is none."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share (per cent) of this machine's CPU time between two `cpu_times()` that the
    hypervisor gave to other guests (steal): a run during which it was high measured a slower
    machine."""
    if not before or not after or len(before) < 8 or len(after) < 8:
        return None
    total = sum(after[:8]) - sum(before[:8])
    return round(100 * (after[7] - before[7]) / total, 1) if total > 0 else None


def wait_http(container, url: str, timeout: float = 30) -> None:
    """Until `curl url` inside the container answers 2xx."""
    deadline = time.monotonic() + timeout
    while True:
        code, out = container.exec_run(["curl", "-fsS", "-o", "/dev/null", "--max-time", "2", url])
        if code == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} does not answer in {container.name}: {out.decode(errors='replace')}")
        time.sleep(0.3)


# -- wrk -------------------------------------------------------------------------
@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    socket_errors: int
    errors: dict
    non_2xx: int  # exact with count_statuses, else wrk's own count of statuses > 399
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict
    non2xx_at: dict  # unix second -> non-2xx answers (count_statuses only)

    @property
    def failures(self) -> int:
        return self.socket_errors + self.non_2xx

    def row(self) -> dict:
        return {
            "requests": self.requests, "seconds": round(self.seconds, 2), "rps": round(self.rps, 1),
            "failures": self.failures, "socket_errors": self.socket_errors, "non_2xx": self.non_2xx,
            "errors": self.errors, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms,
            "max_ms": self.max_ms, "statuses": self.statuses, "non2xx_at": self.non2xx_at,
        }  # fmt: skip


def parse_wrk(text: str) -> WrkResult:
    line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{text[-2000:]}")
    d = json.loads(line[len("WRK_JSON ") :])
    e = d["errors"]
    socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
    statuses = {int(k): v for k, v in d["statuses"].items()}
    non_2xx = sum(v for k, v in statuses.items() if not 200 <= k < 300) if statuses else e["status"]
    seconds = d["duration_us"] / 1e6
    ms = lambda us: round(us / 1000, 2)  # noqa: E731
    lat = d["latency_us"]
    return WrkResult(
        d["requests"], seconds, d["requests"] / seconds if seconds else 0.0, socket_errors, e, non_2xx,
        ms(lat["p50"]), ms(lat["p90"]), ms(lat["p99"]), ms(lat["max"]), statuses,
        {int(k): v for k, v in d["non2xx_at"].items()},
    )  # fmt: skip


def wrk_argv(url: str, *, connections: int, seconds: float, threads: int = 2, close: bool = False,
             timeout: float = 5.0) -> list[str]:  # fmt: skip
    argv = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout:g}s", "--latency", "-s", "/bench/pace.lua"]  # fmt: skip
    if close:
        argv += ["-H", "Connection: close"]
    return argv + [url]


CLIENT_SYSCTLS = {"net.ipv4.tcp_tw_reuse": "1", "net.ipv4.ip_local_port_range": "1024 65535"}


class Lane:
    """One load container on the project's network, detached; `result()` waits for it (or
    ends it early with SIGINT, upon which wrk prints its summary) and removes it."""

    def __init__(self, client, image: str, project: str, network: str, argv: list[str], *, env: dict | None = None,
                 label: str = "wrk") -> None:  # fmt: skip
        self.client = client
        self.name = f"{project}-bench-{label}-{uuid.uuid4().hex[:6]}"
        self.container = client.containers.run(
            image,
            argv,
            name=self.name,
            network=network,
            environment=env or {},
            labels={"deployer.project": project, "deployer.role": "bench"},
            # A load generator that opens a connection per request closes it first, so its
            # own ports sit in TIME_WAIT: without reuse (and the whole range), its connect()
            # soon spends the 2 cores searching for a free port, and the run measures that.
            sysctls=CLIENT_SYSCTLS,
            detach=True,
        )

    def interrupt(self) -> None:
        try:
            self.container.kill(signal="SIGINT")
        except Exception:  # it may have ended already
            pass

    def output(self, timeout: float) -> str:
        try:
            self.container.wait(timeout=timeout)
        except Exception:  # a hung lane: stop it, keep what it printed
            self.interrupt()
            time.sleep(2)
        try:
            return self.container.logs().decode(errors="replace")
        finally:
            remove(self.container)

    def result(self, timeout: float) -> WrkResult:
        return parse_wrk(self.output(timeout))


def run_wrk(client, image: str, project: str, network: str, url: str, *, connections: int, seconds: float,
            close: bool = False, threads: int = 2, env: dict | None = None) -> WrkResult:  # fmt: skip
    lane = Lane(client, image, project, network,
                wrk_argv(url, connections=connections, seconds=seconds, threads=threads, close=close), env=env)  # fmt: skip
    return lane.result(timeout=seconds + 60)


def remove(container) -> None:
    try:
        container.remove(force=True, v=True)
    except Exception:  # already gone
        pass


def remove_named(client, prefix: str) -> None:
    """Every container whose name starts with prefix (the bench's own, on failure)."""
    for c in client.containers.list(all=True, filters={"name": f"^{prefix}"}, sparse=True):
        try:
            client.containers.get(c.id).remove(force=True, v=True)
        except Exception:  # already gone
            pass


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


# -- the app's own time to healthy, measured outside the deployer --------------------
def current_release(stack, colour: str) -> str:
    """The colour's current release id in the edge's route state ('' when it has none)."""
    for line in stack.edge_file(f"{edgelayout.STATE}/{colour}").splitlines():
        if line.startswith("release "):
            return line.split(" ", 1)[1].strip()
    return ""


class ReleaseClock:
    """When does each service of a colour's NEXT release first answer its own health path?

    Polls `GET <preview>/_deployer/health/<colour>` every `interval` s (one request: the
    edge asks every service of the colour's current release and lists `<service> <status>`,
    with the release in X-Deployer-Release) from a thread, and notes for each service the
    first 2xx/3xx of a release other than `old`. The app's own time to healthy is then, per
    service, its container's StartedAt to that moment (`app_seconds`), and the release's
    overhead is its wall time minus the largest of them.

    The edge routes to a release only once the deployer has written its route state (after
    `compose up`), so an app that is healthy sooner than that is seen only then: the figure
    is meant for apps that take a moment to start (STARTUP_DELAY)."""

    def __init__(self, preview_url: str, colour: str, old: str, services: list[str], *, interval: float = 0.02,
                 limit: float = 600) -> None:  # fmt: skip
        import threading

        self.url = f"{preview_url}/_deployer/health/{colour}"
        self.colour, self.old, self.services = colour, old, list(services)
        self.interval, self.limit = interval, limit
        self.release = ""
        self.first_ok: dict = {}  # service -> datetime (UTC)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True, name=f"clock-{colour}")

    def __enter__(self) -> ReleaseClock:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _poll(self) -> None:
        from datetime import datetime

        import httpx

        deadline = time.monotonic() + self.limit
        with httpx.Client(timeout=1) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    r = client.get(self.url)
                    release = r.headers.get("x-deployer-release", "")
                    if release and release != self.old:
                        now = datetime.now(UTC)
                        if release != self.release:
                            self.release, self.first_ok = release, {}
                        for line in r.text.splitlines():
                            name, _, code = line.partition(" ")
                            if code.isdigit() and 200 <= int(code) < 400 and name not in self.first_ok:
                                self.first_ok[name] = now
                        if all(s in self.first_ok for s in self.services):
                            return
                except httpx.HTTPError:
                    pass
                self._stop.wait(self.interval)

    def app_seconds(self, docker_client, project: str) -> dict[str, float]:
        """Per service: StartedAt of its container in the release to its first healthy answer."""
        from datetime import datetime

        out = {}
        if not self.release:
            return out
        labels = [f"deployer.project={project}", f"deployer.release={self.release}"]
        for c in docker_client.containers.list(all=True, filters={"label": labels}):
            service = c.labels.get("deployer.service", "")
            if service in self.first_ok:
                started = datetime.fromisoformat(c.attrs["State"]["StartedAt"][:26].rstrip("Z") + "+00:00")
                out[service] = round((self.first_ok[service] - started).total_seconds(), 3)
        return out
