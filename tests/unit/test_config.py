"""Config validation: the annotated example loads, and each broken file names its key."""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from deployer import config
from deployer.core import masking
from deployer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[project]
name = "shop"
[services.backend]
image = "shop-backend"
port = 8080
health = "/actuator/health"
routes = ["/api/"]
[services.frontend]
image = "shop-frontend"
port = 3000
health = "/healthz"
routes = ["/"]
[database]
env_file = "db.env"
"""


def secret_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def example(tmp_path) -> Path:
    """The shipped example, in a copy of examples/ with the git-ignored env files present."""
    folder = tmp_path / "examples"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "deployer.toml", folder)
    for name in ("backend", "frontend"):
        (folder / name).symlink_to(ROOT / "examples" / name)
    (tmp_path / "deployer").symlink_to(ROOT / "deployer")
    secret_file(folder / "db.env", "POSTGRES_USER=app\nPOSTGRES_PASSWORD=example-password\n")
    secret_file(folder / "backend.env", "SPRING_DATASOURCE_USERNAME=app\nSPRING_DATASOURCE_PASSWORD=example-password\n")
    return folder / "deployer.toml"


def write(tmp_path: Path, text: str) -> Path:
    secret_file(tmp_path / "db.env", "POSTGRES_USER=app\nPOSTGRES_PASSWORD=x-password\n")
    path = tmp_path / "deployer.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_annotated_example_loads(example):
    cfg = config.load(example)
    assert cfg.name == "shop"
    assert list(cfg.services) == ["backend", "frontend"]
    assert cfg.services["backend"].routes == ("/api/",)
    assert cfg.services["backend"].image_ref("v1.2") == "shop-backend:v1.2"
    assert cfg.services["backend"].limits.memory == "768m"
    assert cfg.services["backend"].required_env == ("SPRING_DATASOURCE_PASSWORD",)
    assert cfg.services["frontend"].dockerfile == (ROOT / "deployer/assets/templates/nextjs.Dockerfile").resolve()
    assert cfg.edge.preview_port == 8081 and cfg.edge.access_log and not cfg.edge.expose_colour
    assert cfg.smoke == ("/api/version", "/healthz")
    assert cfg.backup.keep_last == 7 and cfg.backup.dir is None
    assert cfg.engine.host is None


def test_minimal_config_gets_defaults(tmp_path):
    cfg = config.load(write(tmp_path, MINIMAL))
    assert cfg.edge.public_port == 80 and cfg.edge.public_bind == "0.0.0.0"
    assert cfg.edge.upstream_idle_timeout == 4
    assert cfg.timeouts.health_deadline == 120
    assert cfg.restart == "unless-stopped"
    # /actuator/health is not under /api/: only the front end's health path is checked through the routes
    assert cfg.verify_paths() == ["/healthz"]


def test_any_number_of_services_and_a_worker_without_routes(tmp_path):
    text = MINIMAL + textwrap.dedent(
        """
        [services.ai-gateway]
        image = "shop-ai"
        port = 9000
        health = "/ready"
        routes = ["/api/ai/"]
        [services.worker]
        image = "shop-worker"
        port = 9100
        health = "/health"
        """
    )
    cfg = config.load(write(tmp_path, text))
    assert list(cfg.services) == ["backend", "frontend", "ai-gateway", "worker"]
    assert cfg.services["frontend"].max_in_flight is None  # no cap unless asked for
    assert cfg.services["worker"].routes == ()
    assert cfg.route_owner("/api/ai/chat") == "ai-gateway"  # the longest prefix wins
    assert cfg.route_owner("/api/items") == "backend"
    assert cfg.route_owner("/about") == "frontend"


def test_build_args_reach_the_build(tmp_path):
    text = MINIMAL.replace(
        "port = 3000", 'port = 3000\nbuild = "."\nbuild_args = { BASE_IMAGE = "node:20-slim", NEXT_PUBLIC_X = "a b" }'
    )
    cfg = config.load(write(tmp_path, text))
    assert cfg.services["frontend"].build_args == (("BASE_IMAGE", "node:20-slim"), ("NEXT_PUBLIC_X", "a b"))
    assert cfg.services["backend"].build_args == ()


BAD = [
    (('name = "shop"', 'name = "Shop!"'), "project.name", "2-32 characters"),
    (('name = "shop"', 'name = "shop\\n"'), "project.name", "control characters"),
    (("port = 8080", 'port = "8080"'), "services.backend.port", "whole number"),
    (("port = 8080", "port = 70000"), "services.backend.port", "between 0 and 65535"),
    (('image = "shop-backend"', 'image = "shop-backend:v1"'), "services.backend.image", "without a tag"),
    (('image = "shop-backend"', 'image = "Shop_Backend"'), "services.backend.image", "without a tag"),
    (('health = "/healthz"', 'health = "healthz"'), "services.frontend.health", "starting with '/'"),
    (('health = "/healthz"', 'health = "/healthz\\n"'), "services.frontend.health", "control characters"),
    (('env_file = "db.env"', 'env_file = "missing.env"'), "database.env_file", "does not exist"),
    (("[database]", "[databse]"), "databse", "unknown section"),
    (("port = 3000", 'port = 3000\ncolour = "red"'), "services.frontend.colour", "unknown key"),
    (('routes = ["/"]', 'routes = ["/api/"]'), "services.frontend.routes", "also a route of services.backend"),
    (('routes = ["/"]', 'routes = ["/", "/"]'), "services.frontend.routes", "same prefix twice"),
    (('routes = ["/"]', 'routes = ["shop"]'), "services.frontend.routes", "plain URL path prefix"),
    (("[services.frontend]", "[services.Front_End]"), "services.Front_End", "a service name"),
    (("[services.frontend]", "[services.db]"), "services.db", "reserved"),
    (("port = 3000", 'port = 3000\nmemory = "lots"'), "services.frontend.memory", "memory size"),
    (("port = 3000", "port = 3000\ncpus = 0"), "services.frontend.cpus", "between 0.01"),
    (("port = 3000", "port = 3000\nstop_grace = 0"), "services.frontend.stop_grace", "between 1 and 600"),
    (("port = 3000", "port = 3000\nmax_in_flight = 0"), "services.frontend.max_in_flight", "between 1 and 100000"),
    (("port = 3000", 'port = 3000\nmax_in_flight = "64"'), "services.frontend.max_in_flight", "whole number"),
    (("port = 3000", 'port = 3000\nrequired_env = ["API-KEY"]'), "services.frontend.required_env", "environment"),
    (("port = 3000", 'port = 3000\nrequired_env = ["API_KEY"]'), "services.frontend.required_env", "no env_file"),
    (('health = "/healthz"\n', ""), "services.frontend.health", "missing (required)"),
    (('name = "shop"', 'name = ""'), "project.name", "not empty"),
    (('health = "/healthz"', 'health = "/../../etc/passwd"'), "services.frontend.health", "'..' segment"),
    (('routes = ["/"]', 'routes = ["/a/../"]'), "services.frontend.routes", "'..' segment"),
    (("port = 3000", 'port = 3000\nmemory = "1k"'), "services.frontend.memory", "Docker's minimum"),
    (("port = 3000", "port = 3000\nmigrate_timeout = 60"), "services.frontend.migrate_timeout", "no migration"),
    (('image = "shop-backend"', f'image = "{"a" * 256}"'), "services.backend.image", "255 characters"),
    (('image = "shop-backend"', 'image = ""'), "services.backend.image", "not empty"),
    (('health = "/healthz"', 'health = ""'), "services.frontend.health", "not empty"),
    (("[database]", '[engine]\nhost = ""\n[database]'), "engine.host", "not empty"),
    (("[database]", '[database]\nname = ""'), "database.name", "not empty"),
    (("port = 3000", 'port = 3000\nbuild_args = { X = "1" }'), "services.frontend.build_args", "needs services"),
    (("port = 3000", 'port = 3000\nbuild = "."\nbuild_args = { X = 1 }'), "services.frontend.build_args.X", "string"),
    (
        ("port = 3000", 'port = 3000\nbuild = "."\nbuild_args = { "A-B" = "1" }'),
        "services.frontend.build_args.A-B",
        "name",
    ),
    (
        ("port = 3000", 'port = 3000\nbuild = "."\nbuild_args = { BASE_IMAGE = "node 20" }'),
        "services.frontend.build_args.BASE_IMAGE",
        "image reference",
    ),
    (('name = "shop"', 'name = "shop"\nbase_image = "Debian Trixie"'), "project.base_image", "image reference"),
    (('name = "shop"', 'name = "shop"\nbase_image = ""'), "project.base_image", "not empty"),
    (('name = "shop"', 'name = "shop"\nbase_image = 12'), "project.base_image", "string"),
]


@pytest.mark.parametrize("change, key, words", BAD)
def test_bad_values_name_the_file_and_key(tmp_path, change, key, words):
    path = write(tmp_path, MINIMAL.replace(*change, 1))
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert str(path) in str(caught.value)
    assert caught.value.key == key, caught.value
    assert words in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "extra, key, words",
    [
        ('[edge]\npublic_bind = "0.0.0.0\\nDB_IMAGE=evil"', "edge.public_bind", "control characters"),
        ('[edge]\npublic_bind = "localhost"', "edge.public_bind", "IP address"),
        ("[edge]\npublic_port = 8080\npreview_port = 8080", "edge.preview_port", "must differ"),
        ('[edge]\nmax_body = "20 MB"', "edge.max_body", "a size"),
        ("[edge]\nupstream_keepalive = 0", "edge.upstream_keepalive", "between 1"),
        ("[edge]\naccess_log = 1", "edge.access_log", "true or false"),
        ('[engine]\nhost = "tcp://x:2375"', "engine.host", "ssh://"),
        ('[engine]\nhost = "ssh://-V"', "engine.host", "ssh://"),
        ('[engine]\nhost = "ssh://-oProxyCommand@host"', "engine.host", "ssh://"),
        ('[engine]\nhost = "ssh://deploy@host:70000"', "engine.host", "not between 1 and 65535"),
        ('[engine]\nhost = "ssh://deploy@host:0"', "engine.host", "not between 1 and 65535"),
        ('[backup]\nschedule = "every day"', "backup.schedule", "not a valid cron"),
        ('[backup]\nschedule = "0 0 30 2 *"', "backup.schedule", "never fires"),
        ('[backup]\ndrill_schedule = "weekly"', "backup.drill_schedule", "not a valid cron"),
        ('[build]\ncache_from = ["ref=ghcr.io/me/cache"]', "build.cache_from", "names no type="),
        ("[build]\ncache_from = 3", "build.cache_from", "must be a list"),
        ('[build]\ncache_to = "type=registry,,ref=x"', "build.cache_to", "key=value"),
        ("[build]\nkeep = 1", "build.keep", "unknown key"),
        (
            '[services.worker]\nimage = "w"\nport = 9000\nhealth = "/h"\nstrip_prefix = true',
            "services.worker.strip_prefix",
            "no routes",
        ),
        (
            '[services.worker]\nimage = "w"\nport = 9000\nhealth = "/h"\nstrip_prefix = "yes"',
            "services.worker.strip_prefix",
            "true or false",
        ),
        ('[backup]\nwebhook = "ftp://x"', "backup.webhook", "http"),
        ("[backup]\nkeep_last = 0", "backup.keep_last", "at least 1"),
        ('[backup]\ndir = "/srv/d:/etc"', "backup.dir", "may not contain ':'"),
        ('[backup]\ndir = " "', "backup.dir", "space"),
        ('[backup]\ndir = "//"', "backup.dir", "root folder"),
        ('[edge]\nacme_webroot = "/var/www/acme "', "edge.acme_webroot", "space"),
        ("[timeouts]\nhealth_deadline = 5\nhealth_interval = 5", "timeouts.health_interval", "shorter"),
        ('[smoke]\npaths = ["nope"]', "smoke.paths", "plain URL path"),
        ('[edge]\ndomains = ["a.example", "a.example"]', "edge.domains", "twice"),
        ('[edge.headers]\nX-Note = "a"\nx-note = "b"', "edge.headers.x-note", "ignore case"),
        ('[backup]\npitr = "yes"', "backup.pitr", "true or false"),
        ("[backup]\npitr = true\npitr_full_keep = 0", "backup.pitr_full_keep", "between"),
        ('[backup.sftp]\nhost = "vault"', "backup.sftp", "needs backup.pitr = true"),
        ("[backup]\npitr = true\n[backup.sftp]\nport = 22", "backup.sftp.host", "missing"),
        ('[backup]\npitr = true\n[backup.sftp]\nhost = "-x"', "backup.sftp.host", "host name"),
        ('[backup]\npitr = true\n[backup.sftp]\nhost = "vault"', "backup.sftp.key_file", "missing"),
        ('[backup]\npitr = true\n[backup.s3]\nendpoint = "s3"\nbucket = "b"', "backup.s3.region", "missing"),
    ],
)
def test_bad_sections_name_their_key(tmp_path, extra, key, words):
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, MINIMAL + extra + "\n"))
    assert caught.value.key == key, caught.value
    assert words in str(caught.value)


def test_a_cap_of_requests_in_flight_needs_routes(tmp_path):
    capped = MINIMAL.replace('routes = ["/"]', 'routes = ["/"]\nmax_in_flight = 64', 1)
    assert config.load(write(tmp_path, capped)).services["frontend"].max_in_flight == 64
    worker = MINIMAL + '[services.worker]\nimage = "w"\nport = 9000\nhealth = "/h"\nmax_in_flight = 8\n'
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, worker))
    assert caught.value.key == "services.worker.max_in_flight"
    assert "no routes" in str(caught.value) and caught.value.exit_code == 2


def test_too_many_services(tmp_path):
    many = "".join(
        f'[services.s{i}]\nimage = "s{i}"\nport = {9000 + i}\nhealth = "/h"\nroutes = ["/s{i}/"]\n' for i in range(20)
    )
    with pytest.raises(ConfigError, match="at most 16"):
        config.load(write(tmp_path, MINIMAL + many))


def test_duplicate_service_is_a_toml_error(tmp_path):
    text = MINIMAL + '[services.backend]\nimage = "x"\n'
    with pytest.raises(ConfigError, match="not valid TOML.*services.*backend"):
        config.load(write(tmp_path, text))


def test_no_routes_anywhere(tmp_path):
    text = MINIMAL.replace('routes = ["/api/"]\n', "").replace('routes = ["/"]\n', "")
    with pytest.raises(ConfigError, match="no service has routes"):
        config.load(write(tmp_path, text))


def test_smoke_paths_required_when_no_health_path_is_routed(tmp_path):
    text = MINIMAL.replace('health = "/healthz"', 'health = "/ready"').replace('routes = ["/"]', 'routes = ["/web/"]')
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    assert caught.value.key == "smoke.paths"


def test_broken_toml_and_bytes_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, MINIMAL + "\n[[[\n"))
    (tmp_path / "latin.toml").write_bytes(b'[project]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(tmp_path / "latin.toml")
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="File name too long"):
        config.load(tmp_path / ("x" * 300 + ".toml"))
    long_env = MINIMAL.replace('env_file = "db.env"', f'env_file = "{"y" * 300}.env"')
    with pytest.raises(ConfigError, match="database.env_file: cannot use") as caught:
        config.load(write(tmp_path, long_env))
    assert caught.value.exit_code == 2


def test_a_long_env_value_is_read_in_linear_time(tmp_path):
    """A 400 KB value once took minutes: the URL-password search backtracked on every offset."""
    import time

    from deployer.config import envfile

    started = time.monotonic()
    envfile.register_secrets({"CERT": "ab1" * 130_000, "URL": "x" * 100_000 + " postgres://app:s3cret-pw@db/app"})
    assert time.monotonic() - started < 5  # linear: about 0.01 s here; quadratic: minutes
    assert masking.mask("password s3cret-pw") == f"password {masking.HIDDEN}"


def test_env_files_are_checked_and_never_quoted(tmp_path):
    path = write(tmp_path, MINIMAL)
    secret_file(tmp_path / "db.env", "POSTGRES_USER=app\nthis line holds hunter2-secret\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert "line 2 is not KEY=VALUE" in str(caught.value) and "hunter2" not in str(caught.value)

    secret_file(tmp_path / "db.env", "POSTGRES_USER=app\n")
    with pytest.raises(ConfigError, match="must set POSTGRES_PASSWORD"):
        config.load(path)

    (tmp_path / "db.env").write_bytes(b"POSTGRES_USER=app\nPOSTGRES_PASSWORD=\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(path)

    secret_file(tmp_path / "db.env", "POSTGRES_USER=app\nPOSTGRES_PASSWORD=pw-readable\n")
    os.chmod(tmp_path / "db.env", 0o644)
    with pytest.raises(ConfigError, match="readable by every user.*chmod 600"):
        config.load(path)

    for text, words in (
        ("POSTGRES_USER=app\nPOSTGRES_PASSWORD=hunter2\x1b[2J\n", "line 2 holds a control character"),
        ("POSTGRES_USER=app\nPOSTGRES_PASSWORD=hun\x00ter2\n", "line 2 holds a control character"),
        ('POSTGRES_USER="app\nPOSTGRES_PASSWORD=hunter2\n', "line 1 (POSTGRES_USER) opens a quote"),
        ("POSTGRES_USER=app\nPOSTGRES_PASSWORD='hunter2' x\n", "line 2 (POSTGRES_PASSWORD) opens a quote"),
        ("POSTGRES_USER=app\nPOSTGRES_PASSWORD=hunter2\nPOSTGRES_USER=root\n", "line 3 sets POSTGRES_USER again"),
    ):
        secret_file(tmp_path / "db.env", text)
        with pytest.raises(ConfigError, match=re.escape(words)) as caught:
            config.load(path)
        assert "hunter2" not in str(caught.value)


def test_env_file_values_quoted_or_not():
    from deployer.config import envfile

    text = 'A=\'x y\' # a comment\nB="p#w"\nC=plain # comment\nD=a#b\nE=""\nexport F=1\n'
    assert envfile.parse(text, where="f", key="k") == {
        "A": "x y",
        "B": "p#w",
        "C": "plain",
        "D": "a#b",
        "E": "",
        "F": "1",
    }


def test_secret_values_are_registered_for_masking(tmp_path):
    masking.forget()
    path = write(tmp_path, MINIMAL.replace('routes = ["/"]', 'routes = ["/"]\nenv_file = "web.env"'))
    secret_file(
        tmp_path / "web.env",
        'API_TOKEN="tok-123456"\nDATABASE_URL=postgres://app:url-pass-987@db/app\nTITLE=Shop\n',
    )
    config.load(path)
    text = masking.mask("token tok-123456 pw x-password url url-pass-987 title Shop")
    assert text == "token ***** pw ***** url ***** title Shop"
    masking.forget()


def test_the_annotated_example_names_every_key_a_user_can_set():
    """`deployer init` writes the example, and it says that every key is explained there."""
    import re

    from deployer.config import SECTIONS, SERVICE_KEYS

    text = (ROOT / "examples" / "deployer.toml").read_text()
    for key in SERVICE_KEYS:
        assert re.search(rf"(?m)^(# )?{key} = ", text), f"services.*.{key} is not in examples/deployer.toml"
    for section in SECTIONS:
        assert re.search(rf"(?m)^(# )?\[{section}[].]", text), f"[{section}] is not in examples/deployer.toml"
    for key in ("mode", "edge_replicas", "edge_constraints", "db_constraints", "cpus"):
        assert re.search(rf"(?m)^(# )?{key} = ", text), key


def test_a_config_error_is_one_line_and_never_shows_a_password_of_a_url(tmp_path):
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, MINIMAL + '[engine]\nhost = "ssh://deploy:Pw0rdSecret99@h"\n'))
    assert caught.value.key == "engine.host"
    assert "Pw0rdSecret99" not in str(caught.value) and "ssh://deploy:***@h" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, MINIMAL + '[services."a\\nb"]\nimage = "x"\n'))
    assert "\n" not in str(caught.value) and "a\\nb" in str(caught.value)


def test_a_loop_of_symbolic_links_is_bad_input_naming_the_key(tmp_path):
    path = write(tmp_path, MINIMAL)
    (tmp_path / "db.env").unlink()
    (tmp_path / "db.env").symlink_to(tmp_path / "db.env")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.key == "database.env_file" and caught.value.exit_code == 2, caught.value


def test_a_folder_of_a_remote_host_must_be_absolute(tmp_path):
    remote = MINIMAL + '[engine]\nhost = "ssh://deploy@host.example"\n'
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, remote + '[backup]\ndir = "dumps"\n'))
    assert caught.value.key == "backup.dir" and "absolute path on that host" in str(caught.value)
    assert config.load(write(tmp_path, remote + '[backup]\ndir = "/srv/dumps"\n')).backup.dir == "/srv/dumps"


def test_a_health_path_that_another_services_route_takes_is_warned(tmp_path, example):
    """The front end's own `/api/healthz` (a Next.js API route) under the backend's `/api/`:
    a request for it through the edge reaches the backend, so the config says so."""
    hidden = MINIMAL.replace('health = "/healthz"', 'health = "/api/healthz"') + '[smoke]\npaths = ["/"]\n'
    warned = config.load(write(tmp_path, hidden))
    assert warned.warnings == (
        "services.frontend.health = '/api/healthz': through the edge it goes to services.backend (route "
        "'/api/'), so the live route never reaches it; move it out of '/api/' or add it to services.frontend.routes",
    )
    routed = config.load(write(tmp_path, hidden.replace('routes = ["/"]', 'routes = ["/", "/api/healthz"]')))
    assert routed.warnings == () and routed.route_owner("/api/healthz") == "frontend"
    assert config.load(example).warnings == ()


def test_the_build_cache_settings_are_read(tmp_path):
    cfg = config.load(write(tmp_path, MINIMAL + '[build]\ncache_from = "type=gha,scope=s"\ncache_to = "type=inline"\n'))
    assert cfg.build.cache_from == ("type=gha,scope=s",) and cfg.build.cache_to == "type=inline"
    assert config.load(write(tmp_path, MINIMAL)).build.cache_from == ()


def test_a_repository_off_the_host_is_read_with_its_secret_files(tmp_path):
    secret_file(tmp_path / "key", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    secret_file(tmp_path / "known", "vault ssh-ed25519 AAAA\n")
    sftp = '[backup]\npitr = true\n[backup.sftp]\nhost = "vault"\nkey_file = "key"\nknown_hosts = "known"\n'
    off = config.load(write(tmp_path, MINIMAL + sftp)).backup.offsite
    assert (off.kind, off.host, off.port, off.user, off.path) == (
        "sftp",
        "vault",
        22,
        "pgbackrest",
        "/var/lib/pgbackrest",
    )
    assert off.key_file == tmp_path / "key" and off.known_hosts == tmp_path / "known"
    secret_file(tmp_path / "s3.conf", "[global]\nrepo2-s3-key=k\nrepo2-s3-key-secret=s\n")
    s3 = (
        '[backup]\npitr = true\n[backup.s3]\nendpoint = "s3.eu-west-1.amazonaws.com"\nbucket = "shop-pgbackrest"\n'
        'region = "eu-west-1"\npath = "/shop"\ncredentials_file = "s3.conf"\n'
    )
    off = config.load(write(tmp_path, MINIMAL + s3)).backup.offsite
    assert (off.kind, off.host, off.bucket, off.region, off.path) == (
        "s3",
        "s3.eu-west-1.amazonaws.com",
        "shop-pgbackrest",
        "eu-west-1",
        "/shop",
    )
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, MINIMAL + sftp + s3.replace("[backup]\npitr = true\n", "")))
    assert caught.value.key == "backup.s3" and "not both" in str(caught.value)
