"""Fault injection: the deployer is killed with SIGKILL (no undo can run) at each release step
in turn, under keep-alive load. Live traffic never fails, `status` tells the truth, the next
release succeeds with no command first, and no half-written dump is ever listed. Then a
release killed while its migration runs: the migration goes on without it, and the next
release waits for it instead of starting a second one beside it.

The tables these print are recorded in docs/reliability.md. Both tests share one stack.
"""

from __future__ import annotations

import json
import time

import pytest
from test_guards import LiveClient, wait_for_line

from deployer.core.steps import RELEASE

pytestmark = pytest.mark.docker

STEPS = tuple(step.value for step in RELEASE)  # every step of a release, in order
AFTER_SWITCH = ("watch", "retire")  # the release is live by then: the kill leaves it live
LEASE = {"DEPLOYER_TEST_LEASE": "2"}


@pytest.fixture(scope="module")
def stack(live_stack):
    return live_stack  # the tests below carry it on from whatever the one before left live


def other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


# `make test` kills at a sample (one step before the backup, one in each part of the undo,
# the switch's exec, and after the switch); `make test-long` at every step. The undo at every
# step is also the fast tier's (tests/unit/test_release_undo.py, on a fake runtime).
SAMPLE = ("lock", "migrate", "health", "switch-exec", "retire")


@pytest.mark.parametrize(
    "kills",
    [pytest.param(SAMPLE, id="sample"), pytest.param((*STEPS, "switch-exec"), id="every", marks=pytest.mark.long)],
)
def test_sigkill_at_every_step_under_load(stack, kills):
    versions = [f"k{len(kills)}-{i}" for i in range(2 * len(kills) + 2)]
    for version in versions:
        stack.tag(version)
    live = stack.serving()
    client = LiveClient(stack.live_url)
    client.start()
    rows = []
    try:
        for step in kills:
            victim_version, next_version = versions.pop(0), versions.pop(0)
            if step == "switch-exec":  # killed while the switch runs in the edge, after the swap
                victim = stack.popen_env({**LEASE, "DEPLOYER_TEST_COMMIT_PAUSE": "2"}, "release", victim_version)
                wait_for_line(victim, "healthy after")
                time.sleep(0.6)
            else:
                victim = stack.popen_env({**LEASE, "DEPLOYER_TEST_PAUSE": f"{step}:30"}, "release", victim_version)
                wait_for_line(victim, f"test pause before {step}")
            failures_before = client.failed
            victim.kill()
            victim.wait(timeout=10)
            if step == "switch-exec":
                time.sleep(2.5)  # the switch goes on in the edge, and completes
            if step in ("switch-exec", *AFTER_SWITCH):
                live = (victim_version, other(live[1]))

            served = stack.serving()
            status = json.loads(stack.ok("status", "--json").stdout)
            truthful = (
                served == live and status["live"] == served[1] and status["colours"][served[1]]["version"] == served[0]
            )
            dumps = json.loads(stack.ok("backup", "list", "--json").stdout)
            # Every dump listed as good is good: read back in full, it passes.
            half_written = [d for d in dumps if d["ok"] and stack.cli("backup", "verify", d["name"]).returncode != 0]

            time.sleep(2.2)  # the killed holder's lease (2 s) runs out
            after = stack.cli("release", next_version, "--no-backup")
            assert after.returncode == 0, (step, after.stderr)
            live = (next_version, other(live[1]))
            assert stack.serving() == live, step
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
        for c in stack.containers()
        if c.labels.get("deployer.role") == "app" and c.attrs["HostConfig"]["CpuShares"] != 2  # 2: told to stop
    }
    assert len(leftovers) == 2  # the live release and its standby: nothing the kills left behind survives


def running_migrations(stack) -> list[str]:
    return [c.name for c in stack.docker.containers.list(filters={"label": [f"deployer.project={stack.name}"]})
            if c.name.startswith(f"{stack.name}-migrate-")]  # fmt: skip


