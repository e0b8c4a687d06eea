"""The database's safety through the real CLI, on real PostgreSQL:

- a release's migration runs as a one-off container of the new image, on the data
  network, with the service's env file and its secrets as files, before the release starts;
- a failing migration stops the release with live serving and the database as it was,
  shows the migration's output and names the pre-release dump with the exact command that
  restores it (which works);
- a database login that does not connect stops a release within seconds, before anything starts;
- `up` refuses to recreate the database when its settings changed, and `up --recreate-db`
  dumps first and keeps the data.

The backend here is the test app on top of the backup agent's image, for its psql.
"""

from __future__ import annotations

import io
import json
import time
import uuid

import pytest

pytestmark = pytest.mark.docker

PASSWORD = "test-secret-pw"  # the database's (tests/stack.py)
TOKEN = "tok-left-in-env-4711"  # a secret the config forgot to list in `secrets`
MIGRATE = (
    '["sh", "-c", "PGPASSWORD=$(cat $DB_PASSWORD_FILE) '
    'psql -X -q -v ON_ERROR_STOP=1 -1 -h db -U $DB_USER -d app -f /migrate.sql"]'
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    folder = tmp_path_factory.mktemp("db")
    s = Stack(f"t{uuid.uuid4().hex[:8]}", folder, docker_client, test_app_image)
    env = folder / "backend.env"
    env.write_text(f"DB_USER=app\nDB_PASSWORD={PASSWORD}\nAPI_TOKEN={TOKEN}\n")
    env.chmod(0o600)
    services = f"""
        [services.backend]
        image = "{s.name}-backend"
        port = 8080
        health = "/health"
        routes = ["/api/"]
        stop_grace = 5
        env_file = "backend.env"
        secrets = ["DB_PASSWORD"]
        db_login = {{ user = "DB_USER", password = "DB_PASSWORD" }}
        migrate = {MIGRATE}

        [services.frontend]
        image = "{s.name}-frontend"
        port = 8081
        health = "/health"
        routes = ["/"]
        stop_grace = 5
        """
    try:
        s.write_config(services=services)
        s.tag("v1", services=("frontend",))
        s.tag("v2", services=("frontend",))
        s.ok("up")
        s.agent_image = docker_client.containers.get(f"{s.name}-infra-backup-1").image.id
        yield s
    finally:
        s.destroy()


def backend(stack, version: str, sql: str) -> None:
    """The test app, in an image with psql, and its migration as /migrate.sql."""
    dockerfile = (
        f"FROM {stack.agent_image}\nCOPY --from={stack.app_image} /app/app.py /app/app.py\n"
        f"RUN printf '%s' {json.dumps(sql)} > /migrate.sql\n"
        'USER 10001:10001\nENTRYPOINT []\nCMD ["python3", "/app/app.py"]\n'
    )
    ref = f"{stack.name}-backend:{version}"
    stack.docker.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
    stack.images.append(ref)


def psql(stack, sql: str) -> str:
    db = stack.docker.containers.get(f"{stack.name}-infra-db-1")
    code, out = db.exec_run(["psql", "-U", "app", "-d", "app", "-Atc", sql])
    assert code == 0, out
    return out.decode().strip()


def columns(stack) -> list[str]:
    return psql(stack, "select column_name from information_schema.columns where table_name='items' order by 1").split()


def migrations_left(stack) -> list:
    return stack.docker.containers.list(
        all=True, filters={"label": [f"deployer.project={stack.name}", "deployer.kind=migrate"]}
    )


def preflight_leftovers(stack) -> str:
    """What the login preflight left in the backup container's /tmp (its password file's folder)."""
    backup = stack.docker.containers.get(f"{stack.name}-infra-backup-1")
    return backup.exec_run(["sh", "-c", "ls -a /tmp | grep deployer-preflight || true"]).output.decode().strip()


def test_a_migration_runs_before_the_release_starts(stack):
    backend(stack, "v1", "CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2);")
    result = stack.cli("release", "v1", "--no-backup")
    assert result.returncode == 0, result.stderr
    assert "preflight: the database login of backend connects" in result.stderr
    assert preflight_leftovers(stack) == ""
    assert result.stderr.index("migrate: backend done") < result.stderr.index("blue healthy")
    assert psql(stack, "select count(*) from items") == "2"
    assert stack.serving() == ("v1", "blue")
    assert not migrations_left(stack)
    assert PASSWORD not in result.stderr + result.stdout
    # A secret-looking key that is not in `secrets` is an environment variable: said, not shown.
    warned = [line for line in result.stderr.splitlines() if "warning: backend: " in line]
    assert len(warned) == 1 and "API_TOKEN (from backend.env) looks like a secret" in warned[0], result.stderr
    assert "services.backend.secrets" in warned[0] and TOKEN not in result.stderr + result.stdout


def test_a_failing_migration_leaves_live_and_the_database_as_they_were(stack):
    backend(stack, "v2", "ALTER TABLE items ADD COLUMN note text; SELECT no_such_function();")
    result = stack.cli("release", "v2")  # with its pre-release dump
    assert result.returncode == 1, result.stderr
    assert "MigrationError in step 'migrate'" in result.stderr
    assert "no_such_function" in result.stderr  # the migration's own output
    assert "live is untouched" in result.stderr
    dump = result.stderr.split("deployer backup restore ", 1)[1].split()[0]
    assert f"deployer backup restore {dump} --yes" in result.stderr
    assert stack.serving() == ("v1", "blue")
    assert columns(stack) == ["id"]  # the migration's transaction rolled back
    assert not stack.containers("green") and not migrations_left(stack)
    entry = json.loads(stack.edge_file("/var/lib/deployer/history.jsonl").splitlines()[-1])
    assert (entry["outcome"], entry["step"], entry["version"]) == ("failed", "migrate", "v2")

    psql(stack, "INSERT INTO items VALUES (3)")  # a change after the dump: the restore takes it away
    restored = stack.cli("backup", "restore", dump, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert psql(stack, "select count(*) from items") == "2"
    assert stack.serving() == ("v1", "blue")


def test_a_login_that_does_not_connect_stops_the_release_in_seconds(stack):
    env = stack.folder / "backend.env"
    good = env.read_text()
    env.write_text("DB_USER=app\nDB_PASSWORD=not-the-password-123\n")
    try:
        began = time.monotonic()
        result = stack.cli("release", "v2", "--no-backup")
        took = time.monotonic() - began
    finally:
        env.write_text(good)
    assert result.returncode == 1, result.stderr
    assert "LoginError in step 'preflight'" in result.stderr
    assert "password authentication failed" in result.stderr
    assert "not-the-password-123" not in result.stderr + result.stdout
    assert preflight_leftovers(stack) == ""
    assert took < 20, took
    assert not stack.containers("green") and stack.serving() == ("v1", "blue")


def test_a_database_change_is_refused_and_an_explicit_recreate_keeps_the_data(stack):
    db = lambda: stack.docker.containers.get(f"{stack.name}-infra-db-1")  # noqa: E731
    before = db().id
    db_env = stack.folder / "db.env"
    db_env.write_text(db_env.read_text() + "TZ=Europe/Paris\n")

    refused = stack.cli("up")
    assert refused.returncode == 2, refused.stderr
    assert "would recreate the database container" in refused.stderr and "environment (TZ)" in refused.stderr
    assert "deployer up --recreate-db" in refused.stderr
    assert db().id == before and db().status == "running"

    recreated = stack.cli("up", "--recreate-db")
    assert recreated.returncode == 0, recreated.stderr
    assert "dumping it before it is recreated" in recreated.stderr and "written and verified" in recreated.stderr
    assert db().id != before
    assert psql(stack, "select count(*) from items") == "2"
    assert "TZ=Europe/Paris" in db().attrs["Config"]["Env"]
    again = stack.cli("up")
    assert again.returncode == 0, again.stderr
    assert stack.serving() == ("v1", "blue")
