"""The lock's edge scripts, run by a real shell on a folder that stands in for the edge's
volume: `down` closes the lock before it removes the edge, and a later edge finds it free."""

from __future__ import annotations

import json
import subprocess

from deployer.core import scripts


def edge(tmp_path, container: str):
    """Run a script as the edge container `container` would (its /etc/hostname)."""
    hostname = tmp_path / f"hostname-{container}"
    hostname.write_text(f"{container}\n")

    def run(script: str) -> subprocess.CompletedProcess:
        script = script.replace(scripts.HOME, str(tmp_path / "volume")).replace("/etc/hostname", str(hostname))
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)

    return run


def holder(token: str) -> str:
    return json.dumps({"user": "ci", "host": "runner", "pid": 7, "command": "down", "since": 0, "token": token})


def test_a_lock_closed_by_down_stays_held_in_its_edge_and_is_free_in_the_next(tmp_path):
    (tmp_path / "volume").mkdir()
    old = edge(tmp_path, "edge-a")
    assert old(scripts.mark_deployment("d1")).returncode == 0
    assert old(scripts.take_lock(holder("tok-down"), 30, "d1")).returncode == 0
    assert old(scripts.close_lock("tok-other")).returncode == scripts.LOCK_LOST, "only its holder closes it"
    assert old(scripts.close_lock("tok-down")).returncode == 0

    # While the edge that `down` closed it in still runs, the lock is held as ever.
    refused = old(scripts.take_lock(holder("tok-release"), 30, "d1"))
    assert refused.returncode == scripts.LOCK_HELD and refused.stdout.startswith("held "), refused
    assert old(scripts.read_lock()).stdout.strip()

    # The volume kept, a new edge container (`up` after `down`): free, and no stale lock to report.
    new = edge(tmp_path, "edge-b")
    assert new(scripts.read_lock()).stdout == ""
    taken = new(scripts.take_lock(holder("tok-release"), 30, "d1"))
    assert taken.returncode == 0 and "stale" not in taken.stdout, taken
    assert "tok-release" in (tmp_path / "volume" / "lock" / "holder").read_text()
    assert new(scripts.take_lock(holder("tok-third"), 30, "d1")).returncode == scripts.LOCK_HELD
