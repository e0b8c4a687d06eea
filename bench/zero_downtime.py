"""Zero-downtime benchmark: the deployer's switches and releases against two peers, under load.

One throwaway project (tests/stack.py) with the test app; three phases, each under the same
load from the three kinds of client (bench/load.py) through the edge's live port:

- deployer:  `deployer switch` (CLI process) N times and `deployer release` M times. The
             released versions start in --startup-delay seconds (a stand-in for a Spring
             app); the app's own time to healthy is measured outside the deployer, from the
             new backend's StartedAt to its first 200 (polled every 20 ms), and the release
             overhead is the release's wall time minus that.
- reload:    a render-and-reload switch without our fix: flip the routes file AND
             `nginx -s reload` in the edge, as a template-plus-reload tool does.
- recreate:  the naive redeploy, `docker compose up -d --force-recreate` of the live
             colour's compose project in place, with the deployer's own compose variables.

Prints one table (peer against deployer, per kind of client), writes a JSON summary and a
PNG plot of failures and latency over time. Everything it creates is removed at the end.

    .venv/bin/python bench/zero_downtime.py --switches 20 --releases 5 \
        --json bench/results/zero-downtime.json --plot docs/zero-downtime.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import load  # noqa: E402
from load import KINDS, Event, Load, analyse, rate_around  # noqa: E402

PEERS = ("deployer", "reload", "recreate")
PEER_LABEL = {
    "deployer": "deployer (njs routes, no reload)",
    "reload": "routes + nginx -s reload",
    "recreate": "compose up --force-recreate",
}


def other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


def test_app_image(client) -> str:
    from deployer.images import content_tag

    tag = f"deployer-testapp:{content_tag(ROOT / 'tests' / 'app')}"
    try:
        client.images.get(tag)
    except Exception:  # noqa: BLE001
        client.images.build(path=str(ROOT / "tests" / "app"), tag=tag, rm=True)
    return tag


def first_healthy(stack, colour: str, stop: threading.Event, out: dict) -> None:
    """Find the new release's running backend (by its version label), then poll its own health
    path through the preview server every 20 ms until the first 200."""
    import httpx

    release, base = "", stack.preview_url
    with httpx.Client(timeout=1) as client:
        while not stop.is_set():
            if not release:
                # Only once it runs: asked for earlier, its name would be "no such host", which
                # an nginx worker then keeps for a second (resolver valid=1s).
                try:
                    mine = [
                        c
                        for c in stack.containers(colour)
                        if c.labels.get("deployer.version") == out["version"] and c.status == "running"
                    ]
                except Exception:  # noqa: BLE001 - a container removed while listed (the old standby)
                    mine = []
                release = mine[0].labels["deployer.release"] if mine else ""
                if not release:
                    time.sleep(0.02)
                    continue
            try:
                r = client.get(f"{base}/_deployer/{colour}-{release}/backend/health")
                if r.status_code == 200 and r.headers.get("x-app-version") == out["version"]:
                    out["at"] = datetime.now(timezone.utc)
                    out["release"] = release
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)


def started_at(stack, colour: str, release: str) -> datetime:
    c = next(
        c
        for c in stack.containers(colour)
        if c.labels["deployer.service"] == "backend" and c.labels["deployer.release"] == release
    )
    return datetime.fromisoformat(c.attrs["State"]["StartedAt"][:26].rstrip("Z") + "+00:00")


class Bench:
    def __init__(self, stack, args) -> None:
        self.stack, self.args = stack, args
        self.version: dict[str, str] = {}
        self.live = ""
        self.switch_walls: list[float] = []
        self.releases: list[dict] = []

    # -- the deployer CLI, timed as a user sees it --------------------------------
    def cli(self, *argv: str) -> tuple[float, list[tuple[float, str]], int]:
        """Run the CLI; returns (wall seconds, [(seconds since start, stderr line)], exit code)."""
        cmd = [sys.executable, "-m", "deployer", *argv, "--config", str(self.stack.config)]
        began = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines = [(time.monotonic() - began, line.rstrip()) for line in proc.stderr]
        code = proc.wait(timeout=300)
        return time.monotonic() - began, lines, code

    def prepare(self) -> None:
        s = self.stack
        s.tag("v1")
        s.tag("v2")
        slow = {"STARTUP_DELAY": str(self.args.startup_delay)}
        for i in range(1, self.args.releases + 1):
            s.tag(f"r{i}", backend_env=slow, frontend_env=slow)
        s.ok("up")
        s.ok("release", "v1", "--no-backup")
        s.ok("release", "v2", "--no-backup")
        self.version = {"blue": "v1", "green": "v2"}
        self.live = "green"

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
            print(f"  switch to {target} FAILED: {lines[-3:]}", file=sys.stderr)
        return Event("deployer", "switch", start, end, self.live, self.version[self.live], code == 0,
                     {"wall": round(wall, 3)})

    def release(self, version: str) -> Event:
        idle = other(self.live)
        probe = {"version": version}
        stop = threading.Event()
        watcher = threading.Thread(target=first_healthy, args=(self.stack, idle, stop, probe))
        watcher.start()
        start = time.monotonic()
        wall, lines, code = self.cli("release", version, "--no-backup")
        end = time.monotonic()
        stop.set()
        watcher.join()
        healthy = next((float(t.split("healthy after ")[1].rstrip("s")) for _, t in lines if "healthy after" in t), None)
        app = (probe["at"] - started_at(self.stack, idle, probe["release"])).total_seconds() if "at" in probe else None
        marks = {text.split(":")[0].strip("· ").split(" ")[0]: round(t, 3) for t, text in lines}
        if code == 0:
            self.live, self.version[idle] = idle, version
        else:
            print(f"  release {version} FAILED: {lines[-5:]}", file=sys.stderr)
        info = {"version": version, "wall": round(wall, 3), "healthy_after": healthy,
                "app_to_healthy": round(app, 3) if app is not None else None,
                "overhead": round(wall - app, 3) if app is not None else None, "marks": marks, "ok": code == 0}
        self.releases.append(info)
        return Event("deployer", "release", start, end, self.live, self.version[self.live], code == 0, info)

    def reload_actions(self) -> list[Event]:
        events = []
        for _ in range(self.args.reloads):
            target = other(self.live)
            script = (
                f"printf 'live={target}\\npreview={self.live}\\n' > /var/lib/deployer/routes.tmp"
                " && mv -f /var/lib/deployer/routes.tmp /var/lib/deployer/routes && nginx -s reload"
            )
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
        from deployer import colours, config

        cfg = config.load(self.stack.config)
        events = []
        choices = ("v1", "v2")
        for i in range(self.args.recreates):
            version = choices[i % 2] if self.version[self.live] != choices[i % 2] else choices[(i + 1) % 2]
            start = time.monotonic()
            ok = True
            # The live release's own compose project, recreated in place with the same release id
            # (so the same host aliases), as a compose-only redeploy would do.
            live = next(c for c in self.stack.containers(self.live) if c.status == "running")
            project, release = live.labels["com.docker.compose.project"], live.labels["deployer.release"]
            values = colours.variables(cfg, self.live, version, release)
            with colours.compose(project, "app.yml", values) as dc:
                try:
                    dc.compose.up(detach=True, force_recreate=True, pull="never", quiet=True)
                    self.version[self.live] = version
                except Exception as exc:  # noqa: BLE001
                    ok = False
                    print(f"  recreate FAILED: {exc}", file=sys.stderr)
            end = time.monotonic()
            events.append(Event("recreate", "recreate", start, end, self.live, self.version[self.live], ok))
            time.sleep(self.args.gap + 1)
        return events

    # -- one phase under load -----------------------------------------------------------
    def phase(self, peer: str, actions) -> dict:
        a = self.args
        traffic = Load(self.stack.live_url, clients=a.clients, slow=a.slow, rate=a.rate, duration=a.max_phase)
        print(f"phase {peer}: load on, {a.clients} fast + {a.slow} slow clients per kind", file=sys.stderr)
        traffic.start()
        try:
            time.sleep(a.warm)
            events = actions()
            time.sleep(a.warm)
        finally:
            records = traffic.stop()
        origin = records[0].start if records else time.monotonic()
        rates = [rate_around(records, e) for e in events]
        result = {
            "peer": peer,
            "seconds": round(records[-1].end - origin, 1) if records else 0,
            "requests": len(records),
            "events": [{**e.__dict__, "start": round(e.start - origin, 3), "end": round(e.end - origin, 3)}
                       for e in events],
            "event_rate_min": round(min(rates), 1) if rates else None,
            "event_rate_median": round(statistics.median(rates), 1) if rates else None,
            "kinds": analyse(records, events),
            "series": series(records, origin),
        }
        fails = sum(k["failures"] for k in result["kinds"].values())
        print(f"phase {peer}: {len(events)} events, {len(records)} requests, {fails} failed, "
              f"min {result['event_rate_min']} req/s around an event", file=sys.stderr)
        return result


def series(records: list, origin: float, step: float = 1.0) -> dict:
    """Per-second failures and fast-request p50/p99 latency (ms) for the plot."""
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
            "p50": [pct(x, 50) for x in lat], "p99": [pct(x, 99) for x in lat]}


def summary(bench: Bench, phases: dict) -> dict:
    walls = sorted(bench.switch_walls)
    over = sorted(r["overhead"] for r in bench.releases if r["overhead"] is not None)
    return {
        "switch_wall": {"n": len(walls), "median": _q(walls, 50), "p95": _q(walls, 95), "max": walls[-1] if walls else None},
        "release": {"n": len(bench.releases), "overhead_median": _q(over, 50), "overhead_max": over[-1] if over else None,
                    "wall_median": _q(sorted(r["wall"] for r in bench.releases), 50), "each": bench.releases},
        "phases": phases,
    }


def _q(values: list[float], q: float):
    v = load.percentile(values, q)
    return None if v is None else round(v, 3)


def table(phases: dict) -> str:
    head = ("| client | peer | requests | failed | conn. errors | non-2xx | backwards | mixed "
            "| p50 / p99 away (ms) | p50 / p99 near a switch (ms) |")
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
        top.bar(s["t"], s["failures"], width=1.0, color="tab:red", align="edge")
        top.set_title(f"{PEER_LABEL[peer]}\n{sum(s['failures'])} failed of {sum(s['requests'])}", fontsize=10)
        bottom.plot(s["t"], [v if v is not None else float("nan") for v in s["p50"]], label="p50", color="tab:blue")
        bottom.plot(s["t"], [v if v is not None else float("nan") for v in s["p99"]], label="p99", color="tab:orange")
        bottom.set_yscale("log")
        for e in events:
            for ax in (top, bottom):
                ax.axvspan(e["start"], max(e["end"], e["start"] + 0.2), color="grey" if e["action"] != "release" else "green",
                           alpha=0.25, lw=0)
        bottom.set_xlabel("seconds since load start")
        if col == 0:
            top.set_ylabel("failed requests per second")
            bottom.set_ylabel("latency of fast requests (ms)")
            bottom.legend(loc="upper right")
    fig.suptitle("Failures and latency under load; grey: switch / reload / recreate, green: release", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--switches", type=int, default=20)
    p.add_argument("--releases", type=int, default=5)
    p.add_argument("--reloads", type=int, default=20, help="switches of the reload peer")
    p.add_argument("--recreates", type=int, default=5, help="redeploys of the naive peer")
    p.add_argument("--startup-delay", type=float, default=4.0,
                   help="STARTUP_DELAY of the released versions: the app's own time to healthy")
    p.add_argument("--clients", type=int, default=4, help="fast clients per kind")
    p.add_argument("--slow", type=int, default=2, help="clients per kind looping on the ~2 s request")
    p.add_argument("--rate", type=float, default=25.0, help="requests per second of each fast client")
    p.add_argument("--gap", type=float, default=1.5, help="seconds between two actions")
    p.add_argument("--warm", type=float, default=3.0, help="seconds of load before the first and after the last action")
    p.add_argument("--max-phase", type=float, default=400.0, help="hard stop of one phase's load, seconds")
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args(argv)

    import docker

    from stack import Stack

    client = docker.from_env()
    image = test_app_image(client)
    with tempfile.TemporaryDirectory(prefix="zdbench-") as tmp:
        stack = Stack(f"zd{uuid.uuid4().hex[:8]}", Path(tmp), client, image)
        try:
            bench = Bench(stack, args)
            bench.prepare()
            phases = {}
            wanted = args.peers.split(",")
            for peer, actions in (("deployer", bench.deployer_actions), ("reload", bench.reload_actions),
                                  ("recreate", bench.recreate_actions)):
                if peer in wanted:
                    phases[peer] = bench.phase(peer, actions)
        finally:
            stack.destroy()
    result = summary(bench, phases)
    print(table(phases))
    sw, rel = result["switch_wall"], result["release"]
    print(f"\ndeployer switch wall time: median {sw['median']} s, p95 {sw['p95']} s, max {sw['max']} s (n={sw['n']})")
    print(f"release overhead beyond the app's own time to healthy (STARTUP_DELAY={args.startup_delay:g}s): "
          f"median {rel['overhead_median']} s, max {rel['overhead_max']} s (n={rel['n']}); "
          f"release wall median {rel['wall_median']} s")
    for peer, r in phases.items():
        print(f"{peer}: {len(r['events'])} events, load around each event: min {r['event_rate_min']} req/s, "
              f"median {r['event_rate_median']} req/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json), "plot": str(args.plot)},
                                         **result, "table": table(phases)}, indent=1, default=str))
    if args.plot:
        plot(phases, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
