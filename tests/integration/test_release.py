"""Release and switch on the real engine, through the CLI, checked at the edge."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.docker


def test_release_release_switch_back(project):
    project.tag("v1")
    project.tag("v2")
    project.ok("up")
    assert project.get("/").status_code == 503  # nothing released yet

    first = project.ok("release", "v1", "--no-backup")
    assert "released v1: blue is live" in first.stderr
    assert project.serving("/api/version") == ("v1", "blue")
    assert project.serving("/") == ("v1", "blue")  # the front end moved with it

    project.ok("release", "v2", "--no-backup")
    assert project.serving("/api/version") == ("v2", "green")
    assert project.serving("/") == ("v2", "green")
    blue = project.containers("blue")
    assert sorted(c.labels["deployer.service"] for c in blue) == ["backend", "frontend"]
    assert all(c.status == "running" and c.labels["deployer.version"] == "v1" for c in blue)

    before = {c.id for c in project.containers()}
    switched = project.ok("switch", "--to", "blue")
    assert "switched: blue (v1) is live" in switched.stderr
    assert project.serving("/api/version") == ("v1", "blue")
    assert project.serving("/") == ("v1", "blue")
    assert {c.id for c in project.containers()} == before  # a switch starts nothing

    status = json.loads(project.ok("status", "--json").stdout)
    assert status["live"] == "blue"
    assert status["colours"]["blue"]["version"] == "v1"
    assert status["colours"]["green"]["version"] == "v2"
    assert status["colours"]["green"]["role"] == "standby"
    assert [e["action"] for e in status["releases"]] == ["release", "release", "switch"]
    assert status["releases"][-1]["previous"] == "green"
    assert status["edge"]["health"] == "healthy"
    assert status["database"]["status"] == "running"

    again = project.ok("switch", "--to", "blue")
    assert "already live" in again.stderr


def test_labels_and_aliases(project):
    project.tag("v1")
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    backend = next(c for c in project.containers("blue") if c.labels["deployer.service"] == "backend")
    assert backend.labels["deployer.project"] == project.name
    assert backend.labels["deployer.version"] == "v1"
    networks = backend.attrs["NetworkSettings"]["Networks"]
    assert "backend-blue" in networks[f"{project.name}-edge"]["Aliases"]
    assert f"{project.name}-data" in networks
    db = project.docker.containers.get(f"{project.name}-infra-db-1")
    assert db.attrs["NetworkSettings"]["Ports"] in ({}, {"5432/tcp": None})  # never published
    assert project.docker.networks.get(f"{project.name}-data").attrs["Internal"] is True


def test_never_healthy_release_fails_and_live_keeps_serving(project):
    project.tag("v1")
    project.tag("v2", backend_env={"NEVER_HEALTHY": "1"})
    project.write_config(deadline=6)
    project.ok("up")
    project.ok("release", "v1", "--no-backup")

    failed = project.cli("release", "v2", "--no-backup")
    assert failed.returncode == 1
    assert "step 'health'" in failed.stderr
    assert "green was not healthy after 6s" in failed.stderr
    assert "--- last lines ---" in failed.stderr and "listening on" in failed.stderr
    assert project.serving("/api/version") == ("v1", "blue")
    assert project.containers("green") == []  # the failed colour is gone
    assert project.cli("lock", "status").stdout.strip() == "free"


def test_a_release_is_judged_on_its_own_containers_not_on_the_old_standby(project):
    """A release starts beside the idle colour's old standby, which answers to the colour's
    alias while it stops. Health must be judged on the new release alone."""
    project.tag("v1", backend_env={"STOP_DELAY": "30"})  # healthy until SIGKILL at stop_grace (5 s)
    project.tag("v2")
    project.tag("v3", backend_env={"NEVER_HEALTHY": "1"})
    project.tag("v4")
    project.write_config(deadline=4)
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    project.ok("release", "v2", "--no-backup")

    failed = project.cli("release", "v3", "--no-backup")  # to blue, where v1 is still healthy
    assert failed.returncode == 1
    assert "step 'health'" in failed.stderr and "blue was not healthy after 4s" in failed.stderr
    assert project.serving("/api/version") == ("v2", "green")
    assert project.containers("blue") == []  # the new release and the old standby are both gone

    project.ok("release", "v4", "--no-backup")
    assert project.serving("/api/version") == ("v4", "blue")
    assert project.serving("/") == ("v4", "blue")
    blue = project.containers("blue")
    assert len(blue) == 2 and len({c.labels["deployer.release"] for c in blue}) == 1
    assert all(c.status == "running" and c.labels["deployer.version"] == "v4" for c in blue)
    release_id = blue[0].labels["deployer.release"]
    assert {c.labels["com.docker.compose.project"] for c in blue} == {f"{project.name}-blue-{release_id}"}


def test_the_old_standby_is_replaced_only_by_a_running_release(project):
    """After a release the idle colour holds exactly the new release; the one it replaced is gone."""
    project.release_all("v1", "v2", "v3")
    blue = project.containers("blue")
    assert sorted(c.labels["deployer.version"] for c in blue) == ["v3", "v3"]
    green = project.containers("green")
    assert sorted(c.labels["deployer.version"] for c in green) == ["v2", "v2"]
    switched = project.ok("switch", "--to", "green")
    assert "switched: green (v2) is live" in switched.stderr
    assert project.serving("/") == ("v2", "green")


def test_crashing_release_gives_up_before_the_deadline(project):
    project.tag("v1")
    project.tag("v2", backend_env={"CRASH_AFTER": "1", "STARTUP_DELAY": "30"})
    project.write_config(deadline=60)
    project.ok("up")
    project.ok("release", "v1", "--no-backup")

    started = time.monotonic()
    failed = project.cli("release", "v2", "--no-backup")
    took = time.monotonic() - started
    assert failed.returncode == 1
    assert "cannot become healthy" in failed.stderr and "exited" in failed.stderr
    assert "crashing as asked by CRASH_AFTER" in failed.stderr
    assert took < 30, f"waited {took:.0f}s for a crashed container"
    assert project.serving("/api/version") == ("v1", "blue")
    assert project.containers("green") == []


def test_switch_refuses_a_colour_that_is_not_running(project):
    project.tag("v1")
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    refused = project.cli("switch", "--to", "green")
    assert refused.returncode == 1
    assert "cannot switch to green: it has no backend (release to it first)" in refused.stderr
    assert project.serving("/api/version") == ("v1", "blue")


def test_switch_refuses_an_unhealthy_colour(project):
    project.release_all("v1", "v2")
    blue_backend = next(c for c in project.containers("blue") if c.labels["deployer.service"] == "backend")
    blue_backend.exec_run(["touch", "/tmp/unhealthy"])
    refused = project.cli("switch", "--to", "blue")
    assert refused.returncode == 1
    assert "cannot switch to blue: it is not healthy" in refused.stderr
    assert "probe 503 [blue]" in refused.stderr
    assert project.serving("/api/version") == ("v2", "green")

    blue_backend.pause()
    paused = project.cli("switch", "--to", "blue")
    blue_backend.unpause()
    assert paused.returncode == 1 and "its backend is paused" in paused.stderr
    assert project.serving("/api/version") == ("v2", "green")


def test_up_is_idempotent_and_the_edge_keeps_its_truth_across_a_restart(project):
    project.release_all("v1", "v2")
    project.ok("switch", "--to", "blue")
    infra = {c.name: c.id for c in project.docker.containers.list(filters={"name": f"{project.name}-infra-"})}
    assert len(infra) == 3  # edge, db, backup
    site = project.edge_file("/var/lib/deployer/site.conf")

    again = project.ok("up")
    assert "reloaded" not in again.stderr  # the rendered site did not change: no reload
    after = {c.name: c.id for c in project.docker.containers.list(filters={"name": f"{project.name}-infra-"})}
    assert after == infra  # nothing recreated
    assert project.edge_file("/var/lib/deployer/site.conf") == site
    assert project.serving() == ("v1", "blue")

    project.edge.restart(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if project.get("/api/version").status_code == 200:
                break
        except Exception:  # noqa: BLE001  (the edge is still starting)
            pass
        time.sleep(0.2)
    assert project.serving() == ("v1", "blue")  # the routes file survived the restart
    assert project.serving("/") == ("v1", "blue")
    status = json.loads(project.ok("status", "--json").stdout)
    assert (status["live"], status["colours"]["green"]["version"]) == ("blue", "v2")


def test_down_removes_both_colours_and_the_infrastructure_and_keeps_the_database(project):
    project.release_all("v1", "v2")
    assert len(project.containers("blue")) == len(project.containers("green")) == 2
    assert len(project.containers()) == 7  # and the edge, the database and the backup schedule

    kept = project.ok("down")
    assert "database volume kept" in kept.stderr
    assert project.containers() == []
    assert project.docker.containers.list(all=True, filters={"name": f"^{project.name}-"}) == []
    assert project.docker.volumes.get(f"{project.name}-db-data").name == f"{project.name}-db-data"

    gone = project.ok("down", "--volumes")
    assert "database volume too" in gone.stderr
    assert f"{project.name}-db-data" not in [v.name for v in project.docker.volumes.list()]
