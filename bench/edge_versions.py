"""The throughput cost of the edge's per-request work: today's edge against an earlier one, in one run.

Issue 38 added work to every request the edge serves: request ids end to end, the upstream
timing split in the access log, per-service and per-route Prometheus figures, the status
page's sampler, and `services.*.max_in_flight` taken in an access_by_lua phase (which runs
on every public request, capped or not). This bench puts the edge of this checkout ("new")
beside the edge of another checkout ("old", `--against`: the commit before that work,
14f5460, the one before request ids came in a160f9d), each as users get it by default
(access log on), in front of the same app.

One throwaway project per checkout (`ev<random>o` and `ev<random>n`, config and working
folder in a temporary folder, removed at the end, even on failure or Ctrl-C), each driven
by that checkout's own CLI (`<checkout>/.venv/bin/python -m deployer`): `deployer up` and
`deployer release v1` of one service (`backend`, route `/`) from the fast stand-in app
(bench/images/fastapp, as in bench/edge_throughput.py), so that the edges, not the app, are
what is compared. Each checkout builds its own edge image (its tag is a hash of its inputs).

Then, after an unmeasured warm-up of each edge, rotated rounds (the order reversed every
other round, so neither edge always runs first) of wrk keep-alive runs at each of
--connections, old and new alternating, wrk (bench/images/load) in a container on each
project's own edge network against `<edge>:80` directly (no host port). Reported per run and
as medians per connection count, with the ratio new/old: req/s, p50/p99 (wrk --latency),
failures (wrk's socket errors + responses >= 400), and the CPU time per request of the edge
container (the engine's stats before and after; on a shared 2-core machine req/s swings
with whatever else runs, CPU per request much less, so it is the figure to trust), and that
of dockerd and the edge's containerd shim, which carry the access log (local engine;
dockerd serves every container, so only meaningful on a quiet engine). At the end both
projects are removed with their own CLI (`deployer down --volumes --yes --no-backup`), and
anything left of them (the wrk containers, the dumps volume, the tagged images) after it.

The old checkout, with its own virtualenv (made once, kept for later runs):

    git worktree add ../wt-old-edge 14f5460 && make -C ../wt-old-edge setup

then, from this checkout:

    .venv/bin/python bench/edge_versions.py --against ../wt-old-edge --json bench/results/edge-versions.json
    .venv/bin/python bench/edge_versions.py --against ../wt-old-edge --seconds 2 --rounds 1 --connections 50  # smoke

The full run (2 rounds of 30 s runs at 50 and 500 connections) takes about 8 minutes, more
the first time, when the old checkout builds its own images.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import harness
from edge_throughput import EDGE_LOG, Bench, services_toml
from stack import Stack

VERSIONS = ("old", "new")
RUNNING: list[subprocess.Popen] = []  # the CLI processes running now, to pass a SIGTERM on to
PATH = "/api/version"
# The figures of the summary: (key in a run's row, label, compared as new/old)
FIGURES = (
    ("rps", "req/s", True),
    ("p50_ms", "p50 (ms)", True),
    ("p99_ms", "p99 (ms)", True),
    ("cpu_us_per_req_proxy", "edge CPU per request (us)", True),
    ("cpu_us_per_req_logging", "dockerd + shim CPU per request (us)", True),
    ("steal", "steal (%)", False),
)


class CheckoutStack(Stack):
    """A throwaway project driven by a checkout's own CLI: its virtualenv's python, run from the
    project's folder (so `-m deployer` finds the checkout's package through the virtualenv,
    not the working directory), with no PYTHONPATH and nothing on stdin."""

    def __init__(self, name: str, folder: Path, docker_client, app_image: str, checkout: Path) -> None:
        self.python = checkout / ".venv" / "bin" / "python"
        super().__init__(name, folder, docker_client, app_image)

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        # 900 s: the first `up` of a checkout builds its own edge, database and agent images
        return self.raw_cli(*args, "--config", str(self.config), timeout=timeout)

    def raw_cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        argv = [str(self.python), "-m", "deployer", *args]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.folder,
                              env=cli_env(), stdin=subprocess.DEVNULL) as proc:  # fmt: skip
            RUNNING.append(proc)
            try:
                out, err = proc.communicate(timeout=timeout)
            except BaseException as exc:
                # A Ctrl-C reached the CLI too (one process group), a SIGTERM was passed on to it
                # (`main`), or it ran out of time (SIGTERM now): it undoes what it started and
                # frees the project's lock, so that `deployer down` can run next
                if isinstance(exc, subprocess.TimeoutExpired):
                    proc.terminate()
                try:
                    proc.communicate(timeout=120)
                except BaseException:
                    proc.kill()
                raise
            finally:
                RUNNING.remove(proc)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def check_checkout(checkout: Path, label: str) -> dict:
    """The checkout's virtualenv imports the checkout's own deployer package; its commit."""
    python = checkout / ".venv" / "bin" / "python"
    if not (checkout / "deployer" / "__init__.py").is_file() or not python.is_file():
        raise SystemExit(
            f"{label} checkout {checkout}: needs the deployer package and its own virtualenv "
            f"(git worktree add {checkout} <rev> && make -C {checkout} setup)"
        )
    with tempfile.TemporaryDirectory(prefix="evcheck-") as cwd:
        found = subprocess.run([str(python), "-c", "import deployer; print(deployer.__file__)"], capture_output=True,
                               text=True, timeout=60, cwd=cwd, env=cli_env())  # fmt: skip
    where = Path(found.stdout.strip() or "/nonexistent").resolve()
    if found.returncode != 0 or not where.is_relative_to(checkout):
        raise SystemExit(f"{python} imports deployer from {where}, not from {checkout}: run `make setup` there")
    git = lambda *a: subprocess.run(["git", "-C", str(checkout), *a], capture_output=True, text=True)  # noqa: E731
    rev, dirty = git("log", "-1", "--format=%h %s"), git("status", "--porcelain", "--", "deployer")
    commit = rev.stdout.strip() if rev.returncode == 0 else "?"
    return {"path": str(checkout), "commit": commit + (" + uncommitted changes" if dirty.stdout.strip() else "")}


def cli_env() -> dict[str, str]:
    """This environment less PYTHONPATH, which could put another checkout's package first."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


