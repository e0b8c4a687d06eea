"""The edge against the proxies a team would pick to do its job, in one run.

A plain nginx cannot switch without a reload. HAProxy (Debian trixie's 3.0: the runtime API's
`set map` flips the colour, a Prometheus exporter built in) and Caddy (Debian trixie's: its
admin API patches the upstream) can. Each peer here is built from Debian's package
(bench/images/haproxy, bench/images/caddy), keeps a keep-alive pool to the app (nginx and
Caddy: --pool idle connections, as the edge's upstream_keepalive, 512; HAProxy: http-reuse
always, its pool unbounded) and writes an access log line per request to stdout, as the edge
does. Plain nginx, with and without the
edge's own access log (bench/edge_throughput.py's peers), run beside them.

One throwaway project (`ep<random>`, removed at the end, even on failure): the fast stand-in
app (bench/images/fastapp) released as v1 on blue and v2 on green (green live), so that a
switch shows in the answer's X-App-Version. Before anything is measured, each proxy that can
switch does it both ways and the answers are checked (edge: `deployer switch`; HAProxy:
`set map` on its admin socket; Caddy: PATCH /id/live/upstreams).

Then, in rotated rounds (the order reversed every other round, so no proxy always runs
first), wrk from a container on the project's network (no host port) at each of
--connections, keep-alive, against edge, haproxy, caddy, nginx+log and nginx. Last, each
switching proxy is loaded for --switch-seconds while it switches every second, and every
failed request is counted.

    .venv/bin/python bench/edge_peers.py --seconds 30 --rounds 2 --json bench/results/edge-peers.json
    .venv/bin/python bench/edge_peers.py --seconds 10 --rounds 1      # a quick look (about 6 min)

Targets (issue 38): the edge's throughput at least the best same-job peer's (HAProxy or
Caddy), at least 0.9x nginx writing the same log, and 0 failures, switches included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import harness
from edge_throughput import EDGE_LOG_CONFIG, PEER_SITE, Bench, logged_peer_site, services_toml, start_peer

BENCH = Path(__file__).resolve().parent
PROXIES = ("edge", "haproxy", "caddy", "nginx+log", "nginx")
SWITCHING = ("edge", "haproxy", "caddy")
SAME_JOB = ("haproxy", "caddy")

# A JSON line per request, with about the edge's fields (time, id, colour, method, path,
# status, the upstream's connect and header times, the total, bytes).
HAPROXY_LOG = (
    '{\\"time\\":\\"%tr\\",\\"request_id\\":\\"%ID\\",\\"colour\\":\\"%b\\",\\"service\\":\\"backend\\",'
    '\\"method\\":\\"%HM\\",\\"path\\":\\"%HPO\\",\\"status\\":%ST,\\"connect_time\\":\\"%Tc\\",'
    '\\"header_time\\":\\"%Tr\\",\\"time_total\\":%Ta,\\"bytes\\":%B}'
)
HAPROXY_CFG = """\
global
    log stdout format raw local0
    stats socket /run/haproxy/admin.sock mode 600 level admin
    maxconn 9000
defaults
    mode http
    log global
    option dontlognull
    timeout connect 5s
    timeout client 30s
    timeout server 300s
    timeout http-keep-alive 30s
    http-reuse always
    unique-id-format %{{+X}}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
    log-format "{log}"
frontend public
    bind :80
    unique-id-header X-Request-ID
    use_backend %[str(live),map(/etc/haproxy/colour.map,green)]
backend blue
    server app {blue}:8080 maxconn 4000
backend green
    server app {green}:8080 maxconn 4000
