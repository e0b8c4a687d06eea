"""Dumps of a real pgvector database through the real CLI and the backup agent: take, list,
verify, fetch, restore, the pre-release dump, killed dumps, and corrupted dumps.

One stack for the module; the dumps live in a host folder (`backup.dir`), so the tests can
look at them and damage them the way a disk or a person would.
"""

from __future__ import annotations

import json
import signal
import stat
import uuid

import pytest
from backup_data import (
    AGENT,
    FINGERPRINT,
    HNSW,
    TOP10,
    flip_byte,
    forge_last_check,
    hold_lock,
    kill,
    psql,
    release_locks,
    seed,
    sha256,
    wait,
)

pytestmark = pytest.mark.docker
SECRET = "test-secret-pw"
BACKUP = '\n[backup]\ndir = "backups"\n'
KEEP_ONE = BACKUP + "keep_last = 1\nkeep_daily = 0\nkeep_weekly = 0\nkeep_monthly = 0\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    s = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("backup"), docker_client, test_app_image)
    try:
        s.write_config(extra=BACKUP)
        s.ok("up")
        seed(_db(s))
        yield s
    finally:
        s.destroy()


def _db(stack):
    return stack.docker.containers.get(f"{stack.name}-infra-db-1")


def _agent(stack):
    return stack.docker.containers.get(f"{stack.name}-infra-backup-1")


def _folder(stack):
    return stack.folder / "backups"


def _dumps(stack) -> list[dict]:
    return json.loads(stack.ok("backup", "list", "--json").stdout)


def _row(stack, name: str) -> dict:
    return next(d for d in _dumps(stack) if d["name"] == name)


def _take(stack, *args: str) -> str:
    return stack.ok("backup", "now", *args).stdout.strip().splitlines()[-1]


def _files(stack) -> set[str]:
    return {p.name for p in _folder(stack).iterdir() if not p.name.startswith(".deployer")}


def _summary(stack) -> dict:
    from deployer import config as config_mod
    from deployer.flows import backups
    from deployer.runtime.mode import context

    ctx = context(config_mod.load(stack.config))
    try:
        return backups.summary(ctx)
    finally:
        ctx.close()


def test_a_dump_is_private_verified_listed_fetched_and_summarised(stack, tmp_path):
    result = stack.ok("backup", "now", "--label", "first one")
    name = result.stdout.strip().splitlines()[-1]
    folder = _folder(stack)
    assert {p.name for p in folder.glob(f"{name}*")} == {f"{name}.dump", f"{name}.dump.sha256", f"{name}.json"}
    assert not list(folder.glob(".*partial"))
    for path in [folder, *folder.iterdir()]:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (10001, 10001), path
        assert stat.S_IMODE(st.st_mode) == (0o700 if path == folder else 0o600), path
    meta = json.loads((folder / f"{name}.json").read_text())
    assert meta["server_version"].split(".")[0] == meta["client_version"].split(".")[0] == "17"
    assert meta["compression"] == "zstd:3" and meta["pgvector_version"].startswith("0.")
    assert meta["label"] == "first one" and meta["size"] == (folder / f"{name}.dump").stat().st_size
    assert meta["sha256"] == sha256(folder / f"{name}.dump")
    assert (folder / f"{name}.dump.sha256").read_text() == f"{meta['sha256']}  {name}.dump\n"
    row = _row(stack, name)
    assert row["ok"] and row["state"] == "verified" and row["verified"].startswith("verified")

    fetched = stack.ok("backup", "fetch", name, "--output", str(tmp_path))
    copy = tmp_path / f"{name}.dump"
    assert fetched.stdout.strip() == str(copy)
    assert sha256(copy) == meta["sha256"] and stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*partial"))
    again = stack.cli("backup", "fetch", name, "--output", str(copy))
    assert again.returncode == 2 and "exists" in again.stderr

    summary = _summary(stack)
    assert summary["name"] == name and summary["state"] == "verified" and summary["next_run"]
    assert summary["last_error"] is None and summary["overdue"] is False

    inspect = json.dumps(_agent(stack).attrs)
    for text in (
        result.stdout,
        result.stderr,
        fetched.stderr,
        (folder / f"{name}.json").read_text(),
        inspect,
        json.dumps(summary),
    ):
        assert SECRET not in text
    assert not any("docker.sock" in m["Source"] for m in _agent(stack).attrs["Mounts"])


