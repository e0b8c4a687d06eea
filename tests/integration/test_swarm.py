"""Swarm mode on a real three-node cluster (dockerd-in-container nodes and a registry,
tests/hosts): bad input, `up` with the database pinned by a label to a worker (the backup
agent on the manager), a release and a switch back under load (which the control's status
page, through `deployer page`, counts from both public replicas), scaling by a release, the
data and the backups across them, the edges' port 8081 closed to an app's task (the
edges' own sync and metrics pass, with the token), an edge replica that cannot take a switch (also
when the control's own reading of the files met the write first), a volume
removed on a worker (as `down --volumes` removes the database's), a worker node stopped
during traffic, `promote` from this cluster (staging) to a second swarm (production)
after the version's tag was pushed again with another image, and last `down`: held off by
a restore left running, and `--volumes` checking the worker's volume before removing anything.

The CLI runs here and reaches the manager over ssh; the load runs in a container on the
manager, against the two edge replicas' host-mode ports. The figures of the full scenario
are bench/swarm.py's (docs/benchmarks.md); this reduced one asserts what must hold and
prints what it measured.
"""

from __future__ import annotations

import json
import re
import socket
import time

import httpx
import pytest
from swarm_project import PORT, SwarmProject
from test_guards import wait_for_line

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def swarm(tmp_path_factory, docker_client, test_app_image):
    project = SwarmProject(tmp_path_factory.mktemp("swarm"), docker_client, test_app_image, db_on_worker=True)
    try:
        project.start()
        print(f"\ncluster and images: {', '.join(f'{k} {v:.1f}s' for k, v in project.timings.items())}")
        yield project
    finally:
        project.remove()


