"""Helpers for the backup tests: seed pgvector data, query a db container with psql, and
reach into the dumps folder the way damage does."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

SEED = """
create table items (id int primary key, title text, embedding vector(384));
insert into items
  select i, 'item ' || i, (select array_agg(random())::vector(384) from generate_series(1, 384) where i > 0)
  from generate_series(1, {rows}) i;
create index items_embedding_hnsw on items using hnsw (embedding vector_l2_ops);
"""
# about `mb` MB of random bytes: a dump that size (zstd cannot shrink them)
BULK = """
create extension if not exists pgcrypto;
create table bulk as select i, gen_random_bytes(1024) as b from generate_series(1, {mb} * 1024) i;
"""
FINGERPRINT = "select count(*) || ':' || md5(string_agg(vector_send(embedding), ''::bytea order by id)) from items"
TOP10 = (
    "set hnsw.ef_search = 100; "
    "select string_agg(id::text, ',' order by d, id) from "
    "(select id, embedding <-> (select embedding from items where id = 42) as d from items order by 2 limit 10) s"
)
HNSW = "select count(*) from pg_indexes where tablename = 'items' and indexdef ilike '%using hnsw%'"
AGENT = ["python3", "-m", "deployer.agent"]
# run in the backup container as uid 10001: SIGKILL every process running `<argv...>`
KILL = """
import os, sys
want = [a.encode() for a in sys.argv[1:]]
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{p}/cmdline", "rb").read().split(b"\\0")
    except OSError:
        continue
    if int(p) != os.getpid() and any(argv[i : i + len(want)] == want for i in range(len(argv))):
        os.kill(int(p), 9)
"""


def tmpfs(path: Path, mb: int) -> Path:
    """A new folder with a small tmpfs mounted on it (the tests run as root, on the engine's
    own host); `umount -l` it afterwards."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m,mode=0755", "tmpfs", str(path)], check=True)
    return path


def edge_gateway(docker_client, project: str) -> str:
    """Create the project's edge network before `up` does, and return its gateway: this
    machine's address on it, which the backup agent (on that network) and the CLI both reach."""
    network = docker_client.networks.create(f"{project}-edge", driver="bridge", labels={"deployer.project": project})
    return network.attrs["IPAM"]["Config"][0]["Gateway"]


def kill(container, *argv: str) -> None:
    code, out = container.exec_run(["python3", "-c", KILL, *argv], user="10001")
    assert code == 0, out.decode()


def psql(container, sql: str, db: str | None = None, user: str | None = None) -> str:
    env = {"Q": sql}
    target = f'"{db}"' if db else '"$POSTGRES_DB"'
    who = f'"{user}"' if user else '"$POSTGRES_USER"'
    code, out = container.exec_run(
        ["sh", "-c", f'psql -XAtq -v ON_ERROR_STOP=1 -U {who} -d {target} -c "$Q"'], environment=env
    )
    assert code == 0, out.decode()
    return out.decode().strip().splitlines()[-1] if out.strip() else ""


def seed(container, rows: int = 3000) -> None:
    psql(container, SEED.format(rows=rows))


def hold_lock(container, table: str) -> None:
    """Hold an ACCESS EXCLUSIVE lock on a table from another session until release_locks()."""
    sql = f"begin; lock table {table} in access exclusive mode; select pg_sleep(600); commit;"
    container.exec_run(["sh", "-c", f'psql -XAtq -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "{sql}"'], detach=True)
    wait(
        lambda: psql(
            container,
            f"select count(*) from pg_locks where relation = '{table}'::regclass and mode = 'AccessExclusiveLock'",
        )
        == "1",
        20,
        "the lock",
    )


def release_locks(container) -> None:
    psql(
        container,
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where query like '%pg_sleep(600)%' and pid <> pg_backend_pid()",
    )


def wait(predicate, seconds: float, what: str, every: float = 0.2):
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_byte(path: Path, at: float = 0.5) -> None:
    with path.open("r+b") as fh:
        fh.seek(int(path.stat().st_size * at))
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x01]))


def forge_last_check(folder: Path, name: str) -> None:
    """Make the last recorded check match the file as it is now: what bit rot looks like to
    every cheap check (size, mtime and ctime unchanged since the last full check)."""
    meta_path = folder / f"{name}.json"
    meta = json.loads(meta_path.read_text())
    st = (folder / f"{name}.dump").stat()
    meta["checks"][-1].update(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns)
    meta_path.write_text(json.dumps(meta))
