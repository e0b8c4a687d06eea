"""Swarm mode on a three-node cluster (tests/hosts SwarmCluster: a manager and two workers,
dockerd-in-container, and a registry): release and switch times, failed requests under load
during switches and releases, and what users see when a worker node stops.

The project is tests/swarm_project.py's (the one tests/integration/test_swarm.py uses): two
services (backend /api/, frontend /), two replicas each, two edge replicas (manager and first
worker, ports in host mode). Load runs in a container on the manager against both edge
replicas (bounded). Everything is removed at the end, even on failure.

    .venv/bin/python bench/swarm.py --switches 5 --releases 2 --json bench/results/swarm.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from swarm_project import SwarmProject  # noqa: E402


def summary(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 2), "max": round(ordered[-1], 2), "n": len(ordered)}


def release_id(project: SwarmProject, colour: str) -> str:
    return json.loads(project.ok("status", "--json").stdout)["colours"][colour]["release"]


def run(args: argparse.Namespace) -> dict:
    import docker

    client = docker.from_env()
    folder = Path(tempfile.mkdtemp(prefix="bench-swarm-"))
    versions = tuple(f"v{i}" for i in range(1, args.releases + 3))
    project = SwarmProject(folder, client, harness.test_app_image(client), versions=versions)
    out: dict = {}
    try:
        project.start()
        out["cluster"] = {k: round(v, 1) for k, v in project.timings.items()}
        out["up_s"] = round(project.timed("up"), 1)
        project.ok("release", versions[0], "--no-backup")

        # Switches and releases under load on both edge replicas.
        switches, releases = [], []
        load = project.load(args.load_seconds, paths=("/api/version", "/"))
        time.sleep(2)
        colours = ["green", "blue"]
        for i in range(args.releases):
            releases.append(project.timed("release", versions[i + 1], "--no-backup"))
        for i in range(args.switches):
            switches.append(project.timed("switch", "--to", colours[i % 2]))
        seen = project.finish(load)
        out["release_s"] = summary(releases)
        out["switch_s"] = summary(switches)
        out["under_load"] = {k: seen.get(k) for k in ("ok", "failed", "max_s", "by_path", "versions")}
        out["under_load"]["fails"] = seen.get("fails", [])[:20]

        # A worker with app replicas (no edge) stopped during traffic.
        project.write_config(backend=3, frontend=3)
        project.ok("release", versions[-1], "--no-backup")
        live = json.loads(project.ok("status", "--json").stdout)["live"]
        rid = release_id(project, live)
        lost = project.other_worker
        node_id = next(
            n.id for n in project.manager.client.nodes.list() if n.attrs["Description"]["Hostname"] == lost.name
        )
        edge_net = f"{project.name}-edge"
        on_lost = {
            s: {
                a.split("/")[0]
                for t in project.tasks(f"{project.name}-{live}-{rid}_{s}")
                if t["NodeID"] == node_id
                for n in t["NetworksAttachments"]
                if n["Network"]["Spec"]["Name"] == edge_net
                for a in n["Addresses"]
            }
            for s in ("backend", "frontend")
        }
        load = project.load(args.node_seconds, paths=("/api/version", "/"))
        time.sleep(8)
        stopped = time.time()
        lost.container.stop(timeout=10)
        gone: dict[str, float] = {}
        deadline = time.monotonic() + args.node_seconds
        while time.monotonic() < deadline and len(gone) < len(on_lost):
            for s, lost_addrs in on_lost.items():
                if s not in gone and not (project.resolve(f"{s}-{live}-{rid}") & lost_addrs):
                    gone[s] = round(time.time() - stopped, 1)
            time.sleep(0.5)
        seen = project.finish(load)
        offset = stopped - seen["start"]
        fails = [f for f in seen["fails"] if f[0] >= offset]
        slow = [s for s in seen.get("slow", []) if s[0] >= offset]
        out["node_loss"] = {
            "replicas_on_lost_node": {s: len(a) for s, a in on_lost.items()},
            "left_dns_after_s": gone,
            "ok": seen["ok"],
            "failed_after_stop": len(fails),
            "last_failure_after_stop_s": round(max((f[0] for f in fails), default=offset) - offset, 1),
            "slow_after_stop": len(slow),
            "max_s": seen["max_s"],
            "fails": fails[:20],
        }
        return out
    finally:
        project.remove()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--switches", type=int, default=5)
    parser.add_argument("--releases", type=int, default=2)
    parser.add_argument("--load-seconds", type=float, default=150, help="load during the switches and releases")
    parser.add_argument("--node-seconds", type=float, default=60, help="load and watch after a node stops")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = run(args)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
