"""Dumps as files: names, sidecars, metadata, how a dump is judged now, and the agent's
folder (stdlib only, so it runs here on a temporary folder)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployer.agent.folder import Folder, identity
from deployer.core import dumps, dumpstate
from deployer.core.dumps import Metadata
from deployer.core.dumpstate import Found

T = datetime(2024, 5, 6, 3, 0, 0, tzinfo=UTC)
SHA = "ab" * 32


def meta(name: str = "dump-20240506T030000Z", **kw) -> Metadata:
    base = Metadata(name, "app", T.isoformat(), "17.6", "17.6", "0.8.0", 10, SHA, 1.5, "l")
    return replace(base, **kw)


def test_names_are_sortable_unique_and_parse_back():
    assert dumps.new_name(T, set()) == "dump-20240506T030000Z"
    assert dumps.new_name(T, {"dump-20240506T030000Z"}) == "dump-20240506T030000Z-2"
    assert dumps.new_name(T, {"dump-20240506T030000Z", "dump-20240506T030000Z-2"}) == "dump-20240506T030000Z-3"
    assert dumps.created_from_name("dump-20240506T030000Z-2") == T
    for bad in ("../etc/passwd", "dump-20240506T030000Z\n", "dump-20240506T030000Z.dump", "dump-x", ""):
        assert not dumps.is_name(bad)
        with pytest.raises(ValueError):
            dumps.check_name(bad)


def test_each_file_of_the_folder_maps_to_its_dump():
    n = "dump-20240506T030000Z"
    for f in (f"{n}.dump", f"{n}.dump.sha256", f"{n}.json", f".{n}.dump.partial"):
        assert dumps.name_of(f) == n
    for f in (
        f"{n}.dump.partial",
        ".deployer.lock",
        ".deployer-status.json",
        f".{n}.json.12.tmp",
        "notes.txt",
        f"x{n}.dump",
    ):
        assert dumps.name_of(f) is None


def test_sha_line_is_sha256sum_format_and_names_its_dump():
    line = dumps.sha_line("dump-x", SHA)
    assert line == f"{SHA}  dump-x.dump\n" and dumps.parse_sha_line(line, "dump-x") == SHA
    assert dumps.parse_sha_line(f"{SHA} *dump-x.dump", "dump-x") == SHA
    for bad in ("nonsense", f"{SHA}  other.dump", f"{SHA[:-1]}  dump-x.dump", ""):
        with pytest.raises(ValueError):
            dumps.parse_sha_line(bad, "dump-x")


def test_labels_and_database_names_are_checked_to_the_end():
    assert dumps.check_label("pre-release v1.2") == "pre-release v1.2"
    assert dumps.check_database("scratch_copy") == "scratch_copy"
    for bad in ("x; rm -rf /", "a\n", "x" * 101):
        with pytest.raises(ValueError):
            dumps.check_label(bad)
    for bad in ("app\n", "a-b", "1app", "host=evil", "x" * 64):
        with pytest.raises(ValueError):
            dumps.check_database(bad)


def test_metadata_round_trips_keeps_its_last_checks_and_refuses_garbage():
    m = meta()
    ident = dumps.Identity(10, 1, 2)
    for i in range(15):
        m = m.with_check(dumps.check(T + timedelta(seconds=i), "read", True, ident))
    assert len(m.checks) == dumps.KEEP_CHECKS and m.last_check.at_time == T + timedelta(seconds=14)
    assert Metadata.from_json(m.to_json()) == m
    for bad in ("", "{", "[]", "null", '{"name": "x"}', json.dumps({**json.loads(m.to_json()), "sha256": "zz"})):
        with pytest.raises(ValueError):
            Metadata.from_json(bad)


def found(m: Metadata | None, *, size: int = 10, sha: str | None = "", at: int = 1) -> Found:
    if sha == "" and m is not None:
        sha = dumps.sha_line(m.name, m.sha256)
    return Found(
        m.name if m else "dump-20240506T030000Z",
        dumps.Identity(size, at, at) if size >= 0 else None,
        sha,
        m.to_json() if m else None,
    )


def test_judging_tells_verified_stale_unverified_and_each_kind_of_damage():
    ident = dumps.Identity(10, 1, 1)
    ok = meta().with_check(dumps.check(T, "read", True, ident))
    now = T + timedelta(hours=1)
    assert dumpstate.judge(found(ok), now).state == dumpstate.VERIFIED
    assert dumpstate.judge(found(ok), T + timedelta(days=2)).state == dumpstate.STALE
    assert dumpstate.judge(found(meta()), now).state == dumpstate.UNVERIFIED
    changed = dumpstate.judge(found(ok, at=2), now)  # same size, written since: a flipped byte
    assert changed.state == dumpstate.UNVERIFIED and "changed" in changed.problem

    cases = {
        "truncated": found(ok, size=5),
        "checksum file ... is missing": found(ok, sha=None),
        "checksum file ... is unreadable": found(ok, sha="garbage"),
        "record different": found(ok, sha=dumps.sha_line(ok.name, "cd" * 32)),
        "checksum file ... unreadable": Found(ok.name, ident, "garbage", None),
        "metadata file ... is unreadable": Found(ok.name, ident, dumps.sha_line(ok.name, SHA), "{not json"),
        "describes": found(replace(ok, name="dump-20240506T030001Z"), sha=dumps.sha_line(ok.name, SHA)),
        "dump file ... is missing": found(ok, size=-1),
    }
    for words, f in cases.items():
        j = dumpstate.judge(replace(f, name=ok.name), now)
        assert j.state == dumpstate.DAMAGED and not j.usable and not j.good, words
        assert all(w in j.problem for w in words.split(" ... ")), (words, j.problem)
        assert dumpstate.row(j, now)["verified"].startswith("DAMAGED")


def test_a_failed_check_damages_the_file_it_saw_and_a_recheck_looks_past_it():
    ident = dumps.Identity(10, 1, 1)
    failed = meta().with_check(dumps.check(T, "read", False, ident, "sha256 mismatch"))
    j = dumpstate.judge(found(failed), T)
    assert j.state == dumpstate.DAMAGED and "sha256 mismatch" in j.problem
    assert dumpstate.judge(found(failed), T, recheck=True).state == dumpstate.UNVERIFIED
    assert dumpstate.judge(found(failed, at=5), T).state == dumpstate.UNVERIFIED  # replaced since


def test_rows_say_what_a_person_needs():
    ok = meta().with_check(dumps.check(T, "restore", True, dumps.Identity(10, 1, 1)))
    row = dumpstate.row(dumpstate.judge(found(ok), T + timedelta(minutes=5)), T + timedelta(minutes=5))
    assert row["verified"] == "verified 5 min ago (restore)" and row["ok"] and row["size_text"] == "10 B"
    assert row["database"] == "app" and row["sha256"] == SHA and row["age"] == "5 min ago"


def test_small_rules():
    assert dumps.space_needed(None) == dumps.RESERVE
    assert dumps.space_needed(1000) == 1100 + dumps.RESERVE
    assert dumps.major("17.6 (Debian 17.6-1)") == 17 and dumps.major("9.6.3") == 9
    assert dumps.restore_memory(256 * 1024 * 1024) == "192MB"
    assert dumps.restore_memory(16 * 1024 * 1024) == "64MB"
    assert dumps.restore_memory(64 * 1024**3) == "2048MB"
    assert dumps.human_size(5 * 1024 * 1024) == "5.0 MB" and dumps.human_age(3 * 86400) == "3 days ago"


# -- the agent's folder ------------------------------------------------------------------
def write_dump(folder: Folder, name: str, data: bytes = b"x" * 10, **kw) -> Metadata:
    import hashlib

    m = meta(name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), **kw)
    (folder.path / f".{name}.dump.partial").write_bytes(data)
    folder.publish(name, m)
    return m


def test_publish_lists_and_deletes_a_dump_atomically(tmp_path):
    folder = Folder(tmp_path)
    write_dump(folder, "dump-20240506T030000Z")
    assert sorted(os.listdir(tmp_path)) == [
        ".deployer.lock",
        "dump-20240506T030000Z.dump",
        "dump-20240506T030000Z.dump.sha256",
        "dump-20240506T030000Z.json",
    ]
    [j] = folder.judged(T)
    assert j.state == dumpstate.UNVERIFIED and j.database == "app"
    seen = identity(folder.file(j.name, "dump"))
    folder.record(j.name, dumps.check(T, "read", True, seen))
    assert folder.judged(T)[0].state == dumpstate.VERIFIED
    folder.delete(j.name)
    assert folder.judged(T) == [] and folder.names() == set()


def test_a_name_clash_keeps_the_other_dump_and_leaves_no_sidecar(tmp_path):
    from deployer.errors import BackupError

    folder = Folder(tmp_path)
    name = "dump-20240506T030000Z"
    (tmp_path / f"{name}.dump").write_bytes(b"someone else's")
    (tmp_path / f".{name}.dump.partial").write_bytes(b"ours")
    with pytest.raises(BackupError, match="appeared"):
        folder.publish(name, meta(name))
    assert (tmp_path / f"{name}.dump").read_bytes() == b"someone else's"
    assert not (tmp_path / f"{name}.json").exists() and not (tmp_path / f"{name}.dump.sha256").exists()


def test_a_new_partial_takes_a_free_name_and_vanishes_on_failure(tmp_path):
    folder = Folder(tmp_path)
    write_dump(folder, dumps.new_name(T, set()))
    with pytest.raises(RuntimeError), folder.partial(T) as (name, fh):
        assert name == "dump-20240506T030000Z-2"
        fh.write(b"half")
        raise RuntimeError("ENOSPC, say")
    assert not list(tmp_path.glob(".*partial"))


def test_leftovers_are_partials_nobody_writes_and_orphan_sidecars(tmp_path):
    folder = Folder(tmp_path)
    live, dead, gone = "dump-20240506T030000Z", "dump-20240506T030001Z", "dump-20240506T030002Z"
    write_dump(folder, gone)
    (tmp_path / f"{gone}.dump").unlink()  # a dump deleted by hand: its sidecars are orphans
    (tmp_path / f".{dead}.dump.partial").write_bytes(b"killed")
    (tmp_path / f"{dead}.json").write_text("{}")  # written before the rename; its writer died
    fd = os.open(tmp_path / f".{live}.dump.partial", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a writer at work
    try:
        names = {j.name: j for j in folder.judged(T)}
        assert set(names) == {gone, dead} and all(j.state == dumpstate.DAMAGED for j in names.values())
        assert folder.writing() == [live]
        removed = folder.clean()
        assert sorted(removed) == sorted(
            [f".{dead}.dump.partial", f"{dead}.json", f"{gone}.dump.sha256", f"{gone}.json"]
        )
        assert sorted(os.listdir(tmp_path)) == [".deployer.lock", f".{live}.dump.partial"]
    finally:
        os.close(fd)
    assert folder.clean() == [f".{live}.dump.partial"]


def test_garbled_sidecars_never_crash_a_listing(tmp_path):
    folder = Folder(tmp_path)
    name = "dump-20240506T030000Z"
    write_dump(folder, name)
    (tmp_path / f"{name}.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / f"{name}.dump.sha256").write_bytes(b"\x00" * 3)
    [j] = folder.judged(T)
    assert j.state == dumpstate.DAMAGED and "unreadable" in j.problem
    assert dumpstate.row(j, T)["created"] == T.isoformat()


def test_the_agent_imports_only_the_standard_library_croniter_and_its_own():
    code = (
        "import sys; import deployer.agent.commands, deployer.agent.schedule, deployer.agent.probe; "
        "bad = [m for m in ('typer', 'docker', 'jinja2', 'httpx', 'tenacity', 'rich', 'python_on_whales', 'psycopg') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_agent_bad_input_is_one_json_line_and_exit_2():
    for argv in (["dump", "--label", "x;y"], ["verify", "../x"], ["restore", "dump-20240506T030000Z"], ["nope"]):
        out = subprocess.run([sys.executable, "-m", "deployer.agent", *argv], capture_output=True, text=True)
        assert out.returncode == 2, argv
        message = json.loads(out.stdout.strip().splitlines()[-1])
        assert message["input"] is True and message["error"] and "Traceback" not in out.stderr


def test_the_password_file_quotes_what_libpq_would_misread(tmp_path, monkeypatch):
    from deployer.agent.postgres import Postgres
    from deployer.core.agentconfig import AgentConfig

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    config = AgentConfig("p", "app", "db", "us:er", "0 3 * * *", 1, 0, 0, 0, 1.0)
    with Postgres(config, "pa:ss\\word") as pg:
        path = pg.env["PGPASSFILE"]
        assert Path(path).read_text() == "*:*:*:us\\:er:pa\\:ss\\\\word\n"
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert "pa:ss" not in json.dumps(pg.env)
    assert not os.path.exists(path)


def test_fetch_refuses_an_output_it_cannot_write_before_asking_the_agent(tmp_path):
    from deployer.errors import InputError
    from deployer.flows import backups

    name = "dump-20261127T030000Z"
    for output, words in (
        (tmp_path / ("x" * 300), "File name too long"),
        (tmp_path / "missing" / "d.dump", "does not exist"),
    ):
        with pytest.raises(InputError, match=words) as caught:
            backups.fetch(None, name, output)  # no engine, no agent: refused first
        assert caught.value.exit_code == 2 and "--output" in str(caught.value)


def test_only_the_dumps_own_failure_marks_it_failed_in_a_restore_check():
    """`backup verify --restore` records a failed check (the dump is then DAMAGED: restore
    refuses it, prune --damaged deletes it) only when the dump is at fault."""
    from deployer.errors import BackupError
    from deployer.flows.scratch import RestoreFailed, _failed

    broken = _failed("restoring failed", 'pg_restore: error: could not execute query: relation "x" exists', "verify")
    assert isinstance(broken, RestoreFailed)
    for stderr in (
        "pg_restore: error: could not extend file: No space left on device",
        "psql: error: connection to server on socket failed",
        "ERROR: out of memory",
    ):
        scratch_failed = _failed("restoring failed", stderr, "verify")
        assert isinstance(scratch_failed, BackupError) and not isinstance(scratch_failed, RestoreFailed), stderr
