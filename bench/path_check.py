"""The cost of the edge's check of request paths: the edge against itself without the check,
side by side in one run.

The check (site.conf.j2's `$deployer_refused`: one regular expression of a `map` on
`$request_uri`, evaluated by an `if` in each public server) runs on every public request.
One throwaway project (`pc<random>`, removed at the end, even on failure) is set up as
bench/edge_throughput.py sets up its own: one service (route `/`) whose image is the fast
stand-in app, so that the proxy, not the app, is what is measured; the edge as users get it
(access log on). The edge without the check renders the shipped template less its `if`
block (`edge.template`; the map is then never evaluated); `deployer up` renders the site and
reloads nginx between two runs. wrk runs on the project's edge network with 50 keep-alive
connections against a path the check reads to its end (`--path`), alternating with and
without the check, the order flipped each round so neither runs twice in a row.

Reports req/s, p99 and the proxy's CPU time per request of each run, then the means and the
ratio with / without.

    .venv/bin/python bench/path_check.py --seconds 30 --rounds 3 --json bench/results/path-check.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import harness
from edge_throughput import Bench, services_toml

from deployer.assets import asset

CHECK = re.compile(r"\n *# Before routing and the limits[^\n]*\n *if \(\$deployer_refused\) \{\n[^}]*\}")
PATH = "/api/items/2026/catalogue/b%20c/page-17?sort=price&q=%0d%0a"


def template_without_check(folder: Path) -> Path:
    """The shipped site template less the `if` that refuses ambiguous paths."""
    text, n = CHECK.subn("", asset("edge", "site.conf.j2").read_text())
    if n != 1:
        raise SystemExit("the site template has changed: cannot take the path check out of it")
    path = folder / "site.conf.j2"
    path.write_text(text)
    return path


def configure(bench: Bench, template: Path | None) -> None:
    s = bench.stack
    edge = f'template = "{template}"\n' if template else ""
    s.write_config(services=services_toml(bench.name), edge=edge, expose_colour=False)
    s.ok("up")
    checked = "if ($deployer_refused)" in s.edge_file("/var/lib/deployer/site.conf")
    if checked != (template is None):
        raise SystemExit(f"`deployer up` did not render the site {'with' if template is None else 'without'} the check")
    harness.wait_http(s.edge, "http://127.0.0.1/api/version")
    time.sleep(1)


def summary(rows: list[dict]) -> str:
    lines = ["| edge | runs | req/s (mean) | p99 ms (mean) | proxy CPU us/req (mean) |", "|---|--:|--:|--:|--:|"]
    means = {}
    for note in ("check", "no check"):
        runs = [r for r in rows if r["note"] == note]
        rps = statistics.mean(r["rps"] for r in runs)
        p99 = statistics.mean(r["p99_ms"] for r in runs)
        cpu = [r["cpu_us_per_req_proxy"] for r in runs if r.get("cpu_us_per_req_proxy") is not None]
        means[note] = (rps, statistics.mean(cpu) if cpu else None)
        cpu_text = f"{means[note][1]:.1f}" if cpu else "-"
        lines.append(f"| {note} | {len(runs)} | {rps:,.0f} | {p99:.2f} | {cpu_text} |")
    (rps_on, cpu_on), (rps_off, cpu_off) = means["check"], means["no check"]
    cpu = f", proxy CPU per request {cpu_on / cpu_off:.3f}x" if cpu_on and cpu_off else ""
    lines.append(f"\nwith / without the check: req/s {rps_on / rps_off:.3f}x{cpu}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    p.add_argument("--seconds", type=float, default=30, help="length of each wrk run")
    p.add_argument("--rounds", type=int, default=3, help="pairs of runs, with and without the check")
    p.add_argument("--connections", type=int, default=50, help="wrk's keep-alive connections")
    p.add_argument("--path", default=PATH, help="the request target of every request")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    # What edge_throughput's Bench reads of its own arguments, at its defaults.
    bench_args = argparse.Namespace(
        seconds=args.seconds, threads=2, rate=0, pause=3, drain=1000, peer_keepalive=64, app="fast", app_workers=1
    )

    import docker
    from stack import Stack

    client = docker.from_env(timeout=600)
    app_image, load_image = harness.fastapp_image(client), harness.load_image(client)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    with tempfile.TemporaryDirectory(prefix="pcbench-") as tmp:
        stack = Stack(f"pc{uuid.uuid4().hex[:8]}", Path(tmp), client, app_image)
        bench = Bench(stack, client, bench_args, app_image, load_image)
        try:
            bench.prepare()
            bench.proxies["edge"] = (stack.edge, f"http://{stack.edge.name}:80{args.path}")
            without = template_without_check(Path(tmp))
            for rnd in range(args.rounds):
                for checked in (True, False) if rnd % 2 == 0 else (False, True):
                    configure(bench, None if checked else without)
                    bench.run("path check", "edge", args.connections, False, note="check" if checked else "no check")
        finally:
            harness.remove_named(client, f"{stack.name}-bench-")
            stack.destroy()
    text = summary(bench.rows)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"started": started, "args": {**vars(args), "json": str(args.json)},
                                         "rows": bench.rows, "summary": text}, indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
