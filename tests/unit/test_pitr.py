"""Point-in-time recovery as data (deployer/core/pitr.py): the database's archiving settings,
the commands, the grammar of a --to-time and the recoverable window."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from deployer.config.model import Backup
from deployer.core import pitr

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


def test_the_database_archives_into_the_repository_volume():
    service = {"environment": {"POSTGRES_DB": "app"}, "volumes": ["db-data:/var/lib/postgresql/data"]}
    done = pitr.db_service(service, Backup(pitr=True, pitr_full_keep=3), "app")
    assert done["command"][0] == "postgres"
    assert "archive_command=pgbackrest --stanza=main archive-push %p" in done["command"]
    assert done["environment"]["PGBACKREST_REPO1_RETENTION_FULL"] == "3"
    assert done["environment"]["PGBACKREST_PG1_USER"] == "app"
    assert done["volumes"][-1] == "pgbackrest:/var/lib/pgbackrest"
    assert not any("PASSWORD" in k for k in done["environment"])


def test_kept_volumes_are_named_by_their_moment():
    name = pitr.kept_volume("shop", datetime(2026, 12, 6, 17, 4, 59, tzinfo=UTC))
    assert name == "shop-db-before-20261206T170459Z"
    assert pitr.is_kept_volume("shop", name)
    assert not pitr.is_kept_volume("shop", "shop-db-data")
    assert not pitr.is_kept_volume("shop", "shop-db-before-x")
