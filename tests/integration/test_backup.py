"""Dumps of a real pgvector database through the real CLI: take, list, verify, restore, failures."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from backup_data import FINGERPRINT, HNSW, TOP10, psql, seed

pytestmark = pytest.mark.docker
SECRET = "test-secret-pw"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    s = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("backup"), docker_client, test_app_image)
    try:
        s.ok("up")
        seed(_db(s))
        yield s
    finally:
        s.destroy()


def _db(stack):
    return stack.docker.containers.get(f"{stack.name}-infra-db-1")


def _dumps(stack) -> list[dict]:
    return json.loads(stack.ok("backup", "list", "--json").stdout)


def _take(stack, *args: str) -> str:
    return stack.ok("backup", "now", *args).stdout.strip().splitlines()[-1]


def test_dump_is_listed_verified_with_metadata_and_shown_in_status(stack):
    result = stack.ok("backup", "now", "--label", "first one")
    name = result.stdout.strip().splitlines()[-1]
    folder = stack.folder / "backups"
    assert {p.name for p in folder.glob(f"{name}*")} == {f"{name}.dump", f"{name}.dump.sha256", f"{name}.json"}
    assert not list(folder.glob(".*partial"))
    meta = json.loads((folder / f"{name}.json").read_text())
    assert meta["server_version"].split(".")[0] == meta["client_version"].split(".")[0] == "17"
    assert meta["compression"] == "zstd:3" and meta["pgvector_version"].startswith("0.")
    assert meta["label"] == "first one" and meta["size"] == (folder / f"{name}.dump").stat().st_size
    row = next(d for d in _dumps(stack) if d["name"] == name)
    assert row["ok"] and row["verified"] == "verified (read)"
    status = json.loads(stack.ok("status", "--json").stdout)
    assert status["backup"]["name"] == name
    for text in (result.stdout, result.stderr, (folder / f"{name}.json").read_text()):
        assert SECRET not in text


def test_restore_into_a_fresh_container_keeps_every_vector_index_and_neighbours(stack):
    from deployer import config as config_mod
    from deployer.backup import naming, restore, scratch

    name = _take(stack, "--label", "roundtrip")
    cfg = config_mod.load(stack.config)
    source = (psql(_db(stack), FINGERPRINT), psql(_db(stack), TOP10))
    with scratch.server(cfg, step="test") as fresh:
        container = stack.docker.containers.get(fresh)
        assert container.attrs["HostConfig"]["NetworkMode"] == "none"
        restore.load(fresh, naming.dump_file(stack.folder / "backups", name), "copy", create=True, portable=True, step="t")
        assert psql(container, FINGERPRINT, db="copy", user="scratch") == source[0]
        assert source[0].startswith("3000:")
        assert psql(container, HNSW, db="copy", user="scratch") == "1"
        assert psql(container, TOP10, db="copy", user="scratch") == source[1]
    assert fresh not in [c.name for c in stack.docker.containers.list(all=True)]
    checked = stack.ok("backup", "verify", name, "--restore").stdout
    assert "public.items: 3000 rows" in checked and "nearest-neighbour query ok (10 rows)" in checked
    assert next(d for d in _dumps(stack) if d["name"] == name)["verified"] == "verified (restore)"


def test_restore_refuses_without_yes_then_restores_with_a_safety_dump(stack):
    name = _take(stack, "--label", "before delete")
    before = psql(_db(stack), FINGERPRINT)
    count = len(_dumps(stack))
    refused = stack.cli("backup", "restore", name)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert len(_dumps(stack)) == count
    psql(_db(stack), "delete from items where id > 100")
    done = stack.ok("backup", "restore", name, "--yes")
    assert "public.items\t3000" in done.stdout
    assert psql(_db(stack), FINGERPRINT) == before and psql(_db(stack), HNSW) == "1"
    safety = [d for d in _dumps(stack) if d["label"].startswith("pre-restore safety")]
    assert len(safety) == 1 and safety[0]["ok"]
    copy = stack.ok("backup", "restore", name, "--database", "scratch_copy", "--yes")
    assert "public.items\t3000" in copy.stdout
    assert psql(_db(stack), FINGERPRINT, db="scratch_copy") == before


def test_killed_pg_dump_leaves_no_dump(stack):
    psql(_db(stack), "create table bulk as select i, (select array_agg(random())::vector(384) "
                   "from generate_series(1, 384) where i > 0) v from generate_series(1, 60000) i")
    try:
        names = {d["name"] for d in _dumps(stack)}
        folder = stack.folder / "backups"
        proc = stack.popen("backup", "now", "--label", "doomed")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partial = list(folder.glob(".*.partial"))
            if partial and partial[0].stat().st_size > 2_000_000:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the dump never got going")
        kill = "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = pg_dump ] && kill -9 ${p#/proc/}; done; true"
        _db(stack).exec_run(["sh", "-c", kill])
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "pg_dump" in err and "step 'backup'" in err
        assert not list(folder.glob(".*.partial"))
        assert {d["name"] for d in _dumps(stack)} == names
        assert {p.name.split(".")[0] for p in folder.glob("dump-*")} == names
    finally:
        psql(_db(stack), "drop table bulk")


def test_corrupt_data_fails_verify_although_the_table_of_contents_reads(stack):
    name = _take(stack, "--label", "to corrupt")
    folder = stack.folder / "backups"
    dump = folder / f"{name}.dump"
    data = dump.read_bytes()
    dump.write_bytes(data[: int(len(data) * 0.6)])
    failed = stack.cli("backup", "verify", name)
    assert failed.returncode == 1 and "sha256 mismatch" in failed.stderr
    # Forge the checksum too: only reading the data blocks can still catch it.
    from deployer.backup import naming
    from deployer.backup.verify import file_sha256

    digest = file_sha256(dump)
    (folder / f"{name}.dump.sha256").write_text(naming.sha_line(name, digest))
    meta = json.loads((folder / f"{name}.json").read_text())
    (folder / f"{name}.json").write_text(json.dumps({**meta, "sha256": digest}))
    failed = stack.cli("backup", "verify", name)
    assert failed.returncode == 1 and "reading the archive failed" in failed.stderr, failed.stderr
    _db(stack).put_archive("/tmp", _tar(dump, "c.dump"))
    code, out = _db(stack).exec_run(["pg_restore", "--list", "/tmp/c.dump"])
    assert code == 0 and b"TABLE DATA public items" in out
    assert next(d for d in _dumps(stack) if d["name"] == name)["verified"].startswith("FAILED")
    dump.unlink()


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_release_with_a_failing_dump_changes_nothing_and_calls_the_webhook(stack):
    stack.tag("v1")
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    stack.write_config(extra=f'webhook = "http://127.0.0.1:{hook.server_port}/hook"\nwebhook_timeout = 2\n')
    _db(stack).stop(timeout=10)
    try:
        names = {d["name"] for d in _dumps(stack)}
        result = stack.cli("release", "v1")
        assert result.returncode == 1
        assert "step 'backup'" in result.stderr and "not running" in result.stderr
        assert stack.containers("blue") == [] and stack.containers("green") == []
        assert {d["name"] for d in _dumps(stack)} == names
        assert stack.edge_file("/var/lib/deployer/history.jsonl").strip() == ""
        assert len(_Hook.received) == 1
        report = _Hook.received[0]
        assert report["event"] == "backup_failed" and report["step"] == "backup"
        assert report["project"] == stack.name and "not running" in report["error"]
        assert SECRET not in json.dumps(report)
    finally:
        hook.shutdown()
        stack.write_config()
        _db(stack).start()


def _tar(path: Path, name: str) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(path, arcname=name)
    return buf.getvalue()
