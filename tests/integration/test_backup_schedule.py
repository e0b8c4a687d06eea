"""The `backup` service on a schedule: it dumps, verifies and prunes; a full disk, a stopped
database and a failing pre-release dump are reported to the webhook and leave nothing
behind; when dumps stop it turns unhealthy, and a restart does not make it look healthy.

One stack, whose dumps live on a small tmpfs mounted on the host (this machine runs the
tests as root), and whose webhook is an HTTP server on the edge network's gateway.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from backup_data import BULK, edge_gateway, hold_lock, psql, release_locks, seed, tmpfs, wait

pytestmark = pytest.mark.docker
SECRET = "test-secret-pw"
TMPFS_MB = 40  # room for the small scheduled dumps and the reserve, not for the bulk table


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append({**json.loads(body), "_path": self.path})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    name = f"t{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("schedule")
    dumps = tmpfs(folder / "dumps", TMPFS_MB)
    s = Stack(name, folder, docker_client, test_app_image)
    gateway = edge_gateway(docker_client, name)
    hook = HTTPServer((gateway, 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    s.dumps = dumps
    s.backup = (
        f'\n[backup]\ndir = "{dumps}"\nschedule = "* * * * * */10"\n'
        f'webhook = "http://{gateway}:{hook.server_port}/hook/{SECRET}-token"\nwebhook_timeout = 2\n'
        "keep_last = 2\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n"
    )
    try:
        s.write_config(extra=s.backup)
        s.ok("up")
        yield s
    finally:
        hook.shutdown()
        s.destroy()
        subprocess.run(["umount", "-l", str(dumps)], check=False)


def _health(container) -> str:
    container.reload()
    return (container.attrs["State"].get("Health") or {}).get("Status", "")


def _scheduled(stack) -> list[dict]:
    rows = json.loads(stack.ok("backup", "list", "--json").stdout)
    return [r for r in rows if r["label"] == "scheduled" and r["ok"]]


def _hooks(step: str, text: str) -> list[dict]:
    return [h for h in _Hook.received if h["step"] == step and text in h["error"]]


def _shrink(stack, free_mb: int) -> bool:
    """Leave `free_mb` free on the tmpfs (less than a dump's reserve); False while a dump writes."""
    if _leftovers(stack):
        return False
    st = os.statvfs(stack.dumps)
    used_mb = -(-(st.f_blocks - st.f_bfree) * st.f_frsize // 2**20)
    return subprocess.run(["mount", "-o", f"remount,size={used_mb + free_mb}m", str(stack.dumps)]).returncode == 0


def _leftovers(stack) -> list[str]:
    return [p.name for p in stack.dumps.iterdir() if p.name.startswith(".dump-") or p.name.endswith(".tmp")]


def test_the_schedule_dumps_reports_every_failure_and_keeps_its_deadline(stack):
    db = stack.docker.containers.get(f"{stack.name}-infra-db-1")
    backup = stack.docker.containers.get(f"{stack.name}-infra-backup-1")
    seed(db, rows=200)
    assert not any("docker.sock" in m["Source"] for m in backup.attrs["Mounts"])

    wait(lambda: len(_scheduled(stack)) >= 2, 60, "two scheduled, verified dumps", every=1)
    assert _health(backup) == "healthy"
    assert len(_scheduled(stack)) <= 3  # pruned to keep_last (plus at most one in flight)

    # SIGTERM while a scheduled dump waits on a table lock: it stops at once, no partial left
    hold_lock(db, "items")
    try:
        wait(lambda: _leftovers(stack), 20, "a scheduled dump waiting for the lock")
        started = time.monotonic()
        backup.stop(timeout=10)
        assert time.monotonic() - started < 5 and _leftovers(stack) == []
    finally:
        release_locks(db)
    backup.start()

    # A full disk during a scheduled dump: reported, nothing left behind
    psql(db, BULK.format(mb=50))
    wait(lambda: _hooks("scheduled dump", "ran out of space"), 40, "the webhook about the full disk", every=1)
    assert _leftovers(stack) == []
    names = {p.name.split(".")[0] for p in stack.dumps.glob("dump-*")}
    assert all(p.stat().st_size < 5_000_000 for p in stack.dumps.glob("dump-*"))
    # ... and the free-space check refuses to start one that cannot fit
    wait(lambda: _shrink(stack, free_mb=31), 30, "a moment to shrink the tmpfs between two dumps")
    wait(lambda: _hooks("scheduled dump", "not enough free space"), 40, "the webhook about free space", every=1)
    assert _leftovers(stack) == [] and {p.name.split(".")[0] for p in stack.dumps.glob("dump-*")} == names

    # Dumps have stopped: the deadline passes, and a restart does not move it
    wait(lambda: _health(backup) == "unhealthy", 60, "the backup service to turn unhealthy", every=1)
    assert {r["name"] for r in _scheduled(stack)} == names  # the older good dumps are all still there
    backup.restart(timeout=10)
    seen: list[str] = []
    wait(lambda: seen.append(_health(backup)) or seen[-1] == "unhealthy", 30, "unhealthy again after the restart")
    assert "healthy" not in seen

    # A release whose pre-release dump fails changes nothing, and says so to the webhook
    stack.tag("v1")
    db.stop(timeout=10)
    try:
        result = stack.cli("release", "v1")
        assert result.returncode == 1 and "step 'backup'" in result.stderr and "does not answer" in result.stderr
        assert stack.containers("blue") == [] and stack.containers("green") == []
        history = [json.loads(line) for line in stack.edge_file("/var/lib/deployer/history.jsonl").splitlines() if line]
        assert [h["outcome"] for h in history] == ["failed"] and history[0]["step"] == "backup"
        report = _hooks("backup", "does not answer")
        assert report and report[0]["event"] == "backup_failed" and report[0]["project"] == stack.name
    finally:
        db.start()

    # Room again, the database back: the next scheduled dump makes it healthy
    psql_ready = lambda: db.exec_run(["pg_isready", "-q", "-h", "127.0.0.1"]).exit_code == 0  # noqa: E731
    wait(psql_ready, 30, "the database")
    psql(db, "drop table bulk")
    subprocess.run(["mount", "-o", f"remount,size={TMPFS_MB}m", str(stack.dumps)], check=True)
    wait(lambda: _health(backup) == "healthy", 60, "healthy after a good dump", every=1)

    for hook in _Hook.received:
        assert SECRET not in json.dumps({k: v for k, v in hook.items() if k != "_path"})
    assert all(h["_path"] == f"/hook/{SECRET}-token" for h in _Hook.received)
    assert SECRET not in backup.logs().decode() and SECRET not in json.dumps(backup.attrs)
