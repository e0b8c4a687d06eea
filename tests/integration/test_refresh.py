"""Security updates of the deployer's own images: their tags name the base image's ID, so a
newer base image gives new images; `deployer up --refresh-images` builds them again without
the build cache; and either way the edge is replaced beside the running one with no failed
request (flows/edge_roll.py), while the database keeps running until `--recreate-db`.

The load runs only against the project's own live port on 127.0.0.1 (bench/load.py: keep-alive
clients that never retry, browser-like ones, and a new connection per request), bounded.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from load import KINDS, Event, Load, analyse

pytestmark = pytest.mark.docker


def derived_base(client, ref: str, marker: str) -> str:
    """A base image of the test's own under `ref`: debian:trixie-slim and one file; its ID."""
    dockerfile = f"FROM debian:trixie-slim\nRUN echo {marker} > /etc/deployer-test-base\n"
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
    return image.id


def remove_images(client, refs: list[str]) -> None:
    """Children first: an image with a child cannot go."""
    for ref in refs:
        try:
            client.images.remove(ref, force=True)
        except Exception:
            pass


def container_id(project, part: str) -> str:
    return project.docker.containers.get(f"{project.name}-infra-{part}-1").id


def image_of(project, part: str) -> tuple[str, str]:
    """(tag, image ID) a part of the infrastructure runs."""
    attrs = project.docker.api.inspect_container(f"{project.name}-infra-{part}-1")
    return attrs["Config"]["Image"], attrs["Image"]


def under_load(project, *args: str, seconds: float = 300):
    """`deployer up ARGS` while the three kinds of client run; (its result, the load's counts)."""
    traffic = Load(project.live_url, clients=2, slow=1, rate=5, duration=seconds, max_requests=6_000)
    traffic.start()
    try:
        time.sleep(1.0)
        start = time.monotonic()
        result = project.cli("up", *args, timeout=seconds)
        end = time.monotonic()
        time.sleep(1.0)
    finally:
        records = traffic.stop()
    counts = analyse(records, [Event("deployer", "up", start, end, "blue", "v1")])
    return result, counts, records, (start, end)


def assert_no_failure(counts, result) -> None:
    for kind in KINDS:
        c = counts[kind]
        assert c["requests"] > 20, f"{kind}: too little traffic to judge: {c}"
        assert c["failures"] == 0, f"{kind}: failed requests: {c['errors']}\n{result.stderr}"


def test_own_image_tags_name_the_base_image_and_change_with_it(project, docker_client):
    from deployer.adapters.engine import Engine
    from deployer.flows import images

    ref = f"{project.name}-base:1"
    built: list[str] = []
    engine = Engine()
    try:
        first = derived_base(docker_client, ref, "one")
        built.append(images.own_image(engine, "edge", base_image=ref, say=print))
        second = derived_base(docker_client, ref, "two")  # the same reference, another image
        built.append(images.own_image(engine, "edge", base_image=ref, say=print))
        again = images.own_image(engine, "edge", base_image=ref, say=print)
        labels = docker_client.images.get(built[1]).labels
    finally:
        engine.close()
        remove_images(docker_client, [*reversed(built), ref, first])
    (inputs1, base1), (inputs2, base2) = (t.split(":")[1].split("-") for t in built)
    assert inputs1 == inputs2  # the deployer's own files did not change
    assert (base1, base2) == (first[7:19], second[7:19])  # the base image's ID did
    assert again == built[1]  # found, not built again
    assert labels["deployer.own"] == "edge" and labels["deployer.base"] == ref and labels["deployer.base-id"] == second


