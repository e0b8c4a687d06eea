"""Zero-downtime benchmark: the deployer's switches and releases against two peers, under load.

One throwaway project (`zd<random>`, tests/stack.py; removed at the end, even on failure)
with two services: `backend` (route /api/) is the Python test app (tests/app: its slow path,
POST echo and drain), `frontend` (route /) is the fast stand-in app (bench/images/fastapp,
nginx), so that the bulk load measures the edge rather than a Python server that tops out
near 1,000 req/s on this machine (`--frontend-app testapp` puts the test app there too).

Three phases, each under the same load through the edge:

- deployer:  `deployer switch` (CLI process) N times and `deployer release` M times. The
             released versions start in --startup-delay seconds (a stand-in for a Spring
             app); the app's own time to healthy is measured outside the deployer (each
             service's StartedAt to its first healthy answer, bench/harness.ReleaseClock),
             and the release overhead is the release's wall time minus the largest of them.
- reload:    a render-and-reload switch: write the edge's `live` route state AND
             `nginx -s reload` in the edge, as a template-plus-reload tool does.
- recreate:  the naive redeploy, `docker compose up -d --force-recreate` of the live
             release's compose project in place, from the deployer's own compose data.

The load, all of it at once:

- Python lanes (bench/load.py) on the edge's published port: keep-alive clients that never
  retry, browser-like clients that retry an idempotent request once, and a new connection
  per request; each kind with `--clients` paced clients (GET backend, GET frontend, POST
  backend) and `--slow` clients on the ~2 s /api/slow, so long requests are in flight at
  every switch. They judge every answer: failures, "backwards" (another version or colour
  than the last returned action made live) and "mixed" (the edge's colour is not the app's).
- wrk lanes (bench/images/load, in a container on the project's edge network, against the
  edge by name) for the bulk rate: keep-alive, and a new connection per request
  (`Connection: close`), paced to `--wrk-rate` req/s in all (0: as fast as they can), on
  `--wrk-path`. They count socket errors and non-2xx answers (and when the non-2xx came).

Prints one table per kind of client and peer, writes a JSON summary and a PNG plot.

    .venv/bin/python bench/zero_downtime.py --switches 20 --releases 5 --wrk-rate 1500 \\
        --json bench/results/zero-downtime.json --plot docs/zero-downtime.png
    .venv/bin/python bench/zero_downtime.py --switches 3 --releases 1 --reloads 3 --recreates 1   # smoke
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import harness
import load
from harness import Lane, ReleaseClock, current_release
from load import KINDS, Event, Load, analyse, rate_around

from deployer.core import edgelayout
from deployer.core.names import other

PEERS = ("deployer", "reload", "recreate")
PEER_LABEL = {
    "deployer": "deployer (route state, no reload)",
    "reload": "route state + nginx -s reload",
    "recreate": "compose up --force-recreate",
}
SERVICES = ("backend", "frontend")
WRK_KINDS = ("keepalive", "fresh")


def tag(stack, service: str, version: str, base: str, env: dict | None = None) -> None:
    """`<project>-<service>:<version>` from a base image, with env baked in (as Stack.tag,
    but each service from its own base image)."""
    ref = f"{stack.name}-{service}:{version}"
    if env:
        dockerfile = f"FROM {base}\n" + "".join(f"ENV {k}={v}\n" for k, v in env.items())
        stack.docker.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
    else:
        stack.docker.images.get(base).tag(ref)
    stack.images.append(ref)


class Bench:
    def __init__(self, stack, client, args, images: dict[str, str], load_image: str) -> None:
        self.stack, self.client, self.args = stack, client, args
        self.images, self.load_image = images, load_image
        self.version: dict[str, str] = {}
        self.live = ""
        self.switch_walls: list[float] = []
        self.releases: list[dict] = []

    # -- the deployer CLI, timed as a user sees it --------------------------------
    def cli(self, *argv: str) -> tuple[float, list[tuple[float, str]], int]:
        """Run the CLI; returns (wall seconds, [(seconds since start, output line)], exit code)."""
        cmd = [sys.executable, "-m", "deployer", *argv, "--config", str(self.stack.config)]
        began = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = [(time.monotonic() - began, line.rstrip()) for line in proc.stdout]
        code = proc.wait(timeout=300)
        return time.monotonic() - began, lines, code

    def prepare(self) -> None:
        s, a = self.stack, self.args
        for version in ("v1", "v2"):
            for service in SERVICES:
                tag(s, service, version, self.images[service])
        slow = {"STARTUP_DELAY": f"{a.startup_delay:g}"}
        for i in range(1, a.releases + 1):
            for service in SERVICES:
                tag(s, service, f"r{i}", self.images[service], slow)
        s.ok("up")
        s.ok("release", "v1", "--no-backup")
        s.ok("release", "v2", "--no-backup")
        self.version = {"blue": "v1", "green": "v2"}
        self.live = "green"
        harness.wait_http(s.edge, f"http://127.0.0.1{a.wrk_path}")

    # -- the three peers --------------------------------------------------------------
    def deployer_actions(self) -> list[Event]:
        events: list[Event] = []
        every = max(1, self.args.switches // max(1, self.args.releases))
        released = 0
        for i in range(self.args.switches):
            events.append(self.switch())
            time.sleep(self.args.gap)
            if (i + 1) % every == 0 and released < self.args.releases:
                released += 1
                events.append(self.release(f"r{released}"))
                time.sleep(self.args.gap)
        while released < self.args.releases:
            released += 1
            events.append(self.release(f"r{released}"))
            time.sleep(self.args.gap)
        return events

    def switch(self) -> Event:
        target = other(self.live)
        start = time.monotonic()
        wall, lines, code = self.cli("switch", "--to", target)
        end = time.monotonic()
        if code == 0:
            self.live = target
            self.switch_walls.append(wall)
        else:
            print(f"  switch to {target} FAILED: {[t for _, t in lines[-3:]]}", file=sys.stderr)
        return Event("deployer", "switch", start, end, self.live, self.version[self.live], code == 0,
                     {"wall": round(wall, 3)})  # fmt: skip

    def release(self, version: str) -> Event:
        idle = other(self.live)
        old = current_release(self.stack, idle)
        with ReleaseClock(self.stack.preview_url, idle, old, list(SERVICES)) as clock:
            start = time.monotonic()
            wall, lines, code = self.cli("release", version, "--no-backup")
            end = time.monotonic()
        apps = clock.app_seconds(self.client, self.stack.name)
        app = max(apps.values()) if len(apps) == len(SERVICES) else None
        healthy = next(
            (float(t.split("healthy after ")[1].rstrip("s")) for _, t in lines if "healthy after" in t), None
        )
        if code == 0:
            self.live, self.version[idle] = idle, version
        else:
            print(f"  release {version} FAILED: {[t for _, t in lines[-5:]]}", file=sys.stderr)
        info = {"version": version, "wall": round(wall, 3), "healthy_after": healthy, "app_to_healthy": app,
                "app_each": apps, "overhead": round(wall - app, 3) if app is not None else None, "ok": code == 0}  # fmt: skip
        self.releases.append(info)
        return Event("deployer", "release", start, end, self.live, self.version[self.live], code == 0, info)

    def reload_actions(self) -> list[Event]:
        events = []
        state = edgelayout.STATE
        for _ in range(self.args.reloads):
            target = other(self.live)
            script = (f"printf '%s\\n' {target} > {state}/live.tmp && mv -f {state}/live.tmp {state}/live"
                      " && nginx -s reload")  # fmt: skip
            start = time.monotonic()
            code, out = self.stack.edge.exec_run(["sh", "-c", script])
            end = time.monotonic()
            if code == 0:
                self.live = target
            else:
                print(f"  reload switch FAILED: {out!r}", file=sys.stderr)
            events.append(Event("reload", "reload", start, end, self.live, self.version[self.live], code == 0))
            time.sleep(self.args.gap)
        return events

    def recreate_actions(self) -> list[Event]:
        from deployer import config as config_module
        from deployer.core import compose

        cfg = config_module.load(self.stack.config)
        events = []
        choices = ("v1", "v2")
        for i in range(self.args.recreates):
            version = choices[i % 2] if self.version[self.live] != choices[i % 2] else choices[(i + 1) % 2]
            # The live release's own compose project, recreated in place with the same release
            # id (so the same host names in the route state), as a compose-only redeploy does.
            live = next(c for c in self.stack.containers(self.live) if c.status == "running")
            project, release = live.labels["com.docker.compose.project"], live.labels["deployer.release"]
            spec = compose.release(cfg, self.live, release, version)
            with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="zd-recreate-") as fh:
                json.dump(spec, fh)
                fh.flush()
                start = time.monotonic()
                res = subprocess.run(
                    ["docker", "compose", "-p", project, "-f", fh.name, "up", "-d", "--force-recreate",
                     "--pull", "never", "--quiet-pull"],
                    capture_output=True, text=True, timeout=300,
                )  # fmt: skip
                end = time.monotonic()
            ok = res.returncode == 0
            if ok:
                self.version[self.live] = version
            else:
                print(f"  recreate FAILED: {res.stderr[-500:]}", file=sys.stderr)
            events.append(Event("recreate", "recreate", start, end, self.live, self.version[self.live], ok))
            time.sleep(self.args.gap + 1)
        return events

    # -- wrk lanes ---------------------------------------------------------------------
    def wrk_lanes(self) -> dict[str, Lane]:
        a = self.args
        url = f"http://{self.stack.edge.name}:80{a.wrk_path}"
        lanes = {}
        for kind in WRK_KINDS:
            env = {"WRK_STATUSES": "1"}
            if a.wrk_rate > 0:
                per_connection = a.wrk_rate / len(WRK_KINDS) / a.wrk_connections
                env["WRK_DELAY_MS"] = str(max(1, round(1000 / per_connection)))
            argv = harness.wrk_argv(url, connections=a.wrk_connections, seconds=a.max_phase, close=kind == "fresh")
            lanes[kind] = Lane(self.client, self.load_image, self.stack.name, f"{self.stack.name}-edge", argv,
                               env=env, label=f"wrk-{kind}")  # fmt: skip
        return lanes

    # -- one phase under load -----------------------------------------------------------
    def phase(self, peer: str, actions) -> dict:
        a = self.args
        traffic = Load(self.stack.live_url, clients=a.clients, slow=a.slow, rate=a.rate, duration=a.max_phase)
        print(f"phase {peer}: load on, {a.clients} fast + {a.slow} slow Python clients per kind, "
              f"wrk {a.wrk_connections} connections per lane at {a.wrk_rate or 'max'} req/s in all", file=sys.stderr)  # fmt: skip
        lanes = self.wrk_lanes() if a.wrk_rate >= 0 else {}
        wall_origin = time.time() - time.monotonic()  # wall clock = monotonic + this
        traffic.start()
        try:
            time.sleep(a.warm)
            events = actions()
            time.sleep(a.warm)
        finally:
            records = traffic.stop()
            for lane in lanes.values():
                lane.interrupt()
            wrk = {}
            for kind, lane in lanes.items():
                try:
                    wrk[kind] = lane.result(timeout=30)
                except Exception as exc:  # report it, keep the other lanes
                    print(f"  wrk {kind} lane gave no result: {exc}", file=sys.stderr)
        origin = records[0].start if records else time.monotonic()
        rates = [rate_around(records, e) for e in events]
        seconds = records[-1].end - origin if records else 0
        result = {
            "peer": peer,
            "seconds": round(seconds, 1),
            "requests": len(records),
            "events": [
                {**e.__dict__, "start": round(e.start - origin, 3), "end": round(e.end - origin, 3)} for e in events
            ],  # fmt: skip
            "event_rate_min": round(min(rates), 1) if rates else None,
            "event_rate_median": round(statistics.median(rates), 1) if rates else None,
            "kinds": analyse(records, events),
            "wrk": {kind: wrk_summary(r, origin + wall_origin) for kind, r in wrk.items()},
            "series": series(records, origin),
        }
        fails = sum(k["failures"] for k in result["kinds"].values())
        wrk_reqs = sum(w["requests"] for w in result["wrk"].values())
        wrk_fails = sum(w["failures"] for w in result["wrk"].values())
        wrk_rps = sum(w["rps"] for w in result["wrk"].values())
        result["total_rps"] = round(wrk_rps + (len(records) / seconds if seconds else 0), 1)
        print(f"phase {peer}: {len(events)} events; Python lanes {len(records)} requests, {fails} failed, "
              f"min {result['event_rate_min']} req/s around an event; wrk lanes {wrk_reqs} requests "
              f"({wrk_rps:.0f} req/s), {wrk_fails} failed; about {result['total_rps']:.0f} req/s in all",
              file=sys.stderr)  # fmt: skip
        return result


def wrk_summary(r: harness.WrkResult, wall_origin: float) -> dict:
    """A wrk lane's figures; the seconds (since the load started) in which non-2xx came."""
    return {**r.row(), "non2xx_at": {str(round(t - wall_origin)): n for t, n in sorted(r.non2xx_at.items())}}


