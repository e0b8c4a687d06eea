"""How fast are `deployer switch` and `deployer release`, on an otherwise idle edge?

- switch: wall time of the CLI process (python start-up included), N alternating switches.
- release: wall time of `deployer release --no-backup` minus the app's own time to become
  healthy, which is measured independently: from the new backend container's StartedAt to
  the first 200 of its health path (polled every 20 ms straight through the edge's preview
  server, outside the deployer). The app is the test app with STARTUP_DELAY, standing in
  for a slow-starting Spring app.

    .venv/bin/python bench/switch_time.py --switches 30 --releases 5 --startup-delay 4
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import docker
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from stack import Stack  # noqa: E402
from zero_downtime import first_healthy, other, started_at, test_app_image  # noqa: E402


def wall(stack: Stack, *argv: str) -> float:
    began = time.monotonic()
    result = stack.cli(*argv)
    took = time.monotonic() - began
    if result.returncode != 0:
        raise SystemExit(f"deployer {' '.join(argv)} failed:\n{result.stderr}")
    return took


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switches", type=int, default=30)
    ap.add_argument("--releases", type=int, default=5)
    ap.add_argument("--startup-delay", type=float, default=4.0)
    args = ap.parse_args()
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(f"b{uuid.uuid4().hex[:8]}", Path(tmp), client, test_app_image(client))
        try:
            env = {"STARTUP_DELAY": str(args.startup_delay)}
            versions = [f"v{i}" for i in range(args.releases + 2)]
            for v in versions:
                stack.tag(v, backend_env=env, frontend_env=env)
            stack.ok("up")
            stack.ok("release", versions[0], "--no-backup")
            live = "blue"
            rows = []
            for v in versions[1:]:
                idle, probe = other(live), {"version": v}
                stop = threading.Event()
                watcher = threading.Thread(target=first_healthy, args=(stack, idle, stop, probe))
                watcher.start()
                took = wall(stack, "release", v, "--no-backup")
                stop.set()
                watcher.join()
                app = (probe["at"] - started_at(stack, idle, probe["release"])).total_seconds()
                rows.append((v, took, app, took - app))
                live = idle
            switches = []
            for _ in range(args.switches):
                live = other(live)
                switches.append(wall(stack, "switch", "--to", live))
        finally:
            stack.destroy()
    print(f"\nrelease (--no-backup), app STARTUP_DELAY={args.startup_delay:g}s, n={len(rows)}")
    print("version   wall      app to healthy   overhead")
    for v, took, app, over in rows:
        print(f"{v:8} {took:6.2f}s   {app:6.2f}s          {over:6.2f}s")
    overheads = [r[3] for r in rows]
    print(f"overhead: median {statistics.median(overheads):.2f}s, max {max(overheads):.2f}s")
    print(f"\nswitch, CLI wall time, n={len(switches)}: median {statistics.median(switches):.3f}s, "
          f"p95 {pct(switches, 0.95):.3f}s, min {min(switches):.3f}s, max {max(switches):.3f}s")


if __name__ == "__main__":
    main()
