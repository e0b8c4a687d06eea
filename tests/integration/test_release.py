"""Release and switch on the real engine, through the CLI, checked at the edge."""

from __future__ import annotations

import json
import time

import httpx
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
    assert "switched: blue (v1) is live, green is the standby" in switched.stderr
    assert project.serving("/api/version") == ("v1", "blue")
    assert project.serving("/") == ("v1", "blue")
    assert {c.id for c in project.containers()} == before  # a switch starts nothing

    status = json.loads(project.ok("status", "--json").stdout)
    assert status["live"] == "blue" and status["preview"] == "green"
    assert status["colours"]["blue"]["version"] == "v1"
    assert status["colours"]["green"]["version"] == "v2"
    assert status["colours"]["green"]["role"] == "standby"
    assert [e["action"] for e in status["releases"]] == ["release", "release", "switch"]
    assert [e["outcome"] for e in status["releases"]] == ["ok", "ok", "ok"]
    assert status["releases"][-1]["previous"] == "green"
    assert set(status["releases"][1]["images"]) == {"backend", "frontend"}
    assert status["releases"][1]["images"]["backend"].startswith("sha256:")
    assert set(status["releases"][1]["steps"]) >= {"lock", "images", "start", "health", "smoke"}
    assert status["edge"]["health"] == "healthy"
    assert status["database"]["status"] == "running"
    assert status["colours"]["blue"]["services"]["backend"]["memory"] > 0

    again = project.ok("switch", "--to", "blue")
    assert "already live" in again.stderr


def test_a_third_routed_service_and_a_worker_release_and_switch_together(project):
    services = ("backend", "frontend", "ai", "worker")
    project.write_config(
        services=f"""
        [services.backend]
        image = "{project.name}-backend"
        port = 8080
        health = "/health"
        routes = ["/api/"]
        stop_grace = 5
        [services.frontend]
        image = "{project.name}-frontend"
        port = 8081
        health = "/health"
        routes = ["/"]
        stop_grace = 5
        [services.ai]
        image = "{project.name}-ai"
        port = 8082
        health = "/health"
        routes = ["/api/ai/"]
        stop_grace = 5
        [services.worker]
        image = "{project.name}-worker"
        port = 8083
        health = "/health"
        stop_grace = 5
        memory = "128m"
        """
    )
    for version in ("v1", "v2"):
        project.tag(version, services=services)
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    answers = {path: project.get(path).json() for path in ("/api/ai/chat", "/api/items", "/about")}
    assert answers["/api/ai/chat"]["service"] == "ai"  # the longest prefix wins
    assert answers["/api/items"]["service"] == "backend"
    assert answers["/about"]["service"] == "frontend"
    blue = project.containers("blue")
    assert sorted(c.labels["deployer.service"] for c in blue) == sorted(services)
    worker = next(c for c in blue if c.labels["deployer.service"] == "worker")
    assert worker.attrs["HostConfig"]["Memory"] == 128 * 1024 * 1024
    # Each service finds the others of its own release.
    env = dict(e.split("=", 1) for e in worker.attrs["Config"]["Env"])
    release_id = worker.labels["deployer.release"]
    assert env["AI_URL"] == f"http://ai-blue-{release_id}:8082"

    project.ok("release", "v2", "--no-backup")
    body = project.get("/api/ai/x").json()
    assert (body["service"], body["version"], body["colour"]) == ("ai", "v2", "green")
    project.ok("switch", "--to", "blue")
    for path in ("/api/ai/chat", "/api/items", "/about"):
        body = project.get(path).json()
        assert (body["version"], body["colour"]) == ("v1", "blue"), path


def test_labels_aliases_and_a_database_that_is_never_published(shared):
    project = shared
    backend = next(c for c in project.containers("blue") if c.labels["deployer.service"] == "backend")
    assert backend.labels["deployer.project"] == project.name
    assert backend.labels["deployer.version"] == "v1"
    release_id = backend.labels["deployer.release"]
    networks = backend.attrs["NetworkSettings"]["Networks"]
    assert f"backend-blue-{release_id}" in networks[f"{project.name}-edge"]["Aliases"]
    assert f"{project.name}-data" in networks
    db = project.docker.containers.get(f"{project.name}-infra-db-1")
    assert db.attrs["NetworkSettings"]["Ports"] in ({}, {"5432/tcp": None})  # never published
    assert project.docker.networks.get(f"{project.name}-data").attrs["Internal"] is True
    # The database password is a file, not an environment variable anyone can inspect.
    assert "test-secret-pw" not in json.dumps(db.attrs)