def test_a_base_image_the_engine_lacks_is_pulled_by_its_name_else_the_last_build_is_kept(project):
    """An engine without the base image (a swarm manager, which holds only the images it was
    given) asks the base image's registry for `NAME:TAG`, or `NAME:latest` for a bare `NAME`
    as `docker pull` does; when none answers, the own image built from the same files is kept."""
    from deployer.adapters.engine import Engine
    from deployer.config.model import DEFAULT_BASE_IMAGE
    from deployer.flows import images

    said: list[str] = []
    engine = Engine()
    try:
        inputs = images.own_image(engine, "edge", base_image=DEFAULT_BASE_IMAGE, say=print).split(":")[1][:12]
        missing = (f"{project.name}-base:1", f"{project.name}-base", f"127.0.0.1:1/{project.name}-base")
        kept = [images.own_image(engine, "edge", base_image=ref, say=said.append) for ref in missing]
    finally:
        engine.close()
    assert all(tag.startswith(f"deployer-edge:{inputs}-") for tag in kept), kept
    pulled = [line.split("(pulling ", 1)[1].split(" ")[0] for line in said if "not pulled (pulling " in line]
    assert pulled == [missing[0], f"{missing[1]}:latest", f"{missing[2]}:latest"], said


@pytest.mark.parametrize(
    "refresh",
    # --refresh-images rebuilds the three own images without the cache, minutes here: the
    # nightly tier runs it on one host, `make test` on a swarm (test_swarm.py)
    [pytest.param(False, id="new-base"), pytest.param(True, id="and-refresh", marks=pytest.mark.long)],
)
def test_a_new_base_image_and_refresh_images_replace_the_edge_under_load(project, docker_client, refresh):
    project.release_all("v1")
    edge_before = container_id(project, "edge")
    again = project.ok("up")  # idempotent: nothing is replaced when nothing changed
    assert "replaced" not in again.stderr and container_id(project, "edge") == edge_before
    db_before = container_id(project, "db")
    ref = f"{project.name}-base:1"
    base = derived_base(docker_client, ref, "one")
    text = project.config.read_text().replace('restart = "no"', f'restart = "no"\nbase_image = "{ref}"', 1)
    project.config.write_text(text)
    try:
        # A newer base image: new own images (built first, as `up` would: a build takes minutes
        # here); the edge is replaced under load, the database kept.
        from concurrent.futures import ThreadPoolExecutor

        from deployer.adapters.engine import Engine
        from deployer.flows import images

        engine = Engine()
        try:  # side by side (the test's own shortcut: 41 s against 53 s one after another here)
            with ThreadPoolExecutor(max_workers=3) as pool:
                built = [pool.submit(images.own_image, engine, part, base_image=ref, say=print) for part in
                         ("edge", "db", "agent")]  # fmt: skip
                for future in built:
                    future.result()
        finally:
            engine.close()
        result, counts, _, _ = under_load(project)
        assert result.returncode == 0, result.stderr
        assert_no_failure(counts, result)
        assert "edge: replaced with no interruption" in result.stderr, result.stderr
        assert "database: keeps running its image" in result.stderr and "--recreate-db" in result.stderr
        assert container_id(project, "db") == db_before
        edge_tag, edge_id = image_of(project, "edge")
        assert edge_tag.endswith(f"-{base[7:19]}") and image_of(project, "backup")[0].endswith(f"-{base[7:19]}")
        assert container_id(project, "edge") != edge_before
        assert (
            project.serving() == ("v1", "blue") and project.edge_file("/var/lib/deployer/state/live").strip() == "blue"
        )
        status = json.loads(project.ok("status", "--json").stdout)
        edge = status["images"]["edge"]
        assert edge["image"] == edge_tag and edge["age_days"] == 0 and edge["old"] is False and edge["base"] == ref
        assert status["images_warning"] is None

        if refresh:  # the same tags, built again without the cache; the edge replaced again
            result, counts, _, _ = under_load(project, "--refresh-images", seconds=1200)
            assert result.returncode == 0, result.stderr
            assert_no_failure(counts, result)
            assert "without the build cache" in result.stderr
            assert "edge: replaced with no interruption" in result.stderr
            assert image_of(project, "edge")[0] == edge_tag and image_of(project, "edge")[1] != edge_id
            assert container_id(project, "db") == db_before
            assert project.serving() == ("v1", "blue")

        # The database moves only when asked, after a verified dump.
        moved = project.ok("up", "--recreate-db")
        assert "dumping it before it is recreated" in moved.stderr, moved.stderr
        db_tag, db_id = image_of(project, "db")
        assert container_id(project, "db") != db_before and db_tag.endswith(f"-{base[7:19]}")
        assert db_id == docker_client.images.get(db_tag).id
        shown = project.ok("status").stdout
        assert f"images: edge {edge_tag} built " in shown and "(0 days ago)" in shown, shown
        assert project.serving() == ("v1", "blue")
    finally:
        project.destroy()  # before its images can go
        built = docker_client.images.list(all=True, filters={"label": f"deployer.base-id={base}"})
        remove_images(docker_client, [i.id for i in built] + [ref, base])