class Version:
    """One checkout's project, its edge and the Bench (bench/edge_throughput.py) that measures
    runs against it, on its own edge network."""

    def __init__(self, label: str, stack: CheckoutStack, client, args, load_image: str, info: dict) -> None:
        self.label, self.stack, self.client, self.info = label, stack, client, info
        self.bench = Bench(stack, client, args, stack.app_image, load_image)

    def prepare(self, app_workers: int) -> None:
        s = self.stack
        s.write_config(services=services_toml(s.name), expose_colour=False)
        s.tag("v1", backend_env={"APP_WORKERS": str(app_workers)}, services=("backend",))
        print(f"{self.label}: deployer up and release v1 of project {s.name} ({self.info['commit']})", file=sys.stderr)
        s.ok("up")
        s.ok("release", "v1", "--no-backup")
        edge = s.edge
        self.bench.app = next(c for c in s.containers("blue") if c.labels.get("deployer.service") == "backend")
        self.bench.proxies = {self.label: (edge, f"http://{edge.name}:80{PATH}")}
        harness.wait_http(edge, f"http://127.0.0.1{PATH}")
        code, out = edge.exec_run(["curl", "-sS", "-D", "-", "-o", "/dev/null", f"http://127.0.0.1{PATH}"])
        headers = out.decode(errors="replace").lower()
        self.info.update(
            project=s.name,
            edge_image=edge.image.tags[0] if edge.image.tags else edge.image.id,
            access_log=EDGE_LOG in s.edge_file("/var/lib/deployer/site.conf"),
            request_ids="\nx-request-id:" in headers,
        )
        if not self.info["access_log"]:
            print(f"WARNING: the {self.label} edge's site has no access log ({EDGE_LOG} ...)", file=sys.stderr)

    def run(self, connections: int, note: str) -> dict:
        return self.bench.run("versions", self.label, connections, False, note=note)

    def warm_up(self, seconds: float, connections: int) -> None:
        b = self.bench
        harness.run_wrk(self.client, b.load_image, b.name, b.network, b.proxies[self.label][1],
                        connections=connections, seconds=seconds, threads=b.args.threads)  # fmt: skip

    def remove(self) -> None:
        """The wrk containers, then `deployer down` with the checkout's own CLI, then whatever
        is left of the project (the dumps volume, which down keeps; the tagged app images)."""
        s = self.stack
        harness.remove_named(self.client, f"{s.name}-bench-")
        try:
            done = s.cli("down", "--volumes", "--yes", "--no-backup", timeout=300)
            if done.returncode != 0:
                print(
                    f"{self.label}: deployer down failed:\n{done.stdout[-1000:]}{done.stderr[-2000:]}", file=sys.stderr
                )
        except subprocess.TimeoutExpired:
            print(f"{self.label}: deployer down timed out", file=sys.stderr)
        s.destroy()


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def summary(rows: list[dict], connections: list[int]) -> list[dict]:
    out = []
    for c in connections:
        figures = {}
        for v in VERSIONS:
            mine = [r for r in rows if r["proxy"] == v and r["connections"] == c]
            figures[v] = {key: _median([r.get(key) for r in mine]) for key, _, _ in FIGURES}
            figures[v].update(failures=sum(r["failures"] for r in mine), runs=len(mine))
        ratios = {
            key: harness.ratio(figures["new"][key], figures["old"][key]) for key, _, compared in FIGURES if compared
        }
        out.append({"connections": c, **figures, "new_over_old": ratios})
    return out


