"""Point-in-time recovery with pgBackRest through the real CLI: rows written continuously, a
moment T noted, a table dropped, and the database restored to T (in a scratch copy first,
then in place); bad input refused with exit 2 and nothing changed.

One stack for the module, with `[backup] pitr = true`: `up` makes the stanza and the first
full backup.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from backup_data import psql
from hosts import RemoteHost

from deployer.core import pitr

pytestmark = pytest.mark.docker
PITR = "\n[backup]\npitr = true\npitr_full_keep = 1\n"
SFTP = """
[backup.sftp]
host = "{host}"
user = "root"
path = "/srv/pgbackrest"
key_file = "sftp_key"
known_hosts = "sftp_known_hosts"
"""
WRITER = (
    "do $$ begin for i in 1..{n} loop insert into ticks default values; commit; perform pg_sleep(0.02); "
    "end loop; end $$"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    """A stack with two pgBackRest repositories: the volume on this host, and an SFTP one on
    the dind+sshd test host, reached over the stack's network out (made here before `up`)."""
    from stack import Stack

    s = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("pitr"), docker_client, test_app_image)
    host = None
    try:
        docker_client.networks.create(f"{s.name}-backup-out", driver="bridge", labels={"deployer.project": s.name})
        host = RemoteHost(network=f"{s.name}-backup-out", network_aliases=[f"{s.name}-sftp"]).start()
        key = s.folder / "sftp_key"
        key.write_bytes(host.identity_file.read_bytes())
        key.chmod(0o600)
        public = host.container.exec_run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).output.decode().split()
        known = s.folder / "sftp_known_hosts"
        known.write_text(f"{s.name}-sftp {public[0]} {public[1]}\n")
        known.chmod(0o600)
        s.write_config(extra=PITR + SFTP.format(host=f"{s.name}-sftp"))
        up = s.ok("up")
        assert "first full backup" in up.stdout + up.stderr and "in repository 2" in up.stdout + up.stderr
        s.sftp = host
        yield s
    finally:
        if host is not None:
            host.remove()
        s.destroy()


def _db(stack):
    return stack.docker.containers.get(f"{stack.name}-infra-db-1")


def _ticks(container) -> list[tuple[int, float]]:
    out = psql(container, "select string_agg(id || ':' || extract(epoch from at), ',' order by id) from ticks")
    return [(int(i), float(t)) for i, t in (p.split(":") for p in out.split(",") if p)]


@pytest.fixture(scope="module")
def moment(stack):
    """Rows written continuously (one commit every ~20 ms); T noted in the middle; the
    writer ends; the table is dropped. Returns (T text, T epoch, every row the table had)."""
    db = _db(stack)
    psql(db, "create table ticks (id bigserial primary key, at timestamptz not null default clock_timestamp())")
    writer = ["sh", "-c", 'psql -XAtq -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "$Q"']
    db.exec_run(writer, environment={"Q": WRITER.format(n=150)}, detach=True)
    time.sleep(1.6)
    text = psql(db, "select to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS')")
    epoch = float(psql(db, f"select extract(epoch from timestamptz '{text}+00')"))
    deadline = time.monotonic() + 30
    while psql(db, "select count(*) from pg_stat_activity where query like 'do $$%'") != "0":
        assert time.monotonic() < deadline, "the writer did not end"
        time.sleep(0.2)
    rows = _ticks(db)
    assert any(at > epoch for _, at in rows) and any(at < epoch for _, at in rows)
    psql(db, "drop table ticks")
    return text, epoch, rows


def _expect(restored: list[tuple[int, float]], rows: list[tuple[int, float]], epoch: float) -> None:
    """Every row committed before T is there, none after: a prefix of the ids, cut at T (a row
    stamped within 10 ms before T may have committed after it)."""
    ids = [i for i, _ in restored]
    assert ids == [i for i, _ in rows[: len(ids)]]
    assert all(at <= epoch for _, at in restored)
    assert len(ids) >= len([1 for _, at in rows if at < epoch - 0.01])


def test_a_release_marks_where_it_began_with_a_restore_point(stack):
    stack.tag("v1")
    done = stack.ok("release", "v1", "--no-backup")
    point = (done.stdout + done.stderr).split("restore point ", 1)[1].split()[0]
    assert point.startswith("pre-release-v1-")
    history = stack.ok("status", "--json").stdout
    assert point in history
    shown = json.loads(history)["pitr"]["repositories"]
    assert [(r["repository"], r["kind"], r["behind"]) for r in shown] == [(1, "local", False), (2, "sftp", False)]
    assert all(r["segment"] and r["age_seconds"] < 600 for r in shown)
    text = stack.ok("status").stdout
    assert "WAL in repository 1 (local): 0000" in text and "WAL in repository 2 (sftp): 0000" in text


