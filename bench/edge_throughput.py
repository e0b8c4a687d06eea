"""Edge throughput: the deployer's edge against a plain nginx with a keep-alive upstream pool.

In one run, on one throwaway project (`et<random>`, removed at the end, even on failure):

- `deployer up` and `deployer release v1` of one service (`backend`, route `/`; the edge as
  users get it by default: access log on, `edge.expose_colour` off) whose image
  is a fast stand-in app (bench/images/fastapp: nginx answering a fixed JSON with the test
  app's identity headers), so that the proxies, not the app, are what is compared. The
  Python test app (a thread per connection) would be the limit (`--app testapp` shows it);
  `bench/edge_demo.py` compares the two proxies in front of the example's own backend.
- a peer, started by this script on the project's edge network: the edge's own image with a
  plain site, `upstream { server <app ip>:<port>; keepalive 64; }` and `proxy_pass`,
  in front of THE SAME app container (the live release's backend);
- wrk (Debian's, bench/images/load) in a container on the edge network, against
  `<edge>:80` and `<peer>:80` directly (no host port), path `/api/version`. Its network
  namespace reuses its own TIME_WAIT ports and has the whole port range
  (harness.CLIENT_SYSCTLS): a client that opens a connection per request closes it first,
  and without these, after about 25 s of a run its connect() spent most of the 2 cores
  searching for a free port (wrk at 170 % CPU, nearly all of it system time), and the
  run measured that: in 60 s runs, 7,896 req/s through the edge and 11,862 through the
  peer without them, 16,818 and 17,902 with them.

Matrix, the two proxies strictly alternating (edge, peer, edge, ...: both see the same
machine state, and neither runs twice in a row):

    {edge, peer} x {50, 500 connections} x {keep-alive, new connection per request}

then the same 50 keep-alive load while a holder keeps 1,000 idle or slow (never-finished
headers) connections open against the proxy ("slow clients"), then the edge against a
second peer that also writes the edge's access log ("logged peer": how much of the gap is
the log the issue asks for), then the edge alone at 50
keep-alive connections with its access log on and off (`edge.access_log`, re-rendered by
`deployer up`). A baseline row loads the app directly.

Reports req/s, failures (wrk's socket errors + responses >= 400), p50/p99 (wrk --latency),
TIME_WAIT sockets in the proxy's network namespace after each run (/proc/net/tcp read
inside it: `client` = on its listening port, `upstream` = its own connections to the app),
the CPU time per request of the proxy and of the app (the engine's stats; steadier than
req/s when something else shares the 2 cores), the share of the machine's CPU time the
hypervisor gave to other guests during the run (steal, from /proc/stat: a run with a high
one measured a slower machine), and the ratios edge/peer against issue 9's
targets: 0 failures, throughput >= 0.9x the peer's, p99 <= 1.5x the peer's. The load is
unpaced (the issue's method: each proxy as fast as it goes); `--rate` paces it instead,
to compare latency and CPU at the same rate.

    .venv/bin/python bench/edge_throughput.py --seconds 120 --json bench/results/edge-throughput.json
    .venv/bin/python bench/edge_throughput.py --seconds 10          # a quick look (about 5 min)

`--only-bound --log-rounds 2` runs only the plain peer, the peer with the edge's access log,
the edge without Lua per request (its own site with fixed routing values: its headers and
its log), the Lua floor (that site plus two empty Lua phases, the least a Lua router and Lua
metrics cost) and the edge, in rotation at 50 connections (both client modes unless
`--bound-modes` says one): how far below the plain peer the log alone takes a proxy on this
machine, and how much the edge's headers and its Lua add (about 32 min per mode for three
rounds at 120 s per run).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import harness
from harness import Lane, ratio, run_wrk, tcp_states

from deployer.core.compose import EDGE_LOGGING

PEER_SITE = """\
# A plain nginx in front of one app container: what the edge is measured against.
upstream bench_app {{
    server {address}:{port};
    keepalive {keepalive};
}}
access_log off;
server {{
    listen 80 default_server;
    location / {{
        proxy_pass http://bench_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
    }}
}}
server {{
    listen 8081;
    location = /_deployer/edge {{ return 200 "ok\\n"; }}
}}
"""

TARGETS = {"p99_ratio": 1.5, "rps_ratio": 0.9}
# The proxies of the --only-bound phase, in the order they run.
BOUND_PROXIES = ("peer", "peer+log", "no-lua", "lua-floor", "edge")
# Each compared group of runs: the edge's peer in it, and how the ratio table names the load.
GROUPS = {"matrix": ("peer", "plain"), "slow": ("peer", "+ slow clients"),
          "logged peer": ("peer+log", "peer with the edge's access log")}  # fmt: skip


EDGE_LOG = "access_log /run/deployer/access.fifo"  # the edge's access log line starts so (site.conf.j2)
# The edge's log driver (deployer.core.compose), for a peer that writes the edge's log too.
EDGE_LOG_CONFIG = {"type": EDGE_LOGGING["driver"], "config": EDGE_LOGGING["options"]}


def logged_peer_site(site: str, edge_site: str, release: str) -> str:
    """The peer's site with the edge's own access log: the `log_format` of the edge's rendered
    site, the route's values written in where the edge's router sets them per request, to
    its relay (the same image and entrypoint) with the same buffering (and, see `Bench.prepare`,
    the edge's log driver)."""
    start = edge_site.index("log_format deployer_json")
    end = edge_site.index("';\n", start) + 3
    fmt = edge_site[start:end]
    fixed = {"$deployer_route": "live", "$deployer_prefix": "/api/", "$deployer_colour": "blue",
             "$deployer_release": release, "$deployer_service": "backend",
             "$deployer_request_id": "$request_id"}  # fmt: skip
    for var, value in fixed.items():
        fmt = fmt.replace(var, value)
    log = next(line for line in edge_site.splitlines() if line.startswith(EDGE_LOG))
    return site.replace("access_log off;\n", fmt + log + "\n")


def unrouted_edge_site(edge_site: str, address: str, port: int, release: str) -> str:
    """The edge's own rendered site without Lua per request: the upstream block names the app's
    address instead of the balancer, the public route sets the router's variables to fixed
    values, and no metrics are counted. Everything else is the edge's: its headers, its
    forwarded headers, its limits, its access log. The edge's share of the gap that is not
    its log nor its headers is then the edge against this one."""
    fixed = (f"set $deployer_route live; set $deployer_prefix /api/; set $deployer_colour blue; "
             f"set $deployer_release {release}; set $deployer_service backend;")  # fmt: skip
    site, n = re.subn(r"^(\s*)server 0\.0\.0\.1;.*\n\s*balancer_by_lua_block \{[^\n]*\}\n",
                      rf"\g<1>server {address}:{port};\n", edge_site, flags=re.M)  # fmt: skip
    site, m = re.subn(r'rewrite_by_lua_block \{ require\("deployer\.router"\)\.route\("live"[^\n]*\}', fixed, site)
    site = re.sub(r"^\s*log_by_lua_block \{[^\n]*\}\n", "", site, flags=re.M)
    if n != 1 or m < 1:
        raise SystemExit("the edge's site has changed: cannot derive the edge without Lua from it")
    return site


def lua_floor_site(no_lua_site: str) -> str:
    """The edge without Lua (`unrouted_edge_site`) plus the two Lua phases that any design
    with the issue's features runs per request: one before the proxying, which routes without
    a reload (here `rewrite_by_lua`, where the edge's router runs), and one after it, which
    counts the response for the per-colour metrics (`log_by_lua`). Both are empty: what this
    proxy adds to the edge without Lua is only the fixed cost of entering Lua twice per
    request, the least that a Lua router and Lua metrics can cost."""
    site, n = re.subn(r"(set \$deployer_service backend;)", r"\1 rewrite_by_lua_block { }", no_lua_site)
    site, m = re.subn(r"^(\s*)(add_header X-Deployer-Release [^\n]*\n)", r"\1\2\1log_by_lua_block { }\n", site, count=1,
                      flags=re.M)  # fmt: skip
    if n < 1 or m < 1:
        raise SystemExit("the edge's site has changed: cannot derive the Lua floor from it")
    return site


def services_toml(name: str) -> str:
    return f"""
        [services.backend]
        image = "{name}-backend"
        port = 8080
        health = "/health"
        routes = ["/"]
        stop_grace = 5
        """


class Bench:
    def __init__(self, stack, client, args, app_image: str, load_image: str) -> None:
        self.stack, self.client, self.args = stack, client, args
        self.app_image, self.load_image = app_image, load_image
        self.name = stack.name
        self.network = f"{self.name}-edge"
        self.rows: list[dict] = []
        self.peer = None

    # -- set-up ------------------------------------------------------------------
    def prepare(self) -> None:
        s, a = self.stack, self.args
        s.write_config(services=services_toml(self.name), expose_colour=False)
        env = {"APP_WORKERS": str(a.app_workers)} if a.app == "fast" else None
        s.tag("v1", backend_env=env, services=("backend",))
        s.ok("up")
        s.ok("release", "v1", "--no-backup")
        app = next(c for c in s.containers("blue") if c.labels.get("deployer.service") == "backend")
        self.app = app
        self.app_address = harness.address(app, self.network)
        self.app_name = app.name
        site = PEER_SITE.format(address=self.app_address, port=8080, keepalive=a.peer_keepalive)
        self.peer = self.start_peer("peer", site)
        self.edge_site = s.edge_file("/var/lib/deployer/site.conf")
        self.release = harness.current_release(s, "blue")
        self.logged_peer = self.start_peer(
            "peer-log", logged_peer_site(site, self.edge_site, self.release), log_config=EDGE_LOG_CONFIG
        )
        for proxy in (self.peer, self.logged_peer, s.edge):
            harness.wait_http(proxy, "http://127.0.0.1/api/version")
        self.proxies = {"edge": (s.edge, f"http://{s.edge.name}:80/api/version"),
                        "peer": (self.peer, f"http://{self.peer.name}:80/api/version"),
                        "peer+log": (self.logged_peer, f"http://{self.logged_peer.name}:80/api/version")}  # fmt: skip
        print(f"project {self.name}: app {self.app_name} at {self.app_address}:8080, "
              f"edge {s.edge.name}, peer {self.peer.name}", file=sys.stderr)  # fmt: skip

    def start_peer(self, label: str, site: str, **options):
        return start_peer(self.client, self.stack.edge, self.name, label, site, **options)

    # -- one measured run ----------------------------------------------------------
    def run(self, group: str, proxy: str, connections: int, close: bool, *, seconds: float | None = None,
            note: str = "", **extra) -> dict:  # fmt: skip
        seconds = seconds or self.args.seconds
        container, url = self.proxies.get(proxy, (None, proxy))
        if container is not None and self.args.drain:
            drain(container, self.args.drain)
        before = tcp_states(container) if container else {}
        cpu_before = {name: harness.cpu_ns(c) for name, c in self.cpu_watch(container).items()}
        cpu_before["logging"] = harness.logging_cpu_ns(container)
        machine_before = harness.cpu_times()
        began = time.monotonic()
        env = {}
        if self.args.rate > 0:  # each connection paced so that all of them together make --rate req/s
            env["WRK_DELAY_MS"] = str(max(1, round(1000 * connections / self.args.rate)))
        result = run_wrk(self.client, self.load_image, self.name, self.network, url, connections=connections,
                         seconds=seconds, close=close, threads=self.args.threads, env=env)  # fmt: skip
        cpu = {name: harness.cpu_ns(c) for name, c in self.cpu_watch(container).items()}
        cpu["logging"] = harness.logging_cpu_ns(container)
        steal = harness.steal_share(machine_before, harness.cpu_times())
        after = tcp_states(container) if container else {}
        per_request = {
            f"cpu_us_per_req_{name}": round((cpu[name] - cpu_before[name]) / 1000 / result.requests, 1)
            if cpu[name] is not None and cpu_before[name] is not None and result.requests
            else None
            for name in cpu
        }
        row = {
            "group": group, "proxy": proxy if container else "app direct", "connections": connections,
            "mode": "close" if close else "keep-alive", "note": note, **result.row(),
            "time_wait_before": before.get("time_wait"), "time_wait_after": after.get("time_wait"),
            "tw_client_side": after.get("client_side"), "tw_upstream_side": after.get("upstream_side"),
            "log_bytes": line * result.requests if (line := _line_bytes(container)) else None,
            "wall": round(time.monotonic() - began, 1), **per_request, "steal": steal, **extra,
        }  # fmt: skip
        self.rows.append(row)
        print(f"  {group:11} {row['proxy']:10} c={connections:<4} {row['mode']:10} {note:14} "
              f"{result.rps:9.1f} req/s  failed {result.failures:<6} p50 {result.p50_ms:7.2f} ms  "
              f"p99 {result.p99_ms:8.2f} ms  TIME_WAIT {row['time_wait_after']} "
              f"(upstream {row['tw_upstream_side']})  CPU/req proxy {row.get('cpu_us_per_req_proxy')} us "
              f"app {row.get('cpu_us_per_req_app')} us  steal {steal} %", file=sys.stderr)  # fmt: skip
        time.sleep(self.args.pause)
        return row

    def cpu_watch(self, proxy) -> dict:
        """Whose CPU time a run charges per request: the proxy's and the app's."""
        watch = {"app": self.app}
        if proxy is not None:
            watch["proxy"] = proxy
        return watch

    def matrix(self) -> None:
        # Strictly alternating, so a proxy never runs twice in a row: the other's run
        # between two of its own lets its TIME_WAIT sockets drain (60 s) on long runs.
        for connections in self.args.connections:
            for close in (False, True):
                for proxy in ("edge", "peer"):
                    self.run("matrix", proxy, connections, close)

    def baseline(self) -> None:
        seconds = min(self.args.seconds, self.args.baseline_seconds)
        self.run("baseline", f"http://{self.app_address}:8080/api/version", 50, False, seconds=seconds,
                 note=f"{self.args.app} app")  # fmt: skip

    def slow_clients(self) -> None:
        a = self.args
        for proxy in ("edge", "peer"):
            container, _ = self.proxies[proxy]
            holder = Lane(
                self.client, self.load_image, self.name, self.network,
                ["python3", "/bench/slowclients.py", container.name, "80", "--count", str(a.slow_count),
                 "--seconds", str(a.seconds + a.slow_ramp + 5), "--idle-share", str(a.idle_share),
                 "--trickle", str(a.trickle)],
                label="slow",
            )  # fmt: skip
            try:
                time.sleep(a.slow_ramp)
                held = tcp_states(container)["established"]
                row = self.run("slow", proxy, 50, False, note=f"+{a.slow_count} slow", established_before=held)
            finally:
                text = holder.output(timeout=a.seconds + a.slow_ramp + 60)
            line = next((ln for ln in text.splitlines() if ln.startswith("SLOW_JSON ")), None)
            row["slow_clients"] = json.loads(line[len("SLOW_JSON ") :]) if line else {"error": text[-500:]}
            sc = row["slow_clients"]
            print(f"    slow clients against {proxy}: {sc}", file=sys.stderr)

    def logged_peer_runs(self) -> None:
        """The edge against a peer that writes the edge's access log too (not the issue's
        target: it shows how much of the gap is the log the issue asks for)."""
        for rnd in range(self.args.log_rounds):
            for proxy in ("edge", "peer+log") if rnd % 2 == 0 else ("peer+log", "edge"):
                self.run("logged peer", proxy, 50, False)

    def log_bound(self) -> None:
        """The plain peer, the peer with the edge's access log, the edge without Lua per request
        (`unrouted_edge_site`), the Lua floor (`lua_floor_site`) and the edge, in rotation (the
        order reversed every other round), in each client mode of --bound-modes: the logged
        peer's ratio to the plain one is what the issue's log alone leaves of the issue's peer's
        throughput on this machine; the edge without Lua adds the edge's headers; the floor adds
        the fixed cost of two Lua phases per request; the edge adds its router, balancer and
        metrics. Opt-in (--only-bound)."""
        site = unrouted_edge_site(self.edge_site, self.app_address, 8080, self.release)
        for label, derived in (("no-lua", site), ("lua-floor", lua_floor_site(site))):
            if label in self.args.bound_proxies:
                proxy = self.start_peer(label, derived, log_config=EDGE_LOG_CONFIG)
                harness.wait_http(proxy, "http://127.0.0.1/api/version")
                self.proxies[label] = (proxy, f"http://{proxy.name}:80/api/version")
        order = [p for p in BOUND_PROXIES if p in self.args.bound_proxies]
        modes = [mode == "close" for mode in self.args.bound_modes]
        for rnd in range(self.args.log_rounds):
            for close in modes:
                for proxy in order if rnd % 2 == 0 else order[::-1]:
                    self.run("log bound", proxy, 50, close, note=f"round {rnd + 1}")

    def access_log(self) -> None:
        s = self.stack
        for rnd in range(self.args.log_rounds):
            for on in (True, False) if rnd % 2 == 0 else (False, True):
                s.write_config(
                    services=services_toml(self.name), edge="" if on else "access_log = false\n", expose_colour=False
                )
                s.ok("up")
                site = s.edge_file("/var/lib/deployer/site.conf")
                rendered_on = EDGE_LOG in site
                if rendered_on != on:
                    raise SystemExit(f"`deployer up` did not render access_log {'on' if on else 'off'}")
                harness.wait_http(s.edge, "http://127.0.0.1/api/version")
                time.sleep(1)
                self.run("access log", "edge", 50, False, note=f"log {'on' if on else 'off'}", access_log=on)
        s.write_config(services=services_toml(self.name), expose_colour=False)

    def buffers(self) -> None:
        """How the access log reaches stdout, set by hand in the running edge's site and
        reloaded, alternating: the edge's relay (4 KB writes to its FIFO, large writes to
        stdout), 4 KB writes straight to stdout (whole lines, a write per 4 KB for the engine),
        and 64 KB straight to stdout (fewer writes, but a flush can interleave with another
        worker's and break lines). Opt-in (--only-buffers)."""
        s = self.stack
        variants = [("relay", "/run/deployer/access.fifo", "4k"), ("stdout", "/dev/stdout", "4k"),
                    ("stdout", "/dev/stdout", "64k")]  # fmt: skip
        for rnd in range(self.args.log_rounds):
            for how, path, size in variants if rnd % 2 == 0 else variants[::-1]:
                line = f"access_log {path} deployer_json buffer={size}"
                script = (f"sed -i 's#^access_log [^ ]* deployer_json buffer=[0-9]*k#{line}#' /var/lib/deployer/site.conf"
                          f" && grep -q '^{line} ' /var/lib/deployer/site.conf && nginx -s reload")  # fmt: skip
                code, out = s.edge.exec_run(["sh", "-c", script])
                if code != 0:
                    raise SystemExit(f"could not set the access log to {how} {size}: {out.decode()}")
                time.sleep(3)  # the old workers finish
                harness.wait_http(s.edge, "http://127.0.0.1/api/version")
                for close in (False, True):
                    self.run("log buffer", "edge", 50, close, note=f"{how} {size}", buffer=size, log_path=how)


def start_peer(client, edge, project: str, label: str, site: str, **options):
    """A plain nginx from the edge's image, with `site` instead of the deployer's, on the
    project's edge network, named `<project>-bench-<label>` (removed with the bench's own)."""
    return client.containers.run(
        edge.image.id,
        ["-c", 'printf "%s" "$SITE" > /var/lib/deployer/site.conf && exec /usr/local/bin/edge-entrypoint'],
        entrypoint=["sh"],
        name=f"{project}-bench-{label}",
        network=f"{project}-edge",
        environment={"SITE": site},
        labels={"deployer.project": project, "deployer.role": "bench"},
        detach=True,
        **options,
    )


def drain(container, threshold: int, limit: float = 65) -> None:
    """Wait (at most `limit` s: TIME_WAIT lasts 60 s) until the proxy holds fewer than `threshold`
    TIME_WAIT sockets on its upstream side, the ones that take ephemeral ports, so that a run
    does not start with the last one's."""
    deadline = time.monotonic() + limit
    while tcp_states(container)["upstream_side"] >= threshold and time.monotonic() < deadline:
        time.sleep(2)


def _line_bytes(container) -> float | None:
    """Mean size of the proxy's last 200 log lines (newline included), as nginx wrote them
    (the log rotates at 50 MB, so its size says nothing over a long run)."""
    if container is None:
        return None
    try:
        lines = container.logs(tail=200, stderr=False).splitlines()
    except Exception:  # gone
        return None
    return sum(len(line) + 1 for line in lines) / len(lines) if lines else None


# -- report ------------------------------------------------------------------------
def find(rows: list[dict], group: str, proxy: str, connections: int, mode: str, note: str | None = None) -> dict | None:
    return next((r for r in rows if r["group"] == group and r["proxy"] == proxy and r["connections"] == connections
                 and r["mode"] == mode and (note is None or r["note"] == note)), None)  # fmt: skip


def comparisons(rows: list[dict]) -> list[dict]:
    out = []
    for group, (peer_name, _) in GROUPS.items():
        for r in rows:
            if r["group"] != group or r["proxy"] != "edge":
                continue
            peer = find(rows, group, peer_name, r["connections"], r["mode"])
            if not peer:
                continue
            rps, p99 = ratio(r["rps"], peer["rps"]), ratio(r["p99_ms"], peer["p99_ms"])
            out.append({
                "group": group, "connections": r["connections"], "mode": r["mode"],
                "edge_rps": r["rps"], "peer_rps": peer["rps"], "rps_ratio": rps,
                "edge_p99_ms": r["p99_ms"], "peer_p99_ms": peer["p99_ms"], "p99_ratio": p99,
                "edge_failures": r["failures"], "peer_failures": peer["failures"],
                "met": bool(r["failures"] == 0 and rps is not None and rps >= TARGETS["rps_ratio"]
                            and p99 is not None and p99 <= TARGETS["p99_ratio"]),
            })  # fmt: skip
    return out


def table(rows: list[dict]) -> str:
    lines = [
        "| group | proxy | conns | mode | note | req/s | failed | p50 (ms) | p99 (ms) | TIME_WAIT after (upstream side) "
        "| CPU per request: proxy / app (us) |",
        "|---|---|--:|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        tw = "" if r["time_wait_after"] is None else f"{r['time_wait_after']} ({r['tw_upstream_side']})"
        cpu = f"{r.get('cpu_us_per_req_proxy') or '-'} / {r.get('cpu_us_per_req_app') or '-'}"
        lines.append(f"| {r['group']} | {r['proxy']} | {r['connections']} | {r['mode']} | {r['note']} | {r['rps']:.0f} "
                     f"| {r['failures']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {tw} | {cpu} |")  # fmt: skip
    return "\n".join(lines)


def ratio_table(comps: list[dict]) -> str:
    lines = [
        "| load | conns | mode | edge / peer req/s | ratio (>= 0.9) | edge / peer p99 (ms) | ratio (<= 1.5) "
        "| failed edge / peer | targets |",
        "|---|--:|---|--:|--:|--:|--:|--:|---|",
    ]
    for c in comps:
        load = GROUPS[c["group"]][1]
        lines.append(f"| {load} | {c['connections']} | {c['mode']} | {c['edge_rps']:.0f} / {c['peer_rps']:.0f} "
                     f"| {c['rps_ratio']} | {c['edge_p99_ms']:.2f} / {c['peer_p99_ms']:.2f} | {c['p99_ratio']} "
                     f"| {c['edge_failures']} / {c['peer_failures']} | {'met' if c['met'] else 'NOT met'} |")  # fmt: skip
    return "\n".join(lines)


def log_summary(rows: list[dict]) -> str:
    on = [r for r in rows if r["group"] == "access log" and r.get("access_log")]
    off = [r for r in rows if r["group"] == "access log" and not r.get("access_log")]
    if not on or not off:
        return ""
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    rps_on, rps_off = mean([r["rps"] for r in on]), mean([r["rps"] for r in off])
    p99_on, p99_off = mean([r["p99_ms"] for r in on]), mean([r["p99_ms"] for r in off])
    logged = [r["log_bytes"] / r["seconds"] / 1e6 for r in on if r.get("log_bytes")]
    per_line = [r["log_bytes"] / r["requests"] for r in on if r.get("log_bytes") and r["requests"]]
    text = (f"access log on / off (edge, 50 keep-alive): {rps_on:.0f} / {rps_off:.0f} req/s "
            f"(ratio {ratio(rps_on, rps_off)}), p99 {p99_on:.2f} / {p99_off:.2f} ms")  # fmt: skip
    if logged:
        text += f"; log written {mean(logged):.2f} MB/s, {mean(per_line):.0f} bytes per request (before the log driver's framing)"
    cpu = [(r.get("cpu_us_per_req_proxy"), r.get("cpu_us_per_req_logging")) for r in (on[0], off[0])]
    if all(c is not None for pair in cpu for c in pair):
        text += (f"; CPU per request, edge + dockerd/shim: on {cpu[0][0]} + {cpu[0][1]} us, "
                 f"off {cpu[1][0]} + {cpu[1][1]} us")  # fmt: skip
    return text


def bound_summary(rows: list[dict]) -> str:
    """Mean req/s, CPU per request and steal of each proxy in the `log bound` runs, per mode,
    and the ratios of each step that ran: the logged peer to the plain peer (the ceiling the log
    leaves), the edge without Lua to the logged peer (the edge's headers), the Lua floor to the
    edge without Lua (entering Lua twice), the edge to the floor (its own Lua work), the floor
    and the edge to the plain peer (issue 9's target)."""
    steps = (("peer+log", "peer"), ("no-lua", "peer+log"), ("lua-floor", "no-lua"), ("edge", "lua-floor"),
             ("edge", "no-lua"), ("lua-floor", "peer"), ("edge", "peer+log"), ("edge", "peer"))  # fmt: skip
    lines = []
    for mode in ("keep-alive", "close"):
        runs = {p: [r for r in rows if r["group"] == "log bound" and r["proxy"] == p and r["mode"] == mode]
                for p in BOUND_PROXIES}  # fmt: skip
        runs = {p: rs for p, rs in runs.items() if rs}
        if len(runs) < 2:
            continue
        rps = {p: sum(r["rps"] for r in rs) / len(rs) for p, rs in runs.items()}

        def mean(p: str, key: str, runs: dict = runs) -> str:
            xs = [r[key] for r in runs[p] if r.get(key) is not None]
            return f"{sum(xs) / len(xs):.1f}" if xs else "-"

        lines.append(
            f"{mode}, 50 connections: " + ", ".join(f"{p} {v:.0f}" for p, v in rps.items()) + " req/s; "
            + ", ".join(f"{a} / {b} {ratio(rps[a], rps[b])}" for a, b in steps if a in rps and b in rps)
            + "; CPU us/req proxy (dockerd and shim): "
            + ", ".join(f"{p} {mean(p, 'cpu_us_per_req_proxy')} ({mean(p, 'cpu_us_per_req_logging')})" for p in runs)
            + "; steal % " + ", ".join(f"{p} {mean(p, 'steal')}" for p in runs)
        )  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    p.add_argument("--seconds", type=float, default=120, help="length of each wrk run")
    p.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[50, 500])
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument(
        "--rate",
        type=float,
        default=0,
        help="pace the load to about this many req/s in all (0: as fast as it goes, the issue's method)",
    )
    p.add_argument("--pause", type=float, default=3, help="seconds between two runs")
    p.add_argument(
        "--drain",
        type=int,
        default=1000,
        help="before a run, wait (<= 65 s) until the proxy holds fewer upstream-side TIME_WAIT sockets (0: never)",
    )
    p.add_argument(
        "--peer-keepalive",
        type=int,
        default=64,
        help="the peer's `keepalive` (idle pooled connections per worker; the edge's default is 512)",
    )
    p.add_argument("--app", choices=("fast", "testapp"), default="fast")
    p.add_argument("--app-workers", type=int, default=1, help="nginx workers of the fast app")
    p.add_argument("--baseline-seconds", type=float, default=30, help="at most this long for the app-direct row")
    p.add_argument("--slow-count", type=int, default=1000, help="idle or slow connections held open")
    p.add_argument("--idle-share", type=float, default=0.5, help="share of them that send nothing at all")
    p.add_argument("--trickle", type=float, default=5, help="seconds between two header lines of a slow client")
    p.add_argument("--slow-ramp", type=float, default=5, help="seconds to open them before the load starts")
    p.add_argument(
        "--log-rounds", type=int, default=1, help="pairs of access log on/off runs, and of edge/logged-peer runs"
    )
    p.add_argument("--skip", default="", help="comma list of parts to skip: baseline,matrix,slow,peerlog,log")
    p.add_argument(
        "--only-buffers",
        action="store_true",
        help="run only the comparison of the access log's relay, 4 KB and 64 KB writes to stdout (--log-rounds)",
    )
    p.add_argument(
        "--only-bound",
        action="store_true",
        help="run only the plain peer, the logged peer and the edge in rotation at 50 connections (--log-rounds)",
    )
    p.add_argument(
        "--bound-modes",
        type=lambda s: s.split(","),
        default=["keep-alive", "close"],
        help="client modes of the --only-bound runs: keep-alive,close",
    )
    p.add_argument(
        "--bound-proxies",
        type=lambda s: s.split(","),
        default=list(BOUND_PROXIES),
        help="proxies of the --only-bound runs, comma-separated: " + ",".join(BOUND_PROXIES),
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if len(args.bound_proxies) < 2 or set(args.bound_proxies) - set(BOUND_PROXIES):
        p.error("--bound-proxies takes at least two of " + ", ".join(BOUND_PROXIES) + ", comma-separated")
    if not args.bound_modes or set(args.bound_modes) - {"keep-alive", "close"}:
        p.error("--bound-modes takes keep-alive, close or both, comma-separated")
    skip = set(filter(None, args.skip.split(",")))

    import docker
    from stack import Stack

    client = docker.from_env(timeout=600)
    app_image = harness.fastapp_image(client) if args.app == "fast" else harness.test_app_image(client)
    load_image = harness.load_image(client)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    with tempfile.TemporaryDirectory(prefix="etbench-") as tmp:
        stack = Stack(f"et{uuid.uuid4().hex[:8]}", Path(tmp), client, app_image)
        bench = Bench(stack, client, args, app_image, load_image)
        try:
            bench.prepare()
            if args.only_buffers or args.only_bound:
                skip = {"baseline", "matrix", "slow", "peerlog", "log"}
                if args.only_buffers:
                    bench.buffers()
                else:
                    bench.log_bound()
            if "baseline" not in skip:
                bench.baseline()
            if "matrix" not in skip:
                bench.matrix()
            if "slow" not in skip:
                bench.slow_clients()
            if "peerlog" not in skip:
                bench.logged_peer_runs()
            if "log" not in skip:
                bench.access_log()
        finally:
            harness.remove_named(client, f"{stack.name}-bench-")
            stack.destroy()
    rows = bench.rows
    comps = comparisons(rows)
    print(table(rows))
    if comps:
        print()
        print(ratio_table(comps))
    bound = bound_summary(rows)
    if bound:
        print()
        print(bound)
    logs = log_summary(rows)
    if logs:
        print()
        print(logs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "started": started, "args": {**vars(args), "json": str(args.json)}, "app_image": app_image,
            "rows": rows, "comparisons": comps, "access_log": logs, "log_bound": bound, "table": table(rows),
            "ratios": ratio_table(comps),
        }, indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