def refused(result, *words: str) -> None:
    """Exit 2, one line naming what is wrong, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_bad_input_exits_2_and_changes_nothing(swarm: SwarmProject):
    # A placement no node satisfies, for the edge and for a service: checked against the nodes first.
    swarm.write_config(swarm='edge_replicas = 2\nedge_constraints = ["node.labels.deployer.edge == nowhere"]\n')
    refused(swarm.cli("up"), "swarm.edge_constraints", "0 ready node(s)")
    swarm.write_config(swarm="edge_replicas = 4\n")
    refused(swarm.cli("up"), "swarm.edge_replicas", "4 edge replicas")
    swarm.write_config(placement='["node.hostname == nowhere"]')
    refused(swarm.cli("up"), "services.backend.placement", "no ready node")
    refused(swarm.cli("release", "v1", "--no-backup"), "services.backend.placement")
    # The database's constraints must match exactly one ready node (any node, not only the manager).
    edges = 'edge_replicas = 2\nedge_constraints = ["node.labels.deployer.edge == true"]\n'
    swarm.write_config(swarm=edges + 'db_constraints = ["node.labels.deployer.edge == true"]\n')
    refused(swarm.cli("up"), "swarm.db_constraints", "exactly one ready node", "but 2 do")
    swarm.write_config(swarm=edges + 'db_constraints = ["node.labels.deployer.db == nowhere"]\n')
    refused(swarm.cli("up"), "swarm.db_constraints", "but 0 do: none")
    # Replicas below 1.
    swarm.write_config(backend=0)
    refused(swarm.cli("up"), "services.backend.replicas")
    # An engine that is not a swarm manager: a worker.
    swarm.write_config()
    worker = swarm.config.read_text().replace(swarm.manager.docker_host, swarm.edge_worker.docker_host)
    swarm.config.write_text(worker)
    refused(swarm.cli("up", host=swarm.edge_worker), "needs a swarm manager", "a swarm worker")
    swarm.write_config()
    assert swarm.services() == [], "bad input created services"
    assert not [n for n in swarm.manager.client.networks.list() if n.name.startswith(swarm.name)]


def test_up_release_under_load_switch_back_and_scale(swarm: SwarmProject):
    took = swarm.timed("up")
    name = swarm.name
    assert swarm.services() == sorted(f"{name}-{s}" for s in ("db_backup", "db_db", "infra_control", "infra_edge")), (
        swarm.services()
    )
    edge_nodes = {t["NodeID"] for t in swarm.tasks(f"{name}-infra_edge")}
    assert len(edge_nodes) == 2, "one edge replica on each labelled node"
    assert swarm.node_of(f"{name}-db_db") == swarm.edge_worker.name, "the database on the labelled worker"
    assert swarm.node_of(f"{name}-db_backup") == swarm.manager.name, "the backup agent on the manager"
    print(f"up: {took:.1f}s")
    # Data written before the releases, in the database on the worker.
    swarm.psql("create table kept (id int primary key, note text); insert into kept values (1, 'before v1')")

    took = swarm.timed("release", "v1", "--no-backup")
    assert swarm.serving() == {("v1", "blue")}, "both edge replicas serve the release"
    assert len(swarm.tasks(f"{name}-blue-{json_release(swarm, 'blue')}_backend")) == 2
    answer = swarm.get(swarm.edge_urls[0] + "/api/version")
    assert answer.get("secret_files") == ["APP_TOKEN"], f"the app's secret is a file in its task: {answer}"
    print(f"release v1: {took:.1f}s")

    # A release and a switch back, under load on both edge replicas: nothing fails.
    load = swarm.load(45, paths=("/api/version", "/"))
    time.sleep(2)
    release_s = swarm.timed("release", "v2", "--no-backup")
    assert swarm.serving() == {("v2", "green")}
    switch_s = swarm.timed("switch", "--to", "blue")
    assert swarm.serving() == {("v1", "blue")}
    time.sleep(3)  # the load meets the switched route, then ends rather than waiting out its 45 s
    seen = swarm.finish(load, stop=True)
    print(f"release v2 {release_s:.1f}s, switch {switch_s:.1f}s under load: {json.dumps(seen)[:600]}")
    assert seen["failed"] == 0, seen["fails"]
    assert seen["ok"] > 100 and set(seen["versions"]) == {"v1", "v2"}

    # Scaling: the backend's replicas in the config, then a release (the idle colour gets them).
    swarm.write_config(backend=3)
    swarm.ok("release", "v3", "--no-backup")
    green = json_release(swarm, "green")
    tasks = swarm.tasks(f"{name}-green-{green}_backend")
    assert len(tasks) == 3 and len({t["NodeID"] for t in tasks}) >= 2, "three replicas, spread over nodes"
    assert swarm.resolve(f"backend-green-{green}") == {
        a.split("/")[0] for t in tasks for n in t["NetworksAttachments"] for a in n["Addresses"]
        if n["Network"]["Spec"]["Name"] == f"{name}-edge"
    }, "the route state's host name answers with every replica"  # fmt: skip
    assert swarm.serving() == {("v3", "green")}
    status = json.loads(swarm.ok("status", "--json").stdout)
    assert status["live"] == "green" and status["colours"]["green"]["version"] == "v3"
    assert status["colours"]["green"]["services"]["backend"]["status"] == "running 3/3"
    assert status["colours"]["blue"]["version"] == "v1", "the previous colour stays warm"
    assert status["edge"]["status"] == "running 2/2"
    assert [e["action"] for e in status["releases"]][-4:] == ["release", "release", "switch", "release"]

    # logs reads the service, every task on any node; exec runs in a task on the engine's node
    logs = swarm.ok("logs", "backend", "--tail", "20").stdout
    assert logs.count("version=v3 colour=green service=backend") >= 3, logs
    assert swarm.ok("exec", "backup", "cat", "/etc/hostname").stdout.strip(), "the agent's task on the manager"

    assert status["database"]["nodes"] == [swarm.edge_worker.name], status["database"]
    assert status["database"]["status"] == "running 1/1"
    assert status["backup_service"]["nodes"] == [swarm.manager.name], status["backup_service"]

    # The releases never touched the database: the data is there. The agent on the manager
    # dumps the database on the worker over the data network, checks the dump in a scratch
    # server beside the dumps, and restores it.
    assert swarm.psql("select note from kept") == "before v1"
    t = time.monotonic()
    dump = swarm.ok("backup", "now", "--label", "swarm").stdout.strip().splitlines()[-1]
    assert dump.startswith("dump-")
    verified = swarm.ok("backup", "verify", dump, "--restore")
    swarm.psql("update kept set note = 'changed after the dump'")
    swarm.ok("backup", "restore", dump, "--yes")
    assert swarm.psql("select note from kept") == "before v1", "restored on the worker from the manager's dumps"
    print(f"backup now, verify --restore, restore: {time.monotonic() - t:.1f}s\n{verified.stdout[-600:]}")
    text = swarm.ok("status").stdout
    print(text)
    assert swarm.edge_worker.name in text and swarm.manager.name in text, "status says where the database runs"
    page_sums_both_replicas(swarm, seen["by_path"]["/api/version"][0])


def page_sums_both_replicas(swarm: SwarmProject, sent: int) -> None:
    """`deployer page` on the operator's machine reaches the control's admin port through the
    manager's engine, and the page's hour counts the backend requests the load sent to both
    public replicas (half to each): the control's sampler sums every replica's figures."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    page = swarm.popen({}, "page", "--port", str(port))
    try:
        line = page.stdout.readline()
        assert line.startswith(f"http://127.0.0.1:{port}/_deployer/page/ "), (line, page.poll())
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 15  # the sampler's 10 s: long past the load here
            while True:
                series = client.get("/_deployer/page/series.json").json()
                counted = sum(r[1] * series["interval"] for r in series["services"].get("backend", []) if r[1])
                if counted >= 0.9 * sent or time.monotonic() > deadline:
                    break
                time.sleep(2)
            metrics = client.get("/_deployer/metrics").text
            assert "<title>deployer: status</title>" in client.get("/_deployer/page/").text
            assert client.get("/_deployer/sync").status_code == 404
    finally:
        page.terminate()
        out, err = page.communicate(timeout=30)
    summed = sum(int(n) for n in re.findall(r'^deployer_service_requests_total\{service="backend",.*\} (\d+)$',
                                           metrics, re.M))  # fmt: skip
    print(f"deployer page: the load sent {sent} backend requests, half to each replica; the page's hour counts"
          f" {counted:.0f}, the summed metrics {summed} ({time.monotonic() - t:.1f}s)")  # fmt: skip
    assert page.returncode == 0 and "Traceback" not in err, (page.returncode, out, err)
    assert counted >= 0.9 * sent and summed >= sent, (counted, summed, sent)


