"""A dumps folder on a full file system, from the first start: every dump is refused by the
free-space check, and that is a failed dump like any other. The webhook gets a POST for
the scheduled dumps and for `deployer backup now` (from the CLI when the webhook did not
take the agent's POST), the backup service turns unhealthy although the folder cannot even hold the
agent's markers, `deployer status` says why, and nothing that looks like a dump is left.
Room again: the next scheduled dump makes it healthy.

The folder (`backup.dir`) is on a small tmpfs mounted on the host (the tests run as root
on this machine, with the local engine), filled up by another file beside the folder; the
webhook is a sink on the edge network's gateway, which the agent and the CLI both reach.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from backup_data import edge_gateway, tmpfs, wait

pytestmark = pytest.mark.docker
SECRET = "test-secret-pw"  # the database password of tests/stack.py
TOKEN = "hook-token-1f2e"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack
    from webhook_sink import Sink

    name = f"t{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("fulldisk")
    disk = tmpfs(folder / "disk", 40)  # room for a small dump and the 32 MiB reserve, once the filler goes
    s = Stack(name, folder, docker_client, test_app_image)
    sink = None
    try:
        s.dumps, s.filler = disk / "dumps", disk / "filler"
        s.dumps.mkdir()
        subprocess.run(["dd", "if=/dev/zero", f"of={s.filler}", "bs=64k"], capture_output=True)  # until ENOSPC
        s.sink = sink = Sink(host=edge_gateway(docker_client, name))
        s.write_config(
            extra=f'\n[backup]\ndir = "{s.dumps}"\nschedule = "* * * * * */10"\n'
            f'webhook = "{sink.url("/ok/" + TOKEN)}"\nwebhook_timeout = 2\n'
        )
        s.ok("up")
        yield s
    finally:
        if sink:
            sink.close()
        s.destroy()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _backup(stack):
    return stack.docker.containers.get(f"{stack.name}-infra-backup-1")


def _health(container) -> str:
    container.reload()
    return (container.attrs["State"].get("Health") or {}).get("Status", "")


def _posted(stack, step: str) -> list[dict]:
    return [b for b in list(stack.sink.bodies) if b.get("step") == step and "not enough free space" in b["error"]]


def _dump_like(stack) -> list[str]:
    """Files of the folder that are a dump, a part of one, or a temporary file."""
    return [p.name for p in stack.dumps.iterdir() if not p.name.startswith(".deployer") or p.name.endswith(".tmp")]


def test_a_full_dumps_disk_is_posted_unhealthy_shown_and_leaves_no_dump(stack):
    backup = _backup(stack)
    [scheduled, *_] = wait(lambda: _posted(stack, "scheduled dump"), 40, "a POST about the refused scheduled dump")
    assert set(scheduled) == {"text", "project", "event", "step", "error"}
    assert scheduled["event"] == "backup_failed" and scheduled["project"] == stack.name
    assert scheduled["text"].startswith(f"[{stack.name}] backup failed in step 'scheduled dump': not enough free")

    # no dump was ever written, and the folder cannot hold the agent's markers: still unhealthy in time
    wait(lambda: _health(backup) == "unhealthy", 60, "the backup service to turn unhealthy", every=1)
    shown = stack.ok("status")
    text = " ".join(shown.stdout.split())
    assert "backup service: running/unhealthy" in text and "OVERDUE" in text, shown.stdout
    assert "backup schedule: overdue: no good dump of app" in text and "0 B free" in text, shown.stdout
    summary = json.loads(stack.ok("status", "--json").stdout)["backup"]
    assert summary["overdue"] is True and summary["health"]["ok"] is False and summary["name"] is None
    log = (backup.attrs["State"]["Health"]["Log"] or [{}])[-1]
    assert log.get("ExitCode") == 1 and "overdue" in log.get("Output", "")

    # `backup now`: exit 1 naming the step, and the same POST
    refused = stack.cli("backup", "now")
    assert refused.returncode == 1 and "step 'backup'" in refused.stderr, refused.stderr
    assert "not enough free space" in refused.stderr and "Traceback" not in refused.stderr
    [now] = wait(lambda: _posted(stack, "backup"), 10, "a POST about the refused `backup now`")
    assert set(now) == set(scheduled) and now["event"] == "backup_failed"

    # the webhook does not take the agent's POST (it answers the agent 503): the CLI sends it
    stack.sink.refuse_from = {backup.attrs["NetworkSettings"]["Networks"][f"{stack.name}-edge"]["IPAddress"]}
    try:
        cut_off = stack.cli("backup", "now")
    finally:
        stack.sink.refuse_from = set()
    assert cut_off.returncode == 1 and "step 'backup'" in cut_off.stderr
    assert "could not deliver the failure to the webhook: sending it from here" in cut_off.stderr
    assert len(_posted(stack, "backup")) == 2, cut_off.stderr  # the CLI's own POST, answered before it exited

    assert _dump_like(stack) == []
    for body in stack.sink.bodies:
        assert SECRET not in json.dumps(body) and TOKEN not in json.dumps(body)
    for result in (shown, refused, cut_off):
        assert SECRET not in result.stdout + result.stderr and TOKEN not in result.stdout + result.stderr

    # room again: the next scheduled dump is good, and the service healthy
    stack.filler.unlink()
    wait(lambda: _health(backup) == "healthy", 60, "healthy after a good scheduled dump", every=1)
    rows = json.loads(stack.ok("backup", "list", "--json").stdout)
    assert [r["label"] for r in rows if r["ok"]][:1] == ["scheduled"]
    assert all(r["state"] != "damaged" for r in rows)
