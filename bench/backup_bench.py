"""Benchmark: `deployer backup now/verify/fetch/restore` against raw pg_dump/pg_restore on the same data.

    .venv/bin/python bench/backup_bench.py [--rows 100000]

Creates a throwaway project (`deployer up`), loads ROWS random vector(384) rows with an HNSW
index, then times (once each, wall clock, in this order):
  raw    docker exec db pg_dump -Fc -Z zstd:3 > file      (inside the db container, local socket)
  ours   deployer backup now --no-verify       (the backup agent: pg_dump over the data network)
         deployer backup now                    (with its full check: sha256 + every data block)
         deployer backup verify NAME            (the full check alone, streamed from the dumps folder)
         deployer backup fetch NAME             (to this machine, sha256 checked)
  raw    docker exec -i db pg_restore --single-transaction --exit-on-error < file   (same PGOPTIONS as ours)
  ours   deployer backup restore NAME --database new --yes
  raw    the same pg_restore with the server default maintenance_work_mem (64MB)
Everything is removed at the end (`deployer down --volumes --yes --no-backup`, and the dumps volume).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SEED = """
create table items (id int primary key, title text, embedding vector(384));
insert into items select i, 'item ' || i,
  (select array_agg(random())::vector(384) from generate_series(1, 384) where i > 0) from generate_series(1, {rows}) i;
"""
INDEX = (
    "set maintenance_work_mem = '192MB'; "
    "create index items_embedding_hnsw on items using hnsw (embedding vector_l2_ops)"
)


def sh(argv, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("stdout", subprocess.PIPE)
    result = subprocess.run(argv, stderr=subprocess.PIPE, text=kw.pop("text", True), **kw)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, argv))}\n{result.stderr}")
    return result


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    rows = parser.parse_args().rows
    name = f"bench-{uuid.uuid4().hex[:6]}"
    folder = Path(tempfile.mkdtemp(prefix="backup-bench-"))
    (folder / "db.env").write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=bench-pw\n")
    (folder / "db.env").chmod(0o600)
    config = folder / "deployer.toml"
    config.write_text(
        f'[project]\nname = "{name}"\nrestart = "no"\n'
        '[services.backend]\nimage = "x-backend"\nport = 8080\nhealth = "/health"\nroutes = ["/"]\n'
        '[services.frontend]\nimage = "x-frontend"\nport = 8081\nhealth = "/health"\n'
        '[edge]\npublic_port = 0\npreview_port = 0\npublic_bind = "127.0.0.1"\n'
        '[database]\nenv_file = "db.env"\n'
    )
    cli = [sys.executable, "-m", "deployer"]
    db = f"{name}-infra-db-1"
    psql = ["docker", "exec", db, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-U", "app", "-d", "app", "-c"]
    try:
        sh([*cli, "up", "--config", config])
        seed = timed(lambda: sh([*psql, SEED.format(rows=rows)]))
        index = timed(lambda: sh([*psql, INDEX]))
        print(f"rows {rows}: load {seed:.1f}s, HNSW build {index:.1f}s (maintenance_work_mem=192MB)", flush=True)
        raw_file = folder / "raw.dump"
        with raw_file.open("wb") as fh:
            raw_dump = timed(
                lambda: sh(
                    ["docker", "exec", db, "pg_dump", "-U", "app", "-d", "app", "-Fc", "-Z", "zstd:3"],
                    stdout=fh,
                    text=False,
                )
            )
        ours_dump = timed(lambda: sh([*cli, "backup", "now", "--no-verify", "--label", "bench", "--config", config]))
        ours_verified = timed(lambda: sh([*cli, "backup", "now", "--label", "bench verified", "--config", config]))
        dumps = json.loads(sh([*cli, "backup", "list", "--json", "--config", config]).stdout)
        name_ours = dumps[0]["name"]
        size_mb = dumps[0]["size"] / 1e6
        verify = timed(lambda: sh([*cli, "backup", "verify", name_ours, "--config", config]))
        fetch = timed(lambda: sh([*cli, "backup", "fetch", name_ours, "--output", folder, "--config", config]))
        mem = "192MB"  # what `backup restore` picks for the db container's 256 MB /dev/shm

        def raw_restore(target: str, options: str | None) -> float:
            sh(["docker", "exec", db, "createdb", "-U", "app", target])
            env = ["-e", f"PGOPTIONS={options}"] if options else []
            with raw_file.open("rb") as fh:
                return timed(
                    lambda: sh(
                        [
                            "docker",
                            "exec",
                            "-i",
                            *env,
                            db,
                            "pg_restore",
                            "-U",
                            "app",
                            "-d",
                            target,
                            "--single-transaction",
                            "--exit-on-error",
                        ],
                        stdin=fh,
                        text=False,
                    )
                )

        raw_restore_s = raw_restore("raw_same_mem", f"-c maintenance_work_mem={mem}")
        ours_restore = timed(
            lambda: sh([*cli, "backup", "restore", name_ours, "--database", "ours", "--yes", "--config", config])
        )
        raw_default_mem = raw_restore("raw_default_mem", None)
        print(f"dump size {size_mb:.1f} MB (zstd:3), raw {raw_file.stat().st_size / 1e6:.1f} MB")
        print(
            f"dump:    raw pg_dump {raw_dump:.2f}s ({size_mb / raw_dump:.1f} MB/s) | deployer backup now --no-verify "
            f"{ours_dump:.2f}s ({size_mb / ours_dump:.1f} MB/s) | ratio {ours_dump / raw_dump:.3f}"
        )
        print(
            f"         deployer backup now (with read-back verify) {ours_verified:.2f}s | ratio {ours_verified / raw_dump:.3f}"
        )
        print(
            f"verify:  deployer backup verify {verify:.2f}s ({size_mb / verify:.1f} MB/s) | "
            f"fetch: deployer backup fetch {fetch:.2f}s ({size_mb / fetch:.1f} MB/s)"
        )
        print(
            f"restore: raw pg_restore {raw_restore_s:.2f}s ({size_mb / raw_restore_s:.1f} MB/s) | deployer backup restore "
            f"{ours_restore:.2f}s ({size_mb / ours_restore:.1f} MB/s) | ratio {ours_restore / raw_restore_s:.3f}"
        )
        print(
            f"HNSW rebuild effect: raw pg_restore with maintenance_work_mem={mem} {raw_restore_s:.2f}s vs "
            f"default 64MB {raw_default_mem:.2f}s"
        )
    finally:
        subprocess.run([*cli, "down", "--volumes", "--yes", "--no-backup", "--config", config], capture_output=True)
        subprocess.run(["docker", "volume", "rm", f"{name}-dumps"], capture_output=True)


if __name__ == "__main__":
    main()
