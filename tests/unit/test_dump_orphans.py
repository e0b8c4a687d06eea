"""A dump whose metadata file was deleted: listed as unverified (never damaged, never
pruned, never relied on), refused by restore and fetch, until `verify` checks it in full
and writes its metadata again from the archive; a copy that fails that check is damaged."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from deployer.agent import checks, health, postgres, prune
from deployer.agent.boot import Agent
from deployer.agent.folder import Folder, identity
from deployer.core import dumps, dumpstate
from deployer.core.agentconfig import AgentConfig
from deployer.errors import BackupError

T = datetime(2024, 5, 6, 3, 0, 0, tzinfo=UTC)
DATA = b"dump bytes"


def agent(tmp_path) -> Agent:
    config = AgentConfig("p", "app", "db", "app", "0 3 * * *", 1, 0, 0, 0, 1.0, dumps=str(tmp_path))
    return Agent(config, Folder(tmp_path), "", "")


def dump(a: Agent, created: datetime, *, checked: bool = True) -> str:
    name = dumps.new_name(created, a.folder.names())
    meta = dumps.Metadata(
        name, "app", dumps.iso(created), "17", "17", "0.8", len(DATA), hashlib.sha256(DATA).hexdigest(), 0.1
    )
    (a.folder.path / f".{name}.dump.partial").write_bytes(DATA)
    a.folder.publish(name, meta)
    if checked:
        a.folder.record(name, dumps.check(created, "read", True, identity(a.folder.file(name, "dump"))))
    return name


def test_a_dump_without_metadata_is_unverified_listed_and_never_pruned(tmp_path):
    a = agent(tmp_path)
    old = dump(a, T - timedelta(days=2))
    orphan = dump(a, T - timedelta(days=1))
    newest = dump(a, T, checked=False)
    (tmp_path / f"{orphan}.json").unlink()
    judged = {j.name: j for j in a.folder.judged(T)}
    j = judged[orphan]
    assert j.state == dumpstate.UNVERIFIED and j.unrecorded and j.usable and not j.good
    assert f"`deployer backup verify {orphan}`" in j.problem and j.database is None
    assert dumpstate.row(j, T)["verified"].startswith("unverified: its metadata file")
    assert health.status(a)["without_metadata"] == [orphan]
    with pytest.raises(BackupError, match="cannot be used yet"):
        checks.recorded(a.folder, orphan, "restore")

    out = prune.prune(a, dry_run=False)  # keep_last = 1: the newest (unverified) and the newest verified
    assert out.deleted == [] and out.keep == {newest: "last", old: "newest verified"}
    (tmp_path / f"{orphan}.dump.sha256").unlink()  # both sidecars gone: still a dump, still listed
    assert {j.name for j in a.folder.judged(T)} == {old, orphan, newest} and a.folder.clean() == []


def test_verify_rebuilds_the_metadata_from_the_archive(tmp_path, monkeypatch):
    a = agent(tmp_path)
    header = {"database": "app", "server_version": "17.6", "client_version": "17.6", "compression": "zstd:3"}
    monkeypatch.setattr(postgres, "read_archive", lambda path: None)
    monkeypatch.setattr(postgres, "archive_header", lambda path: header)
    kept, bare = dump(a, T - timedelta(hours=1)), dump(a, T)
    for name in (kept, bare):
        (tmp_path / f"{name}.json").unlink()
    (tmp_path / f"{bare}.dump.sha256").unlink()

    assert checks.full(a.folder, kept, step="verify")[0] == "sha256 ok"
    assert "sha256 computed" in checks.full(a.folder, bare, step="verify")[0]
    for name in (kept, bare):
        j = a.folder.get(name, datetime.now(UTC))
        assert j.state == dumpstate.VERIFIED and j.database == "app" and j.meta.label == "metadata rebuilt by verify"
        assert j.meta.created_at == j.created and j.meta.sha256 == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / f"{bare}.dump.sha256").read_text() == dumps.sha_line(bare, hashlib.sha256(DATA).hexdigest())


def test_a_rebuilt_dump_that_fails_its_check_is_damaged_not_valid(tmp_path, monkeypatch):
    a = agent(tmp_path)
    monkeypatch.setattr(postgres, "read_archive", lambda path: "unexpected end of file")
    monkeypatch.setattr(postgres, "archive_header", lambda path: {})
    truncated, mismatched = dump(a, T - timedelta(hours=1)), dump(a, T)
    for name in (truncated, mismatched):
        (tmp_path / f"{name}.json").unlink()
    (tmp_path / f"{mismatched}.dump").write_bytes(b"other bytes")

    with pytest.raises(BackupError, match="reading the archive failed: unexpected end of file"):
        checks.full(a.folder, truncated, step="verify")
    with pytest.raises(BackupError, match="sha256 mismatch"):
        checks.full(a.folder, mismatched, step="verify")
    for name in (truncated, mismatched):
        j = a.folder.get(name, datetime.now(UTC))
        assert j.state == dumpstate.DAMAGED and not j.usable and not j.unrecorded
    assert prune.prune(a, dry_run=False, damaged=True).deleted == []  # no verified dump to rely on
