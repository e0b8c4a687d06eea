"""Maintenance mode and disk hygiene, through the real CLI on the real engine.

- `maintenance on` and `off` under load from the three kinds of client (bench/load.py):
  requests started while it is on get the 503 page with Retry-After, requests in flight
  when it starts finish normally, nothing fails after `off`, and no connection is ever
  dropped (no reload). The preview route and the deployer's own probes keep working: a
  switch runs during maintenance.
- `prune` keeps exactly the right images: the newest N of each service, every version a
  colour's route state names, every image a container uses; it removes the project's
  dangling build layers and nothing else; a release prunes after itself, and the edge forgets
  the metrics of the releases no colour holds: at once on `prune`, and without it only once
  the release has been gone for the grace.
"""

from __future__ import annotations

import functools
import io
import json
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from load import KINDS, Load

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    s = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("mnt"), docker_client, test_app_image)
    try:
        for i in range(1, 7):  # p1..p6: each backend version its own image, newest last
            s.tag(f"p{i}", backend_env={"BUILD": f"p{i}"})
        s.ok("up")
        s.ok("release", "p1", "--no-backup")
        s.ok("release", "p2", "--no-backup")
        yield s
    finally:
        s.destroy()


def timed(stack, *args: str) -> tuple[float, float]:
    began = time.monotonic()
    result = stack.cli(*args)
    assert result.returncode == 0, result.stderr
    return began, time.monotonic()


def test_maintenance_on_and_off_under_load_for_every_kind_of_client(stack):
    traffic = Load(stack.live_url, clients=2, slow=1, rate=10, duration=90, max_requests=2_000).start()
    try:
        time.sleep(2.5)
        on_began, on_done = timed(stack, "maintenance", "on", "--message", "Upgrading the shop, back at 11:00.")
        time.sleep(2.5)
        page = httpx.get(stack.live_url + "/api/version", timeout=5)
        posted = httpx.post(stack.live_url + "/api/echo", content=b"x" * 5000, timeout=5)
        preview = httpx.get(stack.preview_url + "/api/version", timeout=5)
        status = json.loads(stack.ok("status", "--json").stdout)
        switched = stack.cli("switch", "--to", "blue")  # its checks come from inside the edge
        time.sleep(1.5)
        off_began, off_done = timed(stack, "maintenance", "off")
        time.sleep(2.5)
    finally:
        records = traffic.stop()

    assert page.status_code == 503 and page.headers["retry-after"] == "300"
    assert page.headers["content-type"].startswith("text/html")
    assert "Upgrading the shop, back at 11:00." in page.text and "<h1>Down for maintenance</h1>" in page.text
    assert posted.status_code == 503
    assert preview.status_code == 200 and preview.json()["version"] == "p1"  # the standby, on the preview
    assert status["maintenance"]["message"] == "Upgrading the shop, back at 11:00."
    assert switched.returncode == 0, switched.stderr
    assert stack.serving() == ("p1", "blue")

    for kind in KINDS:
        mine = [r for r in records if r.kind == kind]
        assert len(mine) > 30, kind
        assert not [r for r in mine if r.error], f"{kind}: a connection failed"
        before = [r for r in mine if r.end <= on_began or r.start < on_began]
        during = [r for r in mine if on_done <= r.start and r.end <= off_began]
        after = [r for r in mine if r.start >= off_done]
        assert before and during and after, kind
        assert all(200 <= r.status < 300 for r in before), f"{kind}: a request from before `on` failed"
        assert all(r.status == 503 and not r.version for r in during), f"{kind}: not the maintenance page"
        assert all(200 <= r.status < 300 for r in after), f"{kind}: a request failed after `off`"
    # requests in flight when maintenance began finished normally
    assert [r for r in records if r.lane == "slow" and r.start < on_began < r.end and r.status == 200]
    assert httpx.get(stack.live_url + "/api/version", timeout=5).status_code == 200
    assert json.loads(stack.ok("status", "--json").stdout)["maintenance"] is None


def tags(stack, repository: str) -> set[str]:
    return {
        t.split(":")[1] for i in stack.docker.images.list(repository) for t in i.tags if t.startswith(repository + ":")
    }


def test_prune_keeps_exactly_the_right_images(stack):
    backend = f"{stack.name}-backend"
    assert stack.serving() == ("p1", "blue")  # green holds p2: both are route state
    used = stack.docker.containers.create(f"{backend}:p3", name=f"{stack.name}-keeps-p3")  # a stopped container
    junk = f"{stack.name}-junk:x"  # a project build, then built again: the first becomes dangling
    labels = {"deployer.project": stack.name}
    build = functools.partial(stack.docker.images.build, rm=True, forcerm=True)  # leaves no builder container
    first, _ = build(fileobj=io.BytesIO(f"FROM {stack.app_image}\nENV J=1\n".encode()), tag=junk, labels=labels)
    build(fileobj=io.BytesIO(f"FROM {stack.app_image}\nENV J=2\n".encode()), tag=junk, labels=labels)
    stack.images.append(junk)
    other, _ = build(fileobj=io.BytesIO(f"FROM {stack.app_image}\nENV J=3\n".encode()))  # dangling, not ours
    try:
        dry = stack.cli("prune", "--keep", "2", "--dry-run")
        assert dry.returncode == 0 and "would remove " + f"{backend}:p4" in dry.stderr, dry.stderr
        assert tags(stack, backend) == {f"p{i}" for i in range(1, 7)}

        result = stack.cli("prune", "--keep", "2")
        assert result.returncode == 0, result.stderr
        # newest two (p6, p5), the route state (p1, p2), the one a container uses (p3)
        assert tags(stack, backend) == {"p1", "p2", "p3", "p5", "p6"}
        assert tags(stack, f"{stack.name}-frontend") == {f"p{i}" for i in range(1, 7)}  # all one image, in use
        from docker.errors import ImageNotFound

        with pytest.raises(ImageNotFound):
            stack.docker.images.get(first.id)  # the project's dangling layer went
        assert stack.docker.images.get(other.id)  # another's stayed
    finally:
        used.remove(force=True)
        try:
            stack.docker.images.remove(other.id, force=True)
        except Exception:
            pass


