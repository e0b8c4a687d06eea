"""PostgreSQL's client programs (17, which read every older server), run against the
database over the data network as the database's own user.

The password reaches them only through a PGPASSFILE, 0600 in a private temporary
folder that lives as long as one command (`with Postgres(...) as pg:`); it is never in
an argv, an environment variable or a message. A folder left by a killed agent is
removed by the next one (`sweep`). SQL goes on stdin, values as psql variables.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from deployer.core import dumps, names
from deployer.core.agentconfig import AgentConfig
from deployer.core.sql import TABLE_COUNTS, passfile_field
from deployer.errors import BackupError

PREFIX = "deployer-pg-"
CHUNK = 1 << 20

VERSIONS = """
select current_setting('server_version') || '|' ||
  coalesce((select extversion from pg_extension where extname = 'vector'), 'none')
"""
# The server, and pgvector: its installed version, else whether the server can install it.
SERVER = """
select current_setting('server_version') || '|' ||
  coalesce((select extversion from pg_extension where extname = 'vector'),
           (select 'available ' || default_version from pg_available_extensions where name = 'vector'), 'none')
"""
EXISTS = "select count(*) from pg_database where datname = :'target'"
CREATE = 'create database :"target"'


def sweep() -> None:
    """Remove password folders of agents that no longer run (killed with SIGKILL)."""
    tmp = Path(tempfile.gettempdir())
    for path in tmp.glob(f"{PREFIX}*"):
        m = re.match(rf"{PREFIX}([0-9]+)-", path.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            shutil.rmtree(path, ignore_errors=True)


def tail(stderr: str, limit: int = 800) -> str:
    text = re.sub(r"(?m)^(pg_dump|pg_restore|psql|createdb): (error|detail|hint): ", "", stderr.strip())
    return text[-limit:] if text else "no message"


class Postgres:
    def __init__(self, config: AgentConfig, password: str) -> None:
        self.config = config
        self.password = password
        self._tmp: str | None = None
        self.env: dict[str, str] = {}

    def __enter__(self) -> Postgres:
        sweep()
        self._tmp = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
        passfile = os.path.join(self._tmp, "pgpass")
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"*:*:*:{passfile_field(self.config.db_user)}:{passfile_field(self.password)}\n")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/lib/postgresql/17/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": "/nonexistent",
            "PGHOST": self.config.db_host,
            "PGPORT": str(self.config.db_port),
            "PGUSER": self.config.db_user,
            "PGPASSFILE": passfile,
            "PGCONNECT_TIMEOUT": "10",
            "PGAPPNAME": "deployer-backup",
            **({"PGSSLMODE": self.config.db_sslmode} if self.config.db_sslmode else {}),
        }
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @property
    def where(self) -> str:
        return f"{self.config.db_host}:{self.config.db_port}"

    def _unreachable(self, stderr: str) -> str | None:
        if re.search(r"could not translate host name|Connection refused|timeout expired|No route to host", stderr):
            if self.config.external:
                return f"the external database at {self.where} does not answer: {tail(stderr, 300)}"
            container = names.infra_container(self.config.project, "db")
            return f"the database at {self.where} does not answer (is {container} running?): {tail(stderr, 300)}"
        return None

    # -- queries ------------------------------------------------------------------------
    def psql(self, sql: str, database: str, *, step: str, target: str = "") -> str:
        argv = ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", "-d", database, "-f", "-"]
        if target:
            argv[1:1] = ["-v", f"target={target}"]
        out = subprocess.run(argv, input=sql, capture_output=True, text=True, env=self.env, timeout=3600)
        if out.returncode != 0:
            raise BackupError(
                self._unreachable(out.stderr) or f"query on {database} failed: {tail(out.stderr)}", step=step
            )
        return out.stdout

    def versions(self, database: str, *, step: str) -> tuple[str, str, str]:
        """(server version, pg_dump version, pgvector version); refuses a server newer than pg_dump."""
        server, _, vector = self.psql(VERSIONS, database, step=step).strip().partition("|")
        client = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, env=self.env).stdout
        client = re.sub(r"^pg_dump \(PostgreSQL\) ", "", client.strip())
        if dumps.major(server) > dumps.major(client):
            raise BackupError(
                f"pg_dump {client} cannot dump the newer server {server}: update the agent image", step=step
            )
        return server.split(" ")[0], client.split(" ")[0], vector or "none"

    def server(self, database: str, *, step: str) -> dict[str, str]:
        """Where the database is, its server's version and pgvector's state, for `status` and
        the release's preflight (an external database: flows/dbguard.py)."""
        version, _, vector = self.psql(SERVER, database, step=step).strip().partition("|")
        return {
            "where": f"{self.where}/{database}",
            "host": self.config.db_host,
            "port": str(self.config.db_port),
            "sslmode": self.config.db_sslmode,
            "server": version.split(" ")[0],
            "pgvector": vector,
        }

    def exists(self, database: str, *, step: str) -> bool:
        return self.psql(EXISTS, "postgres", step=step, target=database).strip() == "1"

    def create(self, database: str, *, step: str) -> None:
        self.psql(CREATE, "postgres", step=step, target=database)

    def table_counts(self, database: str, *, step: str) -> list[tuple[str, int]]:
        rows = []
        for line in self.psql(TABLE_COUNTS, database, step=step).splitlines():
            if "|" in line:
                table, count = line.rsplit("|", 1)
                rows.append((table, int(count)))
        return rows

    # -- dump and restore ---------------------------------------------------------------
    def dump(
        self, database: str, out: BinaryIO, *, lock_wait: int, on_chunk: Callable[[bytes], None], step: str
    ) -> None:
        """Stream pg_dump's archive into `out`; pg_dump is killed if anything goes wrong here."""
        argv = [
            "pg_dump",
            "--format=custom",
            f"--compress={dumps.COMPRESSION}",
            f"--lock-wait-timeout={lock_wait}s",
            "--no-password",
            "--dbname",
            database,
        ]
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, env=self.env)
            try:
                assert proc.stdout is not None
                fd = proc.stdout.fileno()
                while chunk := os.read(fd, CHUNK):
                    out.write(chunk)
                    on_chunk(chunk)
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            errors.seek(0)
            stderr = errors.read()[-4000:].decode(errors="replace")
        if code != 0:
            if re.search(r"could not obtain lock|statement timeout[\s\S]*LOCK TABLE", stderr):
                raise BackupError(
                    f"pg_dump of {database} waited {lock_wait}s for a table lock held by another session and gave up "
                    f"(a migration or a long transaction?): {tail(stderr, 300)}",
                    step=step,
                )
            raise BackupError(
                self._unreachable(stderr) or f"pg_dump of {database} failed (exit {code}): {tail(stderr)}", step=step
            )

    def restore(
        self, path: Path, database: str, *, memory: str, step: str, progress=lambda done, total=None: None
    ) -> None:
        """All or nothing: one transaction, stop at the first error; read from the file as it is.
        `progress(bytes read, the dump's size)`: pg_restore's offset in the dump, from /proc."""
        argv = [
            "pg_restore",
            "--dbname",
            database,
            "--single-transaction",
            "--exit-on-error",
            "--clean",
            "--if-exists",
            "--no-password",
            str(path),
        ]
        env = {**self.env, "PGOPTIONS": f"-c maintenance_work_mem={memory}"}
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, env=env)
            size = path.stat().st_size
            while proc.poll() is None:
                progress(_offset(proc.pid, path), size)
                try:
                    proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
            errors.seek(0)
            stderr = errors.read()[-8000:].decode(errors="replace")
        if proc.returncode != 0:
            raise BackupError(
                self._unreachable(stderr)
                or f"pg_restore into {database} failed and was rolled back (exit {proc.returncode}): {tail(stderr, 1200)}",
                step=step,
            )