def _sftp(stack) -> str:
    return SFTP.format(host=f"{stack.name}-sftp")


def test_a_scratch_copy_restored_to_t_shows_the_rows_before_t(stack, moment):
    text, epoch, rows = moment
    done = stack.ok("backup", "restore", "--to-time", text, "--into", "scratch")
    name = done.stdout.split("container ", 1)[1].split()[0]
    try:
        scratch = stack.docker.containers.get(name)
        _expect(_ticks(scratch), rows, epoch)
        assert "public.ticks" in done.stdout
    finally:
        stack.docker.containers.get(name).remove(force=True, v=True)
    assert psql(_db(stack), "select count(*) from pg_tables where tablename = 'ticks'") == "0"  # untouched


def test_restore_to_t_in_place_brings_the_dropped_table_back(stack, moment):
    text, epoch, rows = moment
    done = stack.ok("backup", "restore", "--to-time", text, "--yes")
    kept = done.stdout.split("kept in volume ", 1)[1].split()[0]
    _expect(_ticks(_db(stack)), rows, epoch)
    assert stack.docker.volumes.get(kept)
    psql(_db(stack), "insert into ticks default values")  # promoted: it takes writes
    gone = stack.ok("backup", "restore", "--drop-old", "--yes")
    assert f"removed volume {kept}" in gone.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["--to-time", "2001-01-01 00:00:00", "--yes"], "outside the recoverable window"),
        (["--to-time", "yesterday", "--yes"], "is not a time"),
        (["--to-time", "2001-01-01 00:00:00"], "add --yes"),
        (["--to-time", "2001-01-01 00:00:00", "--into", "elsewhere"], "--into"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(stack, args, words):
    before = _db(stack).attrs["State"]["StartedAt"]
    result = stack.cli("backup", "restore", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert _db(stack).attrs["State"]["StartedAt"] == before


def test_an_unreachable_repository_at_up_exits_2_and_changes_nothing(stack):
    before = _db(stack).attrs["State"]["StartedAt"]
    stack.write_config(extra=PITR + SFTP.format(host="nowhere.invalid"))
    try:
        result = stack.cli("up")
    finally:
        stack.write_config(extra=PITR + SFTP.format(host=f"{stack.name}-sftp"))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip() and not x.startswith("·")]
    assert len(lines) == 1 and "root@nowhere.invalid:22 does not answer" in lines[0], result.stderr
    assert _db(stack).attrs["State"]["StartedAt"] == before


def test_turning_archiving_off_is_refused_by_the_database_guard(stack):
    before = _db(stack).attrs["State"]["StartedAt"]
    stack.write_config()  # no [backup] pitr
    try:
        result = stack.cli("up")
    finally:
        stack.write_config(extra=PITR + SFTP.format(host=f"{stack.name}-sftp"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "WAL archiving with pgBackRest ([backup] pitr) is turned off" in result.stderr
    assert "--recreate-db" in result.stderr
    assert _db(stack).attrs["State"]["StartedAt"] == before


def test_the_sftp_key_is_in_no_inspect_and_no_environment(stack):
    key = (stack.folder / "sftp_key").read_text().strip().splitlines()[1]
    assert key not in json.dumps(_db(stack).attrs)
    env = _db(stack).exec_run(["cat", "/proc/1/environ"]).output.decode(errors="replace")
    assert key not in env
    installed = _db(stack).exec_run(["stat", "-c", "%U %a", "/var/lib/postgresql/.pgbackrest/pgbackrest_sftp_key"])
    assert installed.output.decode().split() == ["postgres", "600"]


def test_the_backup_service_takes_base_backups_on_its_schedule(stack):
    """An incremental backup every minute, into both repositories, through the database
    itself (the first is due once a minute has passed since the module's first `up`). The
    schedule stays on: a backup the CLI asks for waits for a scheduled one."""
    stack.write_config(
        extra=PITR.replace("pitr = true", 'pitr = true\npitr_incr_schedule = "* * * * *"') + _sftp(stack)
    )
    stack.ok("up")  # the backup service is made again with the new settings; the database is not
    deadline = time.monotonic() + 75
    while True:
        code, out = _db(stack).exec_run(["pgbackrest", "info", "--output=json"], user="postgres")
        made = {(b["database"]["repo-key"], b["type"]) for b in json.loads(out)[0]["backup"]} if code == 0 else set()
        if {(1, "incr"), (2, "incr")} <= made:
            break
        assert time.monotonic() < deadline, f"no scheduled incremental backup in both repositories: {made}"
        time.sleep(1)


def test_with_the_data_volume_and_the_local_repository_lost_the_sftp_copy_brings_the_rows_back(stack):
    db = _db(stack)
    psql(db, "create table kept (id int primary key)")
    psql(db, "insert into kept select generate_series(1, 500)")
    time.sleep(1.1)
    moment = psql(db, "select to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS')")
    time.sleep(1.1)
    psql(db, "insert into kept values (501)")  # after the moment: not restored
    expected = psql(db, "select count(*) from ticks")
    stack.ok("backup", "base", "--type", "incr")  # the WAL up to here reaches both repositories
    db.remove(force=True, v=False)
    for volume in (f"{stack.name}-db-data", f"{stack.name}-pgbackrest"):
        stack.docker.volumes.get(volume).remove(force=True)

    done = stack.ok("backup", "restore", "--to-time", moment, "--from", "sftp", "--yes")
    assert "deployer up" in done.stdout
    stack.ok("up")
    db = _db(stack)
    assert psql(db, "select count(*) || ':' || max(id) from kept") == "500:500"
    assert psql(db, "select count(*) from ticks") == expected
    # The restored server's archiver counters start again, and archiving failed while the
    # local repository was being made again: that is no lag yet (a new max_lag from the reset).
    row = psql(db, pitr.ARCHIVER)
    assert row.split("|")[4] and pitr.lag(row, time.time(), 600) == "", row


def test_a_repository_that_falls_behind_is_posted_and_fails_the_backup_services_health(stack):
    """The repository off the host stops taking WAL (its folder moved away): once a finished
    segment has waited longer than max_lag, the backup service POSTs the failure once, turns
    unhealthy and `status` says why; the repository back, archiving catches up and the
    service is healthy again."""
    from backup_data import wait
    from webhook_sink import Sink

    edge = stack.docker.networks.get(f"{stack.name}-edge")  # the backup service reaches this machine there
    sink = Sink(host=edge.attrs["IPAM"]["Config"][0]["Gateway"])
    host, db = stack.sftp.container, _db(stack)
    backup = stack.docker.containers.get(f"{stack.name}-infra-backup-1")

    def health() -> str:
        backup.reload()
        return (backup.attrs["State"].get("Health") or {}).get("Status", "")

    def posted() -> list[dict]:
        return [b for b in list(sink.bodies) if b.get("step") == "archive"]

    try:
        lagging = f'pitr = true\nmax_lag = 10\nwebhook = "{sink.url("/ok/lag")}"\nwebhook_timeout = 2'
        stack.write_config(extra=PITR.replace("pitr = true", lagging) + _sftp(stack))
        stack.ok("up")  # the backup service is made again with the new settings; the database is not
        backup = stack.docker.containers.get(f"{stack.name}-infra-backup-1")
        assert host.exec_run(["mv", "/srv/pgbackrest", "/srv/pgbackrest.away"]).exit_code == 0
        try:
            psql(db, "create table lagging (id int); insert into lagging values (1)")
            psql(db, "select pg_switch_wal()")  # a finished segment, that repository 2 cannot take
            [body] = wait(posted, 60, "a POST about archiving that fell behind")
            assert body["event"] == "backup_failed" and "WAL archiving is behind" in body["error"], body
            wait(lambda: health() == "unhealthy", 30, "the backup service unhealthy")
            shown = " ".join(stack.ok("status").stdout.split())  # as one line: rich folds long ones
            assert "WAL archiving is behind" in shown and "WAL in repository 2 (sftp)" in shown, shown
        finally:
            host.exec_run(["mv", "/srv/pgbackrest.away", "/srv/pgbackrest"])
        psql(db, "insert into lagging values (2)")
        psql(db, "select pg_switch_wal()")  # wakes the archiver, which retries the waiting segments
        wait(lambda: health() == "healthy", 60, "the backup service healthy again once archiving caught up")
        assert len(posted()) == 1, "reported once"
    finally:
        sink.close()
        stack.write_config(extra=PITR + _sftp(stack))
