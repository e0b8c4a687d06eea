"""A flood of slow uploads from one address against the edge: how much of the edge's tmpfs it
takes, and what the real clients see, with edge.max_client_conn and with the cap off, in one run.

On one throwaway project (`ef<random>`, removed at the end, even on failure): `deployer up` and
`deployer release v1` of one service (route `/`) from the fast stand-in app, [edge] at its
defaults (max_body 20m, temp_size 256m, the access log on). Then, for each value of `--caps`
in turn (default: 512, the default cap, and 0, the cap off), `--rounds` times, `deployer up`
with edge.max_client_conn at that value, and for `--seconds` at once:

- the flood, from one container on the edge network (one address): `--flood` connections,
  each a POST announcing a body of edge.max_body and sending `--chunk` bytes of it every
  second; one the edge answers or closes is opened again 0.1 s later
  (bench/images/load/uploads.py);
- the real clients, from two other containers (two other addresses): wrk, keep-alive GETs on
  `--connections` connections paced to `--rate` req/s in all; and `--uploaders` clients each
  POSTing `--upload` bytes (more than the edge's 16 KB body buffer: through the tmpfs), one
  after another;
- every half second, the bytes in use on the edge's tmpfs (`df` in the edge).

Printed: per phase, the tmpfs's peak and mean use, the flood's answers (429, 503, ...) and
how many of its uploads the edge held at once, the real clients' requests and error rate
(GETs: wrk's socket errors and non-2xx answers; uploads: every answer but 200, and failed
connections) and p99, and the edge's CPU.

    .venv/bin/python bench/edge_flood.py --json bench/results/edge-flood.json
    .venv/bin/python bench/edge_flood.py --seconds 10 --caps 512,0      # a quick look
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
from edge_throughput import services_toml
from harness import Lane, wrk_argv

MAX_BODY = 20 << 20  # edge.max_body's default, which the bench's config keeps


def uploads_argv(host: str, mode: str, *, count: int, body: int, seconds: float, chunk: int = 0) -> list[str]:
    argv = ["python3", "/bench/uploads.py", host, "80", mode, "--count", str(count), "--body", str(body)]
    return argv + ["--seconds", f"{seconds:g}"] + (["--chunk", str(chunk), "--every", "1"] if chunk else [])


def uploads_result(text: str) -> dict:
    line = next((ln for ln in text.splitlines() if ln.startswith("UPLOADS_JSON ")), None)
    return json.loads(line[len("UPLOADS_JSON ") :]) if line else {"error": text[-500:]}


class TempSampler:
    """The bytes in use on the edge's tmpfs, every half second, from a thread."""

    def __init__(self, edge) -> None:
        self.edge, self.samples, self.stop = edge, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def used(self) -> int | None:
        code, out = self.edge.exec_run(["df", "-B1", "--output=used", "/var/lib/nginx"])
        return int(out.decode().split()[-1]) if code == 0 else None

    def run(self) -> None:
        while not self.stop.wait(0.5):
            used = self.used()
            if used is not None:
                self.samples.append(used)

    def __enter__(self) -> TempSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class Bench:
    def __init__(self, stack, client, args, load_image: str) -> None:
        self.stack, self.client, self.args, self.load_image = stack, client, args, load_image
        self.network = f"{stack.name}-edge"
        self.rows: list[dict] = []

    def configure(self, cap: int) -> None:
        s = self.stack
        s.write_config(services=services_toml(s.name), edge=f"max_client_conn = {cap}\n")
        s.ok("up")

    def prepare(self) -> None:
        self.stack.tag("v1", services=("backend",))
        self.configure(self.args.caps[0])
        self.stack.ok("release", "v1", "--no-backup")

    def lane(self, argv: list[str], label: str, env: dict | None = None) -> Lane:
        return Lane(self.client, self.load_image, self.stack.name, self.network, argv, env=env, label=label)

    def settle(self, sampler: TempSampler) -> int | None:
        """Until the tmpfs is back to (almost) empty, at most 30 s; its use then."""
        deadline = time.monotonic() + 30
        used = sampler.used()
        while used is not None and used > 1 << 20 and time.monotonic() < deadline:
            time.sleep(0.5)
            used = sampler.used()
        return used

    def phase(self, cap: int) -> dict:
        a, edge = self.args, self.stack.edge
        self.configure(cap)
        sampler = TempSampler(edge)
        before = self.settle(sampler)
        host = edge.name
        cpu0 = harness.cpu_ns(edge)
        with sampler:
            flood = self.lane(uploads_argv(host, "flood", count=a.flood, body=MAX_BODY, seconds=a.seconds,
                                           chunk=a.chunk), "flood")  # fmt: skip
            delay = str(max(1, round(1000 * a.connections / a.rate)))
            gets = self.lane(wrk_argv(f"http://{host}:80/", connections=a.connections, seconds=a.seconds),
                             "gets", env={"WRK_STATUSES": "1", "WRK_DELAY_MS": delay})  # fmt: skip
            ups = self.lane(uploads_argv(host, "clients", count=a.uploaders, body=a.upload, seconds=a.seconds), "ups")
            results = (uploads_result(flood.output(a.seconds + 90)), gets.result(a.seconds + 90),
                       uploads_result(ups.output(a.seconds + 90)))  # fmt: skip
        cpu1 = harness.cpu_ns(edge)
        flooded, got, uploaded = results
        used = sampler.samples or [0]
        answered = sum(uploaded.get("answers", {}).values())
        failed = answered - uploaded.get("answers", {}).get("200", 0) + uploaded.get("connect_failed", 0)
        return {
            "cap": cap,
            "temp_before": before,
            "temp_peak": max(used),
            "temp_mean": round(statistics.mean(used)),
            "flood": flooded,
            "gets": got.row(),
            "gets_error_rate": round(got.failures / got.requests, 4) if got.requests else None,
            "uploads": uploaded,
            "uploads_error_rate": round(failed / (answered + uploaded.get("connect_failed", 0)), 4)
            if answered
            else None,
            "edge_cpu_s": round((cpu1 - cpu0) / 1e9, 1) if cpu0 is not None and cpu1 is not None else None,
        }

    def run(self) -> None:
        for _ in range(self.args.rounds):
            for cap in self.args.caps:
                row = self.phase(cap)
                self.rows.append(row)
                print(line(row), file=sys.stderr, flush=True)


