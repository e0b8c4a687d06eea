"""How long `deployer up` (a first up of a fresh project), `deployer status --json`,
`deployer switch` and `deployer --help` take, side by side against another checkout of the
deployer in the same run (after one round of each that is not counted: it builds any of the
deployer's own images a checkout lacks).

Each round, for each checkout in turn: a fresh throwaway project (tests/stack.py) is brought
up with that checkout's CLI (timed), v1 and v2 are released, `status --json` runs `--status`
times, `switch` `--switches` times (blue and green in turn) and `--help` `--helps` times
(each timed, the CLI's whole wall time), and the project is removed. The checkouts alternate within each round, so a
busy spell on this shared machine touches both. The other checkout is any folder holding the
`deployer` package (a git worktree of an earlier commit: `git worktree add ../before <rev>`);
its CLI runs with this interpreter, from that folder and with PYTHONPATH set to it.

    .venv/bin/python bench/up_status.py --against ../before --rounds 3 --status 5
    .venv/bin/python bench/up_status.py --against ../before --rounds 2 --status 10 --switches 10 --helps 10
    .venv/bin/python bench/up_status.py --against ../before --rounds 2 --status 3 --switches 10 --helps 10 --bytecode
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


# --bytecode: the CLIs may cache their compiled modules, as an installed package has them
# (pip compiles at install); otherwise the environment decides (PYTHONDONTWRITEBYTECODE=1 makes
# every run compile the deployer's own modules again, about 0.05 s of a switch here).
BYTECODE = [False]


def timed(checkout: Path, config: Path | None, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    if BYTECODE[0]:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "deployer", *args, *(["--config", str(config)] if config else [])],
        capture_output=True, text=True, env=env, timeout=300, cwd=checkout,  # `-m` puts the cwd first
    )  # fmt: skip
    took = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"deployer {' '.join(args)} failed ({checkout}):\n{done.stderr[-2000:]}")
    return took


def one_round(checkout: Path, docker_client, app_image: str, counts: dict[str, int]) -> dict[str, list[float]]:
    from stack import Stack

    with TemporaryDirectory() as folder:
        stack = Stack(f"b{uuid.uuid4().hex[:8]}", Path(folder), docker_client, app_image)
        try:
            stack.tag("v1")
            stack.tag("v2")
            out = {"up": [timed(checkout, stack.config, "up")]}
            timed(checkout, stack.config, "release", "v1", "--no-backup")
            timed(checkout, stack.config, "release", "v2", "--no-backup")
            out["status --json"] = [timed(checkout, stack.config, "status", "--json") for _ in range(counts["status"])]
            out["switch"] = [
                timed(checkout, stack.config, "switch", "--to", ("blue", "green")[n % 2])
                for n in range(counts["switch"])
            ]
            out["--help"] = [timed(checkout, None, "--help") for _ in range(counts["help"])]
            return out
        finally:
            stack.destroy()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, required=True, help="another checkout (holds deployer/)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--status", type=int, default=5, help="status calls per round")
    parser.add_argument("--switches", type=int, default=0, help="switches per round")
    parser.add_argument("--helps", type=int, default=0, help="--help calls per round")
    parser.add_argument("--bytecode", action="store_true", help="let the CLIs cache their bytecode (as installed)")
    args = parser.parse_args()
    BYTECODE[0] = args.bytecode
    if not (args.against / "deployer" / "__init__.py").is_file():
        raise SystemExit(f"--against {args.against}: no deployer package there")
    import docker
    from conftest import ROOT as TESTS_ROOT
    from conftest import built_image

    client = docker.from_env()
    app_image = built_image(client, TESTS_ROOT / "tests" / "app", "deployer-testapp")
    checkouts = {"this": ROOT, "against": args.against.resolve()}
    counts = {"status": args.status, "switch": args.switches, "help": args.helps}
    figures: dict[str, dict[str, list[float]]] = {k: {} for k in checkouts}
    for checkout in checkouts.values():  # not counted: builds any own image a checkout lacks
        one_round(checkout, client, app_image, {"status": 1, "switch": 0, "help": 0})
    for n in range(args.rounds):
        for label, checkout in checkouts.items():
            got = one_round(checkout, client, app_image, counts)
            for command, times in got.items():
                figures[label].setdefault(command, []).extend(times)
            said = ", ".join(f"{c} {statistics.median(t):.3f}s" for c, t in got.items() if t)
            print(f"round {n + 1} {label}: {said}", flush=True)
    print("\n| command | checkout | median (s) | p95 (s) | n |\n|---|---|--:|--:|--:|")
    for command in figures["this"]:
        for label in checkouts:
            times = figures[label].get(command) or []
            if times:
                print(f"| {command} | {label} | {statistics.median(times):.3f} | {p95(times):.3f} | {len(times)} |")


if __name__ == "__main__":
    main()