# From a container on the overlay: each address's answer on port 8081, or "closed".
PROBE = """
import http.client, json, sys
out = {}
for ip in sys.argv[1:]:
    for path in ("/", "/_deployer/health/blue", "/_deployer/metrics", "/_deployer/sync", "/_deployer/page/figures"):
        conn = http.client.HTTPConnection(ip, 8081, timeout=5)
        try:
            conn.request("GET", path)
            out[ip + path] = conn.getresponse().status
        except (http.client.RemoteDisconnected, ConnectionResetError):
            out[ip + path] = "closed"
        finally:
            conn.close()
print(json.dumps(out))
"""


def live_requests(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('deployer_requests_total{route="live"'))  # fmt: skip


def test_the_edges_port_8081_answers_the_other_edges_only(swarm: SwarmProject):
    """An app's task on the overlay gets no answer from any edge's port 8081, but a 403 on the
    three paths the edges use (they need the token); the control still sums the public replicas'
    metrics there (with the token)."""
    edges = swarm.resolve(f"{swarm.name}-infra_edge") | swarm.resolve(f"{swarm.name}-infra_control")
    assert len(edges) == 3, edges
    image = f"{swarm.name}-backend:{swarm.versions[0]}"
    code, out = swarm.manager.exec(["docker", "run", "--rm", "--network", f"{swarm.name}-edge", image,
                                    "python3", "-c", PROBE, *sorted(edges)])  # fmt: skip
    assert code == 0, out
    seen = json.loads(out.strip().splitlines()[-1])
    for ip in edges:
        assert [seen[ip + p] for p in ("/", "/_deployer/health/blue")] == ["closed", "closed"], seen
        guarded = ("/_deployer/metrics", "/_deployer/sync", "/_deployer/page/figures")
        assert [seen[ip + p] for p in guarded] == [403, 403, 403], seen
    swarm.serving()  # live requests reach the public replicas only
    control = swarm.manager.client.containers.get(swarm.control())
    metrics = "curl -s --max-time 5 http://127.0.0.1:8081/_deployer/metrics"
    own = live_requests(control.exec_run(["sh", "-c", metrics + "?edge_only=1"]).output.decode())
    summed = live_requests(control.exec_run(["sh", "-c", metrics]).output.decode())
    assert summed > own, (own, summed)


