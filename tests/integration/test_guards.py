"""What must not happen: two releases at once, a broken nginx config, bad input with side effects."""

from __future__ import annotations

import json
import signal
import time

import pytest

pytestmark = pytest.mark.docker


def wait_for_lock(project, timeout=30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = project.cli("lock", "status").stdout.strip()
        if out.startswith("held"):
            return out
        time.sleep(0.2)
    raise AssertionError("the lock was never taken")


def test_a_second_release_is_refused_while_one_holds_the_lock(project):
    project.tag("v1")
    project.tag("v2", backend_env={"STARTUP_DELAY": "6"})
    project.ok("up")
    project.ok("release", "v1", "--no-backup")

    first = project.popen("release", "v2", "--no-backup")
    try:
        holder = wait_for_lock(project)
        assert "release v2" in holder
        second = project.cli("release", "v1", "--no-backup")
        assert second.returncode == 1
        assert "holds the lock" in second.stderr and "release v2" in second.stderr
        switch = project.cli("switch", "--to", "blue")
        assert switch.returncode == 1 and "holds the lock" in switch.stderr
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert project.serving("/api/version") == ("v2", "green")
    assert project.cli("lock", "status").stdout.strip() == "free"


def test_a_killed_release_leaves_a_stale_lock_that_can_be_broken(project):
    project.tag("v1", backend_env={"STARTUP_DELAY": "20"})
    project.ok("up")
    victim = project.popen("release", "v1", "--no-backup")
    wait_for_lock(project)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    status = project.cli("lock", "status").stdout
    assert "no longer running" in status and "stale" in status
    refused = project.cli("release", "v1", "--no-backup")
    assert refused.returncode == 1 and "stale" in refused.stderr

    broken = project.ok("lock", "release")
    assert "lock broken" in broken.stdout
    assert project.cli("lock", "status").stdout.strip() == "free"


def test_sigterm_undoes_the_release_and_frees_the_lock(project):
    project.tag("v1")
    project.tag("v2", backend_env={"STARTUP_DELAY": "20"})
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    cancelled = project.popen("release", "v2", "--no-backup")
    wait_for_lock(project)
    deadline = time.monotonic() + 30
    while not project.containers("green") and time.monotonic() < deadline:
        time.sleep(0.2)
    cancelled.send_signal(signal.SIGTERM)
    cancelled.wait(timeout=60)
    assert cancelled.returncode != 0
    assert project.cli("lock", "status").stdout.strip() == "free"
    assert project.containers("green") == []
    assert project.serving("/api/version") == ("v1", "blue")


def test_a_template_that_fails_nginx_t_leaves_the_live_config_and_the_standby_untouched(project, tmp_path):
    project.tag("v1")
    project.tag("v2")
    project.tag("v3")
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    project.ok("release", "v2", "--no-backup")
    site_before = project.edge_file("/var/lib/deployer/site.conf")
    routes_before = project.edge_file("/var/lib/deployer/routes")
    assert "backend-$deployer_live" in site_before

    (project.folder / "broken.conf.j2").write_text("server { listen 80; location / { proxy_pass nowhere; } \n")
    project.write_config(extra="", deadline=40)
    text = project.config.read_text().replace("[edge]\n", '[edge]\ntemplate = "broken.conf.j2"\n')
    project.config.write_text(text)

    failed = project.cli("release", "v3", "--no-backup")  # to blue, where v1 is the standby
    assert failed.returncode == 1
    assert "step 'site'" in failed.stderr and "nginx -t rejected" in failed.stderr
    assert project.edge_file("/var/lib/deployer/site.conf") == site_before
    assert project.edge_file("/var/lib/deployer/routes") == routes_before
    assert project.serving("/api/version") == ("v2", "green")
    # The new release's containers are gone; the standby it would have replaced is not.
    blue = project.containers("blue")
    assert [(c.labels["deployer.version"], c.status) for c in blue] == [("v1", "running")] * 2
    project.write_config(extra="", deadline=40)
    project.ok("switch", "--to", "blue")
    assert project.serving("/") == ("v1", "blue")


@pytest.mark.parametrize(
    "args, words",
    [
        (("release", "v1;reboot", "--no-backup"), "invalid version 'v1;reboot'"),
        (("release", "x" * 129, "--no-backup"), "invalid version"),
        (("switch", "--to", "purple"), "unknown colour 'purple'"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(project, args, words):
    project.tag("v1")
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    before = ({c.id for c in project.containers()}, project.edge_file("/var/lib/deployer/routes"))
    history = project.edge_file("/var/lib/deployer/history.jsonl")

    result = project.cli(*args)
    assert result.returncode == 2
    assert words in result.stderr
    assert ({c.id for c in project.containers()}, project.edge_file("/var/lib/deployer/routes")) == before
    assert project.edge_file("/var/lib/deployer/history.jsonl") == history


def test_a_broken_config_exits_2_and_changes_nothing(project):
    project.tag("v1")
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    routes = project.edge_file("/var/lib/deployer/routes")
    project.config.write_text(project.config.read_text().replace("port = 8080", 'port = "eighty"'))
    for args in (("release", "v1", "--no-backup"), ("switch", "--to", "green"), ("up",)):
        result = project.cli(*args)
        assert result.returncode == 2, result.stderr
        assert "services.backend.port" in result.stderr and str(project.config) in result.stderr
    assert project.edge_file("/var/lib/deployer/routes") == routes
    assert json.loads(project.get("/api/version").text)["version"] == "v1"
