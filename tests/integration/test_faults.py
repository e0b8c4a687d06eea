"""Fault injection: the deployer is killed with SIGKILL (no undo can run) at each release step
in turn, under keep-alive load. Live traffic never fails, `status` tells the truth, the next
release succeeds with no command first, and no half-written dump is ever listed.

The table this prints is recorded in docs/reliability.md.
"""

from __future__ import annotations

import json
import time

import pytest
from test_guards import LiveClient, wait_for_line

pytestmark = pytest.mark.docker

STEPS = ("lock", "images", "backup", "start", "health", "smoke", "switch")


def test_sigkill_at_every_step_under_load(project):
    versions = [f"v{i}" for i in range(1, 2 * len(STEPS) + 5)]
    for version in versions:
        project.tag(version)
    project.ok("up")
    project.ok("release", "v1")
    live = ("v1", "blue")
    lease = {"DEPLOYER_TEST_LEASE": "2"}
    client = LiveClient(project.live_url)
    client.start()
    rows = []
    n = 1
    try:
        for step in (*STEPS, "switch-exec"):
            n += 1
            victim_version = versions[n - 1]
            if step == "switch-exec":  # killed while the switch runs in the edge, after the swap
                victim = project.popen_env({**lease, "DEPLOYER_TEST_COMMIT_PAUSE": "2"}, "release", victim_version)
                wait_for_line(victim, "healthy after")
                time.sleep(0.6)
            else:
                victim = project.popen_env({**lease, "DEPLOYER_TEST_PAUSE": f"{step}:30"}, "release", victim_version)
                wait_for_line(victim, f"test pause before {step}")
            failures_before = client.failed
            victim.kill()
            victim.wait(timeout=10)
            if step == "switch-exec":
                time.sleep(2.5)  # the switch goes on in the edge, and completes
                live = (victim_version, "green" if live[1] == "blue" else "blue")

            served = project.serving()
            status = json.loads(project.ok("status", "--json").stdout)
            truthful = (
                served == live and status["live"] == served[1] and status["colours"][served[1]]["version"] == served[0]
            )
            dumps = json.loads(project.ok("backup", "list", "--json").stdout)
            # Every dump listed as good is good: read back in full, it passes.
            half_written = [d for d in dumps if d["ok"] and project.cli("backup", "verify", d["name"]).returncode != 0]

            time.sleep(2.2)  # the killed holder's lease (2 s) runs out
            n += 1
            after = project.cli("release", versions[n - 1], "--no-backup")
            assert after.returncode == 0, (step, after.stderr)
            live = (versions[n - 1], "green" if live[1] == "blue" else "blue")
            assert project.serving() == live, step
            rows.append(
                (
                    step,
                    client.failed - failures_before,
                    truthful,
                    "none (the lock's lease ran out; the unfinished release was undone)"
                    if "unfinished release" in after.stderr
                    else "none",
                    len(half_written),
                )
            )
    finally:
        client.stop.set()
        client.join(timeout=10)

    print(
        "\n| killed at | failed live requests | status truthful | commands before the next release | half-written dumps listed |"
    )
    print("|---|--:|---|---|--:|")
    for step, failed, truthful, commands, half in rows:
        print(f"| {step} | {failed} | {'yes' if truthful else 'NO'} | {commands} | {half} |")
    assert client.ok > 200
    assert client.failed == 0, client.errors[:10]
    assert all(truthful for _, _, truthful, _, _ in rows), rows
    assert all(half == 0 for *_, half in rows), rows
    leftovers = {
        c.labels["deployer.release"]
        for c in project.containers()
        if c.labels.get("deployer.role") == "app" and c.attrs["HostConfig"]["CpuShares"] != 2  # 2: told to stop
    }
    assert len(leftovers) == 2  # the live release and its standby: nothing the kills left behind survives
