"""Benchmark: point-in-time recovery with pgBackRest (`[backup] pitr = true`), three figures.

    .venv/bin/python bench/pitr.py [--rows 100000] [--rpo-seconds 180] [--pgbench-seconds 30] [--rounds 2]
                                   [--clients 8] [--json bench/results/pitr.json]

Two throwaway projects on this machine's engine, made by `deployer up`: `on` with
`[backup] pitr = true` (WAL archived with pgBackRest, archive_timeout 60 s), `off` without.

1. The cost of archiving in the database's throughput: pgbench (TPC-B like, scale 10, CLIENTS
   clients, inside each database container on its unix socket) on `on` and `off` in turn,
   ROUNDS rounds, the order swapped each round. CLIENTS defaults to 8: past the two cores'
   limit, so archiving competes for them.
2. The RPO under a steady write load: a writer commits a row every 0.2 s into `on` (too little
   to fill a 16 MB segment: the archive timeout switches them) for RPO_SECONDS. Every second,
   what would be lost if the host died then: the time since the newest commit that is already
   in the repository (pg_stat_archiver's last archived segment holds every commit before its
   switch). The figure is the worst sample, and `deployer status --json`'s age at the end.
3. The time to restore ROWS random vector(384) rows (with an HNSW index) in `on`: `deployer
   backup restore DUMP --yes` (the verified dump; it takes a safety dump of the target first)
   against `deployer backup restore --to-time T --yes` (maintenance on, the data volume copied
   to a kept volume, `pgbackrest restore --delta`, WAL replay, promotion, a row count).

Everything is removed at the end (`deployer down --volumes --yes --no-backup`, the dumps and
repository volumes, the kept data volumes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

SEED = """
create table items (id int primary key, title text, embedding vector(384));
insert into items select i, 'item ' || i,
  (select array_agg(random())::vector(384) from generate_series(1, 384) where i > 0) from generate_series(1, {rows}) i;