"""


def caddy_json(upstream: str, pool: int) -> str:
    return json.dumps({
        "admin": {"listen": "127.0.0.1:2019"},
        "logging": {"logs": {
            "default": {"exclude": ["http.log.access"]},
            "access": {"writer": {"output": "stdout"}, "encoder": {"format": "json"}, "include": ["http.log.access"]},
        }},
        "apps": {"http": {"servers": {"public": {
            "listen": [":80"],
            "automatic_https": {"disable": True},
            "logs": {"default_logger_name": "access"},
            "routes": [{"handle": [{
                "@id": "live",
                "handler": "reverse_proxy",
                "upstreams": [{"dial": upstream}],
                "transport": {"protocol": "http", "keep_alive": {"enabled": True, "max_idle_conns_per_host": pool}},
            }]}],
        }}}},
    })  # fmt: skip


class Peers:
    def __init__(self, stack, client, args, load_image: str) -> None:
        self.stack, self.client, self.args, self.load_image = stack, client, args, load_image
        self.name = stack.name
        self.network = f"{self.name}-edge"
        self.bench = Bench(stack, client, args, stack.app_image, load_image)  # its measured run
        self.switches: list[dict] = []

    def prepare(self) -> None:
        s, a = self.stack, self.args
        s.write_config(services=services_toml(self.name), expose_colour=False)
        env = {"APP_WORKERS": str(a.app_workers)}
        for version in ("v1", "v2"):
            s.tag(version, backend_env=env, services=("backend",))
        s.ok("up")
        s.ok("release", "v1", "--no-backup")
        s.ok("release", "v2", "--no-backup")  # green live (v2), blue the standby (v1)
        apps = {c.labels["deployer.colour"]: c for c in s.containers() if c.labels.get("deployer.role") == "app"}
        self.addr = {colour: harness.address(c, self.network) for colour, c in apps.items()}
        self.bench.app = apps["green"]
        edge_site = s.edge_file("/var/lib/deployer/site.conf")
        release = harness.current_release(s, "green")
        site = PEER_SITE.format(address=self.addr["green"], port=8080, keepalive=a.pool)
        nginx = start_peer(self.client, s.edge, self.name, "nginx", site)
        logged = start_peer(self.client, s.edge, self.name, "nginx-log", logged_peer_site(site, edge_site, release),
                            log_config=EDGE_LOG_CONFIG)  # fmt: skip
        haproxy = self.client.containers.run(
            harness.ensure_image(self.client, BENCH / "images" / "haproxy", "deployer-bench-haproxy"),
            name=f"{self.name}-bench-haproxy", network=self.network, detach=True,
            environment={"HAPROXY_CFG": HAPROXY_CFG.format(log=HAPROXY_LOG, **self.addr), "COLOUR_MAP": "live green"},
            labels={"deployer.project": self.name, "deployer.role": "bench"},
        )  # fmt: skip
        caddy = self.client.containers.run(
            harness.ensure_image(self.client, BENCH / "images" / "caddy", "deployer-bench-caddy"),
            name=f"{self.name}-bench-caddy", network=self.network, detach=True,
            environment={"CADDY_JSON": caddy_json(f"{self.addr['green']}:8080", a.pool)},
            labels={"deployer.project": self.name, "deployer.role": "bench"},
        )  # fmt: skip
        self.containers = {"edge": s.edge, "haproxy": haproxy, "caddy": caddy, "nginx+log": logged, "nginx": nginx}
        for c in self.containers.values():
            harness.wait_http(c, "http://127.0.0.1/api/version")
        self.bench.proxies = {p: (c, f"http://{c.name}:80/api/version") for p, c in self.containers.items()}

    # -- the runtime switch of each proxy that has one ---------------------------------------
    def switch(self, proxy: str, colour: str) -> None:
        if proxy == "edge":
            self.stack.ok("switch", "--to", colour)
            return
        c = self.containers[proxy]
        if proxy == "haproxy":
            argv = [
                "sh",
                "-c",
                f'echo "set map /etc/haproxy/colour.map live {colour}" | socat - /run/haproxy/admin.sock',
            ]
        else:
            body = json.dumps([{"dial": f"{self.addr[colour]}:8080"}])
            argv = ["curl", "-fsS", "-X", "PATCH", "-H", "Content-Type: application/json", "-d", body,
                    "http://127.0.0.1:2019/id/live/upstreams"]  # fmt: skip
        code, out = c.exec_run(argv)
        if code != 0:
            raise RuntimeError(f"{proxy}: the switch to {colour} failed: {out.decode(errors='replace')}")

    def version(self, proxy: str) -> str:
        c = self.containers[proxy]
        code, out = c.exec_run(["curl", "-fsS", "-D", "-", "-o", "/dev/null", "http://127.0.0.1/api/version"])
        for line in out.decode(errors="replace").splitlines():
            if line.lower().startswith("x-app-version:"):
                return line.split(":", 1)[1].strip()
        raise RuntimeError(f"{proxy}: no X-App-Version in its answer ({code}): {out[-300:]!r}")

    def check_switches(self) -> None:
        """Each switching proxy flips to blue (v1) and back to green (v2); refused to measure otherwise."""
        for proxy in SWITCHING:
            seen = [self.version(proxy)]
            self.switch(proxy, "blue")
            seen.append(self.version(proxy))
            self.switch(proxy, "green")
            seen.append(self.version(proxy))
            if seen != ["v2", "v1", "v2"]:
                raise SystemExit(f"{proxy}'s runtime switch does not work: answers {seen}, not v2, v1, v2")
            print(f"  {proxy}: its runtime switch works (v2 -> v1 -> v2)", file=sys.stderr)

    # -- measured runs -------------------------------------------------------------------------
    def rounds(self) -> None:
        for rnd in range(self.args.rounds):
            for connections in self.args.connections:
                for proxy in PROXIES if rnd % 2 == 0 else PROXIES[::-1]:
                    self.bench.run("peers", proxy, connections, False, note=f"round {rnd + 1}")

    def under_switches(self) -> None:
        """Each switching proxy under 50 keep-alive connections while it switches every second."""
        a = self.args
        for proxy in SWITCHING:
            done: dict = {}

            def measure(p: str = proxy, into: dict = done) -> None:
                into["row"] = self.bench.run("switching", p, 50, False, seconds=a.switch_seconds, note="every 1 s")

            load = threading.Thread(target=measure)
            load.start()
            time.sleep(2)  # wrk is up
            flips, colour = 0, "blue"
            until = time.monotonic() + a.switch_seconds - 4
            while time.monotonic() < until:  # bounded by the run's length
                self.switch(proxy, colour)
                flips, colour = flips + 1, "green" if colour == "blue" else "blue"
                time.sleep(1)
            load.join(timeout=a.switch_seconds + 120)
            self.switch(proxy, "green")
            row = done["row"]
            row["switches"] = flips
            self.switches.append({"proxy": proxy, "switches": flips, "requests": row["requests"],
                                  "failures": row["failures"], "p99_ms": row["p99_ms"]})  # fmt: skip


def summary(rows: list[dict], switches: list[dict], connections: list[int]) -> tuple[str, list[dict]]:
    lines = ["| proxy | connections | req/s (median of rounds) | p99 ms | failures |", "|---|--:|--:|--:|--:|"]
    medians: dict[tuple[str, int], float] = {}
    for c in connections:
        for proxy in PROXIES:
            mine = [r for r in rows if r["group"] == "peers" and r["proxy"] == proxy and r["connections"] == c]
            if not mine:
                continue
            rps = statistics.median(r["rps"] for r in mine)
            medians[(proxy, c)] = rps
            p99 = statistics.median(r["p99_ms"] for r in mine)
            lines.append(f"| {proxy} | {c} | {rps:,.0f} | {p99:.2f} | {sum(r['failures'] for r in mine)} |")
    verdicts = []
    for c in connections:
        edge = medians.get(("edge", c))
        best = max((medians.get((p, c)) or 0 for p in SAME_JOB), default=0)
        logged = medians.get(("nginx+log", c))
        verdicts.append({"connections": c, "edge_vs_best_same_job": harness.ratio(edge, best),
                         "edge_vs_nginx_with_log": harness.ratio(edge, logged)})  # fmt: skip
    lines += ["", "| connections | edge / best of HAProxy, Caddy (target >= 1) | edge / nginx with the log (target >= 0.9) |",
              "|--:|--:|--:|"]  # fmt: skip
    lines += [
        f"| {v['connections']} | {v['edge_vs_best_same_job']} | {v['edge_vs_nginx_with_log']} |" for v in verdicts
    ]
    if switches:
        lines += [
            "",
            "| proxy, switching every second | switches | requests | failures | p99 ms |",
            "|---|--:|--:|--:|--:|",
        ]
        lines += [f"| {s['proxy']} | {s['switches']} | {s['requests']:,} | {s['failures']} | {s['p99_ms']:.2f} |"
                  for s in switches]  # fmt: skip
    return "\n".join(lines), verdicts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    p.add_argument("--seconds", type=float, default=30, help="length of each wrk run")
    p.add_argument("--rounds", type=int, default=2, help="rotated rounds of every proxy at every connection count")
    p.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[50, 500])
    p.add_argument("--switch-seconds", type=float, default=20, help="length of each run under switches")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--pause", type=float, default=3, help="seconds between two runs")
    p.add_argument("--drain", type=int, default=1000, help="see bench/edge_throughput.py")
    p.add_argument("--app-workers", type=int, default=1, help="nginx workers of the fast app")
    p.add_argument(
        "--pool", type=int, default=512, help="idle upstream connections the peers keep (the edge's default: 512)"
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.rate = 0  # unpaced: each proxy as fast as it goes

    import docker
    from stack import Stack

    client = docker.from_env(timeout=600)
    app_image, load_image = harness.fastapp_image(client), harness.load_image(client)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    with tempfile.TemporaryDirectory(prefix="epbench-") as tmp:
        stack = Stack(f"ep{uuid.uuid4().hex[:8]}", Path(tmp), client, app_image)
        peers = Peers(stack, client, args, load_image)
        try:
            peers.prepare()
            peers.check_switches()
            peers.rounds()
            peers.under_switches()
        finally:
            harness.remove_named(client, f"{stack.name}-bench-")
            stack.destroy()
    text, verdicts = summary(peers.bench.rows, peers.switches, args.connections)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"started": started, "args": {**vars(args), "json": str(args.json)},
                                         "rows": peers.bench.rows, "switches": peers.switches,
                                         "verdicts": verdicts, "table": text}, indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
