"""[database] url_file: a deployment whose PostgreSQL is not one of its containers.

The external server here is a PostgreSQL with pgvector in a container of its own, outside the
deployment, reached at this machine's address on the project's edge network (a published
port), as another host or a managed service would be. The test walks the documented move
from the bundled database to it, with no row lost, then what a release, `status` and
`down --volumes` do with it.
"""

from __future__ import annotations

import json
import secrets

import pytest
from backup_data import FINGERPRINT, psql, seed, wait

from deployer.adapters.engine import Engine
from deployer.config.model import DEFAULT_BASE_IMAGE
from deployer.flows import images

pytestmark = pytest.mark.docker

EXTERNAL = 'url_file = "db.url"'


def external_server(project, docker_client, password: str):
    """A PostgreSQL with pgvector beside the deployment (its name starts with the project's, so
    the fixture removes it), published on the edge network's gateway at a free port."""
    engine = Engine()
    try:
        image = images.own_image(engine, "db", base_image=DEFAULT_BASE_IMAGE, say=print)
    finally:
        engine.close()
    gateway = docker_client.networks.get(f"{project.name}-edge").attrs["IPAM"]["Config"][0]["Gateway"]
    server = docker_client.containers.run(
        image,
        detach=True,
        name=f"{project.name}-external-pg",
        environment={"POSTGRES_USER": "app", "POSTGRES_PASSWORD": password, "POSTGRES_DB": "shop"},
        ports={"5432/tcp": (gateway, None)},
    )
    wait(lambda: server.exec_run(["pg_isready", "-q", "-d", "shop"]).exit_code == 0, 60, "the external server")
    # pg_isready answers during initdb's own temporary start: wait for the real server's port
    # (the port the wait saw: asking again could meet a psql that a loaded engine fails once)
    port = wait(lambda: _published(server), 30, "the external server's published port")
    return server, gateway, port


def _published(server) -> str:
    server.reload()
    bound = (server.attrs["NetworkSettings"]["Ports"] or {}).get("5432/tcp") or []
    ok = bound and server.exec_run(["psql", "-XAtq", "-U", "app", "-d", "shop", "-c", "select 1"]).exit_code == 0
    return bound[0]["HostPort"] if ok else ""


def test_the_move_to_an_external_database_loses_no_row_and_down_never_touches_it(project, docker_client):
    project.tag("v1")
    project.ok("up")
    bundled = docker_client.containers.get(f"{project.name}-infra-db-1")
    seed(bundled, rows=300)
    before = psql(bundled, FINGERPRINT)
    project.ok("release", "v1", "--no-backup")

    password = f"ext-{secrets.token_hex(8)}"
    server, host, port = external_server(project, docker_client, password)
    url = project.folder / "db.url"
    url.write_text(f"postgresql://app:{password}@{host}:{port}/shop\n")
    url.chmod(0o600)
    project.ok("maintenance", "on")  # the documented move: nothing writes while the data moves
    project.write_config(database=EXTERNAL)

    # The bundled database still runs: `up` refuses to remove it, and changes nothing.
    refused = project.cli("up")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--recreate-db" in refused.stderr and "Traceback" not in refused.stderr
    assert bundled.reload() or bundled.status == "running"

    # With --recreate-db: a verified dump of the bundled database, its container removed, its volume kept.
    moved = project.ok("up", "--recreate-db")
    assert "dumping the bundled one" in moved.stdout + moved.stderr
    assert not docker_client.containers.list(all=True, filters={"name": f"^{project.name}-infra-db-1$"})
    assert docker_client.volumes.get(f"{project.name}-db-data")
    listed = json.loads(project.ok("backup", "list", "--json").stdout)
    dump = next(d["name"] for d in reversed(listed) if "leaving the bundled" in (d.get("label") or ""))

    # The dump restored into the external server: the same rows, vectors included.
    restored = project.ok("backup", "restore", dump, "--yes")
    assert "items\t300" in restored.stdout
    assert psql(server, FINGERPRINT, db="shop") == before

    # status names the server; a release checks it first and dumps it before it starts.
    status = json.loads(project.ok("status", "--json").stdout)["database"]
    assert status["status"] == "external" and status["health"] == "reachable", status
    assert status["where"] == f"{host}:{port}/shop" and status["server"].startswith("17")
    assert status["pgvector"][0].isdigit(), status
    assert f"database: external at {host}:{port}/shop: PostgreSQL 17" in project.ok("status").stdout
    no_container = project.cli("logs", "db")
    assert no_container.returncode == 2 and "external" in no_container.stderr, no_container.stderr
    project.tag("v2")
    released = project.ok("release", "v2")
    said = released.stdout + released.stderr
    assert f"the external database at {host}:{port}/shop answers" in said
    project.ok("maintenance", "off")
    assert project.serving() == ("v2", "green")
    assert password not in said and password not in json.dumps(status)
    shop_dumps = [d for d in json.loads(project.ok("backup", "list", "--json").stdout) if d["database"] == "shop"]
    assert shop_dumps, "the release took no dump of the external database"

    # A password rotation: the server's, then url_file's; `up` makes the agent again with it.
    rotated = f"rot-{secrets.token_hex(8)}"
    psql(server, f"alter user app password '{rotated}'", db="shop")
    url.write_text(f"postgresql://app:{rotated}@{host}:{port}/shop\n")
    again = project.ok("up")
    assert "password changed in url_file" in again.stdout + again.stderr
    assert "the agent is made again" not in project.ok("up").stdout  # only when it differs
    taken = project.ok("backup", "now").stdout.strip().splitlines()[-1]
    assert next(d for d in json.loads(project.ok("backup", "list", "--json").stdout) if d["name"] == taken)["ok"]

    # An external server that does not answer stops the next release at preflight; live stays.
    server.stop(timeout=10)
    project.tag("v3")
    stopped = project.cli("release", "v3")
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "preflight" in stopped.stderr and "does not answer" in stopped.stderr
    assert project.serving() == ("v2", "green")
    down_status = json.loads(project.ok("status", "--json").stdout)["database"]
    assert down_status["health"] == "unreachable"

    # down --volumes removes the deployment, never the external server's data (nor the old volume).
    server.start()
    wait(lambda: _published(server), 60, "the external server again")
    down = project.ok("down", "--volumes", "--yes")
    assert "external database was not touched" in down.stdout + down.stderr
    assert psql(server, FINGERPRINT, db="shop") == before
    assert docker_client.volumes.get(f"{project.name}-db-data")
