"""A table of bad inputs, each run through the real CLI against a running deployment: exit code
2, one clear line naming the key or argument, no traceback, and nothing changed (containers,
volumes, route state, history, site, lock, dumps)."""

from __future__ import annotations

import os
import uuid

import pytest

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, test_app_image):
    from stack import Stack

    s = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("bad"), docker_client, test_app_image)
    try:
        s.release_all("v1")
        s.tag("v2")
        s.good = s.config.read_text()
        yield s
    finally:
        s.destroy()


def snapshot(stack) -> tuple:
    containers = sorted((c.name, c.id, c.status) for c in stack.containers())
    volumes = sorted(v.name for v in stack.docker.volumes.list() if v.name.startswith(stack.name))
    files = tuple(
        stack.edge_file(f"/var/lib/deployer/{f}")
        for f in ("state/live", "state/blue", "state/green", "history.jsonl", "site.conf", "lock/holder")
    )
    backup = stack.docker.containers.get(f"{stack.name}-infra-backup-1")
    dumps = backup.exec_run(["sh", "-c", "ls -a /backups"]).output
    return containers, volumes, files, dumps


# (CLI arguments, words the one line must hold)
ARGUMENTS = [
    (("release", "v1;reboot"), "invalid version 'v1;reboot'"),
    (("release", ".v1"), "invalid version '.v1'"),
    (("release", "v1 "), "invalid version"),
    (("release", "v1\n"), "invalid version"),
    (("release", "x" * 129), "invalid version"),
    (("release", "a/b"), "invalid version 'a/b'"),
    (("release", "v1:2"), "invalid version"),
    (("release", "-v1"), "No such option '-v'"),
    (("release",), "Missing argument 'VERSION'"),
    (("release", "v2", "--bogus"), "No such option '--bogus'"),
    (("build", "v 1"), "invalid version"),
    (("switch", "--to", "purple"), "unknown colour 'purple'"),
    (("switch", "--to", "Blue"), "unknown colour 'Blue'"),
    (("switch",), "Missing option '--to'"),
    (("status", "--json", "yes"), "unexpected extra argument"),
    (("lock", "steal"), "No such command 'steal'"),
    (("nonsense",), "No such command 'nonsense'"),
    (("down", "--volumes"), "add --yes"),
    (("release", "v2", "--config", "/nonexistent/deployer.toml"), "config file not found"),
]

# (text in the good config, its replacement, words the one line must hold)
CONFIGS = [
    ('name = "', 'name = "Bad!', "project.name"),
    ('restart = "no"', 'restart = "sometimes"', "project.restart"),
    ("[project]\n", '[project]\nid = "X"\n', "project.id"),
    ("[project]\n", '[project]\ncolour = "red"\n', "project.colour: unknown key"),
    ("[edge]\n", '[engine]\nhost = "tcp://1.2.3.4:2375"\n[edge]\n', "engine.host"),
    ("port = 8080", 'port = "8080"', "services.backend.port"),
    ("port = 8080", "port = 0", "services.backend.port"),
    ("port = 8080", "port = 65536", "services.backend.port"),
    ('health = "/health"', 'health = "health"', "services.backend.health"),
    ('health = "/health"', 'health = "/health\\n"', "services.backend.health"),
    ('routes = ["/api/"]', 'routes = ["/"]', "also a route of"),
    ('routes = ["/api/"]', 'routes = "/api/"', "must be a list"),
    ('routes = ["/api/"]', 'routes = ["api"]', "plain URL path prefix"),
    ("stop_grace = 5", "stop_grace = -1", "stop_grace"),
    ("stop_grace = 5", "stop_grace = 5\ncpus = -2", "cpus"),
    ("stop_grace = 5", 'stop_grace = 5\nmemory = "2 GB"', "memory"),
    ("stop_grace = 5", 'stop_grace = 5\nenv_file = "missing.env"', "does not exist"),
    ("stop_grace = 5", 'stop_grace = 5\nrequired_env = ["TOKEN"]', "required_env"),
    ("stop_grace = 5", 'stop_grace = 5\nbuild = "nowhere"', "services.backend.build"),
    ('image = "', 'image = "UPPER-', "services.backend.image"),
    ("[services.backend]", "[services.edge]", "reserved"),
    ("[services.backend]", "[services.bad_name]", "a service name"),
    ("[services.backend]", '[services.backend]\nimage = "twice"', "not valid TOML"),
    ("public_port = 0", "public_port = -5", "edge.public_port"),
    ('public_bind = "127.0.0.1"', 'public_bind = "127.0.0.1\\nEDGE_IMAGE=evil"', "edge.public_bind"),
    ('public_bind = "127.0.0.1"', 'public_bind = "my-laptop"', "edge.public_bind"),
    ("expose_colour = true", 'expose_colour = "yes"', "edge.expose_colour"),
    ("expose_colour = true", 'expose_colour = true\nmax_body = "lots"', "edge.max_body"),
    ("expose_colour = true", "expose_colour = true\nproxy_timeout = 0", "edge.proxy_timeout"),
    ("expose_colour = true", "expose_colour = true\nupstream_keepalive = 100000", "edge.upstream_keepalive"),
    ("expose_colour = true", "expose_colour = true\naccess_log = 2", "edge.access_log"),
    ("expose_colour = true", 'expose_colour = true\ntemplate = "nope.j2"', "edge.template"),
    ('env_file = "db.env"', 'env_file = "nope.env"', "database.env_file"),
    ('env_file = "db.env"', 'env_file = "db.env"\nname = "my-db"', "database.name"),
    ('env_file = "db.env"', 'env_file = "db.env"\nimage = "Bad Image"', "database.image"),
    ("health_deadline = 40", "health_deadline = 0", "timeouts.health_deadline"),
    ("request_timeout = 2", 'request_timeout = "2s"', "timeouts.request_timeout"),
    ('paths = ["/api/version", "/"]', 'paths = ["/api/version", "x"]', "smoke.paths"),
    ("[smoke]", '[backup]\nschedule = "0 0 30 2 *"\n[smoke]', "never fires"),
    ("[smoke]", '[backup]\nschedule = "at dawn"\n[smoke]', "backup.schedule"),
    ("[smoke]", '[backup]\nwebhook = "not a url"\n[smoke]', "backup.webhook"),
    ("[smoke]", "[backup]\nkeep_last = 0\n[smoke]", "backup.keep_last"),
    ("[smoke]", "[backup]\nkeep_daily = -1\n[smoke]", "backup.keep_daily"),
    ("[smoke]", "[backup]\nwebhook_timeout = 0\n[smoke]", "backup.webhook_timeout"),
    ("[smoke]", "[surprise]\n[smoke]", "unknown section"),
    ("[project]", "[project", "not valid TOML"),
]

