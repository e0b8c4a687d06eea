"""The backup agent takes over its dumps folder only when the folder is its own."""

from __future__ import annotations

import stat

import pytest

from deployer.agent import boot
from deployer.errors import BackupError


def test_a_folder_with_other_files_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir(mode=0o755)
    (folder / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (folder / "passwd").chmod(0o644)
    with pytest.raises(BackupError, match=r"holds files that are not dumps \(passwd\)") as caught:
        boot.prepare(folder)
    assert caught.value.exit_code == 1 and caught.value.step == "start"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / "passwd").stat().st_mode) == 0o644


def test_its_own_folder_is_taken_over(tmp_path):
    folder = tmp_path / "dumps"
    folder.mkdir(mode=0o755)
    (folder / "lost+found").mkdir()  # the root of a mounted disk: folders are not looked at
    for name in ("dump-20261127T030000Z.dump", "dump-20261127T030000Z.dump.sha256", "dump-20261127T030000Z.json"):
        (folder / name).write_text("x")
        (folder / name).chmod(0o644)
    for name in (".deployer-status.json", ".deployer.lock", ".deployer-deadline", ".dump-x.json.123.tmp"):
        (folder / name).write_text("{}")
    boot.prepare(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "dump-20261127T030000Z.dump").stat().st_mode) == 0o600


def test_a_missing_folder_is_created(tmp_path):
    boot.prepare(tmp_path / "new")
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