def test_never_healthy_release_fails_and_live_keeps_serving(shared):
    shared.tag("v2-never", backend_env={"NEVER_HEALTHY": "1"})
    shared.write_config(deadline=6)

    failed = shared.cli("release", "v2-never", "--no-backup")
    assert failed.returncode == 1
    assert "step 'health'" in failed.stderr
    assert "green was not healthy after 6s" in failed.stderr
    # in the user's words: the service, its path and port, the keys; not the edge's own URL
    assert (
        "backend: GET /health on port 8080 of its container answered HTTP 503 "
        "(services.backend.health, services.backend.port)" in failed.stderr
    ), failed.stderr
    assert "_deployer/health" not in failed.stderr
    assert "--- last lines ---" in failed.stderr and "listening on" in failed.stderr
    assert shared.serving("/api/version") == ("v1", "blue")
    assert shared.containers("green") == []  # the failed release is gone
    assert shared.cli("lock", "status").stdout.strip() == "free"
    status = json.loads(shared.ok("status", "--json").stdout)
    last = status["releases"][-1]
    assert (last["action"], last["outcome"], last["step"], last["version"]) == (
        "release",
        "failed",
        "health",
        "v2-never",
    )
    assert "not healthy" in last["reason"] and last["seconds"] >= 6


def test_a_port_mismatch_fails_early_and_names_both_ports(shared):
    shared.tag("v2-port", backend_env={"LISTEN_PORT": "8090"})  # the app listens on 8090; the config says 8080
    shared.write_config(deadline=90)
    started = time.monotonic()
    failed = shared.cli("release", "v2-port", "--no-backup")
    assert failed.returncode == 1 and "step 'health'" in failed.stderr
    assert (
        "green cannot become healthy: backend listens on port 8090 in its container, "
        "not on services.backend.port = 8080" in failed.stderr
    ), failed.stderr
    assert time.monotonic() - started < 75  # once it listened elsewhere for 30 s: before the 90 s deadline
    assert shared.serving("/api/version") == ("v1", "blue")


def test_a_failed_release_keeps_the_old_standby_for_rollback(project):
    """The idle colour's previous release stops only after the new one passed health and smoke."""
    project.tag("v1")
    project.tag("v2")
    project.tag("v3", backend_env={"NEVER_HEALTHY": "1"})
    project.tag("v4")
    project.write_config(deadline=4)
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    project.ok("release", "v2", "--no-backup")

    failed = project.cli("release", "v3", "--no-backup")  # to blue, where v1 is the standby
    assert failed.returncode == 1
    assert "step 'health'" in failed.stderr and "blue was not healthy after 4s" in failed.stderr
    assert project.serving("/api/version") == ("v2", "green")
    blue = project.containers("blue")
    assert sorted((c.labels["deployer.version"], c.status) for c in blue) == [("v1", "running")] * 2
    project.ok("switch", "--to", "blue")  # the rollback target survived the failed release
    assert project.serving("/api/version") == ("v1", "blue")

    project.ok("release", "v4", "--no-backup")  # to green; v2 is told to stop
    assert project.serving("/") == ("v4", "green")
    green = [c for c in project.containers("green") if c.labels["deployer.version"] == "v4"]
    assert len(green) == 2 and all(c.status == "running" for c in green)
    release_id = green[0].labels["deployer.release"]
    assert {c.labels["com.docker.compose.project"] for c in green} == {f"{project.name}-green-{release_id}"}


def test_a_release_that_fails_its_smoke_check_changes_nothing(project):
    """Healthy on its health path, but a smoke path answers 500: the release stops at the
    smoke step (run in the health wait's last exec), live and the old standby stay."""
    project.tag("v1")
    project.tag("v2")
    project.tag("v3", backend_env={"ERROR_RATE": "1"})  # /api/ answers 500, /health 200
    project.write_config()
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    project.ok("release", "v2", "--no-backup")

    failed = project.cli("release", "v3", "--no-backup")  # to blue, where v1 is the standby
    assert failed.returncode == 1, failed.stderr
    assert "step 'smoke'" in failed.stderr and "smoke check failed" in failed.stderr
    assert "/api/version: HTTP 500" in failed.stderr
    assert project.serving("/api/version") == ("v2", "green")
    blue = project.containers("blue")
    assert sorted((c.labels["deployer.version"], c.status) for c in blue) == [("v1", "running")] * 2
    last = json.loads(project.ok("status", "--json").stdout)["releases"][-1]
    assert (last["outcome"], last["step"], last["version"]) == ("failed", "smoke", "v3")
    project.ok("switch", "--to", "blue")
    assert project.serving("/api/version") == ("v1", "blue")