def series(records: list, origin: float, step: float = 1.0) -> dict:
    """Per-second failures and fast-request p50/p99 latency (ms) of the Python lanes, for the plot."""
    if not records:
        return {"t": [], "failures": [], "p50": [], "p99": [], "requests": []}
    n = int((records[-1].start - origin) / step) + 1
    fails, count, lat = [0] * n, [0] * n, [[] for _ in range(n)]
    for r in records:
        i = int((r.start - origin) / step)
        count[i] += 1
        fails[i] += r.failed
        if r.lane == "fast" and not r.failed:
            lat[i].append(r.latency)
    pct = lambda xs, q: round(load.percentile(xs, q) * 1000, 1) if xs else None  # noqa: E731
    return {"t": [i * step for i in range(n)], "failures": fails, "requests": count,
            "p50": [pct(x, 50) for x in lat], "p99": [pct(x, 99) for x in lat]}  # fmt: skip


def summary(bench: Bench, phases: dict) -> dict:
    walls = sorted(bench.switch_walls)
    over = sorted(r["overhead"] for r in bench.releases if r["overhead"] is not None)
    return {
        "switch_wall": {"n": len(walls), "median": _q(walls, 50), "p95": _q(walls, 95),
                        "max": walls[-1] if walls else None},
        "release": {"n": len(bench.releases), "overhead_median": _q(over, 50), "overhead_max": over[-1] if over else None,
                    "wall_median": _q(sorted(r["wall"] for r in bench.releases), 50), "each": bench.releases},
        "phases": phases,
    }  # fmt: skip