def release_of(stack, colour: str) -> str:
    return stack.containers(colour)[0].labels["deployer.release"]


def metric_releases(stack) -> set[str]:
    """The releases that the edge's cumulative metrics have series of ('-': no release, the
    maintenance page's 503s)."""
    text = httpx.get(stack.preview_url + "/_deployer/metrics", timeout=10).text
    return {line.split('release="')[1].split('"')[0] for line in text.splitlines() if 'release="' in line} - {"-"}


def test_a_release_prunes_after_itself(stack):
    stack.write_config(disk="keep_versions = 2")
    p1, p2 = release_of(stack, "blue"), release_of(stack, "green")
    for path in ("/api/version", "/api/items"):
        assert stack.get(path).status_code == 200
    assert httpx.get(stack.preview_url + "/api/version", timeout=10).status_code == 200  # p2, the standby
    assert {p1, p2} <= metric_releases(stack)
    result = stack.cli("release", "p6", "--no-backup")  # to green: p2 is told to stop; prune
    assert result.returncode == 0, result.stderr
    assert "prune: removed" in result.stderr
    # the edge forgot the counters of the release no colour holds, and only those
    assert f"forgot the edge's metrics of gone release(s) {p2}" in result.stderr, result.stderr
    assert p2 not in metric_releases(stack) and p1 in metric_releases(stack)
    # blue's p1 (live before, now the standby), green's p6, the newest two (p6, p5), and
    # p2, whose containers are still there (stopping: a release does not wait for them)
    assert tags(stack, f"{stack.name}-backend") == {"p1", "p2", "p5", "p6"}
    result = stack.cli("release", "p5", "--no-backup")  # to blue: p2's containers go, then its image
    assert result.returncode == 0, result.stderr
    assert tags(stack, f"{stack.name}-backend") == {"p1", "p5", "p6"}  # p1: told to stop now
    assert f"forgot the edge's metrics of gone release(s) {p1}" in result.stderr, result.stderr
    left = metric_releases(stack)
    assert p1 not in left and p2 not in left and len(left) == 2, left  # p5's and p6's (their health checks)
    status = json.loads(stack.ok("status", "--json").stdout)["disk"]
    assert status["images"]["count"] >= 2 and status["database"]["used"] > 0 and status["database"]["free"] > 0
    assert status["dumps"]["free"] > 0


def test_without_prune_a_gone_release_is_forgotten_after_its_grace_and_not_before(stack):
    from harness import current_release

    from deployer.core import scripts

    stack.write_config()  # no prune after a release
    stack.tag("p7", backend_env={"BUILD": "p7"})
    live, gone = current_release(stack, "blue"), current_release(stack, "green")  # the route state's
    assert httpx.get(stack.preview_url + "/api/version", timeout=10).status_code == 200  # green counts
    began = time.monotonic()
    result = stack.cli("release", "p7", "--no-backup")  # to green: its release before goes
    assert result.returncode == 0, result.stderr
    assert "forgot" not in result.stderr and gone in metric_releases(stack)

    def forget(grace: int) -> list[str]:
        # what worker 0's timer does every minute with a grace of ten minutes
        code, out = stack.edge.exec_run(["sh", "-c", f"{scripts.FORGET_METRICS}?grace={grace}"])
        assert code == 0, out
        return out.decode().split()[1:]

    grace = 15  # longer than the release took from its switch to its exit
    noted = time.monotonic()
    assert forget(grace) == []  # the first sweep notes when it went; the edge's workers share it
    assert gone in metric_releases(stack)
    time.sleep(8)
    # a reload (new workers) keeps the clock: it is in the shared dict, not in a worker
    assert stack.edge.exec_run(["nginx", "-s", "reload"]).exit_code == 0
    forgotten, deadline = [], time.monotonic() + grace + 20
    while not forgotten and time.monotonic() < deadline:
        time.sleep(1)
        forgotten = forget(grace)
    assert forgotten == [gone], forgotten
    assert time.monotonic() - began >= grace  # not before its grace
    assert time.monotonic() - noted < grace + 6  # nor restarted by the reload (that: >= grace + 8)
    left = metric_releases(stack)
    assert gone not in left and live in left, left