def test_the_old_standby_is_told_to_stop_and_the_next_release_removes_it(project):
    """A release does not wait for the old standby's shutdown (the app's time, not the
    release's); the next release removes it, and kills one that outlived its stop_grace."""
    project.tag("v1", backend_env={"STOP_DELAY": "60"})  # goes on serving for 60 s after SIGTERM
    project.tag("v2")
    project.tag("v3")
    project.tag("v4")
    project.write_config()  # stop_grace = 5
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    project.ok("release", "v2", "--no-backup")
    released = project.ok("release", "v3", "--no-backup")  # to blue: v1 is told to stop
    assert "(told to stop; removed by the next release)" in released.stderr
    v1 = {c.labels["deployer.service"]: c for c in project.containers("blue") if c.labels["deployer.version"] == "v1"}
    assert set(v1) == {"backend", "frontend"}
    assert v1["backend"].status == "running"  # still in its STOP_DELAY: not waited for
    assert v1["backend"].attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"  # its exit will be final
    assert v1["backend"].attrs["HostConfig"]["CpuShares"] == 2  # its shutdown takes no CPU from live
    deadline = time.monotonic() + 20
    while project.docker.containers.get(v1["frontend"].id).status != "exited" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert project.docker.containers.get(v1["frontend"].id).status == "exited"  # exited on SIGTERM
    status = json.loads(project.ok("status", "--json").stdout)
    assert any("(v1, " in r for r in status["colours"]["blue"]["other_releases"])  # status shows it
    assert project.serving("/api/version") == ("v3", "blue")

    started = time.monotonic()
    project.ok("release", "v4", "--no-backup")  # to green; v1 goes: killed after its stop_grace
    assert time.monotonic() - started >= 4  # the backend still ran: stopped with its grace (5 s)
    assert not [c for c in project.containers("blue") if c.labels["deployer.version"] == "v1"]
    assert {c.labels["deployer.version"] for c in project.containers("blue")} == {"v3"}
    assert {c.labels["deployer.version"] for c in project.containers("green")} == {"v2", "v4"}  # v2: told


def test_a_release_is_judged_on_its_own_containers_not_on_the_old_standby(project):
    project.tag("v1", backend_env={"STOP_DELAY": "30"})  # stays healthy while it is told to stop
    project.tag("v2")
    project.tag("v3", backend_env={"NEVER_HEALTHY": "1"})
    project.write_config(deadline=4)
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    project.ok("release", "v2", "--no-backup")
    failed = project.cli("release", "v3", "--no-backup")  # to blue, where v1 is still healthy
    assert failed.returncode == 1 and "blue was not healthy after 4s" in failed.stderr


def test_crashing_release_gives_up_before_the_deadline(shared):
    shared.tag("v2-crash", backend_env={"CRASH_AFTER": "1", "STARTUP_DELAY": "30"})
    shared.write_config(deadline=60)

    started = time.monotonic()
    failed = shared.cli("release", "v2-crash", "--no-backup")
    took = time.monotonic() - started
    assert failed.returncode == 1
    assert "cannot become healthy" in failed.stderr and "exited" in failed.stderr
    assert "crashing as asked by CRASH_AFTER" in failed.stderr
    assert took < 30, f"waited {took:.0f}s for a crashed container"
    assert shared.serving("/api/version") == ("v1", "blue")
    assert shared.containers("green") == []


def test_switch_refuses_a_colour_without_a_release(shared):
    project = shared
    refused = project.cli("switch", "--to", "green")
    assert refused.returncode == 1
    assert "cannot switch to green: it has no release (release to it first)" in refused.stderr
    assert project.serving("/api/version") == ("v1", "blue")