def test_verify_restore_restores_into_a_scratch_server_that_is_removed(stack):
    name = _take(stack, "--label", "roundtrip")
    checked = stack.ok("backup", "verify", name, "--restore").stdout
    assert "public.items: 3000 rows" in checked and "nearest-neighbour query ok (10 rows)" in checked
    assert _row(stack, name)["verified"].endswith("(restore)")
    leftovers = stack.docker.containers.list(
        all=True, filters={"label": [f"deployer.project={stack.name}", "deployer.kind=scratch"]}
    )
    assert leftovers == []


def test_restore_needs_yes_then_brings_back_every_row_and_neighbour_after_a_safety_dump(stack):
    name = _take(stack, "--label", "before delete")
    before = (psql(_db(stack), FINGERPRINT), psql(_db(stack), TOP10))
    assert before[0].startswith("3000:")
    files = _files(stack)
    refused = stack.cli("backup", "restore", name)
    assert refused.returncode == 2 and "--yes" in refused.stderr and _files(stack) == files
    psql(_db(stack), "delete from items where id > 100")
    done = stack.ok("backup", "restore", name, "--yes")
    assert "public.items\t3000" in done.stdout
    assert (psql(_db(stack), FINGERPRINT), psql(_db(stack), TOP10)) == before and psql(_db(stack), HNSW) == "1"
    safety = [d for d in _dumps(stack) if d["label"] == "pre-restore safety (app)"]
    assert len(safety) == 1 and safety[0]["ok"]
    copy = stack.ok("backup", "restore", name, "--database", "scratch_copy", "--yes")
    assert "public.items\t3000" in copy.stdout
    assert psql(_db(stack), FINGERPRINT, db="scratch_copy") == before[0]
    assert psql(_db(stack), TOP10, db="scratch_copy") == before[1]
    for text in (done.stdout, done.stderr, copy.stderr):
        assert SECRET not in text


def test_a_release_takes_a_verified_pre_release_dump(stack):
    stack.tag("v1")
    stack.ok("release", "v1")
    rows = [d for d in _dumps(stack) if d["label"] == "pre-release v1"]
    assert len(rows) == 1 and rows[0]["state"] == "verified"


def test_a_held_table_lock_and_killed_dumps_leave_nothing_behind(stack):
    db, agent, folder = _db(stack), _agent(stack), _folder(stack)
    files = _files(stack)
    hold_lock(db, "items")
    try:
        # pg_dump gives up after its lock-wait timeout instead of hanging a release forever
        code, out = agent.exec_run([*AGENT, "dump", "--label", "waits", "--lock-wait-timeout", "2"])
        # (the agent's message and pg_dump's own stderr come on two streams, in either order)
        assert code == 1 and "waited 2s for a table lock" in out.decode()
        assert _files(stack) == files

        # pg_dump killed: the command fails naming its step, the partial goes
        proc = stack.popen("backup", "now", "--label", "doomed")
        wait(lambda: list(folder.glob(".*.partial")), 30, "the partial file")
        kill(agent, "pg_dump")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1 and "pg_dump" in err and "step 'backup'" in err, err
        assert _files(stack) == files

        # Ctrl-C on the CLI: the agent is told to stop, and removes its partial
        proc = stack.popen("backup", "now", "--label", "cancelled")
        wait(lambda: list(folder.glob(".*.partial")), 30, "the partial file")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        wait(lambda: _files(stack) == files, 10, "the cancelled dump's partial to go")

        # the agent itself killed: its partial stays, never listed as a dump
        proc = stack.popen("backup", "now", "--label", "killed")
        wait(lambda: list(folder.glob(".*.partial")), 30, "the partial file")
        kill(agent, "deployer.agent", "dump")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1 and "without an answer" in err, err
        assert len(list(folder.glob(".*.partial"))) == 1
    finally:
        release_locks(db)
    listed = stack.ok("backup", "list", "--json").stdout
    assert "killed" not in listed and "partial" not in listed
    name = _take(stack, "--label", "after the kills")  # the next dump removes the leftover
    assert not list(folder.glob(".*.partial"))
    assert _files(stack) == files | {f"{name}.dump", f"{name}.dump.sha256", f"{name}.json"}