def _q(values: list[float], q: float):
    v = load.percentile(values, q)
    return None if v is None else round(v, 3)


def table(phases: dict) -> str:
    head = ("| client | peer | requests | failed | conn. errors | non-2xx | backwards | mixed "
            "| p50 / p99 away (ms) | p50 / p99 near an action (ms) |")  # fmt: skip
    lines = [head, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for kind in KINDS:
        for peer in ("recreate", "reload", "deployer"):
            if peer not in phases:
                continue
            k = phases[peer]["kinds"][kind]
            lines.append(
                f"| {kind} | {PEER_LABEL[peer]} | {k['requests']} | **{k['failures']}** | {k['connection_errors']} "
                f"| {k['non_2xx']} | {k['backwards']} | {k['mixed']} | {k['p50_away_ms']} / {k['p99_away_ms']} "
                f"| {k['p50_near_ms']} / {k['p99_near_ms']} |"
            )
    for kind in WRK_KINDS:
        for peer in ("recreate", "reload", "deployer"):
            w = phases.get(peer, {}).get("wrk", {}).get(kind)
            if not w:
                continue
            lines.append(
                f"| wrk {kind} ({w['rps']:.0f} req/s) | {PEER_LABEL[peer]} | {w['requests']} | **{w['failures']}** "
                f"| {w['socket_errors']} | {w['non_2xx']} | | | {w['p50_ms']} / {w['p99_ms']} (all) | |"
            )
    return "\n".join(lines)


def plot(phases: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [p for p in ("deployer", "recreate", "reload") if p in phases]
    fig, axes = plt.subplots(2, len(shown), figsize=(5.5 * len(shown), 6), sharey="row", squeeze=False)
    for col, peer in enumerate(shown):
        s, events = phases[peer]["series"], phases[peer]["events"]
        top, bottom = axes[0][col], axes[1][col]
        top.bar(s["t"], s["failures"], width=1.0, color="tab:red", align="edge", label="Python lanes")
        wrk_fail: dict[float, int] = {}
        for w in phases[peer].get("wrk", {}).values():
            for t, n in w["non2xx_at"].items():
                wrk_fail[float(t)] = wrk_fail.get(float(t), 0) + n
        if wrk_fail:
            top.bar(list(wrk_fail), list(wrk_fail.values()), width=1.0, color="tab:purple", align="edge",
                    alpha=0.6, label="wrk lanes (non-2xx)")  # fmt: skip
        wrk_total = sum(w["requests"] for w in phases[peer].get("wrk", {}).values())
        wrk_failed = sum(w["failures"] for w in phases[peer].get("wrk", {}).values())
        top.set_title(f"{PEER_LABEL[peer]}\nPython: {sum(s['failures'])} failed of {sum(s['requests'])}; "
                      f"wrk: {wrk_failed} of {wrk_total}", fontsize=9)  # fmt: skip
        bottom.plot(s["t"], [v if v is not None else float("nan") for v in s["p50"]], label="p50", color="tab:blue")
        bottom.plot(s["t"], [v if v is not None else float("nan") for v in s["p99"]], label="p99", color="tab:orange")
        bottom.set_yscale("log")
        for e in events:
            for ax in (top, bottom):
                ax.axvspan(e["start"], max(e["end"], e["start"] + 0.2),
                           color="grey" if e["action"] != "release" else "green", alpha=0.25, lw=0)  # fmt: skip
        bottom.set_xlabel("seconds since load start")
        if col == 0:
            top.set_ylabel("failed requests per second")
            top.legend(loc="upper right", fontsize=8)
            bottom.set_ylabel("latency of fast Python requests (ms)")
            bottom.legend(loc="upper right")
    fig.suptitle("Failures and latency under load; grey: switch / reload / recreate, green: release", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    p.add_argument("--switches", type=int, default=20)
    p.add_argument("--releases", type=int, default=5)
    p.add_argument("--reloads", type=int, default=20, help="switches of the reload peer")
    p.add_argument("--recreates", type=int, default=5, help="redeploys of the naive peer")
    p.add_argument(
        "--startup-delay",
        type=float,
        default=4.0,
        help="STARTUP_DELAY of the released versions: the app's own time to healthy",
    )
    p.add_argument("--clients", type=int, default=4, help="fast Python clients per kind")
    p.add_argument("--slow", type=int, default=2, help="Python clients per kind looping on the ~2 s request")
    p.add_argument("--rate", type=float, default=25.0, help="requests per second of each fast Python client")
    p.add_argument(
        "--wrk-rate",
        type=float,
        default=1500.0,
        help="req/s of the wrk lanes in all, split between keep-alive and fresh (0: unpaced, -1: no wrk)",
    )
    p.add_argument("--wrk-connections", type=int, default=16, help="connections of each wrk lane")
    p.add_argument("--wrk-path", default="/", help="what the wrk lanes fetch (/ is the frontend)")
    p.add_argument("--frontend-app", choices=("fast", "testapp"), default="fast")
    p.add_argument("--gap", type=float, default=1.5, help="seconds between two actions")
    p.add_argument("--warm", type=float, default=3.0, help="seconds of load before the first and after the last action")
    p.add_argument("--max-phase", type=float, default=400.0, help="hard stop of one phase's load, seconds")
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args(argv)

    import docker
    from stack import Stack

    client = docker.from_env(timeout=600)
    testapp = harness.test_app_image(client)
    images = {"backend": testapp,
              "frontend": harness.fastapp_image(client) if args.frontend_app == "fast" else testapp}  # fmt: skip
    load_image = harness.load_image(client)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    with tempfile.TemporaryDirectory(prefix="zdbench-") as tmp:
        stack = Stack(f"zd{uuid.uuid4().hex[:8]}", Path(tmp), client, testapp)
        bench = Bench(stack, client, args, images, load_image)
        try:
            bench.prepare()
            phases = {}
            wanted = args.peers.split(",")
            for peer, actions in (("deployer", bench.deployer_actions), ("reload", bench.reload_actions),
                                  ("recreate", bench.recreate_actions)):  # fmt: skip
                if peer in wanted:
                    phases[peer] = bench.phase(peer, actions)
        finally:
            harness.remove_named(client, f"{stack.name}-bench-")
            stack.destroy()
    result = summary(bench, phases)
    print(table(phases))
    sw, rel = result["switch_wall"], result["release"]
    print(f"\ndeployer switch wall time: median {sw['median']} s, p95 {sw['p95']} s, max {sw['max']} s (n={sw['n']})")
    print(f"release overhead beyond the app's own time to healthy (STARTUP_DELAY={args.startup_delay:g}s): "
          f"median {rel['overhead_median']} s, max {rel['overhead_max']} s (n={rel['n']}); "
          f"release wall median {rel['wall_median']} s")  # fmt: skip
    for peer, r in phases.items():
        wrk = ", ".join(f"wrk {k} {w['rps']:.0f} req/s" for k, w in r["wrk"].items())
        print(f"{peer}: {len(r['events'])} events; about {r['total_rps']:.0f} req/s in all ({wrk}); Python lanes "
              f"around each event: min {r['event_rate_min']} req/s, median {r['event_rate_median']} req/s")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"started": started, "args": vars(args) | {"json": str(args.json),
                                         "plot": str(args.plot)}, **result, "table": table(phases)},
                                        indent=1, default=str))  # fmt: skip
    if args.plot:
        plot(phases, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