def test_a_replica_that_cannot_take_a_switch_makes_it_fail_everywhere(swarm: SwarmProject):
    """Every edge replica switches, or none does: a paused replica (it accepts connections and
    never answers) makes the switch fail, and after it resumes it serves the live colour."""
    before = swarm.serving()
    assert before == {("v3", "green")}
    worker = swarm.edge_worker.client
    replica = worker.containers.list(filters={"label": f"com.docker.swarm.service.name={swarm.name}-infra_edge"})[0]
    replica.pause()
    try:
        result = swarm.cli("switch", "--to", "blue")
    finally:
        replica.unpause()
    assert result.returncode == 1, result.stderr
    assert "not every edge replica took the new route state" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    for _ in range(6):  # the paused replica got the switch's push late: it must refuse it as stale
        assert swarm.serving() == before
        time.sleep(0.5)
    swarm.ok("switch", "--to", "blue")
    assert swarm.serving() == {("v1", "blue")}
    swarm.ok("switch", "--to", "green")


def test_a_writer_that_meets_the_controls_own_publish_waits_for_its_outcome(swarm: SwarmProject):
    """The control re-reads the route state every second, so it may start publishing a write
    before the writer's /reload arrives. With a paused replica that publish takes seconds;
    the writer's /reload waits for it and answers with the replicas' refusal, never with
    `another read of the route state is under way`, and nothing switches."""
    from deployer.core import scripts

    before = swarm.serving()
    assert before == {("v3", "green")}
    control = swarm.manager.client.containers.get(swarm.control())
    worker = swarm.edge_worker.client
    replica = worker.containers.list(filters={"label": f"com.docker.swarm.service.name={swarm.name}-infra_edge"})[0]
    reload = f"curl -s --max-time {scripts.NOTIFY_SECONDS} {scripts.CONTROL}/reload"
    replica.pause()
    try:  # a write whose /reload comes after the control's next reading of the files
        wrote = control.exec_run(["sh", "-c", scripts._set_live("blue") + " && sleep 1.5 && " + reload])
    finally:
        replica.unpause()
        control.exec_run(["sh", "-c", scripts._set_live("green") + " && " + scripts.NOTIFY])
    answer = wrote.output.decode()
    assert "not every edge replica took the new route state" in answer, answer
    for _ in range(4):
        assert swarm.serving() == before
        time.sleep(0.5)


def test_a_volume_on_a_worker_is_removed_by_a_task_there(swarm: SwarmProject):
    """What `down --volumes` does with the database's volume when the database runs on a worker
    (the manager's API reaches no other node's volumes): a one-shot task on that node, from the
    edge's image, removes it (retrying while a container still uses it) and says when there is
    none; the task's service is removed after."""
    from types import SimpleNamespace

    from deployer.adapters.node_task import remove_volume
    from deployer.adapters.swarm import Swarm

    worker = swarm.edge_worker.client
    node = next(
        n.id for n in swarm.manager.client.nodes.list() if n.attrs["Description"]["Hostname"] == swarm.edge_worker.name
    )
    image = swarm.manager.client.services.get(f"{swarm.name}-infra_control").attrs["Spec"]["TaskTemplate"][
        "ContainerSpec"
    ]["Image"]
    volume = f"{swarm.name}-scratch-data"
    worker.volumes.create(volume)
    cluster = Swarm(SimpleNamespace(sdk=swarm.manager.client))  # the adapter, on the manager's API
    t = time.monotonic()
    try:
        login = {"username": "deployer", "password": "unused"}  # the anonymous registry ignores a login
        assert remove_volume(cluster, node, volume, image=image, auth=login, step="down") is True
        assert volume not in {v.name for v in worker.volumes.list()}
        assert remove_volume(cluster, node, volume, image=image, auth=None, step="down") is False, "none there"
    finally:
        for v in worker.volumes.list(filters={"name": volume}):
            v.remove(force=True)
    assert not [s for s in swarm.services() if "-remove-" in s], "the one-shot services are removed"
    print(f"volume removed on {swarm.edge_worker.name}, and its absence told: {time.monotonic() - t:.1f}s")