# Files next to the config, broken in the ways the team met them: (file, bytes, mode, words)
FILES = [
    ("db.env", b"POSTGRES_USER=app\nPOSTGRES_PASSWORD=pw-test-value\n", 0o644, "readable by every user"),
    ("db.env", b"POSTGRES_USER=app\n", 0o600, "must set POSTGRES_PASSWORD"),
    ("db.env", b"POSTGRES_USER=app\nthis is pw-test-value\n", 0o600, "line 2 is not KEY=VALUE"),
    ("db.env", b"POSTGRES_USER=app\nPOSTGRES_PASSWORD=\xff\xfe\n", 0o600, "not UTF-8"),
]


def check(stack, args: tuple[str, ...], words: str) -> None:
    before = snapshot(stack)
    result = stack.cli(*args) if "--config" not in args else stack.raw_cli(*args)
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    assert words in result.stderr, (args, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("·", "Usage", "Try"))]
    assert len([line for line in lines if "ERROR" in line or "Error" in line]) <= 1, result.stderr
    assert snapshot(stack) == before, args


@pytest.mark.parametrize("args, words", ARGUMENTS, ids=[" ".join(a)[:40] for a, _ in ARGUMENTS])
def test_bad_arguments(stack, args, words):
    stack.config.write_text(stack.good)
    check(stack, args, words)


# A rollback must work from a machine without the app's files (env files, build trees,
# templates): `switch` checks the config itself, not the files it names.
FILE_CHECKS = ("does not exist", "required_env", "services.backend.build", "edge.template", "database.env_file")


@pytest.mark.parametrize("old, new, words", CONFIGS, ids=[w for _, _, w in CONFIGS])
def test_bad_configs(stack, old, new, words):
    assert old in stack.good, old
    stack.config.write_text(stack.good.replace(old, new, 1))
    commands = [("release", "v2", "--no-backup")]
    if words not in FILE_CHECKS:
        commands.append(("switch", "--to", "blue"))
    try:
        for command in commands:
            check(stack, command, words)
    finally:
        stack.config.write_text(stack.good)


@pytest.mark.parametrize("name, data, mode, words", FILES, ids=[w for *_, w in FILES])
def test_bad_env_files(stack, name, data, mode, words):
    path = stack.folder / name
    good = path.read_bytes()
    path.write_bytes(data)
    os.chmod(path, mode)
    try:
        check(stack, ("release", "v2", "--no-backup"), words)
        result = stack.cli("release", "v2", "--no-backup")
        assert "pw-test-value" not in result.stderr  # an env file's text is never quoted
    finally:
        path.write_bytes(good)
        os.chmod(path, 0o600)


@pytest.mark.parametrize("command", [("up",), ("down",), ("status",), ("build", "v2"), ("lock", "status")])
def test_every_command_validates_the_config_first(stack, command):
    stack.config.write_text(stack.good.replace("port = 8080", "port = 80800", 1))
    try:
        check(stack, command, "services.backend.port")
    finally:
        stack.config.write_text(stack.good)


def test_the_table_is_large(stack):
    assert len(ARGUMENTS) + len(CONFIGS) + len(FILES) >= 60
