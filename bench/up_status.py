"""How long `deployer up` (a first up of a fresh project) and `deployer status --json` take,
side by side against another checkout of the deployer in the same run (after one round of
each that is not counted: it builds any of the deployer's own images a checkout lacks).

Each round, for each checkout in turn: a fresh throwaway project (tests/stack.py) is brought
up with that checkout's CLI (timed), v1 is released, `status --json` runs `--status` times
(each timed), and the project is removed. The checkouts alternate within each round, so a
busy spell on this shared machine touches both. The other checkout is any folder holding the
`deployer` package (a git worktree of an earlier commit: `git worktree add ../before <rev>`);
its CLI runs with this interpreter, from that folder and with PYTHONPATH set to it.

    .venv/bin/python bench/up_status.py --against ../before --rounds 3 --status 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def timed(checkout: Path, config: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "deployer", *args, "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=300, cwd=checkout,  # `-m` puts the cwd first
    )  # fmt: skip
    took = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"deployer {' '.join(args)} failed ({checkout}):\n{done.stderr[-2000:]}")
    return took


def one_round(checkout: Path, docker_client, app_image: str, statuses: int) -> tuple[float, list[float]]:
    from stack import Stack

    with TemporaryDirectory() as folder:
        stack = Stack(f"b{uuid.uuid4().hex[:8]}", Path(folder), docker_client, app_image)
        try:
            stack.tag("v1")
            up = timed(checkout, stack.config, "up")
            timed(checkout, stack.config, "release", "v1", "--no-backup")
            return up, [timed(checkout, stack.config, "status", "--json") for _ in range(statuses)]
        finally:
            stack.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, required=True, help="another checkout (holds deployer/)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--status", type=int, default=5, help="status calls per round")
    args = parser.parse_args()
    if not (args.against / "deployer" / "__init__.py").is_file():
        raise SystemExit(f"--against {args.against}: no deployer package there")
    import docker
    from conftest import ROOT as TESTS_ROOT
    from conftest import built_image

    client = docker.from_env()
    app_image = built_image(client, TESTS_ROOT / "tests" / "app", "deployer-testapp")
    checkouts = {"this": ROOT, "against": args.against.resolve()}
    ups: dict[str, list[float]] = {k: [] for k in checkouts}
    statuses: dict[str, list[float]] = {k: [] for k in checkouts}
    for checkout in checkouts.values():  # not counted: builds any own image a checkout lacks
        one_round(checkout, client, app_image, 1)
    for n in range(args.rounds):
        for label, checkout in checkouts.items():
            up, status = one_round(checkout, client, app_image, args.status)
            ups[label].append(up)
            statuses[label] += status
            print(f"round {n + 1} {label}: up {up:.2f}s, status {', '.join(f'{s:.2f}' for s in status)}", flush=True)
    for label in checkouts:
        print(
            f"{label:8} up median {statistics.median(ups[label]):.2f}s (n={len(ups[label])}), "
            f"status --json median {statistics.median(statuses[label]):.2f}s (n={len(statuses[label])})"
        )


if __name__ == "__main__":
    main()
