"""Secrets stay secret: a known database password (also the backend's datasource password,
delivered as a file) and a webhook token, looked for in every channel the deployer
writes to, on success and on each kind of failure; and env files whose paths hold a
space and a `$`, whose values are data that cannot change another setting."""

from __future__ import annotations

import io
import json
import uuid

import docker.errors
import pytest

pytestmark = pytest.mark.docker

PASSWORD = "pw-Kq9x-secret-4711"
TOKEN = "tok-Zx81-webhook-77aa"
SECRETS = (PASSWORD, TOKEN)

SERVICES = """
[services.backend]
image = "{name}-backend"
port = 8080
health = "/health"
routes = ["/api/"]
stop_grace = 5
env_file = "env files/my $ecrets.env"
secrets = ["SPRING_DATASOURCE_PASSWORD", "spring.datasource.url"]

[services.frontend]
image = "{name}-frontend"
port = 8081
health = "/health"
routes = ["/"]
stop_grace = 5
"""

BACKEND_ENV = f"""\
SPRING_DATASOURCE_PASSWORD={PASSWORD}
spring.datasource.url=postgres://app:{PASSWORD}@db:5432/app
LITERAL=a$HOME#b
QUOTED="x # y"
COMMENTED=z # a comment
PORT=9999
APP_COLOUR=purple
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    folder = tmp_path_factory.mktemp("secrets")
    s = Stack(f"t{uuid.uuid4().hex[:8]}", folder, docker_client, test_app_image)
    try:
        (folder / "db.env").write_text(f"POSTGRES_USER=app\nPOSTGRES_PASSWORD={PASSWORD}\n")
        (folder / "env files").mkdir()
        s.backend_env = folder / "env files" / "my $ecrets.env"
        s.backend_env.write_text(BACKEND_ENV)
        s.backend_env.chmod(0o600)
        s.write_config(
            services=SERVICES.format(name=s.name),
            deadline=20,
            extra=f'\n[backup]\nwebhook = "http://{s.name}-hook.invalid/hooks/{TOKEN}"\nwebhook_timeout = 1\n',
        )
        s.outputs = []  # (what, text): every output the tests collected
        yield s
    finally:
        s.destroy()


def run(stack, *args: str, code: int = 0, env: dict | None = None):
    result = stack.popen_env(env or {}, *args)
    out, err = result.communicate(timeout=300)
    assert result.returncode == code, (args, out, err)
    stack.outputs.append((f"deployer {' '.join(args)} (exit {code})", out + err))
    return out, err


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_success_outputs_hold_no_secret(stack):
    stack.tag("v1")
    run(stack, "up", env={"DEPLOYER_DEBUG": "1"})
    run(stack, "release", "v1", env={"DEPLOYER_DEBUG": "1"})  # with its backup
    run(stack, "backup", "now")
    run(stack, "status")
    run(stack, "status", "--json")
    run(stack, "backup", "list", "--json")
    run(stack, "lock", "status")
    for what, text in stack.outputs:
        assert leaks(text) == [], what


def test_the_secret_is_a_file_and_the_rest_of_the_env_file_is_data(stack):
    (backend,) = [c for c in stack.containers("blue") if c.labels.get("deployer.service") == "backend"]
    code, out = backend.exec_run(["cat", "/run/secrets/SPRING_DATASOURCE_PASSWORD"])
    assert code == 0 and out.decode() == PASSWORD  # readable by the app's own user (10001)
    env = dict(item.split("=", 1) for item in backend.attrs["Config"]["Env"])
    assert "SPRING_DATASOURCE_PASSWORD" not in env and "spring.datasource.url" not in env
    assert env["SPRING_DATASOURCE_PASSWORD_FILE"] == "/run/secrets/SPRING_DATASOURCE_PASSWORD"
    # A dotted key is a file Spring Boot's configtree: import reads as that property.
    code, out = backend.exec_run(["cat", "/run/secrets/spring.datasource.url"])
    assert code == 0 and out.decode() == f"postgres://app:{PASSWORD}@db:5432/app"
    # Values are taken literally: no interpolation, and `#` inside a value stays.
    assert env["LITERAL"] == "a$HOME#b" and env["QUOTED"] == "x # y" and env["COMMENTED"] == "z"
    # An env file cannot change what the deployer sets.
    assert env["PORT"] == "8080" and env["APP_COLOUR"] == "blue"


def test_failures_print_no_secret(stack):
    # A release whose backend prints its secrets and then exits: the failure shows its
    # last log lines, masked.
    ref = f"{stack.name}-backend:v2"
    dockerfile = (
        f"FROM {stack.app_image}\n"
        'CMD ["sh", "-c", "echo password $(cat /run/secrets/SPRING_DATASOURCE_PASSWORD); '
        'echo url $(cat /run/secrets/spring.datasource.url); exit 3"]\n'
    )
    stack.docker.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
    stack.images.append(ref)
    stack.tag("v2", services=("frontend",))
    _, err = run(stack, "release", "v2", "--no-backup", code=1)
    assert "--- last lines ---" in err and "password *****" in err, err
    # A compose error (docker refuses the container: more CPUs than the host has), relayed
    # with compose's stderr.
    good = stack.config.read_text()
    stack.config.write_text(good.replace("stop_grace = 5\nenv_file", "stop_grace = 5\ncpus = 1000\nenv_file", 1))
    try:
        _, err = run(stack, "release", "v1", "--no-backup", code=1)
        assert "start" in err
    finally:
        stack.config.write_text(good)
    # Bad input: an env file line that holds the password is reported by its number.
    stack.backend_env.write_text(BACKEND_ENV + f"oops {PASSWORD}\n")
    try:
        _, err = run(stack, "release", "v1", "--no-backup", code=2)
        assert "line 8 is not KEY=VALUE" in err
    finally:
        stack.backend_env.write_text(BACKEND_ENV)
    # A dump that cannot be taken (the database is stopped): the backup agent calls the
    # webhook (whose host does not exist); neither the failure nor that call shows its URL.
    db = stack.docker.containers.get(f"{stack.name}-infra-db-1")
    db.stop(timeout=10)
    try:
        _, err = run(stack, "backup", "now", code=1)
        assert "does not answer" in err
    finally:
        db.start()
    for what, text in stack.outputs:
        assert leaks(text) == [], what


def test_nothing_on_the_host_holds_a_secret(stack):
    history = stack.edge_file("/var/lib/deployer/history.jsonl")
    assert history.count("\n") >= 3 and leaks(history) == []
    for c in stack.containers():
        c.reload()
        inspect = json.dumps(c.attrs)
        assert leaks(inspect) == [], f"docker inspect {c.name}"
        assert leaks(json.dumps(c.labels)) == [], c.name
    for role in ("edge", "db", "backup"):
        logs = stack.docker.containers.get(f"{stack.name}-infra-{role}-1").logs().decode(errors="replace")
        assert leaks(logs) == [], role
    for c in stack.docker.containers.list(all=True, filters={"label": f"deployer.project={stack.name}"}):
        for name in c.image.tags:  # one image can carry other projects' tags, which they may remove meanwhile
            try:
                inspect = stack.docker.api.inspect_image(name)
            except docker.errors.ImageNotFound:
                continue
            assert leaks(json.dumps(inspect)) == [], name
