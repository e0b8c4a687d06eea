"""A restore drill: the newest dump restored into a throwaway PostgreSQL inside the backup
container, then checked (every table's rows, pg_amcheck on tables and indexes, pgvector).

The agent has no Docker socket, so the scratch server is a child process of its own: a
cluster initialised in a private folder inside the dumps folder (whose free space is known),
listening on a unix socket in that folder only, with trust auth (no password exists to
leak), fsync off (it is thrown away), stopped and removed whatever happens. A folder left by
a killed drill is removed by the next one (`sweep`). The result goes into the status file,
where `deployer status` shows it; a failed drill is reported like a failed dump (log, status,
webhook).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from deployer.agent import checks, report
from deployer.agent.boot import Agent
from deployer.agent.postgres import tail
from deployer.core import dumps
from deployer.core.sql import TABLE_COUNTS
from deployer.core.steps import Step
from deployer.errors import BackupError

PREFIX = ".drill-"
USER, DATABASE = "drill", "drill"
READY_WAIT = 60  # seconds for the scratch server to accept connections
# The scratch server's settings: small, local, disposable.
SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "64MB",
    "dynamic_shared_memory_type": "mmap",  # the container's /dev/shm is small
    "max_wal_size": "1GB",
}


@dataclass(frozen=True)
class Drill:
    """A restore drill's outcome: the dump restored, and what the checks found."""

    at: str
    dump: str
    ok: bool
    seconds: float
    tables: int = 0
    rows: int = 0
    amcheck: str = ""
    pgvector: str = ""
    error: str = ""


def sweep(folder: Path) -> None:
    """Remove the scratch folders of drills whose agent no longer runs (killed)."""
    for path in folder.glob(f"{PREFIX}*"):
        m = re.match(rf"{re.escape(PREFIX)}([0-9]+)-", path.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            shutil.rmtree(path, ignore_errors=True)


def _run(argv: list[str], env: dict[str, str], step: str, what: str, timeout: float = 6 * 3600) -> str:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)
    if out.returncode != 0:
        raise BackupError(f"{what} failed (exit {out.returncode}): {tail(out.stderr or out.stdout, 600)}", step=step)
    return out.stdout


def _space(agent: Agent, size: int, step: str) -> None:
    """A restored copy takes about three times its compressed dump (tables, indexes, WAL)."""
    needed = 3 * size + (256 << 20)
    free = agent.folder.free_bytes()
    if free < needed:
        raise BackupError(
            f"not enough free space in the dumps folder for a restore drill: {dumps.human_size(free)} free, needs "
            f"about {dumps.human_size(needed)} (three times the dump, plus a margin)",
            step=step,
        )


def drill(agent: Agent, *, step: str = Step.DRILL, say=lambda message: None) -> Drill:
    """Restore the newest usable dump of the configured database and check it; raises
    BackupError when it fails (after recording the failed drill)."""
    started, at = time.monotonic(), dumps.iso(datetime.now(UTC))
    name = ""
    try:
        name = checks.newest(agent.folder, agent.config.database)
        j = checks.usable(agent.folder, name, step)
        problem = checks.sha_problem(agent.folder, j, step)
        if problem:
            checks.rehash(agent.folder, j, step=step, record=True)
            raise BackupError(f"{name} is damaged: {problem}", step=step)
        _space(agent, j.dump.size if j.dump else 0, step)
        say(f"{name}: sha256 ok; restoring it into a scratch server")
        result = Drill(at=at, dump=name, ok=True, seconds=0, **_restore_and_check(agent, name, step))
    except BackupError as exc:
        done = Drill(at=at, dump=name, ok=False, seconds=round(time.monotonic() - started, 1), error=str(exc)[-1000:])
        report.update_status(agent.folder, last_drill=asdict(done))
        exc.step = step  # "no dump yet" and a damaged dump are the drill's failures, reported as such
        raise
    done = Drill(**{**asdict(result), "seconds": round(time.monotonic() - started, 1)})
    report.update_status(agent.folder, last_drill=asdict(done))
    say(
        f"drill of {name}: ok in {done.seconds:.1f} s: {done.tables} tables, {done.rows} rows, "
        f"pg_amcheck {done.amcheck}, pgvector {done.pgvector}"
    )
    return done


def _restore_and_check(agent: Agent, name: str, step: str) -> dict:
    sweep(agent.folder.path)
    work = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=agent.folder.path))
    data, socket = work / "data", str(work)
    env = {
        "PATH": os.environ.get("PATH", "/usr/lib/postgresql/17/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": "/nonexistent",
        "PGHOST": socket,
        "PGUSER": USER,
        "PGAPPNAME": "deployer-drill",
    }
    server = None
    try:
        _run(["initdb", "-D", str(data), "-U", USER, "--auth=trust", "--no-sync", "-E", "UTF8"], env, step, "initdb")
        argv = ["postgres", "-D", str(data), "-k", socket]
        for key, value in SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        with open(work / "server.log", "wb") as log:
            server = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        _wait_ready(server, env, work, step)
        _run(["createdb", DATABASE], env, step, "createdb")
        path = agent.folder.file(name, "dump")
        restore = ["pg_restore", "-d", DATABASE, "--no-owner", "--no-privileges", "--exit-on-error"]
        _run([*restore, "--single-transaction", str(path)], env, step, f"restoring {name}")
        psql = ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", DATABASE, "-c"]
        counts = [line.rsplit("|", 1) for line in _run([*psql, TABLE_COUNTS], env, step, "counting rows").splitlines()]
        rows = sum(int(c) for _, c in counts if c.strip().isdigit())
        # every table's heap and every B-tree index, each index entry found in its table
        _run(["pg_amcheck", "--install-missing", "--heapallindexed", "-d", DATABASE], env, step, "pg_amcheck")
        vector = _run([*psql, "select extversion from pg_extension where extname = 'vector'"], env, step, "pgvector")
        return {"tables": len(counts), "rows": rows, "amcheck": "clean", "pgvector": vector.strip() or "not installed"}
    finally:
        if server is not None:
            _stop(server)
        shutil.rmtree(work, ignore_errors=True)


def _wait_ready(server: subprocess.Popen, env: dict[str, str], work: Path, step: str) -> None:
    # PostgreSQL says nothing when it starts to accept connections: pg_isready is asked, a
    # bounded number of times (the agent's image has only the standard library: no tenacity).
    until = time.monotonic() + READY_WAIT
    while time.monotonic() < until:
        if server.poll() is not None:
            said = (work / "server.log").read_text(errors="replace")
            raise BackupError(f"the drill's scratch server stopped: {tail(said, 400)}", step=step)
        if subprocess.run(["pg_isready", "-q"], env=env, stdin=subprocess.DEVNULL).returncode == 0:
            return
        time.sleep(0.2)
    raise BackupError(f"the drill's scratch server was not ready after {READY_WAIT} s", step=step)


def _stop(server: subprocess.Popen) -> None:
    """Fast shutdown (SIGINT), then SIGKILL if it lingers: the cluster is thrown away."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