def test_a_worker_node_stopped_during_traffic(swarm: SwarmProject):
    """What users see when a worker (app replicas, no edge) stops, and when the edge stops
    sending to the replicas it had."""
    lost = swarm.other_worker
    node_id = next(n.id for n in swarm.manager.client.nodes.list() if n.attrs["Description"]["Hostname"] == lost.name)
    green = json_release(swarm, "green")
    on_lost = {
        s: {a.split("/")[0] for t in swarm.tasks(f"{swarm.name}-green-{green}_{s}") if t["NodeID"] == node_id
            for n in t["NetworksAttachments"] for a in n["Addresses"] if n["Network"]["Spec"]["Name"] == f"{swarm.name}-edge"}
        for s in ("backend", "frontend")
    }  # fmt: skip
    assert on_lost["backend"], "the stopped node runs a replica of the live backend (3 replicas, 3 nodes)"
    load = swarm.load(50, paths=("/api/version", "/"))
    time.sleep(8)
    stopped = time.time()
    lost.container.stop(timeout=10)
    gone = {}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(gone) < 2:
        for s in ("backend", "frontend"):
            if s not in gone and not (swarm.resolve(f"{s}-green-{green}") & on_lost[s]):
                gone[s] = round(time.time() - stopped, 1)
        time.sleep(0.5)
    seen = swarm.finish(load)
    after = [f for f in seen["fails"] if f[0] > stopped - seen["start"] + 30]
    print(
        f"\nnode {lost.name} stopped: its replicas left DNS after {gone} s; under load "
        f"{seen['ok']} ok, {seen['failed']} failed by path {seen['by_path']}, max {seen['max_s']}s; "
        f"failures {[f for f in seen['fails']][:20]}"
    )
    assert set(gone) == {"backend", "frontend"}, "the edge stops resolving the lost replicas"
    assert not after, f"requests still fail 30 s after the node stopped: {after}"
    assert seen["by_path"]["/api/version"][0] > 0


def json_release(swarm: SwarmProject, colour: str) -> str:
    return json.loads(swarm.ok("status", "--json").stdout)["colours"][colour]["release"]