def table(medians: list[dict]) -> str:
    lines = ["| connections | median of the runs | old | new | new / old |", "|--:|---|--:|--:|--:|"]
    show = lambda x: "-" if x is None else f"{x:,.0f}" if x >= 1000 else f"{x:g}"  # noqa: E731
    for m in medians:
        for key, label, compared in FIGURES:
            ratio = m["new_over_old"].get(key) if compared else None
            lines.append(f"| {m['connections']} | {label} | {show(m['old'][key])} | {show(m['new'][key])} "
                         f"| {'' if ratio is None else ratio} |")  # fmt: skip
        lines.append(
            f"| {m['connections']} | failures (all runs) | {m['old']['failures']} | {m['new']['failures']} | |"
        )
        lines.append(f"| {m['connections']} | runs | {m['old']['runs']} | {m['new']['runs']} | |")
    return "\n".join(lines)


def terminated(signum: int, frame) -> None:
    """SIGTERM ends the run as Ctrl-C does, through the clean-up; a CLI command running now
    gets it too (the deployer undoes what it started on SIGTERM, as on Ctrl-C)."""
    for proc in RUNNING:
        proc.terminate()
    sys.exit(143)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    p.add_argument("--against", type=Path, required=True, help="a checkout of the old commit, with its own .venv")
    p.add_argument("--seconds", type=float, default=30, help="length of each wrk run")
    p.add_argument("--rounds", type=int, default=2, help="rotated rounds of both edges at every connection count")
    p.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[50, 500])
    p.add_argument("--warmup", type=float, default=5, help="seconds of unmeasured load on each edge first (0: none)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--pause", type=float, default=3, help="seconds between two runs")
    p.add_argument("--app-workers", type=int, default=1, help="nginx workers of the fast app")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.rate, args.drain = 0, 0  # for Bench.run: unpaced, and keep-alive leaves no TIME_WAIT to wait out

    checkouts = {"old": args.against.resolve(), "new": harness.ROOT}
    if checkouts["old"] == checkouts["new"]:
        p.error("--against names this checkout: give a checkout of the old commit")
    infos = {label: check_checkout(path, label) for label, path in checkouts.items()}

    import docker

    client = docker.from_env(timeout=600)
    app_image, load_image = harness.fastapp_image(client), harness.load_image(client)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    signal.signal(signal.SIGTERM, terminated)
    tag = uuid.uuid4().hex[:8]
    versions: dict[str, Version] = {}
    rows: list[dict] = []  # in the order they ran
    with tempfile.TemporaryDirectory(prefix="evbench-") as tmp:
        try:
            for label in VERSIONS:
                folder = Path(tmp) / label
                folder.mkdir()
                stack = CheckoutStack(f"ev{tag}{label[0]}", folder, client, app_image, checkouts[label])
                versions[label] = Version(label, stack, client, args, load_image, infos[label])
                versions[label].prepare(args.app_workers)
            for label, v in versions.items():
                i = v.info
                print(f"{label}: {i['commit']}, edge {i['edge_image']}, access log {'on' if i['access_log'] else 'OFF'}, "
                      f"X-Request-ID {'yes' if i['request_ids'] else 'no'}", file=sys.stderr)  # fmt: skip
            if infos["old"]["request_ids"] or not infos["new"]["request_ids"]:
                print(
                    "WARNING: the old edge should answer without X-Request-ID and the new one with it", file=sys.stderr
                )
            if args.warmup > 0:
                for v in versions.values():
                    v.warm_up(args.warmup, args.connections[0])
            for rnd in range(args.rounds):
                for connections in args.connections:
                    for label in VERSIONS if rnd % 2 == 0 else VERSIONS[::-1]:
                        rows.append(versions[label].run(connections, f"round {rnd + 1}"))
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not leave the projects behind
            for v in versions.values():
                try:
                    v.remove()
                except Exception as e:  # the other one is removed all the same
                    print(f"{v.label}: could not remove project {v.stack.name}: {e}", file=sys.stderr)
            signal.signal(signal.SIGINT, signal.default_int_handler)
    medians = summary(rows, args.connections)
    text = table(medians)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"started": started, "args": {**vars(args), "json": str(args.json)},
                                         "app_image": app_image, "checkouts": infos, "rows": rows,
                                         "medians": medians, "table": text}, indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