def test_switch_refuses_an_unhealthy_colour_and_accepts_one_that_recovered(project):
    project.release_all("v1", "v2")
    blue_backend = next(c for c in project.containers("blue") if c.labels["deployer.service"] == "backend")
    blue_backend.exec_run(["touch", "/tmp/unhealthy"])
    refused = project.cli("switch", "--to", "blue")
    assert refused.returncode == 1
    assert "cannot switch to blue (v1): it is not healthy: its backend answers 503 on its health path" in refused.stderr
    assert project.serving("/api/version") == ("v2", "green")

    blue_backend.pause()
    paused = project.cli("switch", "--to", "blue")
    blue_backend.unpause()
    assert paused.returncode == 1 and "its backend is paused" in paused.stderr
    assert project.serving("/api/version") == ("v2", "green")

    # A restart does not bar a colour for ever: health is judged now.
    blue_backend.exec_run(["rm", "/tmp/unhealthy"])
    blue_backend.restart(timeout=5)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and project.cli("switch", "--to", "blue").returncode != 0:
        time.sleep(0.5)
    assert project.serving("/api/version") == ("v1", "blue")
    status = json.loads(project.ok("status", "--json").stdout)
    assert "restarts" in status["colours"]["blue"]["services"]["backend"]


def test_up_is_idempotent_and_the_edge_keeps_its_truth_across_a_restart(project):
    project.release_all("v1", "v2")
    project.ok("switch", "--to", "blue")
    infra = {c.name: c.id for c in project.docker.containers.list(filters={"name": f"{project.name}-infra-"})}
    assert len(infra) == 4  # ports (the edge's ports holder), edge, db, backup
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
        except httpx.HTTPError:  # the edge is still starting
            pass
        time.sleep(0.2)
    assert project.serving() == ("v1", "blue")  # the route state survived the restart
    assert project.serving("/") == ("v1", "blue")
    status = json.loads(project.ok("status", "--json").stdout)
    assert (status["live"], status["colours"]["green"]["version"]) == ("blue", "v2")


def test_up_adopts_running_releases_when_the_route_state_is_lost(project):
    project.release_all("v1", "v2")
    project.edge.exec_run(["sh", "-c", "rm /var/lib/deployer/state/blue /var/lib/deployer/state/green"])
    adopted = project.ok("up")
    assert "route state rebuilt from the running releases: blue v1, green v2" in adopted.stderr
    assert project.serving() == ("v2", "green")
    project.ok("switch", "--to", "blue")
    assert project.serving() == ("v1", "blue")


def test_down_removes_every_release_and_the_infrastructure_and_keeps_the_database(project):
    for version in ("v1", "v2"):  # images of their own, that no other test's container uses
        project.tag(version, backend_env={"BUILT_AS": version}, frontend_env={"BUILT_AS": version})
    project.ok("up")
    for version in ("v1", "v2"):
        project.ok("release", version, "--no-backup")
    assert len(project.containers("blue")) == len(project.containers("green")) == 2
    assert len(project.containers()) == 8  # and the edge, its ports holder, the database and the backup service

    def images() -> list[str]:  # (backend and frontend of a version are one image with two tags)
        found = [project.docker.images.list(f"{project.name}-{s}") for s in ("backend", "frontend")]
        return sorted({t for images in found for i in images for t in i.tags if t.startswith(project.name)})

    tags = images()
    assert len(tags) == 4
    every = project.cli("prune", "--keep", "0")  # while it runs: refused, nothing removed
    assert every.returncode == 2 and "runs after `deployer down`" in every.stderr, every.stderr
    assert images() == tags

    # Someone else's container on the edge network: `down` keeps the network and says why.
    edge_net = f"{project.name}-edge"
    foreign = project.docker.containers.run(
        project.app_image, ["sleep", "600"], name=f"other{project.name}", network=edge_net, detach=True
    )
    try:
        kept = project.ok("down")
        assert "database volume kept" in kept.stderr
        assert f"network {edge_net} kept (still used by other{project.name})" in kept.stderr, kept.stderr
        assert project.containers() == []
        assert project.docker.containers.list(all=True, filters={"name": f"^{project.name}-"}) == []
        assert project.docker.volumes.get(f"{project.name}-db-data").name == f"{project.name}-db-data"
        assert [n.name for n in project.docker.networks.list(names=[edge_net])] == [edge_net]
    finally:
        foreign.remove(force=True)

    refused = project.cli("down", "--volumes")  # no terminal to ask on, no --yes
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert project.docker.volumes.get(f"{project.name}-db-data")

    no_dump = project.cli("down", "--volumes", "--yes")  # the database is stopped: no final dump possible
    assert no_dump.returncode == 1, no_dump.stderr
    assert "step 'down'" in no_dump.stderr and "--no-backup" in no_dump.stderr, no_dump.stderr
    assert project.docker.volumes.get(f"{project.name}-db-data"), "the data went without its final dump"

    gone = project.ok("down", "--volumes", "--yes", "--no-backup")
    assert "database volume too" in gone.stderr and f"{project.name}-dumps" in gone.stderr
    assert "kept (" not in gone.stderr and project.docker.networks.list(names=[edge_net]) == []
    volumes = [v.name for v in project.docker.volumes.list()]
    assert f"{project.name}-db-data" not in volumes and f"{project.name}-dumps" in volumes
    # What down leaves, and how to remove it: the dumps by hand, the release images by prune.
    assert f"left: the dumps in {project.name}-dumps" in gone.stderr
    assert f"`docker volume rm {project.name}-dumps`" in gone.stderr
    assert "left: 4 release image tag(s) of the services (`deployer prune --keep 0` removes them)" in gone.stderr
    pruned = project.ok("prune", "--keep", "0")
    assert "backend: keeping nothing" in pruned.stderr and "removed 4 old release image tag(s)" in pruned.stderr
    assert images() == []


