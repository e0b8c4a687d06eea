"""`down`: it holds the lock until the infrastructure is gone, and `down --volumes` removes only
volumes it can show are this deployment's (labelled with its id, or, made before volumes were
labelled, used by its own containers). Volumes it cannot show are refused, exit 2 and nothing
removed, unless the project name is typed at the prompt: `--yes` does not vouch for them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_guards import wait_for_line

pytestmark = pytest.mark.docker


def with_id(project, deployment: str) -> None:
    project.config.write_text(project.config.read_text().replace("[project]\n", f'[project]\nid = "{deployment}"\n'))


def volume_names(project) -> set[str]:
    return {v.name for v in project.docker.volumes.list() if v.name.startswith(f"{project.name}-")}


def typed(project, answer: str, *args: str) -> subprocess.CompletedProcess:
    """The CLI with a terminal on stdin, where `answer` is typed."""
    master, terminal = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployer", *args, "--config", str(project.config)],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(master, f"{answer}\n".encode())
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(terminal)
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_down_volumes_with_no_edge_left_refuses_volumes_of_someone_else_unless_the_name_is_typed(project):
    """Nothing is left to read the deployment id from; two volumes of this name exist: one
    made by hand (no label), one of another deployment. Neither can be shown to be ours."""
    with_id(project, "ours0001")
    docker, name = project.docker, project.name
    docker.volumes.create(f"{name}-db-data")
    docker.volumes.create(
        f"{name}-edge-state", labels={"deployer.project": name, "deployer.deployment": "theirs001"}
    )  # fmt: skip
    before = volume_names(project)
    for args in (("--yes", "--no-backup"), ("--yes",), ("--no-backup",)):
        refused = project.cli("down", "--volumes", *args)
        assert refused.returncode == 2, (args, refused.stderr)
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert f"volume {name}-db-data carries no deployment label" in lines[0], lines[0]
        assert f"volume {name}-edge-state belongs to deployment 'theirs001'" in lines[0], lines[0]
        assert "Nothing was removed" in lines[0] and "--yes does not vouch" in lines[0], lines[0]
        assert volume_names(project) == before

    wrong = typed(project, "not-the-name", "down", "--volumes", "--yes", "--no-backup")
    assert wrong.returncode == 2 and "nothing was changed" in wrong.stderr, wrong.stderr
    assert volume_names(project) == before

    gone = typed(project, name, "down", "--volumes", "--yes", "--no-backup")
    assert gone.returncode == 0, gone.stderr
    assert "cannot be shown to be this deployment's" in gone.stderr, gone.stderr
    assert volume_names(project) == set()


def test_down_holds_the_lock_until_the_edge_is_gone_and_an_own_down_volumes_still_works(project):
    """While `down` removes the infrastructure, no release, dump or restore can start; the
    lock goes with the edge, so the next `up` and release find it free. Then `down --volumes`
    on this deployment's own volumes: one labelled by `up`, one from before volumes were
    labelled (made by hand here), which its database uses."""
    with_id(project, "ownlock01")
    project.docker.volumes.create(f"{project.name}-db-data")  # as an older deployer left it: no label
    project.release_all("v1")
    labels = project.docker.volumes.get(f"{project.name}-edge-state").attrs["Labels"]
    assert labels == {"deployer.project": project.name, "deployer.deployment": "ownlock01"}
    project.tag("v2")

    downing = project.popen_env({"DEPLOYER_TEST_PAUSE": "down:20"}, "down")
    try:
        wait_for_line(downing, "test pause before down")
        held = project.cli("lock", "status").stdout
        assert held.startswith("held by") and "`down`" in held and "lease runs" in held, held
        for args in (("release", "v2", "--no-backup"), ("backup", "now")):
            refused = project.cli(*args)
            assert refused.returncode == 1 and "another command holds the lock" in refused.stderr, refused.stderr
    finally:
        err = downing.communicate(timeout=120)[1]
    assert downing.returncode == 0, err
    assert "could not free the lock" not in err, err

    up = project.ok("up")
    assert "stale" not in up.stderr, up.stderr
    assert project.cli("lock", "status").stdout.strip() == "free"
    released = project.ok("release", "v2", "--no-backup")
    assert "took over" not in released.stderr, released.stderr
    assert project.serving() == ("v2", "green")  # the route state stayed in the edge's volume

    gone = project.ok("down", "--volumes", "--yes")
    assert "final dump before the database volume goes" in gone.stderr, gone.stderr
    assert volume_names(project) == {f"{project.name}-dumps"}