def _offset(pid: int, path: Path) -> int:
    """How far process `pid` has read the file `path` (its descriptor's position; 0 when
    /proc does not say)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        for fd in fds.iterdir():
            if os.readlink(fd) == str(path):
                for line in (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text().splitlines():
                    if line.startswith("pos:"):
                        return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def read_archive(path: Path) -> str | None:
    """Read every block of a custom-format archive (no server needed): None when it all
    reads, else why not. `--list` alone would read only the table of contents."""
    out = subprocess.run(
        ["pg_restore", "--exit-on-error", "-f", "/dev/null", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    return None if out.returncode == 0 else tail(out.stderr, 600)


HEADER = {
    "database": r"dbname: (\S+)",
    "server_version": r"Dumped from database version: (\S+)",
    "client_version": r"Dumped by pg_dump version: (\S+)",
    "compression": r"Compression: (\S+)",
}


def archive_header(path: Path) -> dict[str, str]:
    """What an archive says of itself (`pg_restore --list`, its table of contents): the
    database, the server and pg_dump versions, the compression. {} when it cannot be read."""
    out = subprocess.run(["pg_restore", "--list", str(path)], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if out.returncode != 0:
        return {}
    head = "\n".join(line for line in out.stdout.splitlines()[:30] if line.startswith(";"))
    found = {key: re.search(rf"(?m)^;\s+{pattern}", head) for key, pattern in HEADER.items()}
    return {key: m.group(1) for key, m in found.items() if m}