def test_corrupted_dumps_are_never_called_verified_restored_or_relied_on(stack):
    stack.write_config(extra=KEEP_ONE)
    stack.ok("up")  # the agent's retention comes with its settings
    db, folder = _db(stack), _folder(stack)
    older = [d["name"] for d in _dumps(stack)]
    intact = _take(stack, "--label", "intact")
    truncated, flipped, no_sidecar = (
        _take(stack, "--label", label) for label in ("truncated", "flipped", "no sidecar")
    )
    data = (folder / f"{truncated}.dump").read_bytes()
    (folder / f"{truncated}.dump").write_bytes(data[: int(len(data) * 0.6)])
    flip_byte(folder / f"{flipped}.dump")
    (folder / f"{no_sidecar}.dump.sha256").unlink()

    rows = {d["name"]: d for d in _dumps(stack)}
    assert rows[intact]["state"] == "verified"
    assert rows[truncated]["state"] == "damaged" and "truncated" in rows[truncated]["verified"]
    assert rows[flipped]["state"] == "unverified" and "changed" in rows[flipped]["verified"]
    assert rows[no_sidecar]["state"] == "damaged" and "missing" in rows[no_sidecar]["verified"]
    assert not any(rows[n]["ok"] for n in (truncated, flipped, no_sidecar))
    text = stack.ok("backup", "list").stdout
    for n in (truncated, no_sidecar):
        assert f"{n}  " in text and "DAMAGED" in text.split(n)[1].splitlines()[0]
    summary = _summary(stack)
    assert summary["name"] == no_sidecar and summary["state"] == "damaged" and not summary["ok"]
    assert summary["newest_good"]["name"] == intact and set(summary["damaged"]) >= {truncated, no_sidecar}

    failed = {n: stack.cli("backup", "verify", n) for n in (truncated, flipped, no_sidecar)}
    assert all(r.returncode == 1 and "Traceback" not in r.stderr for r in failed.values())
    assert "sha256 mismatch" in failed[flipped].stderr and "missing" in failed[no_sidecar].stderr
    assert _row(stack, flipped)["state"] == "damaged"

    before, files = psql(db, FINGERPRINT), _files(stack)
    psql(db, "update items set title = 'changed' where id = 1")
    for n in (truncated, flipped, no_sidecar):
        refused = stack.cli("backup", "restore", n, "--yes")
        assert refused.returncode == 1 and "damaged" in refused.stderr and "step 'restore'" in refused.stderr
    assert _files(stack) == files  # not even a safety dump
    assert psql(db, "select title from items where id = 1") == "changed"
    psql(db, "update items set title = 'item 1' where id = 1")
    assert psql(db, FINGERPRINT) == before

    # Bit rot that every cheap check misses: prune re-hashes before it relies on a dump
    rotten = _take(stack, "--label", "rotten")
    flip_byte(folder / f"{rotten}.dump", at=0.3)
    forge_last_check(folder, rotten)
    assert _row(stack, rotten)["state"] == "verified"
    dry = stack.ok("backup", "prune", "--dry-run")
    assert f"keep {intact} (newest verified)" in dry.stdout and _files(stack) >= files
    pruned = stack.ok("backup", "prune")
    assert f"keep {intact} (newest verified)" in pruned.stdout
    assert f"{rotten} no longer matches its sha256" in pruned.stderr
    rows = {d["name"]: d for d in _dumps(stack)}
    assert rows[intact]["state"] == "verified" and rows[rotten]["state"] == "damaged"
    assert set(rows) == {intact, truncated, flipped, no_sidecar, rotten}
    assert not set(older) & set(rows)
    assert sha256(folder / f"{intact}.dump") == rows[intact]["sha256"]

    stack.ok("backup", "prune", "--damaged")
    assert [d["name"] for d in _dumps(stack)] == [intact]