def test_a_deployment_of_the_same_name_from_another_config_is_not_touched(project, tmp_path):
    project.release_all("v1")
    ours = project.config.read_text()
    project.config.write_text(ours.replace("[project]\n", '[project]\nid = "otherconfig01"\n'))
    for args in (("up",), ("release", "v1", "--no-backup"), ("switch", "--to", "blue"), ("down", "--volumes", "--yes")):
        refused = project.cli(*args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert "was created from another config" in refused.stderr
    project.config.write_text(ours)
    assert project.serving() == ("v1", "blue")
    assert len(project.containers()) == 6  # 2 of the release, the edge, its ports holder, db, backup


def test_an_edge_left_unmarked_by_a_failed_first_up_is_taken_back(project):
    """A first `up` that failed while compose waited on health left an edge whose volume has no
    deployment mark. Its container's label names this config's deployment, so the next command
    marks it and goes on, instead of refusing it as another config's (and `down` along with it)."""
    project.config.write_text(project.config.read_text().replace("[project]\n", '[project]\nid = "unmarked01"\n'))
    project.ok("up")
    assert project.edge_file("/var/lib/deployer/deployment") == "unmarked01"
    code, out = project.edge.exec_run(["rm", "/var/lib/deployer/deployment"])
    assert code == 0, out
    project.release_all("v1")
    assert project.serving() == ("v1", "blue")
    assert project.edge_file("/var/lib/deployer/deployment") == "unmarked01"
    project.config.write_text(project.config.read_text().replace('id = "unmarked01"', 'id = "otherconfig02"'))
    refused = project.cli("release", "v1", "--no-backup")
    assert refused.returncode == 2 and "was created from another config" in refused.stderr, refused.stderr


def test_a_port_change_belongs_to_the_new_release_and_a_switch_back_still_works(project):
    """The port and routes of each colour are in that colour's route state: a release never
    changes how live traffic reaches the live colour, even when it fails."""
    from test_guards import LiveClient

    project.release_all("v1")  # backend on 8080
    project.tag("v2", backend_env={"NEVER_HEALTHY": "1"})
    project.tag("v3")
    client = LiveClient(project.live_url)
    client.start()
    try:
        project.write_config(deadline=4)
        project.config.write_text(project.config.read_text().replace("port = 8080", "port = 9090"))
        failed = project.cli("release", "v2", "--no-backup")
        assert failed.returncode == 1 and "not healthy" in failed.stderr
        assert project.serving() == ("v1", "blue")
        project.ok("release", "v3", "--no-backup")  # the new port, healthy
        assert project.serving() == ("v3", "green")
        green = next(c for c in project.containers("green") if c.labels["deployer.service"] == "backend")
        assert green.labels["deployer.port"] == "9090"
        project.ok("switch", "--to", "blue")  # back to the release that listens on 8080
        assert project.serving() == ("v1", "blue")
        time.sleep(0.5)
    finally:
        client.stop.set()
        client.join(timeout=10)
    assert client.ok > 20 and client.failed == 0, client.errors[:10]
