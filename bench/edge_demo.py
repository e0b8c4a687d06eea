"""Edge throughput on issue 9's own setup: the example stack that `make demo` leaves running.

`bench/edge_throughput.py` compares the proxies in front of a fast static stand-in app, so
that the proxies' own work per request is all there is to compare. This script answers the
other question, the one the issue measured first: with the bundled example as a user runs
it (`make demo`: the Spring-shaped JVM backend, PostgreSQL, the Next.js front end), how much
throughput does the edge cost against a plain nginx in front of the same backend container?

On the running demo project (it reads `examples/deployer.toml`; run `make demo` first):

- a peer, started here on the project's edge network: the edge's own image with the plain
  site of `bench/edge_throughput.py` (`upstream { server <backend ip>:<port>; keepalive 64; }`,
  access log off) in front of THE SAME container, the live release's backend;
- wrk (bench/images/load) in a container on the edge network, against `<edge>:80` and
  `<peer>:80` by name, path `/api/version`, the two proxies strictly alternating;
- `--service frontend --path /` compares them in front of the front end instead (its port
  is the container's `deployer.port` label);
- with `--peer-forwarded`, the peer also sends the forwarded headers the edge adds to every
  request (X-Forwarded-For, -Proto, -Host, X-Real-IP): what parsing them costs the app;
- the same report as `bench/edge_throughput.py`: req/s, failures, p50/p99, TIME_WAIT, CPU
  per request of the proxy and of the backend, and the ratios against the issue's targets.

It changes nothing in the project: the peer and the load containers are removed at the
end, even on failure.

    make demo
    .venv/bin/python bench/edge_demo.py --json bench/results/edge-demo.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import edge_throughput as et
import harness
from harness import run_wrk, tcp_states

ROOT = Path(__file__).resolve().parent.parent


# What the edge adds to every request to an app by default (no edge.trusted_proxies): the
# headers with an empty value are not sent.
FORWARDED = """\
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Real-IP $remote_addr;
"""


def status(config: Path) -> dict:
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "deployer"), "status", "--json", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"`deployer status` failed (run `make demo` first): {out.stderr.strip()}")
    return json.loads(out.stdout)


def restarts(container) -> int:
    """How often the engine has restarted the app (an app out of memory is restarted)."""
    container.reload()
    return int(container.attrs.get("RestartCount") or 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    p.add_argument("--config", type=Path, default=ROOT / "examples" / "deployer.toml")
    p.add_argument("--service", default="backend")
    p.add_argument("--path", default="/api/version")
    p.add_argument("--seconds", type=float, default=60, help="length of each wrk run")
    p.add_argument("--rounds", type=int, default=2, help="edge/peer pairs per load")
    p.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[50, 500])
    p.add_argument("--modes", default="keep-alive,close", help="keep-alive, close (a new connection per request)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pause", type=float, default=3)
    p.add_argument("--warmup", type=float, default=30, help="seconds of load, not measured, before the first run")
    p.add_argument("--peer-keepalive", type=int, default=64)
    p.add_argument(
        "--peer-forwarded",
        action="store_true",
        help="the peer also sends the forwarded headers the edge sends by default (what they cost the app)",
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= {"keep-alive", "close"}:
        p.error("--modes: keep-alive and/or close")

    import docker

    st = status(args.config)
    project, live = st["project"], st.get("live")
    if not live:
        raise SystemExit("no colour is live: run `make demo` first")
    client = docker.from_env(timeout=600)
    network = f"{project}-edge"
    backend = next(
        (c for c in client.containers.list(filters={"label": [f"deployer.project={project}",
                                                              f"deployer.colour={live}",
                                                              f"deployer.service={args.service}"]})
         if c.labels.get("deployer.release") == st["colours"][live]["release"]),
        None,
    )  # fmt: skip
    if backend is None:
        raise SystemExit(f"no running {args.service} container of the live colour {live}")
    edge = next(
        iter(client.containers.list(filters={"label": [f"deployer.project={project}", "deployer.role=edge"]})), None
    )
    if edge is None:
        raise SystemExit(f"the edge of {project} is not running: run `make demo` first")
    address = harness.address(backend, network)
    load_image = harness.load_image(client)
    prefix = f"{project}-bench-"
    rows: list[dict] = []
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    try:
        port = int(backend.labels["deployer.port"])
        site = et.PEER_SITE.format(address=address, port=port, keepalive=args.peer_keepalive)
        if args.peer_forwarded:
            site = site.replace(
                "        proxy_set_header Host $host;\n", "        proxy_set_header Host $host;\n" + FORWARDED
            )
            assert FORWARDED in site
        peer = et.start_peer(client, edge, project, "peer", site)
        proxies = {"edge": edge, "peer": peer}
        for c in proxies.values():
            harness.wait_http(c, f"http://127.0.0.1{args.path}")
        print(f"project {project}: live {live}, {args.service} {backend.name} at {address}:{port}", file=sys.stderr)
        if args.warmup > 0:  # the JVM compiles its hot paths first: not in either proxy's figures
            for c in proxies.values():
                run_wrk(client, load_image, project, network, f"http://{c.name}:80{args.path}", connections=50,
                        seconds=args.warmup / 2, threads=args.threads)  # fmt: skip
        for connections in args.connections:
            for mode in modes:
                for rnd in range(args.rounds):
                    for name in ("edge", "peer") if rnd % 2 == 0 else ("peer", "edge"):
                        c = proxies[name]
                        restarts0 = restarts(backend)
                        cpu0 = {"proxy": harness.cpu_ns(c), "app": harness.cpu_ns(backend)}
                        result = run_wrk(client, load_image, project, network, f"http://{c.name}:80{args.path}",
                                         connections=connections, seconds=args.seconds, close=mode == "close",
                                         threads=args.threads)  # fmt: skip
                        cpu1 = {"proxy": harness.cpu_ns(c), "app": harness.cpu_ns(backend)}
                        tw = tcp_states(c)
                        row = {"group": "demo", "proxy": name, "connections": connections, "mode": mode,
                               "note": f"round {rnd + 1}", **result.row(),
                               "ok_rps": round((result.requests - result.failures) / result.seconds, 1),
                               "app_restarts": restarts(backend) - restarts0, "time_wait_after": tw["time_wait"],
                               "tw_upstream_side": tw["upstream_side"],
                               **{f"cpu_us_per_req_{k}": round((cpu1[k] - cpu0[k]) / 1000 / result.requests, 1)
                                  if cpu0[k] is not None and cpu1[k] is not None and result.requests else None
                                  for k in cpu0}}  # fmt: skip
                        rows.append(row)
                        print(f"  {name:5} c={connections:<4} {mode:10} {result.rps:9.1f} req/s  failed "
                              f"{result.failures:<6} p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  "
                              f"TIME_WAIT {tw['time_wait']} (upstream {tw['upstream_side']})  CPU/req proxy "
                              f"{row['cpu_us_per_req_proxy']} us app {row['cpu_us_per_req_app']} us  2xx/s "
                              f"{row['ok_rps']}  statuses {row['statuses']}  app restarts {row['app_restarts']}",
                              file=sys.stderr)  # fmt: skip
                        time.sleep(args.pause)
    finally:
        harness.remove_named(client, prefix)
    comps = et.comparisons(summary(rows))
    print(et.table(rows))
    print()
    print("rounds summed (req/s: their mean; p99: the worst round):")
    print(et.ratio_table(comps))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"started": started, "args": {**vars(args), "json": str(args.json),
                                         "config": str(args.config)}, "project": project, "backend": backend.name,
                                         "rows": rows, "comparisons": comps, "table": et.table(rows),
                                         "ratios": et.ratio_table(comps)}, indent=1, default=str))  # fmt: skip
    return 0


def summary(rows: list[dict]) -> list[dict]:
    """Per proxy and load: the rounds' mean req/s, their worst p99 and all their failures, in
    the rows `edge_throughput.comparisons` compares (each round ran as long)."""
    out = []
    for key in dict.fromkeys((r["proxy"], r["connections"], r["mode"]) for r in rows):
        rs = [r for r in rows if (r["proxy"], r["connections"], r["mode"]) == key]
        out.append({"group": "matrix", "proxy": key[0], "connections": key[1], "mode": key[2],
                    "rps": sum(r["rps"] for r in rs) / len(rs), "p99_ms": max(r["p99_ms"] for r in rs),
                    "failures": sum(r["failures"] for r in rs), "rounds": len(rs)})  # fmt: skip
    return out


if __name__ == "__main__":
    raise SystemExit(main())