def test_a_dump_without_metadata_is_listed_unverified_never_pruned_and_verify_rebuilds_it(stack):
    # after the test above: keep_last = 1, and one verified dump
    folder = _folder(stack)
    good = _take(stack, "--label", "good")
    orphan = _take(stack, "--label", "orphan")
    (folder / f"{orphan}.json").unlink()
    row = _row(stack, orphan)
    assert row["state"] == "unverified" and not row["ok"] and row["database"] is None
    assert "metadata file" in row["verified"] and f"backup verify {orphan}" in row["verified"]
    assert "unverified: its metadata file" in stack.ok("backup", "list").stdout.split(orphan)[1].splitlines()[0]
    summary = _summary(stack)
    assert summary["without_metadata"] == [orphan] and summary["newest_good"]["name"] == good
    for args in (("restore", orphan, "--yes"), ("fetch", orphan, "--output", str(stack.folder))):
        refused = stack.cli("backup", *args)
        assert refused.returncode == 1 and "yet" in refused.stderr and f"backup verify {orphan}" in refused.stderr

    # a half-copied dump without sidecars: listed, never valid; its check fails and it is damaged
    half = "dump-20000101T000000Z"
    data = (folder / f"{orphan}.dump").read_bytes()
    (folder / f"{half}.dump").write_bytes(data[: len(data) // 2])
    assert _row(stack, half)["state"] == "unverified"
    assert stack.cli("backup", "verify", half).returncode == 1 and _row(stack, half)["state"] == "damaged"

    pruned = stack.ok("backup", "prune")  # retention: the newest verified stays, the unrecorded one too
    assert f"keep {good} (newest verified)" in pruned.stdout and orphan not in pruned.stdout
    assert [d["name"] for d in _dumps(stack)] == [half, good, orphan]

    checked = stack.ok("backup", "verify", orphan).stdout
    assert "metadata written again from the archive (a dump of app)" in checked
    row = _row(stack, orphan)
    assert (
        row["state"] == "verified" and row["database"] == "app" and row["sha256"] == sha256(folder / f"{orphan}.dump")
    )
    assert row["server_version"].startswith("17") and row["label"] == "metadata rebuilt by verify"
    stack.ok("backup", "prune", "--damaged")
    assert [d["name"] for d in _dumps(stack)] == [orphan]


def test_a_restore_drill_checks_the_newest_dump_and_a_failed_one_is_reported(stack):
    name = _take(stack, "--label", "drilled")
    done = json.loads(stack.ok("backup", "drill", "--json").stdout)
    assert done["dump"] == name and done["ok"] and done["error"] == ""
    assert done["amcheck"] == "clean" and done["pgvector"][0].isdigit() and done["rows"] >= 3000, done
    assert _summary(stack)["last_drill"] == done
    assert f"{name}: ok in" in stack.ok("status").stdout
    assert not [p.name for p in _folder(stack).iterdir() if p.name.startswith(".drill-")]  # the scratch cluster went

    # The newest dump damaged: the drill fails (exit 1, step drill), status and the agent's report say so.
    flip_byte(_folder(stack) / f"{name}.dump")
    failed = stack.cli("backup", "drill")
    assert failed.returncode == 1 and "step 'drill'" in failed.stderr and "damaged" in failed.stderr, failed.stderr
    summary = _summary(stack)
    assert summary["last_drill"]["ok"] is False and summary["last_drill"]["dump"] == name
    assert summary["last_error"]["step"] == "drill"  # report.failure: the same path that POSTs the webhook
    assert "FAILED" in stack.ok("status").stdout
    stack.ok("backup", "prune", "--damaged")


def test_the_schedule_runs_the_restore_drill_at_its_times(stack):
    _take(stack, "--label", "for the scheduled drill")
    before = (_summary(stack).get("last_drill") or {}).get("at")
    stack.write_config(extra=BACKUP + 'drill_schedule = "* * * * * */5"\n')
    try:
        stack.ok("up")  # the agent's settings changed: it is made again with the new schedule
        drilled = wait(
            lambda: (d := _summary(stack).get("last_drill")) and d["at"] != before and d["ok"] and d, 60, "a drill"
        )
        assert drilled["rows"] >= 3000
        assert f"drill of {drilled['dump']}: ok" in _agent(stack).logs().decode()
    finally:
        stack.write_config(extra=BACKUP)
        stack.ok("up")


def test_a_dump_and_a_restore_report_their_bytes_as_they_go(stack):
    """The agent's progress lines, which the CLI shows as a transfer's (a bar on a terminal, a
    line every 5 s on a pipe): the bytes a dump wrote, and how far pg_restore read the dump."""
    code, out = _agent(stack).exec_run([*AGENT, "dump", "--label", "progress"])
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert code == 0, out.decode()
    name = lines[-1]["result"]["name"]
    written = [m["bytes"] for m in lines if "bytes" in m]
    assert written and 0 < written[-1] <= _row(stack, name)["size"], lines
    code, out = _agent(stack).exec_run([*AGENT, "restore", name, "--database", "progress_copy"])
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert code == 0, out.decode()
    read = [(m["bytes"], m["of"]) for m in lines if "bytes" in m]
    assert read and all(of == _row(stack, name)["size"] and 0 <= done <= of for done, of in read), read
    psql(_db(stack), "drop database progress_copy", db="postgres")
