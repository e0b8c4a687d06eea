"""Point-in-time recovery as data (deployer/core/pitr.py): the database's archiving settings,
the commands, the grammar of a --to-time and the recoverable window."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployer.config.model import Backup, Offsite
from deployer.core import pitr
from deployer.errors import InputError

INFO = json.dumps(
    [
        {
            "name": "main",
            "archive": [{"id": "17-1", "min": "000000010000000000000001", "max": "000000010000000000000007"}],
            "backup": [
                {"label": "F1", "type": "full", "timestamp": {"start": 1000, "stop": 1010}},
                {"label": "I1", "type": "incr", "timestamp": {"start": 2000, "stop": 2004}},
            ],
        }
    ]
)
LISTING = json.dumps(
    {
        ".": {"type": "path"},
        "archive.info": {"type": "file", "time": 9999},  # not a segment: rewritten by stanza-create
        "17-1/0000000100000000/000000010000000000000006-ab.zst": {"type": "file", "time": 2900},
        "17-1/0000000100000000/000000010000000000000007-cd.zst": {"type": "file", "time": 3000},
    }
)


def test_a_to_time_is_utc_unless_it_names_its_offset():
    assert pitr.parse_time("2026-12-06 17:04:59") == datetime(2026, 12, 6, 17, 4, 59, tzinfo=UTC)
    assert pitr.parse_time("2026-12-06T19:04:59+02:00") == datetime(2026, 12, 6, 17, 4, 59, tzinfo=UTC)
    for bad in ("yesterday", "", "2026-13-01 00:00:00", "17:04"):
        with pytest.raises(ValueError, match="is not a time"):
            pitr.parse_time(bad)


def test_the_window_runs_from_the_oldest_backup_end_to_the_newest_segment():
    assert pitr.window(INFO, LISTING) == (1010.0, 3000.0)
    assert pitr.last_segment(INFO) == "000000010000000000000007"
    assert pitr.window("[]", LISTING) is None
    assert pitr.window(INFO, json.dumps({".": {"type": "path"}})) is None


def test_a_target_outside_the_window_is_named_with_the_window():
    span = (1010.0, 3000.0)
    assert pitr.outside(datetime.fromtimestamp(2000, UTC), span) == ""
    why = pitr.outside(datetime.fromtimestamp(500, UTC), span)
    assert "outside the recoverable window 1970-01-01 00:16:50 UTC .. 1970-01-01 00:50:00 UTC" in why
    assert "no backup yet" in pitr.outside(datetime.fromtimestamp(2000, UTC), None)


def test_the_restore_command_targets_the_moment_and_promotes():
    when = datetime(2026, 12, 6, 17, 4, 59, tzinfo=UTC)
    argv = pitr.restore_argv(when, delta=True)
    assert argv == [
        "pgbackrest",
        "--type=time",
        "--target=2026-12-06 17:04:59+00",
        "--target-action=promote",
        "--delta",
        "restore",
    ]
    assert "--delta" not in pitr.restore_argv(when, delta=False)


def _doc() -> dict:
    return {
        "services": {
            "db": {
                "environment": {"POSTGRES_DB": "app"},
                "volumes": ["db-data:/var/lib/postgresql/data"],
                "secrets": [{"source": "db_password", "target": "db_password", "mode": 0o400}],
                "networks": {"data": {"aliases": ["db"]}},
            }
        },
        "networks": {"data": {"external": True, "name": "shop-data"}},
        "secrets": {"db_password": {"environment": "DEPLOYER_SECRET_DB_PASSWORD"}},
    }


def test_the_database_archives_into_the_repository_volume():
    doc = _doc()
    pitr.apply(doc, Backup(pitr=True, pitr_full_keep=3), "app", "shop", "DEPLOYER_SECRET_")
    db = doc["services"]["db"]
    assert db["command"][0] == "postgres"
    assert "archive_command=pgbackrest --stanza=main archive-push %p" in db["command"]
    assert db["environment"]["PGBACKREST_REPO1_RETENTION_FULL"] == "3"
    assert db["environment"]["PGBACKREST_PG1_USER"] == "app"
    assert db["volumes"][-1] == "pgbackrest:/var/lib/pgbackrest"
    assert "backup-out" not in doc["networks"]  # no repository off the host: no route out


def test_a_repository_off_the_host_gets_its_files_as_secrets_and_a_route_out():
    offsite = Offsite(kind="sftp", host="vault", user="pgbackrest", key_file=Path("k"), known_hosts=Path("h"))
    doc = _doc()
    pitr.apply(doc, Backup(pitr=True, offsite=offsite), "app", "shop", "DEPLOYER_SECRET_")
    db = doc["services"]["db"]
    assert db["environment"]["PGBACKREST_REPO2_TYPE"] == "sftp"
    assert db["environment"]["PGBACKREST_REPO2_SFTP_HOST"] == "vault"
    assert db["environment"]["PGBACKREST_REPO2_SFTP_PRIVATE_KEY_FILE"] == f"{pitr.FILES}/pgbackrest_sftp_key"
    assert {s["source"] for s in db["secrets"]} == {"db_password", "pgbackrest_sftp_key", "pgbackrest_known_hosts"}
    assert doc["secrets"]["pgbackrest_sftp_key"] == {"environment": "DEPLOYER_SECRET_PGBACKREST_SFTP_KEY"}
    assert doc["networks"]["backup-out"] == {"external": True, "name": "shop-backup-out"}
    assert "backup-out" in db["networks"] and "data" in db["networks"]
    assert pitr.repos(Backup(pitr=True, offsite=offsite)) == [1, 2]
    assert pitr.repository_number(Backup(pitr=True, offsite=offsite), "sftp") == 2
    with pytest.raises(InputError, match="no \\[backup.s3\\]"):
        pitr.repository_number(Backup(pitr=True, offsite=offsite), "s3")


def test_the_database_image_installs_the_secret_files_as_core_says():
    entrypoint = (Path(__file__).resolve().parents[2] / "deployer/assets/db/docker-entrypoint.sh").read_text()
    assert pitr.INSTALL in entrypoint


def test_kept_volumes_are_named_by_their_moment():
    name = pitr.kept_volume("shop", datetime(2026, 12, 6, 17, 4, 59, tzinfo=UTC))
    assert name == "shop-db-before-20261206T170459Z"
    assert pitr.is_kept_volume("shop", name)
    assert not pitr.is_kept_volume("shop", "shop-db-data")
    assert not pitr.is_kept_volume("shop", "shop-db-before-x")


def test_archiving_is_behind_when_a_finished_segment_waits_longer_than_max_lag():
    now = 10_000.0
    # current segment 0x12, last archived 0x10: segment 0x11 is finished and waits
    row = "000000010000000000000012|000000010000000000000010|9000|9990"
    why = pitr.lag(row, now, 600)
    assert "behind: 1 finished segment(s)" in why and "1000 s ago" in why
    assert pitr.lag(row, now, 1200) == ""  # not yet for longer than max_lag
    assert pitr.lag("000000010000000000000011|000000010000000000000010|9000|9990", now, 600) == ""  # in progress
    assert pitr.lag("000000010000000000000012|000000010000000000000010|9000|", now, 600) == ""  # no failure
    assert pitr.lag("000000020000000000000012|00000002.history|9000|9990", now, 600) != ""
    # the newest attempt succeeded (a failure before it): a waiting segment is only queued
    assert pitr.lag("000000010000000000000012|000000010000000000000010|9000|8990", now, 600) == ""


def test_with_nothing_archived_since_a_reset_the_lag_counts_from_the_reset():
    """A server started on restored data (or after a crash) has its archiver's counters reset:
    nothing archived yet, and a failure while a repository is being made, is not behind
    before max_lag has passed since that reset."""
    now = 10_000.0
    fresh = "00000003000000000000000A|||9990|9950"  # reset 50 s ago, a failure 10 s ago
    assert pitr.lag(fresh, now, 600) == ""
    assert pitr.lag(fresh, now, 10) != ""
    why = pitr.lag("00000003000000000000000A|||9990|9000", now, 600)  # reset 1000 s ago
    assert "the segments before 00000003000000000000000A wait" in why, why
    assert "nothing archived in the 1000 s since the archiver's counters were reset" in why, why
    assert "nothing archived yet" in pitr.lag("00000003000000000000000A|||9990|", now, 600)
    assert "1000 s ago" in pitr.lag("000000010000000000000012|000000010000000000000010|9000|9990|100", now, 600)
    assert pitr.segment_number("00000001000000020000000A") == 0x20A


def test_the_healthcheck_reads_the_marker_the_watch_writes():
    probe = (Path(__file__).resolve().parents[2] / "deployer/agent/probe.py").read_text()
    assert f'"{pitr.BEHIND_MARKER}"' in probe


def test_the_backup_service_runs_pgbackrest_through_the_database_with_fixed_words():
    sql = pitr.program_sql(pitr.backup_argv("diff", 2))
    assert sql == (
        "copy (select 1) to program 'pgbackrest --repo=2 --type=diff backup > /tmp/deployer-pgbackrest.log 2>&1'"
    )


def test_the_agent_settings_carry_the_base_backup_schedules():
    from deployer.core.agentconfig import AgentConfig

    told = AgentConfig(
        project="shop", database="app", db_host="db", db_user="app", schedule="0 3 * * *", keep_last=7,
        keep_daily=7, keep_weekly=4, keep_monthly=6, webhook_timeout=5, pitr_repos=2,
        pitr_schedules=(("full", "0 1 * * 0"), ("incr", "0 */4 * * *")),
    )  # fmt: skip
    assert AgentConfig.parse(told.render()) == told


def test_the_database_guard_names_pitr_when_archiving_is_turned_on_or_off():
    from deployer.flows.dbguard import what_changed

    plain = {"Config": {"Image": "db:1", "Env": ["POSTGRES_DB=app"]}, "HostConfig": {}}
    doc = _doc()
    doc["services"]["db"]["image"] = "db:1"
    pitr.apply(doc, Backup(pitr=True), "app", "shop", "DEPLOYER_SECRET_")
    said = what_changed(plain, doc["services"]["db"])
    assert said.startswith("WAL archiving with pgBackRest ([backup] pitr) is turned on") and "PGBACKREST" not in said
    archiving = {
        "Config": {"Image": "db:1", "Env": [f"{k}={v}" for k, v in doc["services"]["db"]["environment"].items()]}
    }
    assert "is turned off" in what_changed(archiving, {"image": "db:1", "environment": {"POSTGRES_DB": "app"}})


def test_a_failed_copy_of_the_data_volume_starts_the_database_again_and_drops_the_partial_copy(monkeypatch):
    """The in-place restore's copy of the data volume fails (or is cancelled) before the data
    changed: the database runs again as it was, and the partial copy goes."""
    from types import SimpleNamespace

    from deployer.adapters import lifecycle, volumes
    from deployer.errors import BackupError
    from deployer.flows import pitr_restore, scratch

    done: list[tuple[str, str]] = []
    monkeypatch.setattr(scratch, "db_image", lambda ctx, step: "db-image")
    monkeypatch.setattr(lifecycle, "stop", lambda engine, name, seconds, step: done.append(("stop", name)))
    monkeypatch.setattr(lifecycle, "start", lambda engine, name, step: done.append(("start", name)) or True)
    monkeypatch.setattr(volumes, "labels", lambda engine, name: {})
    monkeypatch.setattr(volumes, "ensure", lambda engine, name, labels, step: done.append(("ensure", name)))
    monkeypatch.setattr(volumes, "remove", lambda engine, name, step: done.append(("remove", name)) or True)

    def copy(*args, **kwargs):
        raise BackupError("copying the data volume failed: no space left on device", step="restore")

    monkeypatch.setattr(pitr_restore, "_copy", copy)
    ctx = SimpleNamespace(config=SimpleNamespace(name="shop", deployment="d1"), engine=None, say=lambda text: None)
    with pytest.raises(BackupError, match="no space left"):
        pitr_restore._replace_data(ctx, datetime(2026, 12, 6, 17, 4, 59, tzinfo=UTC), None, "restore")
    kept = next(name for what, name in done if what == "ensure")
    assert kept.startswith("shop-db-before-")
    assert done[-2:] == [("start", "shop-infra-db-1"), ("remove", kept)], done
    assert not any(what == "ensure" and name == "shop-db-data" for what, name in done), "the data volume untouched"


def test_a_failed_restore_puts_the_kept_data_back_and_starts_the_database_on_it(monkeypatch):
    """pgBackRest's restore fails after the data volume was copied: the data volume gets the
    copy back (what the failed restore left goes first), the database starts on it, and the
    error says so, naming the kept volume."""
    from types import SimpleNamespace

    from deployer.adapters import lifecycle, volumes
    from deployer.errors import BackupError
    from deployer.flows import pitr as flows_pitr
    from deployer.flows import pitr_restore, scratch

    done: list[tuple] = []
    monkeypatch.setattr(scratch, "db_image", lambda ctx, step: "db-image")
    monkeypatch.setattr(lifecycle, "stop", lambda engine, name, seconds, step: done.append(("stop", name)))
    monkeypatch.setattr(lifecycle, "start", lambda engine, name, step: done.append(("start", name)) or True)
    monkeypatch.setattr(volumes, "labels", lambda engine, name: {})
    monkeypatch.setattr(volumes, "ensure", lambda engine, name, labels, step: None)
    monkeypatch.setattr(
        pitr_restore,
        "_copy",
        lambda ctx, image, source, target, step, wipe=False: done.append(("copy", source, target, wipe)),
    )
    failed = SimpleNamespace(ok=False, stdout="ERROR: [075]: no backup set found to restore")
    monkeypatch.setattr(flows_pitr, "one_off", lambda ctx, argv, **kw: done.append(("restore",)) or failed)
    ctx = SimpleNamespace(config=SimpleNamespace(name="shop", deployment="d1"), engine=None, say=lambda text: None)
    with pytest.raises(BackupError) as raised:
        pitr_restore._replace_data(ctx, datetime(2026, 12, 6, 17, 4, 59, tzinfo=UTC), None, "restore")
    kept = done[1][2]
    assert kept.startswith("shop-db-before-")
    assert done == [
        ("stop", "shop-infra-db-1"),
        ("copy", "shop-db-data", kept, False),
        ("restore",),
        ("stop", "shop-infra-db-1"),
        ("copy", kept, "shop-db-data", True),
        ("start", "shop-infra-db-1"),
    ]
    message = str(raised.value)
    assert "no backup set found" in message and "runs again on its data from before" in message and kept in message
