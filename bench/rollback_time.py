"""How long a bad release serves before the watch rolls it back, under load.

Each round releases a version of the test app that is healthy at first and then answers
500 to a share of its /api/ requests (ERROR_RATE after ERROR_AFTER seconds), while the
three kinds of client of bench/load.py (keep-alive, browser-like, new connection per
request) request the live port. The watch ([watch] window, min_requests, max_error_rate)
notices, switches back to the warm standby and puts the colour's previous release back.

Per round, from the clients' records and the release's own progress lines (timestamped as
they arrive):
  - first bad -> switched back: from the end of the first 500 a client received to the
    moment the rollback's switch had returned (the "watch: switched back" line);
  - last bad answer after the first: how long clients kept getting the bad release's 500s;
  - failed after: requests that started after the switch back and failed (must be 0);
  - bad answers: 500s the bad release gave in all.

    .venv/bin/python bench/rollback_time.py --rounds 5 --json bench/results/rollback-time.json
    .venv/bin/python bench/rollback_time.py --rounds 1          # quick look

One throwaway project, removed at the end even on failure; traffic only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import harness
from load import Load

# The absolute thresholds, as when the figures in docs/benchmarks.md were measured, and
# min_clients = 1: the load's clients share one address (127.0.0.1), and this measures how
# fast a breach is acted on, not the per-client rule.
WATCH = (
    'window = "{window}"\nmin_requests = {min_requests}\nmax_error_rate = {max_error_rate}\nmax_p99 = "5s"\n'
    'mode = "absolute"\nmin_clients = 1'
)


def one_round(stack, args) -> dict:
    lines: list[tuple[float, str]] = []
    traffic = Load(stack.live_url, clients=args.clients, slow=0, rate=args.rate, duration=args.max_round).start()
    try:
        time.sleep(1.0)
        release = stack.popen("release", "bad", "--no-backup", "--watch", args.window)

        def read() -> None:
            for line in release.stderr:
                lines.append((time.monotonic(), line))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        release.wait(timeout=args.max_round)
        reader.join(10)
        time.sleep(1.0)
    finally:
        records = traffic.stop()
    text = "".join(line for _, line in lines)
    back = next((t for t, line in lines if "switched back" in line), None)
    bad = [r for r in records if r.version == "bad" and r.status == 500]
    if release.returncode != 1 or back is None or not bad:
        raise SystemExit(f"the round did not roll back as expected (exit {release.returncode}):\n{text}")
    first_bad = min(r.end for r in bad)
    return {
        "first_bad_to_switched_back_s": round(back - first_bad, 3),
        "bad_answers_for_s": round(max(r.end for r in bad) - first_bad, 3),
        "bad_answers": len(bad),
        "requests": len(records),
        "failed_after": sum(r.failed for r in records if r.start >= back),
        "failed_not_bad": sum(r.failed and not (r.version == "bad" and r.status == 500) for r in records),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--clients", type=int, default=2, help="fast clients per kind of client")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second of each client")
    p.add_argument("--error-rate", type=float, default=0.5)
    p.add_argument("--error-after", type=float, default=10.0, help="seconds after the bad release's start")
    p.add_argument("--window", default="60s")
    p.add_argument("--min-requests", type=int, default=20)
    p.add_argument("--max-error-rate", type=float, default=0.05)
    p.add_argument("--max-round", type=float, default=180.0, help="hard stop of one round, seconds")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    import docker
    from stack import Stack

    client = docker.from_env(timeout=600)
    testapp = harness.test_app_image(client)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    rounds = []
    with tempfile.TemporaryDirectory(prefix="rbbench-") as tmp:
        stack = Stack(f"rb{uuid.uuid4().hex[:8]}", Path(tmp), client, testapp)
        try:
            stack.write_config(
                watch=WATCH.format(
                    window=args.window, min_requests=args.min_requests, max_error_rate=args.max_error_rate
                )
            )
            stack.tag("v1")
            stack.tag("v2")
            stack.tag("bad", backend_env={"ERROR_RATE": args.error_rate, "ERROR_AFTER": args.error_after})
            stack.ok("up")
            stack.ok("release", "v1", "--no-backup")
            stack.ok("release", "v2", "--no-backup", "--watch", "0")
            for i in range(args.rounds):
                result = one_round(stack, args)
                rounds.append(result)
                print(f"round {i + 1}: {json.dumps(result)}", flush=True)
        finally:
            stack.destroy()
    times = [r["first_bad_to_switched_back_s"] for r in rounds]
    summary = {
        "first_bad_to_switched_back_s": {
            "median": round(statistics.median(times), 2),
            "min": min(times),
            "max": max(times),
            "n": len(times),
        },
        "failed_after": sum(r["failed_after"] for r in rounds),
        "failed_not_bad": sum(r["failed_not_bad"] for r in rounds),
        "bad_answers_median": statistics.median(r["bad_answers"] for r in rounds),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"started": started, "args": vars(args) | {"json": str(args.json)}, "rounds": rounds, **summary},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