def test_up_moves_an_edge_of_the_earlier_layout_onto_its_ports_holder(project):
    """An edge made by an earlier version published the ports itself; `up` moves it onto the
    ports holder once (new connections are refused for a moment: bench/edge_roll.py measures
    it), and the route state, the release and the database are as they were."""
    project.release_all("v1")
    db_before = container_id(project, "db")
    project.to_earlier_layout()
    assert not project.edge.attrs["HostConfig"]["NetworkMode"].startswith("container:")  # the earlier layout
    result = project.ok("up")
    assert "edge: moved; the public port was closed for" in result.stderr, result.stderr
    assert project.edge.attrs["HostConfig"]["NetworkMode"].startswith("container:")
    assert container_id(project, "db") == db_before
    assert project.serving() == ("v1", "blue") and project.edge_file("/var/lib/deployer/state/live").strip() == "blue"
    again = project.ok("up")
    assert "moved" not in again.stderr and "replaced" not in again.stderr


def test_up_finishes_a_replacement_that_a_killed_up_left(project):
    """Killed between its two renames, a replacement leaves two edges and none with the edge's
    name: the next `up` gives the name to the edge started last and drains the other away."""
    project.release_all("v1")
    first = container_id(project, "edge")
    project.second_edge()
    project.docker.containers.get(first).rename(f"{project.name}-infra-edge-1-old")
    result = project.ok("up")
    assert "finished the replacement" in result.stderr, result.stderr
    edges = project.docker.containers.list(
        all=True, filters={"label": [f"deployer.project={project.name}", "deployer.role=edge"]}
    )
    assert [e.name for e in edges] == [f"{project.name}-infra-edge-1"] and edges[0].id != first
    assert project.serving() == ("v1", "blue")

    # A ports change (HTTPS on) makes a new ports holder, and compose recreates the edge with
    # it, naming it after its number (2 now): the edge's name goes back to it.
    from edge_clients import install, make_cert

    (project.folder / "tls").mkdir()
    install(*make_cert(project.folder, "cert"), project.folder / "tls/cert.pem", project.folder / "tls/key.pem")
    project.write_config(edge='[edge.tls]\ncert = "tls/cert.pem"\nkey = "tls/key.pem"\nport = 0\nredirect = false\n')
    tls_on = project.ok("up")
    assert "its ports changed" in tls_on.stderr and "HTTPS port" in tls_on.stderr, tls_on.stderr
    assert project.edge.name == f"{project.name}-infra-edge-1" and project.edge.status == "running"
    assert project.serving() == ("v1", "blue")


def test_refresh_images_in_swarm_mode_on_an_engine_that_is_no_manager_changes_nothing(project):
    """Swarm mode rebuilds and rolls with --refresh-images (tests/integration/test_swarm.py);
    pointed at an engine that is no swarm manager, it is bad input before anything is built."""
    text = project.config.read_text().replace("[project]", '[engine]\nmode = "swarm"\n\n[project]', 1)
    project.config.write_text(text + '\n[registry]\nurl = "127.0.0.1:5999/shop"\nanonymous = true\n')
    result = project.cli("up", "--refresh-images")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs a swarm manager" in lines[0] and "nothing was changed" in lines[0], result.stderr
    assert project.containers() == []