def mib(n: int | None) -> str:
    return f"{n / 1048576:.0f} MiB" if n is not None else "-"


def line(r: dict) -> str:
    f, g, u = r["flood"], r["gets"], r["uploads"]
    cap = "off" if r["cap"] == 0 else str(r["cap"])
    return (
        f"cap {cap:>4}  tmpfs peak {mib(r['temp_peak']):>8} mean {mib(r['temp_mean']):>8}  "
        f"flood held {f.get('held_median')}/{f.get('held_max')} answers {f.get('answers')}  "
        f"GETs {g['requests']} err {r['gets_error_rate']:.2%} p99 {g['p99_ms']} ms  "
        f"uploads {sum(u.get('answers', {}).values())} err {(r['uploads_error_rate'] or 0):.2%} "
        f"p99 {u.get('p99_ms')} ms  edge cpu {r['edge_cpu_s']} s"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    p.add_argument("--caps", type=lambda s: [int(x) for x in s.split(",")], default=[512, 0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--seconds", type=float, default=30, help="length of each phase")
    p.add_argument("--flood", type=int, default=2000, help="the flood's connections, from one address")
    p.add_argument("--chunk", type=int, default=32 << 10, help="bytes each flood upload sends per second")
    p.add_argument("--connections", type=int, default=50, help="wrk's keep-alive connections (real GETs)")
    p.add_argument("--rate", type=float, default=500, help="the real GETs' rate, req/s in all")
    p.add_argument("--uploaders", type=int, default=4, help="real clients uploading one after another")
    p.add_argument("--upload", type=int, default=256 << 10, help="bytes of each real upload")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    import docker
    from stack import Stack

    client = docker.from_env(timeout=600)
    app_image, load_image = harness.fastapp_image(client), harness.load_image(client)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    steal = harness.cpu_times()
    with tempfile.TemporaryDirectory(prefix="floodbench-") as tmp:
        stack = Stack(f"ef{uuid.uuid4().hex[:8]}", Path(tmp), client, app_image)
        bench = Bench(stack, client, args, load_image)
        try:
            bench.prepare()
            bench.run()
        finally:
            harness.remove_named(client, f"{stack.name}-bench-")
            stack.destroy()
    steal_share = harness.steal_share(steal, harness.cpu_times())
    print("\n".join(line(r) for r in bench.rows))
    print(f"steal during the run: {steal_share}%")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"started": started, "args": {**vars(args), "json": str(args.json)},
                                         "steal_percent": steal_share, "rows": bench.rows}, indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
