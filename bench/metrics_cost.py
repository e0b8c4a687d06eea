"""The per-request cost of the edge's metrics (lua/deployer/metrics.lua's log handler): this
tree's against another revision's, side by side in one run.

For each tree, a throwaway container of the edge image (built from this tree's
deployer/assets/edge, with the tree's own lua/ mounted over it) runs a minimal site: nginx
proxies `/` to itself (a fixed 200 on a second port, or after `--delay` seconds) through a
keep-alive upstream, as the edge proxies to an app, and the log phase of each request times the tree's `metrics.log()`
with os.clock (the worker's CPU time):

- "hot": ROUNDS calls in a row per request, divided by ROUNDS: the JIT-compiled steady
  state, without the clock's own cost;
- "single": one call per request, as the edge makes it, less the cost of an empty pair of
  clock reads (a system call each, so noisier).

A client on this machine sends REQUESTS keep-alive requests to 127.0.0.1 (the container's
published port); the trees alternate, RUNS times each. The base revision's lua/ comes from
`git archive`. Containers are named `mc<random>-...` and removed at the end, even on failure.

    .venv/bin/python bench/metrics_cost.py --base main
    .venv/bin/python bench/metrics_cost.py --base main --delay 0.15 --requests 300
"""

from __future__ import annotations

import argparse
import http.client
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import harness

LUA = "deployer/assets/edge/lua"
SITE = """
include /etc/nginx/modules-enabled/*.conf;
worker_processes 1;
error_log /dev/stderr warn;
pid /tmp/nginx.pid;
events {}
http {
    access_log off;
    lua_package_path "/l/?.lua;;";
    lua_shared_dict deployer_metrics 32m;
    lua_shared_dict deployer_clients 16m;
    lua_shared_dict deployer_services 4m;
    lua_shared_dict deployer_inflight 1m;
    lua_shared_dict deployer_state 1m;
    lua_shared_dict bench 1m;
    init_worker_by_lua_block { require("deployer.inflight").start() }
    upstream app { server 127.0.0.1:8082; keepalive 16; }
    server { listen 8082; location / { UPSTREAM } }
    server {
        listen 8080;
        location / {
            # what the router and the balancer (ctx.tries) leave for the metrics
            # (and, in a tree that has them, the per-service figures' record: router.lua's enter)
            rewrite_by_lua_block {
                local c = ngx.ctx; c.route, c.colour, c.release, c.tries = "live", "blue", "aaaa1111", 1
                local has, services = pcall(require, "deployer.service_metrics")
                if has then services.enter("api", "/api/", "blue") end
            }
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
            log_by_lua_block {
                local clock, log, s = os.clock, require("deployer.metrics").log, ngx.shared.bench
                local t0 = clock()
                local t1 = clock()
                log()
                local t2 = clock()
                for _ = 1, ROUNDS do log() end
                local t3 = clock()
                s:incr("single", (t2 - t1) - (t1 - t0), 0)
                s:incr("hot", (t3 - t2) / ROUNDS, 0)
                s:incr("n", 1, 0)
            }
        }
        location = /_bench {
            content_by_lua_block {
                local s = ngx.shared.bench
                ngx.say(s:get("hot") / s:get("n") * 1e6, " ", s:get("single") / s:get("n") * 1e6)
            }
        }
    }
}
"""


def base_lua(rev: str, into: Path) -> Path:
    """The lua/ folder of the edge at a git revision."""
    tar = subprocess.run(["git", "archive", rev, LUA], cwd=harness.ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into / LUA


def one_run(client, image: str, name: str, lua: Path, site: Path, requests: int) -> tuple[float, float]:
    """(hot, single) microseconds per metrics.log() call of one tree."""
    container = client.containers.run(
        image,
        ["-c", "/etc/nginx/bench.conf", "-g", "daemon off;"],
        entrypoint=["nginx"],
        name=name,
        detach=True,
        ports={"8080/tcp": ("127.0.0.1", None)},
        volumes={str(lua): {"bind": "/l", "mode": "ro"}, str(site): {"bind": "/etc/nginx/bench.conf", "mode": "ro"}},
    )
    try:
        time.sleep(1)
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(requests):
            conn.request("GET", "/x")
            conn.getresponse().read()
        conn.request("GET", "/_bench")
        hot, single = conn.getresponse().read().decode().split()
        conn.close()
        return float(hot), float(single)
    finally:
        harness.remove(container)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    parser.add_argument("--base", default="main", help="the revision to compare with")
    parser.add_argument("--requests", type=int, default=5000, help="requests per run")
    parser.add_argument("--rounds", type=int, default=50, help="calls per request of the hot figure")
    parser.add_argument("--runs", type=int, default=3, help="runs per tree, alternating")
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds the upstream takes to answer (over 0.1: the slow path, per client too)")  # fmt: skip
    args = parser.parse_args(argv)
    import docker

    client = docker.from_env()
    image = harness.ensure_image(client, harness.ROOT / "deployer" / "assets" / "edge", "deployer-edge")
    prefix = f"mc{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "bench.conf"
        answer = (
            f'content_by_lua_block {{ ngx.sleep({args.delay}) ngx.say("ok") }}' if args.delay else 'return 200 "ok";'
        )
        site.write_text(SITE.replace("ROUNDS", str(args.rounds)).replace("UPSTREAM", answer))
        trees = {args.base: base_lua(args.base, Path(tmp)), "this tree": harness.ROOT / LUA}
        figures: dict[str, list[tuple[float, float]]] = {tree: [] for tree in trees}
        try:
            for run in range(args.runs):
                for tree, lua in trees.items():
                    hot, single = one_run(
                        client, image, f"{prefix}-{run}-{len(figures[tree])}", lua, site, args.requests
                    )
                    figures[tree].append((hot, single))
                    print(f"{tree:>10}: metrics.log {hot:.3f} us hot, {single:.3f} us single", file=sys.stderr)
        finally:
            harness.remove_named(client, prefix)
    for tree, runs in figures.items():
        hot = statistics.median(h for h, _ in runs)
        single = statistics.median(s for _, s in runs)
        print(f"{tree}: median of {len(runs)} runs: {hot:.3f} us per call hot, {single:.3f} us single")
    return 0


if __name__ == "__main__":
    sys.exit(main())
