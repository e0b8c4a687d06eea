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
        tls_files(s.folder)
        s.tag("v2")
        s.good = s.config.read_text()
        yield s
    finally:
        s.destroy()


def steady(read):
    """An exec's output can be lost on a loaded engine (an empty answer with exit code 0):
    read until two reads agree, so that a lost output is not taken for a change (bounded)."""
    last = read()
    for _ in range(4):
        again = read()
        if again == last:
            break
        last = again
    return last


def snapshot(stack) -> tuple:
    containers = sorted((c.name, c.id, c.status) for c in stack.containers())
    volumes = sorted(v.name for v in stack.docker.volumes.list() if v.name.startswith(stack.name))
    files = steady(lambda: _files(stack))
    backup = stack.docker.containers.get(f"{stack.name}-infra-backup-1")
    dumps = steady(lambda: backup.exec_run(["sh", "-c", "ls -a /backups"]).output)
    return containers, volumes, files, dumps


def _files(stack) -> bytes:
    """The edge's state files, the history, the site and the lock holder, in one exec."""
    names = " ".join(
        f"/var/lib/deployer/{f}"
        for f in (
            "state/live",
            "state/blue",
            "state/green",
            "state/maintenance",
            "state/watch",
            "history.jsonl",
            "site.conf",
            "lock/holder",
        )
    )
    script = f'for f in {names}; do echo "=== $f"; cat "$f" 2>/dev/null || echo "(none)"; done'
    code, out = stack.edge.exec_run(["sh", "-c", script])
    return out if code == 0 else b"(exec failed)"


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
    (("release", "v2", "--config", "/dev/null"), "is not a regular file"),
    (("down", "--yes"), "go with --volumes"),
    (("status", "-e", ""), "is empty: name an environment"),
    (("down", "--no-backup"), "go with --volumes"),
    (("backup", "restore", "dump-20260101T000000Z", "--database", "template1", "--yes"), "a template of PostgreSQL"),
    # release safety (docs/release-safety.md)
    (("release", "v2", "--watch", "soon"), "--watch must be 0"),
    (("release", "v2", "--watch", "5s"), "--watch must be 0"),
    (("release", "v2", "--watch", "-1m"), "--watch must be 0"),
    (("maintenance", "on", "--message", "<script>alert(1)</script>"), "--message holds characters"),
    (("maintenance", "on", "--message", 'Back "soon" & <b>'), "--message holds characters"),
    (("maintenance", "on", "--message", "x" * 301), "--message is 301 characters"),
    (("maintenance", "on", "--retry-after", "0"), "--retry-after must be between"),
    (("maintenance", "toggle"), "No such command 'toggle'"),
    (("prune", "--keep", "0"), "--keep"),
    (("watch", "now"), "unexpected extra argument"),
]

TLS = '[edge.tls]\ncert = "{cert}"\nkey = "{key}"\n[database]\n'


def tls_files(folder) -> None:
    """Certificate files for the TLS rows: a pair, a key of another pair, a key readable by
    others, and a file that is not PEM."""
    from edge_clients import make_cert

    make_cert(folder, "tls-a")
    _, other_key = make_cert(folder, "tls-b")
    (folder / "tls-b.crt").unlink()
    (folder / "tls-open.key").write_bytes((folder / "tls-a.key").read_bytes())
    (folder / "tls-open.key").chmod(0o644)
    (folder / "tls-garbage.crt").write_text("not a certificate\n")


