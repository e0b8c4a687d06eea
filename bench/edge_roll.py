"""Replacing the edge under load: the deployer's replacement (a new edge beside the old one,
then a drain; flows/edge_roll.py) against compose's own recreate of the edge, and the one
move of an edge of the earlier layout (it published the ports itself) onto its ports holder.

One throwaway project (`er<random>`, tests/stack.py; removed at the end, even on failure),
the test app as backend (/api/) and frontend (/) at v1, live on blue. Each round makes a new
edge image instantly (the running one plus a label), so the replacement is the only work:

- roll:      what `deployer up` does when the edge's image changed (edge_roll.replace),
             with the lock held as `up` holds it;
- recreate:  `docker compose up --force-recreate` of the edge service from the same compose
             data (the ports holder stays): the old edge stops, then the new one starts;
- move:      (`--moves N`) the infrastructure is put back in the earlier layout (before the
             load starts), then `deployer up` moves it, under load; the project's public port
             is a fixed free port here, so that the clients keep their address across the move.

Under each, bench/load.py's three kinds of client on the live port (keep-alive ones that never
retry, browser-like ones that retry an idempotent request once, a new connection per
request), each with `--clients` paced clients and one on the ~2 s slow path. Rounds
alternate roll and recreate. Prints each action's failures and duration; writes JSON.

    .venv/bin/python bench/edge_roll.py --rounds 5 --moves 2 --json bench/results/edge-roll.json
"""

from __future__ import annotations

import argparse
import io
import json
import re
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import harness  # puts the repository and tests/ on sys.path
from load import KINDS, Event, Load, analyse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def context(stack):
    from deployer import config as config_loader
    from deployer.runtime.mode import context as runtime_context

    return runtime_context(config_loader.load(stack.config), say=lambda line: print(f"  {line}", file=sys.stderr))


def new_edge_image(stack, n: int) -> str:
    """The running edge's image with one more label: a new image in a second."""
    base = stack.edge.attrs["Config"]["Image"]
    ref = f"{stack.name}-edge:{n}"
    stack.docker.images.build(fileobj=io.BytesIO(f"FROM {base}\nLABEL bench.round={n}\n".encode()), tag=ref, rm=True)
    stack.images.append(ref)
    return ref


def spec(ctx, stack, edge_image: str):
    from deployer.flows import edge_roll, infra

    attrs = {p: stack.docker.api.inspect_container(f"{stack.name}-infra-{p}-1") for p in ("db", "backup")}
    edge_id = ctx.engine.image_id(edge_image) or ""
    return infra.spec(
        ctx,
        edge_image=edge_image,
        db_image=attrs["db"]["Config"]["Image"],
        backup_image=attrs["backup"]["Config"]["Image"],
        ports_image=edge_roll.ports_image(ctx, edge_id),
        edge_image_id=edge_id,
    )


def roll(stack, n: int) -> None:
    from deployer.flows import edge_roll, infra
    from deployer.flows.lock import held

    ctx = context(stack)
    try:
        data, secrets = spec(ctx, stack, new_edge_image(stack, n))
        with held(ctx, "bench"):
            edge_roll.replace(ctx, data, secrets, rendered=infra.render_site(ctx))
    finally:
        ctx.engine.close()


def recreate(stack, n: int) -> None:
    from deployer.adapters import compose as compose_adapter
    from deployer.flows import edge_roll

    ctx = context(stack)
    try:
        data, secrets = spec(ctx, stack, new_edge_image(stack, n))
        project = f"{stack.name}-infra"
        compose_adapter.up(
            ctx.engine, project, data, step="bench", secrets=secrets, wait=True, services=["edge"], recreate=True
        )
        edge_roll.settle(ctx)  # compose named it after its number: the edge's name goes back to it
    finally:
        ctx.engine.close()


def move(stack, n: int) -> float:
    """`deployer up` on an edge of the earlier layout (made before the load started); the
    seconds `up` says the public port was closed."""
    said = stack.ok("up").stderr
    found = re.search(r"the public port was closed for ([0-9.]+)s", said)
    return float(found[1]) if found else -1.0


def measure(stack, port: int, action, n: int, args) -> dict:
    if action is move:
        stack.to_earlier_layout()
    traffic = Load(f"http://127.0.0.1:{port}", clients=args.clients, slow=1, rate=args.rate, duration=300)
    traffic.start()
    try:
        time.sleep(args.settle)
        start = time.monotonic()
        closed = action(stack, n)
        end = time.monotonic()
        time.sleep(args.settle)
    finally:
        records = traffic.stop()
    counts = analyse(records, [Event("bench", action.__name__, start, end, "blue", "v1")])
    return {
        "action": action.__name__,
        "seconds": round(end - start, 2),
        "requests": {k: counts[k]["requests"] for k in KINDS},
        "failures": {k: counts[k]["failures"] for k in KINDS},
        "errors": {k: counts[k]["errors"] for k in KINDS},
        "served_after": stack.serving(),
        **({"closed_seconds": closed} if closed is not None else {}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of roll + recreate")
    parser.add_argument("--moves", type=int, default=0, help="moves from the earlier layout")
    parser.add_argument("--clients", type=int, default=3, help="paced clients per kind")
    parser.add_argument("--rate", type=float, default=10, help="requests per second per client")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of load before and after each action")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    import docker
    from stack import Stack

    client = docker.from_env()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="edge-roll-") as tmp:
        stack = Stack(f"er{uuid.uuid4().hex[:8]}", Path(tmp), client, harness.test_app_image(client))
        try:
            port = free_port()
            stack.config.write_text(stack.config.read_text().replace("public_port = 0", f"public_port = {port}"))
            stack.release_all("v1")
            plan = [a for _ in range(args.rounds) for a in (roll, recreate)] + [move] * args.moves
            for n, action in enumerate(plan, 1):
                result = measure(stack, port, action, n, args)
                results.append(result)
                print(json.dumps(result), flush=True)
        finally:
            stack.destroy()
    summary = {}
    for name in ("roll", "recreate", "move"):
        mine = [r for r in results if r["action"] == name]
        if mine:
            summary[name] = {
                "runs": len(mine),
                "failures": {k: [r["failures"][k] for r in mine] for k in KINDS},
                "requests": sum(sum(r["requests"].values()) for r in mine),
                "seconds": [r["seconds"] for r in mine],
                **({"closed_seconds": [r["closed_seconds"] for r in mine]} if name == "move" else {}),
            }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "runs": results, "summary": summary}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