set maintenance_work_mem = '192MB';
create index items_embedding_hnsw on items using hnsw (embedding vector_l2_ops);
"""


def sh(argv, check: bool = True, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if check and result.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, argv))}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class Project:
    """A throwaway deployment: the edge, the database and the backup agent (no release)."""

    def __init__(self, tag: str, pitr: bool) -> None:
        self.name = f"bpitr-{tag}-{uuid.uuid4().hex[:6]}"
        self.folder = Path(tempfile.mkdtemp(prefix=f"pitr-bench-{tag}-"))
        (self.folder / "db.env").write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=bench-pw\n")
        (self.folder / "db.env").chmod(0o600)
        self.config = self.folder / "deployer.toml"
        self.config.write_text(
            f'[project]\nname = "{self.name}"\nrestart = "no"\n'
            '[services.backend]\nimage = "x-backend"\nport = 8080\nhealth = "/health"\nroutes = ["/"]\n'
            '[edge]\npublic_port = 0\npreview_port = 0\npublic_bind = "127.0.0.1"\n'
            '[database]\nenv_file = "db.env"\n' + ("[backup]\npitr = true\n" if pitr else "")
        )
        self.db = f"{self.name}-infra-db-1"

    def cli(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        return sh([sys.executable, "-m", "deployer", *args, "--config", self.config], check=check)

    def psql(self, sql: str) -> str:
        return sh(["docker", "exec", self.db, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-U", "app", "-d", "app",
                   "-c", sql]).stdout.strip()  # fmt: skip

    def pgbench(self, *args) -> str:
        return sh(["docker", "exec", self.db, "pgbench", "-U", "app", "-h", "/var/run/postgresql", *args, "app"]).stdout

    def remove(self) -> None:
        self.cli("down", "--volumes", "--yes", "--no-backup", check=False)
        volumes = sh(["docker", "volume", "ls", "-q", "--filter", f"name=^{self.name}-"], check=False).stdout.split()
        if volumes:
            sh(["docker", "volume", "rm", "-f", *volumes], check=False)


def tps(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise SystemExit(f"pgbench printed no tps:\n{text}")


def throughput(on: Project, off: Project, *, seconds: int, rounds: int, clients: int) -> dict:
    for p in (on, off):
        p.pgbench("-i", "-q", "-s", "10")
    runs: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(rounds):
        order = [("on", on), ("off", off)] if r % 2 == 0 else [("off", off), ("on", on)]
        for key, p in order:
            value = tps(p.pgbench("-c", str(clients), "-j", "2", "-T", str(seconds), "-n"))
            runs[key].append(value)
            print(f"  pgbench round {r + 1} archiving {key}: {value:.0f} tps", flush=True)
    on.psql("drop table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers")
    on_tps, off_tps = statistics.median(runs["on"]), statistics.median(runs["off"])
    return {"clients": clients, "seconds": seconds, "rounds": rounds, "tps_on": runs["on"], "tps_off": runs["off"],
            "median_on": on_tps, "median_off": off_tps, "ratio": round(on_tps / off_tps, 3)}  # fmt: skip


def rpo(on: Project, *, seconds: int) -> dict:
    on.psql("create table ticks (id bigserial primary key, at timestamptz not null default clock_timestamp())")
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            on.psql("insert into ticks default values")
            time.sleep(0.2)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    samples: list[float] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            # Every commit before the last archived segment's switch is in the repository; a
            # steady writer committed until now, so what a loss now costs is the time since then.
            ago = on.psql("select extract(epoch from clock_timestamp() - last_archived_time) from pg_stat_archiver")
            if ago:
                samples.append(float(ago))
            time.sleep(1)
    finally:
        stop.set()
        thread.join(timeout=10)
    status = json.loads(on.cli("status", "--json").stdout)
    repos = (status.get("pitr") or {}).get("repositories") or []
    return {"seconds": seconds, "samples": len(samples), "worst_s": round(max(samples), 1),
            "median_s": round(statistics.median(samples), 1), "status_age_s": [r.get("age_seconds") for r in repos],
            "rows": int(on.psql("select count(*) from ticks"))}  # fmt: skip


def restore(on: Project, *, rows: int) -> dict:
    load = timed(lambda: on.psql(SEED.format(rows=rows)))
    print(f"  {rows} vector(384) rows and their HNSW index loaded in {load:.1f}s", flush=True)
    dump = on.cli("backup", "now", "--label", "bench").stdout.strip().splitlines()[-1]
    base = timed(lambda: on.cli("backup", "base", "--type", "full"))
    time.sleep(2)
    target = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    time.sleep(2)
    on.psql("drop table items")
    by_dump = timed(lambda: on.cli("backup", "restore", dump, "--yes"))
    assert on.psql("select count(*) from items") == str(rows)
    on.psql("drop table items")
    by_pitr = timed(lambda: on.cli("backup", "restore", "--to-time", target, "--yes"))
    assert on.psql("select count(*) from items") == str(rows)
    on.cli("backup", "restore", "--drop-old", "--yes")
    return {"rows": rows, "load_s": round(load, 1), "base_full_s": round(base, 1), "restore_dump_s": round(by_dump, 1),
            "restore_to_time_s": round(by_pitr, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rpo-seconds", type=int, default=180)
    parser.add_argument("--pgbench-seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    on, off = Project("on", True), Project("off", False)
    result: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        for p in (on, off):
            p.cli("up")
        print("1. pgbench, archiving on and off", flush=True)
        result["throughput"] = throughput(on, off, seconds=args.pgbench_seconds, rounds=args.rounds,
                                          clients=args.clients)  # fmt: skip
        print(json.dumps(result["throughput"]), flush=True)
        off.remove()
        print("2. RPO under a steady write load", flush=True)
        result["rpo"] = rpo(on, seconds=args.rpo_seconds)
        print(json.dumps(result["rpo"]), flush=True)
        print("3. restore time, by dump and to a moment", flush=True)
        result["restore"] = restore(on, rows=args.rows)
        print(json.dumps(result["restore"]), flush=True)
    finally:
        on.remove()
        off.remove()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
