"""Pure parts of the backups: names, metadata, schedule deadlines, restore memory."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from deployer.backup import naming, schedule
from deployer.backup.dump import compression_for, major
from deployer.backup.naming import Metadata, Verification
from deployer.backup.restore import memory_for

T = datetime(2024, 5, 6, 3, 0, 0, tzinfo=timezone.utc)


def test_names_are_sortable_unique_and_parse_back():
    assert naming.new_name(T, set()) == "dump-20240506T030000Z"
    assert naming.new_name(T, {"dump-20240506T030000Z"}) == "dump-20240506T030000Z-2"
    assert naming.created_from_name("dump-20240506T030000Z-2") == T
    assert not naming.is_name("../etc/passwd") and naming.is_name("dump-20240506T030000Z")


def test_metadata_round_trip_and_verification_state():
    meta = Metadata("dump-x", "app", T.isoformat(), "17.6", "17.6", "0.8.0", 10, "a" * 64, 1.5, "l")
    assert meta.verified_text == "unverified" and not meta.verified
    ok = meta.with_check(Verification(T.isoformat(), "read", True))
    assert Metadata.from_json(ok.to_json()) == ok and ok.verified
    bad = ok.with_check(Verification(T.isoformat(), "restore", False, "boom"))
    assert not bad.verified and bad.verified_text == "FAILED restore check"


def test_sha_line_is_sha256sum_format():
    line = naming.sha_line("dump-x", "ab" * 32)
    assert line == f"{'ab' * 32}  dump-x.dump\n" and naming.parse_sha_line(line) == "ab" * 32
    with pytest.raises(ValueError):
        naming.parse_sha_line("nonsense")


def test_labels_are_checked():
    assert naming.check_label("pre-release v1.2") == "pre-release v1.2"
    with pytest.raises(ValueError):
        naming.check_label("x; rm -rf /")


def test_versions_and_compression():
    assert major("17.6 (Debian 17.6-1)") == 17 and major("9.6.3") == 9
    assert compression_for(17) == "zstd:3" and compression_for(15) == "gzip:6"


def test_restore_memory_follows_shm():
    assert memory_for(256 * 1024 * 1024) == "192MB"
    assert memory_for(64 * 1024 * 1024) == "64MB"
    assert memory_for(64 * 1024**3) == "2048MB"


def test_deadline_of_a_nightly_schedule():
    expr = "0 3 * * *"
    assert schedule.grace(expr, T) == timedelta(hours=1)
    assert schedule.deadline(expr, T, T) == T + timedelta(days=1, hours=1)
    assert not schedule.overdue(expr, T, T, T + timedelta(days=1, minutes=59))
    assert schedule.overdue(expr, T, T, T + timedelta(days=1, hours=1, seconds=1))


def test_without_a_dump_the_start_of_the_service_counts():
    started = T + timedelta(hours=5)
    assert schedule.deadline("0 3 * * *", None, started) == T + timedelta(days=1, hours=1)
    assert schedule.deadline("0 3 * * *", T - timedelta(days=9), started) == T + timedelta(days=1, hours=1)


def test_seconds_level_schedule_for_tests():
    assert schedule.period("* * * * * */5", T) == timedelta(seconds=5)
    assert schedule.deadline("* * * * * */5", T, T) == T + timedelta(seconds=20)
