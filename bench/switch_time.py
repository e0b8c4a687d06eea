"""How fast are `deployer switch` and `deployer release`, on an otherwise idle edge: locally,
on a remote engine over ssh, and with 2, 4 and 8 services.

- switch: wall time of the CLI process (python start-up included), N alternating switches,
  and how many `docker exec`s each one ran in the edge (the engine's exec_start events,
  without the edge's own healthcheck): the goal is one, whatever the number of services.
- release: wall time of `deployer release --no-backup` minus the app's own time to become
  healthy, measured outside the deployer (bench/harness.ReleaseClock: each service's
  container StartedAt to its first healthy answer through the edge's preview port, polled
  every 20 ms). The app is the test app with STARTUP_DELAY, a stand-in for a slow-starting
  Spring app. The first release of a scenario (to an empty edge) is not counted.

Scenarios, each on its own throwaway project, removed at the end even on failure:

- local, `--services` counts (default 2, 4, 8): `backend` (/api/), `frontend` (/), then
  `svc3`... (/svc3/ ...), all the test app;
- remote, 2 services (`--no-remote` skips it): a RemoteHost (tests/hosts: dockerd + sshd in
  a container, reached over ssh on 127.0.0.1) started here; the config says
  `[engine] host = "ssh://<alias>"` and DEPLOYER_SSH_COMMAND is `ssh -F <its config>`. The
  test app and the deployer's own images (edge, db, agent, as the local scenario's
  `deployer up` built them) are loaded into it first; `--remote-build` lets `deployer up`
  build its own images on the remote engine instead (timed). The bench reaches the remote
  edge's preview port through an ssh forward on a free local port.

    .venv/bin/python bench/switch_time.py --switches 30 --releases 5 --startup-delay 4 \\
        --json bench/results/switch-time.json
    .venv/bin/python bench/switch_time.py --switches 3 --releases 1 --services 2,4   # quick look
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import harness
from harness import ReleaseClock, current_release

HEALTHCHECK_MARK = "/_deployer/edge"  # the edge image's HEALTHCHECK command, not the deployer's exec


def other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


def service_names(n: int) -> list[str]:
    return ["backend", "frontend", *(f"svc{i}" for i in range(3, n + 1))][:n]


def services_toml(name: str, services: list[str]) -> str:
    routes = {"backend": "/api/", "frontend": "/"}
    return "".join(
        f"""
        [services.{s}]
        image = "{name}-{s}"
        port = 8080
        health = "/health"
        routes = ["{routes.get(s, f"/{s}/")}"]
        stop_grace = 5
        """
        for s in services
    )


def tag_all(stack, version: str, services: list[str], env: dict | None) -> None:
    """`<project>-<service>:<version>` for every service: one image (the test app with env
    baked in), tagged once per service."""
    first = f"{stack.name}-{services[0]}:{version}"
    if env:
        dockerfile = f"FROM {stack.app_image}\n" + "".join(f"ENV {k}={v}\n" for k, v in env.items())
        stack.docker.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=first, rm=True)
    else:
        stack.docker.images.get(stack.app_image).tag(first)
    image = stack.docker.images.get(first)
    stack.images.append(first)
    for s in services[1:]:
        image.tag(f"{stack.name}-{s}", version)
        stack.images.append(f"{stack.name}-{s}:{version}")


class EdgeExecs:
    """Records the engine's exec_start events of the edge as they happen (the engine keeps only
    its last 256 events, too few to ask afterwards on a busy machine), without the edge image's
    own healthcheck; `count(windows)` says how many fell in each (start, end) wall-clock window."""

    def __init__(self, client, edge_id: str) -> None:
        import threading

        self.stamps: list[float] = []
        self._stream = client.events(decode=True, filters={"type": "container", "event": "exec_start",
                                                           "container": edge_id})  # fmt: skip
        self._thread = threading.Thread(target=self._read, daemon=True, name="edge-execs")
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with close()
            for e in self._stream:
                if HEALTHCHECK_MARK not in (e.get("Action") or e.get("status", "")):
                    self.stamps.append(e.get("timeNano", 0) / 1e9)

    def count(self, windows: list[tuple[float, float]]) -> list[int]:
        time.sleep(0.5)  # the last events are on their way
        return [sum(lo <= t <= hi for t in self.stamps) for lo, hi in windows]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()
        self._thread.join(2)


def release_steps(stack) -> dict[str, dict]:
    """The deployer's own step timings of each release, from the edge's history: version -> steps."""
    out = {}
    for line in stack.edge_file("/var/lib/deployer/history.jsonl").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("action", entry.get("kind")) == "release" or "steps" in entry:
            out[str(entry.get("version"))] = entry.get("steps") or {}
    return out


def colour_memory(client, project: str) -> dict[str, float]:
    """MiB of memory in use (the engine's stats, page cache left out) by each colour's release
    containers: what keeping a warm standby costs."""
    out = {"blue": 0.0, "green": 0.0}
    for c in client.containers.list(filters={"name": f"{project}-"}):
        colour = c.name[len(project) + 1 :].split("-", 1)[0]
        if colour not in out:
            continue
        mem = c.stats(stream=False).get("memory_stats") or {}
        stats = mem.get("stats") or {}
        cache = stats.get("inactive_file", stats.get("total_inactive_file", 0))
        out[colour] += max(0, mem.get("usage", 0) - cache) / 2**20
    return {k: round(v, 1) for k, v in out.items()}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Scenario:
    """One project on one engine: releases, then switches, each timed."""

    def __init__(self, stack, where: str, n: int, args, preview_url, engine_extra: str = "") -> None:
        self.stack, self.where, self.n, self.args = stack, where, n, args
        self.preview_url = preview_url  # a callable: the edge's preview URL as this machine reaches it
        self.services = service_names(n)
        self.engine_extra = engine_extra
        self.releases: list[dict] = []
        self.switches: list[float] = []
        self.switch_execs: list[int] = []
        self.up_seconds = 0.0
        self.built: list[str] = []  # images `deployer up` built on the engine
        self.last_output = ""
        self.memory: dict[str, float] = {}

    def wall(self, *argv: str) -> float:
        began = time.monotonic()
        result = self.stack.cli(*argv)
        took = time.monotonic() - began
        if result.returncode != 0:
            raise SystemExit(f"[{self.where}] deployer {' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
        self.last_output = result.stdout + result.stderr
        return took

    def run(self) -> dict:
        s, a = self.stack, self.args
        s.write_config(services=services_toml(s.name, self.services), extra=self.engine_extra)
        env = {"STARTUP_DELAY": f"{a.startup_delay:g}"}
        versions = [f"v{i}" for i in range(a.releases + 1)]
        for v in versions:
            tag_all(s, v, self.services, env)
        self.up_seconds = self.wall("up")
        self.built = [
            line.split("building ", 1)[1].strip() for line in self.last_output.splitlines() if "building " in line
        ]
        self.wall("release", versions[0], "--no-backup")
        preview = self.preview_url()
        execs = EdgeExecs(s.docker, s.edge.id)
        try:
            self._measure(versions, preview, execs)
        finally:
            execs.close()
        return self.summary()

    def _measure(self, versions: list[str], preview: str, execs: EdgeExecs) -> None:
        s, a = self.stack, self.args
        live = "blue"
        windows = []
        for v in versions[1:]:
            idle = other(live)
            old = current_release(s, idle)
            with ReleaseClock(preview, idle, old, self.services) as clock:
                t0 = time.time()
                took = self.wall("release", v, "--no-backup")
                windows.append((t0, time.time()))
            apps = clock.app_seconds(s.docker, s.name)
            app = max(apps.values()) if len(apps) == len(self.services) else None
            self.releases.append({"version": v, "wall": round(took, 3), "app_to_healthy": app,
                                  "overhead": round(took - app, 3) if app is not None else None,
                                  "standby_replaced": bool(old)})  # fmt: skip
            print(f"  [{self.where}, {self.n} services] release {v}: wall {took:.2f}s, app's own {app}s",
                  file=sys.stderr)  # fmt: skip
            live = idle
        mem = colour_memory(s.docker, s.name)
        self.memory = {"live": mem[live], "standby": mem[other(live)]}
        for release, n in zip(self.releases, execs.count(windows), strict=True):
            release["edge_execs"] = n
        steps = release_steps(s)
        for release in self.releases:
            release["steps"] = steps.get(release["version"], {})
        windows = []
        for _ in range(a.switches):
            live = other(live)
            t0 = time.time()
            self.switches.append(self.wall("switch", "--to", live))
            windows.append((t0, time.time()))
        self.switch_execs = execs.count(windows)
        print(f"  [{self.where}, {self.n} services] switch median {statistics.median(self.switches):.3f}s, "
              f"edge execs per switch {sorted(set(self.switch_execs))}", file=sys.stderr)  # fmt: skip

    def summary(self) -> dict:
        over = [r["overhead"] for r in self.releases if r["overhead"] is not None]
        apps = [r["app_to_healthy"] for r in self.releases if r["app_to_healthy"] is not None]
        sw = self.switches
        return {
            "where": self.where, "services": self.n, "up_seconds": round(self.up_seconds, 2), "up_built": self.built,
            "memory_mib": self.memory,
            "switch": {"n": len(sw), "median": round(statistics.median(sw), 3) if sw else None,
                       "p95": round(pct(sw, 0.95), 3) if sw else None, "min": round(min(sw), 3) if sw else None,
                       "max": round(max(sw), 3) if sw else None, "edge_execs": sorted(set(self.switch_execs))},
            "release": {"n": len(self.releases), "overhead_median": round(statistics.median(over), 3) if over else None,
                        "overhead_max": round(max(over), 3) if over else None,
                        "app_min": min(apps) if apps else None, "app_max": max(apps) if apps else None,
                        "wall_median": round(statistics.median(r["wall"] for r in self.releases), 3)
                        if self.releases else None,
                        "edge_execs": sorted({r["edge_execs"] for r in self.releases}), "each": self.releases},
        }  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def ssh_forward(host, remote_port: int):
    """127.0.0.1:<free port> here -> 127.0.0.1:<remote_port> on the remote host, over its ssh."""
    local = free_port()
    proc = subprocess.Popen(
        ["ssh", "-F", str(host.ssh_config), "-o", "ExitOnForwardFailure=yes", "-N",
         "-L", f"127.0.0.1:{local}:127.0.0.1:{remote_port}", host.alias],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ssh -L exited: {proc.stderr.read().decode(errors='replace')}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the ssh forward of the preview port never listened")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{local}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def local_scenario(client, app_image: str, n: int, args, own_images: set[str]) -> dict:
    from stack import Stack

    with tempfile.TemporaryDirectory(prefix="stbench-") as tmp:
        stack = Stack(f"st{uuid.uuid4().hex[:8]}", Path(tmp), client, app_image)
        try:
            scenario = Scenario(stack, "local", n, args, lambda: stack.preview_url)
            result = scenario.run()
            for role in ("edge", "db", "backup"):  # what `up` ran: the images a remote host needs
                with contextlib.suppress(Exception):
                    own_images.update(client.containers.get(f"{stack.name}-infra-{role}-1").image.tags)
            return result
        finally:
            stack.destroy()


def remote_scenario(client, app_image: str, n: int, args, own_images: set[str]) -> dict:
    from hosts import RemoteHost
    from stack import Stack

    began = time.monotonic()
    with RemoteHost() as host:
        started = time.monotonic() - began
        t = time.monotonic()
        host.load_image(app_image)
        host.load_image(harness.BASE_IMAGE)  # what `deployer up` builds from, for any image it lacks
        loaded = sorted(own_images) if not args.remote_build else []
        for ref in loaded:
            host.load_image(ref)
        load_seconds = time.monotonic() - t
        print(f"  [remote] host started in {started:.1f}s; images loaded in {load_seconds:.1f}s "
              f"({', '.join([app_image, *loaded])})", file=sys.stderr)  # fmt: skip
        saved = os.environ.get("DEPLOYER_SSH_COMMAND")
        os.environ["DEPLOYER_SSH_COMMAND"] = host.ssh_command
        try:
            with tempfile.TemporaryDirectory(prefix="stbench-") as tmp:
                stack = Stack(f"sr{uuid.uuid4().hex[:8]}", Path(tmp), host.client, app_image)
                forwards = contextlib.ExitStack()
                try:
                    engine = f'\n[engine]\nhost = "{host.docker_host}"\n'
                    scenario = Scenario(stack, "remote", n, args,
                                        lambda: forwards.enter_context(ssh_forward(host, stack.port(8081))),
                                        engine_extra=engine)  # fmt: skip
                    result = scenario.run()
                    result.update(host_start_seconds=round(started, 2), image_load_seconds=round(load_seconds, 2),
                                  remote_build=args.remote_build)  # fmt: skip
                    return result
                finally:
                    forwards.close()
                    stack.destroy()
        finally:
            if saved is None:
                os.environ.pop("DEPLOYER_SSH_COMMAND", None)
            else:
                os.environ["DEPLOYER_SSH_COMMAND"] = saved


def table(results: list[dict]) -> str:
    lines = [
        "| engine | services | switch median / p95 / max (s) | edge execs per switch | release overhead median / max (s) "
        "| app's own time to healthy (s) | release wall median (s) | edge execs per release "
        "| memory live / warm standby (MiB) | n switches / releases |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        sw, rel = r["switch"], r["release"]
        lines.append(
            f"| {r['where']} | {r['services']} | {sw['median']} / {sw['p95']} / {sw['max']} "
            f"| {','.join(map(str, sw['edge_execs']))} | {rel['overhead_median']} / {rel['overhead_max']} "
            f"| {rel['app_min']}-{rel['app_max']} | {rel['wall_median']} | {','.join(map(str, rel['edge_execs']))} "
            f"| {r['memory_mib'].get('live')} / {r['memory_mib'].get('standby')} | {sw['n']} / {rel['n']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    ap.add_argument("--switches", type=int, default=30)
    ap.add_argument("--releases", type=int, default=5, help="measured releases per scenario (after a first one)")
    ap.add_argument("--startup-delay", type=float, default=4.0)
    ap.add_argument("--services", type=lambda s: [int(x) for x in s.split(",")], default=[2, 4, 8],
                    help="service counts of the local scenarios")  # fmt: skip
    ap.add_argument("--remote", action=argparse.BooleanOptionalAction, default=True,
                    help="also run 2 services on a remote engine over ssh")  # fmt: skip
    ap.add_argument(
        "--remote-build",
        action="store_true",
        help="let `deployer up` build the edge, db and agent images on the remote engine",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import docker

    client = docker.from_env(timeout=600)
    app_image = harness.test_app_image(client)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    results: list[dict] = []
    own_images: set[str] = set()
    counts = sorted(set(args.services) | ({2} if args.remote else set()))
    for n in counts:
        print(f"local, {n} services", file=sys.stderr)
        results.append(local_scenario(client, app_image, n, args, own_images))
        if n == 2 and args.remote:
            print("remote, 2 services", file=sys.stderr)
            results.append(remote_scenario(client, app_image, 2, args, own_images))
    results = [r for r in results if r["where"] == "remote" or r["services"] in args.services] or results
    print(f"\napp STARTUP_DELAY={args.startup_delay:g}s; switch = CLI wall time (python start-up included)")
    print(table(results))
    remote = next((r for r in results if r["where"] == "remote"), None)
    if remote:
        print(f"\nremote host: started in {remote['host_start_seconds']} s, images loaded in "
              f"{remote['image_load_seconds']} s; `deployer up` over ssh took {remote['up_seconds']} s"
              + (f" (building {', '.join(remote['up_built']) or 'nothing'} there)" if remote["remote_build"] else ""))  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"started": started, "args": {**vars(args), "json": str(args.json)},
                                         "results": results, "table": table(results)}, indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