def test_promote_to_a_second_swarm_releases_stagings_image_not_the_tag_pushed_again(swarm: SwarmProject):
    """Staging is this cluster, where v2 was released healthy (the release test above);
    production is a second swarm, one manager beside it (its network, its registry). Then v2's
    tag is pushed again with another image. `promote v2` releases on production the image
    staging ran, pinned by the digest staging's nodes pulled, never what the tag names now; a
    version staging never released is refused (exit 2) and production is left as it was."""
    started = time.monotonic()
    name, registry = swarm.name, swarm.cluster.registry
    releases = [e for e in swarm.history() if e.get("action") == "release" and e.get("version") == "v2"]
    assert releases, "staging released v2 in the release test above"
    staged = releases[-1]
    assert staged.get("outcome", "ok") == "ok" and set(staged["swarm_images"]) == {"backend", "frontend"}, staged
    staged_digest = {s: ref.partition("@")[2] for s, ref in staged["swarm_images"].items()}

    def tag_names() -> str:
        return swarm.manager.client.api.inspect_distribution(f"{registry}/{name}-backend:v2")["Descriptor"]["digest"]

    swarm.push_again("v2", "ENV APP_BUILD=pushed-again\n")
    tag_now = tag_names()
    assert tag_now != staged_digest["backend"], "the tag names another image now"
    again = swarm.manager.client.images.get(f"{registry}/{name}-backend:v2").attrs["Config"]["Env"]
    assert "APP_BUILD=pushed-again" in again, "its answers say `build` (tests/app)"

    production = swarm.second_cluster()
    try:
        swarm.write_environments(production)
        envs, edge = swarm.environments, f"http://{production.manager.ip}:{PORT}"
        print(f"\nsecond cluster: {time.monotonic() - started:.1f}s")
        t = time.monotonic()
        swarm.ok("up", "-e", "production", config=envs)
        print(f"up on production: {time.monotonic() - t:.1f}s")
        on_staging = swarm.history()

        t = time.monotonic()
        promoted = swarm.ok("promote", "v2", "--from", "staging", "--to", "production", "--no-backup", config=envs)
        print(f"promote v2: {time.monotonic() - t:.1f}s")
        assert "[production] promoting v2 from staging" in promoted.stderr, promoted.stderr
        assert f"pulled {registry}/{name}-backend@{staged_digest['backend']}" in promoted.stderr, promoted.stderr
        assert "pushing" not in promoted.stderr, "the registry still has staging's digests: nothing is pushed"
        assert tag_names() == tag_now, "the promotion moved no tag"
        for path in ("/api/version", "/"):  # through production's edge: staging's image answers
            answer = swarm.get(edge + path)
            assert answer.get("version") == "v2" and "build" not in answer, (path, answer)
        [entry] = [e for e in swarm.history(production.manager) if e.get("action") == "release"]
        assert entry["promoted_from"] == "staging" and entry["images"] == staged["images"], entry
        assert entry["swarm_images"] == staged["swarm_images"], entry
        stack = f"{name}-{entry['colour']}-{entry['release']}"
        spec = production.manager.client.api.inspect_service(f"{stack}_backend")["Spec"]
        assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == staged["swarm_images"]["backend"]
        assert swarm.history() == on_staging, "promote only reads staging"

        # A version staging never released: exit 2, production as it was.
        before = swarm.history(production.manager), production.manager.client.api.services()
        refused(
            swarm.cli("promote", "v9", "--from", "staging", "--to", "production", config=envs),
            "staging never released v9",
            "nothing was changed",
        )
        assert (swarm.history(production.manager), production.manager.client.api.services()) == before
        assert swarm.get(edge + "/api/version").get("version") == "v2"
    finally:
        production.remove()
    print(f"promote to a second swarm, in all: {time.monotonic() - started:.1f}s")