# (text in the good config, its replacement, words the one line must hold)
CONFIGS = [
    ('name = "', 'name = "Bad!', "project.name"),
    ('restart = "no"', 'restart = "sometimes"', "project.restart"),
    ("[project]\n", '[project]\nid = "X"\n', "project.id"),
    ("[project]\n", '[project]\ncolour = "red"\n', "project.colour: unknown key"),
    ("[edge]\n", '[engine]\nhost = "tcp://1.2.3.4:2375"\n[edge]\n', "engine.host"),
    ("[edge]\n", '[engine]\nhost = ""\n[edge]\n', "engine.host: must be ssh://[user@]host[:port], not empty"),
    ("[edge]\n", '[engine]\nhost = "ssh://-oProxyCommand@x"\n[edge]\n', "engine.host: must be"),
    ("[edge]\n", '[engine]\nhost = "ssh://deploy@x:70000"\n[edge]\n', "not between 1 and 65535"),
    ('image = "', 'image = "' + "a" * 250, "longer than Docker's 255 characters"),
    ("[smoke]", '[backup]\ndir = "/srv/d:/etc"\n[smoke]', "backup.dir"),
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
    ("stop_grace = 5", "stop_grace = 5\nmax_in_flight = 0", "services.backend.max_in_flight: must be between"),
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
    ('env_file = "db.env"', 'env_file = "db.env"\nname = ""', "database.name: must be a plain identifier"),
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
    # TLS, limits, headers, secrets (certificate files: see tls_files)
    ("[database]\n", TLS.format(cert="missing.crt", key="tls-a.key"), "edge.tls.cert"),
    ("[database]\n", TLS.format(cert="tls-garbage.crt", key="tls-a.key"), "holds no PEM certificate"),
    ("[database]\n", TLS.format(cert="tls-a.crt", key="tls-b.key"), "does not match the certificate"),
    ("[database]\n", TLS.format(cert="tls-a.crt", key="tls-open.key"), "edge.tls.key"),
    ("[smoke]", '[routes."/api/"]\nrate_limit = "fast"\n[smoke]', 'routes."/api/".rate_limit'),
    ("[smoke]", '[routes."/api/"]\nrate_limit = "5r/h"\n[smoke]', "must be a rate"),
    ("[smoke]", '[routes."/ai/"]\nupstream = "ftp://gpu.example.invalid"\n[smoke]', 'routes."/ai/".upstream'),
    ("[smoke]", '[routes."/ai/"]\nupstream = "https://gpu.example.invalid/v1"\n[smoke]', "with no path"),
    ("[smoke]", '[routes."/api/"]\nupstream = "http://gpu.example.invalid"\n[smoke]', "would take over"),
    ("[smoke]", '[routes."/api/"]\nburst = 5\n[smoke]', "needs a rate_limit"),
    ("[smoke]", '[routes."/api/"]\nmax_conn = 0\n[smoke]', 'routes."/api/".max_conn'),
    ("expose_colour = true", 'expose_colour = true\ntrusted_proxies = ["10.0.0.0/33"]', "edge.trusted_proxies"),
    ("expose_colour = true", 'expose_colour = true\ndomains = ["Bad Domain"]', "edge.domains"),
    ("expose_colour = true", 'expose_colour = true\n[edge.headers]\n"X-Note" = "a $var"', "edge.headers.X-Note"),
    ("expose_colour = true", 'expose_colour = true\n[edge.headers]\n"Strict-Transport-Security" = "x"', "hsts_max_age"),
    ("stop_grace = 5", 'stop_grace = 5\nsecrets = ["TOKEN"]', "needs an env_file"),
    # release safety: the watch, migrations, notifications, disk (config/safety.py)
    ('window = "0"', 'window = "soon"', "watch.window"),
    ('window = "0"', 'window = "3s"', "watch.window: must be 0"),
    ('window = "0"', 'window = "0"\nmax_error_rate = 1.5', "watch.max_error_rate"),
    ('window = "0"', 'window = "0"\nmax_error_rate = -0.1', "watch.max_error_rate: must be between"),
    ('window = "0"', 'window = "0"\nmax_p99 = "0s"', "watch.max_p99"),
    ('window = "0"', 'window = "0"\nmax_p99 = "2m"', "watch.max_p99: must be between"),
    ('window = "0"', 'window = "0"\nmin_requests = 0', "watch.min_requests"),
    ('window = "0"', 'window = "0"\ncheck = "health"', "watch.check"),
    ('window = "0"', 'window = "0"\nmode = "canary"', "watch.mode"),
    ('window = "0"', 'window = "0"\np99_floor = "10ms"', "watch.p99_floor: must be between"),
    ('window = "0"', 'window = "0"\nmin_clients = 0', "watch.min_clients"),
    ("stop_grace = 5", 'stop_grace = 5\nmigrate = "./migrate --all"', "services.backend.migrate"),
    ("stop_grace = 5", "stop_grace = 5\nmigrate = []", "services.backend.migrate: must be a list"),
    ("stop_grace = 5", 'stop_grace = 5\nmigrate = ["./m"]\nmigrate_timeout = 0', "services.backend.migrate_timeout"),
    ("stop_grace = 5", 'stop_grace = 5\ndb_login = { user = "DB_USER" }', "services.backend.db_login"),
    ("prune_after_release = false", "prune_after_release = false\nkeep_versions = 0", "disk.keep_versions"),
    ("prune_after_release = false", 'prune_after_release = false\nmin_free = "lots"', "disk.min_free"),
    ("[smoke]", '[notify]\nwebhook = "ftp://hooks.example.invalid/x"\n[smoke]', "notify.webhook"),
    ("[smoke]", '[notify]\ncommand = "./notify.sh --all"\n[smoke]', "notify.command"),
    ("[smoke]", "[notify]\ntimeout = 0\n[smoke]", "notify.timeout"),
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


def sample(rows: list, ids: list[str], *, every: int = 4) -> list:
    """The table with one row in `every` (the first included) in `make test`, and the others
    in the long tier (`make test-long`, nightly): each kind of check keeps rows in both."""
    return [
        pytest.param(*row, id=name, marks=() if i % every == 0 else pytest.mark.long)
        for i, (row, name) in enumerate(zip(rows, ids, strict=True))
    ]


@pytest.mark.parametrize("args, words", sample(ARGUMENTS, [" ".join(a)[:40] for a, _ in ARGUMENTS]))
def test_bad_arguments(stack, args, words):
    stack.config.write_text(stack.good)
    check(stack, args, words)


# A rollback must work from a machine without the app's files (env files, build trees,
# templates): `switch` checks the config itself, not the files it names.
FILE_CHECKS = (
    "does not exist",
    "required_env",
    "services.backend.build",
    "edge.template",
    "database.env_file",
    "edge.tls.cert",
    "holds no PEM certificate",
    "does not match the certificate",
    "edge.tls.key",
)


@pytest.mark.parametrize("old, new, words", sample(CONFIGS, [w for _, _, w in CONFIGS]))
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


@pytest.mark.parametrize("name, data, mode, words", sample(FILES, [w for *_, w in FILES], every=2))
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


def test_build_names_a_dockerfile_that_is_not_a_file(stack):
    stack.config.write_text(stack.good.replace("stop_grace = 5", 'stop_grace = 5\nbuild = "."\ndockerfile = "nope"', 1))
    try:
        check(stack, ("build", "v9"), "services.backend.dockerfile")
    finally:
        stack.config.write_text(stack.good)


def test_the_table_is_large(stack):
    assert len(ARGUMENTS) + len(CONFIGS) + len(FILES) >= 60
