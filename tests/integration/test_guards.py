"""What must not happen: two releases at once, a lock that outlives its holder for ever, a
cancel that breaks live traffic, a broken nginx config, bad input with side effects."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
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


def wait_for_line(process, words: str, timeout: float = 60) -> list[str]:
    """Read the process's stderr until a line holds `words`; returns the lines read."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in process.stderr:
            lines.append(line)
            if words in line:
                done.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout), f"never saw {words!r}: {''.join(lines)}"
    return lines


class LiveClient(threading.Thread):
    """One keep-alive client on the live route that never retries, for the length of a test."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ok, self.failed, self.errors = url, 0, 0, []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5, transport=httpx.HTTPTransport(retries=0)) as client:
            for _ in range(20_000):  # bounded: about 10 minutes at the pace below
                if self.stop.is_set():
                    return
                try:
                    r = client.get(self.url + "/api/version")
                    if r.status_code == 200:
                        self.ok += 1
                    else:
                        self.failed += 1
                        self.errors.append(r.status_code)
                except httpx.HTTPError as exc:
                    self.failed += 1
                    self.errors.append(type(exc).__name__)
                time.sleep(0.03)


def test_a_second_release_is_refused_while_one_holds_the_lock(project):
    project.tag("v1")
    project.tag("v2", backend_env={"STARTUP_DELAY": "6"})
    project.ok("up")
    project.ok("release", "v1", "--no-backup")

    first = project.popen("release", "v2", "--no-backup")
    try:
        holder = wait_for_lock(project)
        assert "release v2" in holder and "lease runs" in holder
        second = project.cli("release", "v1", "--no-backup")
        assert second.returncode == 1
        assert "holds the lock" in second.stderr and "release v2" in second.stderr
        switch = project.cli("switch", "--to", "blue")
        assert switch.returncode == 1 and "holds the lock" in switch.stderr
        refused = project.cli("lock", "release")
        assert refused.returncode == 1 and "the lock is live" in refused.stderr
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert project.serving("/api/version") == ("v2", "green")
    assert project.cli("lock", "status").stdout.strip() == "free"


def test_a_killed_release_leaves_a_lock_whose_lease_runs_out(project):
    """SIGKILL runs no undo: the lease tells everyone, on any machine, that the holder is gone."""
    project.tag("v1")
    project.tag("v2", backend_env={"STARTUP_DELAY": "20"})
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    env = {"DEPLOYER_TEST_LEASE": "3"}
    victim = project.popen_env(env, "release", "v2", "--no-backup")
    wait_for_lock(project)
    deadline = time.monotonic() + 30
    while not project.containers("green") and time.monotonic() < deadline:
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    time.sleep(4)
    status = project.cli("lock", "status").stdout
    assert "STALE" in status and "release v2" in status
    # A rollback is never blocked by a crashed release: switch takes the stale lock over.
    switched = project.cli("switch", "--to", "blue")
    assert switched.returncode == 0, switched.stderr
    assert "took over a stale lock" in switched.stderr and "already live" in switched.stderr

    project.tag("v3")
    released = project.ok("release", "v3", "--no-backup")
    assert project.serving("/api/version") == ("v3", "green")
    # What the killed release left behind was undone before anything else.
    assert "an unfinished release of v2 to green" in released.stderr and "was undone" in released.stderr
    green = project.containers("green")
    assert {c.labels["deployer.version"] for c in green} == {"v3"} and len(green) == 2
    assert project.cli("lock", "status").stdout.strip() == "free"


def test_an_edge_that_dies_mid_release_fails_it_in_its_own_step_and_up_recovers(project):
    """The lock lives in the edge, so when the edge itself fails, freeing the lock fails too:
    that must not hide the release's own error. `up` then brings the edge back with its live
    colour; the lease runs out and the pending mark undoes the rest."""
    project.release_all("v1")
    project.tag("v2")
    failing = project.popen_env(
        {"DEPLOYER_TEST_LEASE": "3", "DEPLOYER_TEST_PAUSE": "smoke:2"}, "release", "v2", "--no-backup"
    )
    wait_for_line(failing, "test pause before smoke")
    project.edge.kill()
    err = failing.communicate(timeout=120)[1]
    assert failing.returncode == 1, err
    failure = [line for line in err.splitlines() if line.startswith("ERROR (")]
    assert len(failure) == 1 and "in step 'unlock'" not in failure[0], err  # the release's own step
    assert "could not free the lock" in err and "internal" not in err, err

    # nginx killed leaves its control socket behind; the edge must still start again.
    project.ok("up")
    assert project.serving("/api/version") == ("v1", "blue")
    time.sleep(4)  # the lease, 3 s in this test, runs out
    assert "STALE" in project.cli("lock", "status").stdout
    project.tag("v3")
    released = project.ok("release", "v3", "--no-backup")
    assert "an unfinished release of v2 to green" in released.stderr, released.stderr
    assert project.serving("/api/version") == ("v3", "green")
    assert {c.labels["deployer.version"] for c in project.containers("green")} == {"v3"}
    assert project.cli("lock", "status").stdout.strip() == "free"


def test_a_release_that_stalled_past_its_lease_stops_when_it_wakes(project):
    """A stopped process (Ctrl-Z, a suspended machine) loses its lease; another release
    takes the lock over and undoes the unfinished one. When the first one wakes, it must
    change nothing more: not its next step, and not the route state in its undo, where it
    would wipe the second release's pending mark (so that, the second one killed, nobody
    would undo it)."""
    project.release_all("v1")
    project.tag("v2")
    project.tag("v3")
    stalled = project.popen_env(
        {"DEPLOYER_TEST_LEASE": "3", "DEPLOYER_TEST_PAUSE": "health:10"}, "release", "v2", "--no-backup"
    )
    wait_for_line(stalled, "test pause before health")
    stalled.send_signal(signal.SIGSTOP)
    time.sleep(4)  # past its 3 s lease
    second = project.popen_env(
        {"DEPLOYER_TEST_LEASE": "3", "DEPLOYER_TEST_PAUSE": "health:120"}, "release", "v3", "--no-backup"
    )
    try:
        try:
            said = "".join(wait_for_line(second, "test pause before health"))
            assert "took over a stale lock" in said and "an unfinished release of v2" in said, said
        finally:
            stalled.send_signal(signal.SIGCONT)
        err = stalled.communicate(timeout=120)[1]
        assert stalled.returncode == 1, err
        assert "in step 'health'" in err and "lock was lost" in err, err
        pending = project.edge_file("/var/lib/deployer/state/pending")
        assert "version v3" in pending, f"the stalled release's undo changed the route state: {pending!r}\n{err}"
    finally:
        second.kill()  # killed at its health pause: its lock and its pending mark stay behind
        second.communicate(timeout=30)
    time.sleep(4)  # past its lease
    took = project.cli("up")
    assert took.returncode == 0, took.stderr
    assert "an unfinished release of v3" in took.stderr, took.stderr
    assert project.serving("/api/version") == ("v1", "blue")
    assert project.containers("green") == []
    assert project.cli("lock", "status").stdout.strip() == "free"


STEPS = ("lock", "images", "backup", "start", "health", "smoke", "switch")


@pytest.mark.parametrize(
    "steps",
    [
        # the steps with something to undo: containers started, healthy ones, the switch's own
        pytest.param(("start", "smoke", "switch"), id="sample"),
        pytest.param(STEPS, id="every", marks=pytest.mark.long),
    ],
)
def test_a_cancel_at_every_step_leaves_live_serving(project, steps):
    """SIGTERM (a cancelled CI job) at the start of each step, and between the switch's
    swap and its verification: live always answers, the lock is freed, the history says
    what happened, and the next release needs no command first. `make test` cancels at a
    sample of the steps, the nightly tier at every one."""
    project.tag("v1")
    project.tag("v2")
    project.ok("up")
    project.ok("release", "v1", "--no-backup")
    client = LiveClient(project.live_url)
    client.start()
    live = ("v1", "blue")
    try:
        for step in steps:
            cancelled = project.popen_env({"DEPLOYER_TEST_PAUSE": f"{step}:30"}, "release", "v2", "--no-backup")
            wait_for_line(cancelled, f"test pause before {step}")
            cancelled.send_signal(signal.SIGTERM)
            assert cancelled.wait(timeout=60) == 130, step
            assert project.serving("/api/version") == live, step
            assert project.cli("lock", "status").stdout.strip() == "free", step
            last = json.loads(project.ok("status", "--json").stdout)["releases"][-1]
            assert (last["outcome"], last["step"]) == ("cancelled", step), last
            assert project.containers("green") == [], step  # the new release is gone

        # Cancelled while the switch runs in the edge, after the swap and before the verify:
        # the switch finishes, and the cancel does not remove what is now live.
        cancelled = project.popen_env({"DEPLOYER_TEST_COMMIT_PAUSE": "3"}, "release", "v2", "--no-backup")
        wait_for_line(cancelled, "healthy after")
        time.sleep(1.0)
        cancelled.send_signal(signal.SIGTERM)
        out = cancelled.communicate(timeout=60)[1]
        assert cancelled.returncode == 130
        assert "the switch had completed" in out
        assert project.serving("/api/version") == ("v2", "green")
        assert project.cli("lock", "status").stdout.strip() == "free"
        last = json.loads(project.ok("status", "--json").stdout)["releases"][-1]
        assert (last["version"], last["outcome"]) == ("v2", "ok")
    finally:
        client.stop.set()
        client.join(timeout=10)
    assert client.ok > 100
    assert client.failed == 0, client.errors[:10]


def test_a_template_that_fails_nginx_t_leaves_the_live_config_untouched(shared):
    project = shared
    site_before = project.edge_file("/var/lib/deployer/site.conf")
    (project.folder / "broken.conf.j2").write_text("server { listen 80; location / { proxy_pass nowhere; } \n")
    project.write_config(edge='template = "broken.conf.j2"\n')

    failed = project.cli("up")
    assert failed.returncode == 2  # bad input: checked in a throwaway edge, before the real one sees it
    assert (
        "edge.template: nginx -t rejects the rendered site" in failed.stderr and "invalid URL prefix" in failed.stderr
    )
    assert project.edge_file("/var/lib/deployer/site.conf") == site_before
    assert project.serving("/api/version") == ("v1", "blue")


@pytest.mark.parametrize(
    "edge, database, status, words",
    [
        ('template = "broken.conf.j2"\n', "", 2, "edge.template: nginx -t rejects the rendered site"),
        ("", 'image = "nowhere-pgvector:17"\n', 1, "database image nowhere-pgvector:17 does not exist"),
    ],
)
def test_a_first_up_that_is_refused_creates_nothing(project, edge, database, status, words):
    (project.folder / "broken.conf.j2").write_text("server { listen 80; location / { proxy_pass nowhere; } \n")
    project.write_config(edge=edge)
    if database:
        project.config.write_text(project.config.read_text().replace("[database]\n", "[database]\n" + database))
    failed = project.cli("up")
    assert failed.returncode == status and words in failed.stderr, failed.stderr
    assert project.containers() == []
    assert project.docker.networks.list(filters={"name": project.name}) == []
    assert project.docker.volumes.list(filters={"name": project.name}) == []


@pytest.mark.parametrize(
    "args, words",
    [
        (("release", "v1;reboot", "--no-backup"), "invalid version 'v1;reboot'"),
        (("release", "-v1", "--no-backup"), "No such option '-v'"),
        (("release", ".v1", "--no-backup"), "invalid version '.v1'"),
        (("release", "x" * 129, "--no-backup"), "invalid version"),
        (("switch", "--to", "purple"), "unknown colour 'purple'"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(shared, args, words):
    project = shared
    before = ({c.id for c in project.containers()}, project.edge_file("/var/lib/deployer/state/blue"))
    history = project.edge_file("/var/lib/deployer/history.jsonl")

    result = project.cli(*args)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert ({c.id for c in project.containers()}, project.edge_file("/var/lib/deployer/state/blue")) == before
    assert project.edge_file("/var/lib/deployer/history.jsonl") == history


def test_a_broken_config_exits_2_and_changes_nothing(shared):
    project = shared
    state = project.edge_file("/var/lib/deployer/state/blue")
    project.config.write_text(project.config.read_text().replace("port = 8080", 'port = "eighty"'))
    for args in (("release", "v1", "--no-backup"), ("switch", "--to", "green"), ("up",), ("status",)):
        result = project.cli(*args)
        assert result.returncode == 2, result.stderr
        assert "services.backend.port" in result.stderr and str(project.config) in result.stderr
    assert project.edge_file("/var/lib/deployer/state/blue") == state
    assert project.get("/api/version").json()["version"] == "v1"


def test_up_names_the_port_that_is_already_taken(project):
    """Another program holds the live port: `up` says which port and which key, not only the
    engine's error, and runs once the port is free."""
    import socket

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        project.config.write_text(project.config.read_text().replace("public_port = 0", f"public_port = {port}"))
        failed = project.cli("up")
        assert failed.returncode == 1, failed.stderr
        assert f"port {port} is already in use on the Docker host" in failed.stderr
        assert "set another edge.public_port" in failed.stderr and "step 'up'" in failed.stderr
        assert "Traceback" not in failed.stderr
    finally:
        holder.close()
    project.ok("up")
    assert project.port(80) == port


@pytest.mark.parametrize(
    "args",
    [
        ("release", "v1", "--no-backup"),
        ("switch", "--to", "green"),
        ("watch",),
        ("maintenance", "on"),
        ("lock", "status"),
        ("backup", "now"),
    ],
)
def test_a_command_before_up_says_to_run_up_and_creates_nothing(project, args):
    project.tag("v1")
    result = project.cli(*args)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "(run `deployer up`)" in lines[0], result.stderr  # no warning, no traceback
    assert project.containers() == []
    assert project.docker.volumes.list(filters={"name": project.name}) == []
    assert project.docker.networks.list(filters={"name": project.name}) == []


def test_status_before_up_says_to_run_up(project):
    result = project.cli("status")
    assert result.returncode == 0, result.stderr
    assert "edge: missing/none  (run `deployer up`)" in result.stdout
    assert project.containers() == []