def test_https_on_every_edge_replica_and_a_renewed_certificate_rolls_them(swarm: SwarmProject):
    """[edge.tls] on a swarm: each public edge replica serves HTTPS on its node's port with the
    uploaded certificate, which it reads from a swarm secret (the API never shows its key);
    `deployer edge reload` with a renewed certificate replaces the replicas with it."""
    import socket

    from edge_clients import HOST, der, install, make_cert, tls_context

    https, folder = 8443, swarm.folder
    first, second = make_cert(folder, "first"), make_cert(folder, "second")
    site_cert, site_key = folder / "site.crt", folder / "site.key"
    install(*first, site_cert, site_key)
    version = next(iter(swarm.serving()))[0]

    def https_get(ip: str, ctx) -> tuple[bytes, bytes]:
        """(the certificate the handshake presents, the answer) of GET /api/version on a new connection."""
        with socket.create_connection((ip, https), timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=HOST) as s:
            peer = s.getpeercert(binary_form=True)
            s.sendall(f"GET /api/version HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        return peer, answer

    tls = f'[edge.tls]\ncert = "{site_cert}"\nkey = "{site_key}"\nport = {https}\nredirect = false\n'
    swarm.write_config(extra=tls)
    try:
        up = swarm.ok("up")
        assert "certificate in the swarm secret" in up.stderr, up.stderr
        nodes = (swarm.manager.ip, swarm.edge_worker.ip)
        for ip in nodes:
            peer, answer = https_get(ip, tls_context(first[0]))
            assert peer == der(first[0]) and answer.startswith(b"HTTP/1.1 200"), (ip, answer[:300])
            assert f'"version": "{version}"'.encode() in answer.replace(b'":"', b'": "'), answer[-300:]
        edge = json.dumps(swarm.manager.client.api.inspect_service(f"{swarm.name}-infra_edge"))
        assert "PRIVATE KEY" not in edge and "deployer_tls" in edge, "the key travels only as a secret"

        install(*second, site_cert, site_key)  # renewed in place, as certbot does
        renewed = swarm.ok("edge", "reload")
        assert "every edge replica presents it" in renewed.stdout + renewed.stderr, renewed.stderr
        for ip in nodes:
            peer, answer = https_get(ip, tls_context(second[0]))
            assert peer == der(second[0]) and answer.startswith(b"HTTP/1.1 200"), (ip, answer[:300])
    finally:
        swarm.write_config()  # the next test's `up` takes HTTPS away again


def test_refresh_images_rebuilds_rolls_the_edge_and_keeps_the_database(swarm: SwarmProject):
    """`up --refresh-images` on a swarm: the deployer's images are built again without the cache
    on the manager (given its base image, as `docker pull` would) and pushed over their tags;
    swarm rolls the control, the agent and the edge replicas (one node at a time), and the
    database keeps its task and its image: a newer build of the same files waits for
    `--recreate-db` (the next test moves it)."""
    from deployer.config.model import DEFAULT_BASE_IMAGE

    name = swarm.name
    parts = ("infra_edge", "infra_control", "db_backup", "db_db")

    def images() -> dict[str, str]:
        specs = {p: swarm.manager.client.api.inspect_service(f"{name}-{p}")["Spec"] for p in parts}
        return {p: spec["TaskTemplate"]["ContainerSpec"]["Image"] for p, spec in specs.items()}

    def layers(ref: str) -> list[str]:
        """The layers of the manager's own build behind a service's `registry/name:tag@digest`."""
        local = "deployer-" + ref.partition("@")[0].rpartition("/deployer-")[2]
        return swarm.manager.client.images.get(local).attrs["RootFS"]["Layers"]

    before, db_task = images(), {t["ID"] for t in swarm.tasks(f"{name}-db_db")}
    built_before = {part: layers(before[part]) for part in ("db_db", "db_backup")}
    live = swarm.serving()
    swarm.manager.load_image(DEFAULT_BASE_IMAGE)
    first_run = len(swarm.manager.client.images.get(DEFAULT_BASE_IMAGE).attrs["RootFS"]["Layers"])
    t = time.monotonic()
    result = swarm.cli("up", "--refresh-images", timeout=1200)
    took = time.monotonic() - t
    assert result.returncode == 0, result.stdout + result.stderr
    assert "without the cache" in result.stderr and "rebuilding" in result.stderr, result.stderr
    assert "database: keeps running its image" in result.stderr, result.stderr
    after = images()
    for part in ("infra_edge", "infra_control", "db_backup"):
        old, new = before[part].partition("@"), after[part].partition("@")
        assert old[0] == new[0] and old[2] != new[2], (part, before[part], after[part])  # same tag, another build
    assert after["db_db"] == before["db_db"] and {t["ID"] for t in swarm.tasks(f"{name}-db_db")} == db_task
    # Every RUN step ran again, and the database image and the agent built by this one refresh
    # still share their PostgreSQL layer (the registry and the nodes hold it once).
    db, agent = layers(after["db_db"]), layers(after["db_backup"])
    assert db[first_run] == agent[first_run] != built_before["db_db"][first_run]
    assert agent[first_run + 1] != built_before["db_backup"][first_run + 1]
    assert swarm.serving() == live, "every edge replica, on its new image, serves the same release"
    print(f"up --refresh-images on the swarm: {took:.1f}s")


def test_up_keeps_the_database_running_unless_recreate_db_is_given(swarm: SwarmProject):
    """A setting of the database changed in the config: `up` refuses (exit 2) and the database
    keeps its task, as on one host; `up --recreate-db` takes a verified dump first, then swarm
    replaces the task, and the data is still there; `up` again leaves it alone."""
    service = f"{swarm.name}-db_db"

    def task() -> set[str]:
        return {t["ID"] for t in swarm.tasks(service)}

    def query(sql: str) -> str:
        for _ in range(60):  # bounded: a new task runs before PostgreSQL accepts connections
            try:
                return swarm.psql(sql)
            except AssertionError:
                time.sleep(1)
        return swarm.psql(sql)

    query("CREATE TABLE IF NOT EXISTS recreate_kept (v text); INSERT INTO recreate_kept VALUES ('before-recreate')")
    before = task()
    swarm.write_config(database='memory = "768m"')
    try:
        refused(swarm.cli("up"), "would make swarm replace the database's task", "settings changed", "--recreate-db")
        assert task() == before, "the database kept its task"
        recreated = swarm.ok("up", "--recreate-db")
        assert "dumping it before swarm replaces its task" in recreated.stderr, recreated.stderr
        assert task() != before, "swarm replaced the database's task"
        assert "before-recreate" in query("SELECT v FROM recreate_kept")
        dumps = json.loads(swarm.ok("backup", "list", "--json").stdout)
        assert any(d.get("label") == "before recreating the database" and d["ok"] for d in dumps), dumps
        after = task()
        swarm.ok("up")
        assert task() == after, "nothing changed since: the database is left alone"
    finally:
        swarm.write_config()


def test_down_holds_off_a_left_restore_and_checks_the_workers_volume_before_removing_anything(swarm: SwarmProject):
    """`down` on a swarm, last of the module. While a restore that a killed `backup restore`
    left runs in the agent, `down` is refused (exit 1) with everything still serving. Plain
    `down` keeps the volumes. With an unlabelled database volume on the worker,
    `down --volumes --yes` is refused (exit 2) before anything is removed, as on one host;
    typing the project name removes everything, that volume too, and keeps the dumps."""
    name, worker = swarm.name, swarm.edge_worker.client
    data = f"{name}-db-data"
    agent = swarm.manager.client.containers.list(filters={"label": f"com.docker.swarm.service.name={name}-db_backup"})[
        0
    ]

    def restores() -> list[str]:
        agent.reload()
        execs = [swarm.manager.client.api.exec_inspect(e) for e in agent.attrs.get("ExecIDs") or []]
        return [e["ID"] for e in execs if e.get("Running") and "restore" in e["ProcessConfig"].get("arguments", [])]

    dump = swarm.ok("backup", "now", "--label", "before-down").stdout.strip().splitlines()[-1]
    serving = swarm.serving()
    victim = swarm.popen(
        {"DEPLOYER_TEST_LEASE": "2", "DEPLOYER_TEST_PAUSE": "restore:15"}, "backup", "restore", dump, "--yes"
    )
    wait_for_line(victim, "test pause before restore")
    victim.kill()
    victim.wait(timeout=10)
    assert restores(), "the restore did not go on without its command"
    time.sleep(2.2)  # the killed holder's lease runs out
    held_off = swarm.cli("down")
    assert held_off.returncode == 1, held_off.stdout + held_off.stderr
    assert f"a restore of {dump} still runs in the backup service" in held_off.stderr, held_off.stderr
    assert swarm.serving() == serving, "nothing was changed"
    for _ in range(240):  # bounded: the restore's pause and the restore itself
        if not restores():
            break
        time.sleep(0.5)
    assert not restores(), "the restore never ended"

    swarm.ok("down")
    assert not [s for s in swarm.services() if s.startswith(f"{name}-")], swarm.services()
    assert data in {v.name for v in worker.volumes.list()}, "plain down keeps the database volume"
    worker.volumes.get(data).remove()
    worker.volumes.create(data)  # the same name, no label: not shown to be this deployment's
    swarm.ok("up")
    before = swarm.services(), {v.name for v in swarm.manager.client.volumes.list()}

    refused(swarm.cli("down", "--volumes", "--yes"), f"volume {data} on node {swarm.edge_worker.name}", "no label")
    assert (swarm.services(), {v.name for v in swarm.manager.client.volumes.list()}) == before, "nothing removed"
    assert data in {v.name for v in worker.volumes.list()}

    gone = swarm.typed(name, "down", "--volumes", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "final dump before the database volume goes" in gone.stderr, gone.stderr
    assert not [s for s in swarm.services() if s.startswith(f"{name}-")], swarm.services()
    assert data not in {v.name for v in worker.volumes.list()}, "the worker's volume went, once vouched for"
    left = {v.name for v in swarm.manager.client.volumes.list() if v.name.startswith(f"{name}-")}
    assert left == {f"{name}-dumps"}, f"only the dumps stay: {left}"