def test_a_release_killed_during_its_migration_leaves_no_second_migration_beside_it(stack):
    """kill -9 while the migration runs: its container goes on (nobody is left to stop or
    remove it). The next release waits for it, runs its own migration after it, never
    beside it, and leaves no migration container behind."""
    migrate = 'migrate = ["sh", "-c", "echo migrating; sleep ${MIGRATE_SECONDS:-0}; echo migrated"]'
    stack.write_config(backend=f"{migrate}\nmigrate_timeout = 120")
    stack.tag("m1", backend_env={"MIGRATE_SECONDS": "15"})
    stack.tag("m2", backend_env={"MIGRATE_SECONDS": "3"})  # long enough to be seen running
    live = stack.serving()
    client = LiveClient(stack.live_url)
    client.start()
    victim = stack.popen_env(LEASE, "release", "m1", "--no-backup")
    wait_for_line(victim, "migrate: backend:")
    for _ in range(100):  # bounded: its container starts within seconds
        if orphan := running_migrations(stack):
            break
        time.sleep(0.1)
    assert orphan, "the migration never started"
    victim.kill()
    victim.wait(timeout=10)
    status = json.loads(stack.ok("status", "--json").stdout)
    truthful = (
        stack.serving() == live and status["live"] == live[1] and status["colours"][live[1]]["version"] == live[0]
    )
    time.sleep(2.2)  # the killed holder's lease runs out

    second = stack.popen_env(LEASE, "release", "m2", "--no-backup")
    seen, most = set(), 0
    for _ in range(1200):  # bounded: 2 minutes
        running = running_migrations(stack)
        seen.update(running)
        most = max(most, len(running))
        if second.poll() is not None:
            break
        time.sleep(0.1)
    err = second.communicate(timeout=60)[1]
    client.stop.set()
    client.join(timeout=10)
    print(f"\n| migrate, while its migration runs | {client.failed} | {'yes' if truthful else 'NO'} | ... |")
    assert second.returncode == 0, err
    assert truthful and client.ok > 100 and client.failed == 0, (truthful, client.ok, client.errors[:10])
    assert f"waiting for {orphan[0]}" in err and "its command is gone" in err, err
    assert f"{orphan[0]} ended; removed" in err, err
    assert most == 1 and len(seen) == 2, (seen, err)  # the orphan, then m2's own: never both at once
    assert err.index(f"{orphan[0]} ended") < err.index("migrate: backend done"), err
    assert stack.serving() == ("m2", other(live[1]))
    left = stack.docker.containers.list(all=True, filters={"label": [f"deployer.project={stack.name}"]})
    assert not [c.name for c in left if "-migrate-" in c.name or c.labels.get("deployer.role") == "oneoff"]
    stack.write_config()


def running_restores(stack) -> list[str]:
    backup = stack.docker.containers.get(f"{stack.name}-infra-backup-1")
    found = []
    for exec_id in backup.attrs.get("ExecIDs") or []:
        info = stack.docker.api.exec_inspect(exec_id)
        if info.get("Running") and "restore" in (info.get("ProcessConfig") or {}).get("arguments", []):
            found.append(exec_id)
    return found


def test_a_restore_left_running_by_a_killed_command_holds_off_every_command_that_would_run_under_it(stack):
    """kill -9 of `backup restore` leaves the restore running in the backup service (an exec
    there), and its lock's lease runs out: a release, `backup now` and another restore are
    refused while it runs, with nothing changed, and work again once it has ended."""
    stack.tag("r1")
    dump = stack.ok("backup", "now").stdout.strip()
    live = stack.serving()
    victim = stack.popen_env({**LEASE, "DEPLOYER_TEST_PAUSE": "restore:12"}, "backup", "restore", dump, "--yes")
    wait_for_line(victim, "test pause before restore")
    victim.kill()
    victim.wait(timeout=10)
    assert running_restores(stack), "the restore did not go on without its command"
    time.sleep(2.2)  # the killed holder's lease runs out
    refusals = [
        stack.cli("release", "r1", "--no-backup"),
        stack.cli("backup", "now"),
        stack.cli("backup", "restore", dump, "--yes"),
    ]
    for refused in refusals:
        assert refused.returncode == 1, refused.stderr
        assert f"a restore of {dump} still runs in the backup service" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert stack.serving() == live  # nothing was released
    for _ in range(300):  # bounded: the restore's pause (12 s) and the restore itself
        if not running_restores(stack):
            break
        time.sleep(0.2)
    assert not running_restores(stack), "the restore never ended"
    stack.ok("release", "r1", "--no-backup")
    assert stack.serving()[0] == "r1"
