"""[edge.tls], [edge.headers], [routes."<prefix>"], trusted proxies, domains and service
secrets: parsed into frozen objects, and every bad value names its key."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deployer import config
from deployer.core import masking
from deployer.errors import ConfigError

BASE = """
[project]
name = "shop"
[services.backend]
image = "shop-backend"
port = 8080
health = "/health"
routes = ["/api/"]
[services.frontend]
image = "shop-frontend"
port = 3000
health = "/healthz"
routes = ["/"]
[database]
env_file = "db.env"
"""


def cert(folder: Path, stem: str) -> tuple[Path, Path]:
    c, k = folder / f"{stem}.crt", folder / f"{stem}.key"
    subprocess.run(
        [shutil.which("openssl") or "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"]
        + ["ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=app.test", "-days", "2"]
        + ["-keyout", str(k), "-out", str(c)],
        check=True,
        capture_output=True,
    )
    k.chmod(0o600)
    return c, k


@pytest.fixture
def load(tmp_path):
    def make(extra: str = "", *, base: str = BASE) -> config.Config:
        env = tmp_path / "db.env"
        env.write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=unit-test-pw\n")
        env.chmod(0o600)
        path = tmp_path / "deployer.toml"
        path.write_text(base + extra)
        return config.load(path)

    return make


def fails(load, extra: str, key: str, words: str = "", **kw) -> None:
    with pytest.raises(ConfigError) as info:
        load(extra, **kw)
    assert info.value.key == key, str(info.value)
    assert words in str(info.value)


def test_defaults_are_secure_and_quiet(load):
    edge = load().edge
    assert edge.tls is None and edge.routes == () and edge.trusted_proxies == () and edge.domains == ()
    assert dict(edge.headers) == {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "SAMEORIGIN",
    }


def test_tls_with_a_matching_pair(load, tmp_path):
    cert(tmp_path, "a")
    tls = load('[edge.tls]\ncert = "a.crt"\nkey = "a.key"\nhsts_max_age = 600\n').edge.tls
    assert tls.cert == tmp_path / "a.crt" and tls.port == 443 and tls.redirect and tls.hsts_max_age == 600


@pytest.mark.parametrize(
    "setup, files, key, words",
    [
        (None, ("nope.crt", "a.key"), "edge.tls.cert", "does not exist"),
        ("garbage", ("junk.crt", "a.key"), "edge.tls.cert", "holds no PEM certificate"),
        ("binary", ("der.crt", "a.key"), "edge.tls.cert", "not a PEM file"),
        (None, ("a.crt", "b.key"), "edge.tls.key", "does not match the certificate"),
        ("open", ("a.crt", "a.key"), "edge.tls.key", "readable by every user"),
        (None, ("a.crt", "a.crt"), "edge.tls.key", "holds no PEM private key"),
        ("encrypted", ("a.crt", "enc.key"), "edge.tls.key", "encrypted"),
    ],
)
def test_bad_certificates_name_their_key(load, tmp_path, setup, files, key, words):
    cert(tmp_path, "a")
    cert(tmp_path, "b")
    if setup == "garbage":
        (tmp_path / "junk.crt").write_text("hello\n")
    if setup == "binary":
        (tmp_path / "der.crt").write_bytes(b"\x30\x82\x01\xff")
    if setup == "open":
        (tmp_path / "a.key").chmod(0o644)
    if setup == "encrypted":
        text = (tmp_path / "a.key").read_text().replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
        (tmp_path / "enc.key").write_text(text)
        (tmp_path / "enc.key").chmod(0o600)
    fails(load, f'[edge.tls]\ncert = "{files[0]}"\nkey = "{files[1]}"\n', key, words)


def test_tls_settings_are_checked(load, tmp_path):
    cert(tmp_path, "a")
    pair = '[edge.tls]\ncert = "a.crt"\nkey = "a.key"\n'
    fails(load, pair + "hsts_subdomains = true\n", "edge.tls.hsts_subdomains")
    fails(load, pair + "port = 80\n", "edge.tls.port", "must differ")
    fails(load, pair + 'redirect = "yes"\n', "edge.tls.redirect")
    fails(load, '[edge.tls]\nkey = "a.key"\n', "edge.tls.cert", "missing")


def test_routes_limits_and_external_upstreams(load):
    edge = load(
        '[routes."/api/ai/"]\nrate_limit = "5r/s"\nburst = 10\nmax_conn = 4\n'
        '[routes."/ai/"]\nupstream = "https://gpu.example.invalid:8443/"\nrate_limit = "2r/s"\nbudget = "600r/m"\n'
    ).edge
    ai, ext = edge.routes  # longest prefix first
    assert (ai.prefix, ai.rate_limit, ai.burst, ai.max_conn, ai.upstream) == ("/api/ai/", "5r/s", 10, 4, None)
    assert ext.upstream == "https://gpu.example.invalid:8443" and ext.budget == "600r/m" and ext.limited
    assert not ai.path_params and not ext.path_params
    (app,) = load('[routes."/app/"]\npath_params = true\n').edge.routes  # a route may set only that
    assert app.path_params and not app.limited


@pytest.mark.parametrize(
    "extra, key, words",
    [
        ('[routes."/api/"]\nrate_limit = "five"\n', 'routes."/api/".rate_limit', "must be a rate"),
        ('[routes."/api/"]\nrate_limit = 5\n', 'routes."/api/".rate_limit', "must be a rate"),
        ('[routes."/api/"]\nbudget = "10r/h"\n', 'routes."/api/".budget', "must be a rate"),
        ('[routes."/api/"]\nburst = 3\n', 'routes."/api/".burst', "needs a rate_limit"),
        ('[routes."/api/"]\nmax_conn = 0\n', 'routes."/api/".max_conn', "between 1"),
        ('[routes."/api/"]\nlimit = 1\n', 'routes."/api/".limit', "unknown key"),
        ('[routes."/api/"]\n', 'routes."/api/"', "sets nothing"),
        ('[routes."/app/"]\npath_params = "yes"\n', 'routes."/app/".path_params', "true or false"),
        ('[routes."/app/"]\npath_params = 1\n', 'routes."/app/".path_params', "true or false"),
        ('[routes."api"]\nmax_conn = 1\n', 'routes."api"', "plain URL path prefix"),
        ('[routes."/x/"]\nupstream = "ftp://gpu"\n', 'routes."/x/".upstream', "http:// or https://"),
        ('[routes."/x/"]\nupstream = "https://gpu/v1"\n', 'routes."/x/".upstream', "no path"),
        ('[routes."/x/"]\nupstream = "https://u:p@gpu"\n', 'routes."/x/".upstream', "http:// or https://"),
        ('[routes."/x/"]\nupstream = "http://gpu:99999"\n', 'routes."/x/".upstream', "http:// or https://"),
        ('[routes."/"]\nupstream = "http://gpu"\n', 'routes."/".upstream', "would take over"),
        ('[routes."/api/"]\nupstream = "http://gpu"\n', 'routes."/api/".upstream', "would take over"),
    ],
)
def test_bad_routes_name_their_key(load, extra, key, words):
    fails(load, extra, key, words)


def test_headers_proxies_and_domains(load):
    edge = load(
        '[edge]\ndomains = ["example.com", "*.example.com"]\ntrusted_proxies = ["10.0.0.0/8", "192.0.2.7"]\n'
        '[edge.headers]\n"Content-Security-Policy" = "default-src \'self\'"\n"X-Frame-Options" = ""\n'
    ).edge
    assert edge.domains == ("example.com", "*.example.com")
    assert edge.trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32")
    headers = dict(edge.headers)
    assert headers["Content-Security-Policy"] == "default-src 'self'" and "X-Frame-Options" not in headers
    fails(load, '[edge]\ntrusted_proxies = ["10.0.0.0/33"]\n', "edge.trusted_proxies")
    fails(load, '[edge]\ndomains = ["Example.com"]\n', "edge.domains")
    fails(load, '[edge.headers]\n"Bad Name" = "x"\n', "edge.headers.Bad Name")
    fails(load, '[edge.headers]\n"X-A" = "a$b"\n', "edge.headers.X-A", "'$'")
    fails(load, '[edge.headers]\n"X-A" = "caf\u00e9"\n', "edge.headers.X-A", "printable ASCII")
    fails(load, '[edge.headers]\n"Strict-Transport-Security" = "x"\n', "edge.headers.Strict-Transport-Security")
    fails(load, '[edge.headers]\n"Set-Cookie" = "x"\n', "edge.headers.Set-Cookie")


def test_service_secrets_come_from_its_env_file(load, tmp_path):
    env = tmp_path / "backend.env"
    env.write_text("SPRING_DATASOURCE_PASSWORD=hunter2-long-secret\nDB_HOST_NAME=plain-value-xyz\n")
    env.chmod(0o600)
    masking.forget()
    with_env = BASE.replace('routes = ["/api/"]', 'routes = ["/api/"]\nenv_file = "backend.env"', 1)
    cfg = load(
        base=with_env.replace('env_file = "backend.env"', 'env_file = "backend.env"\nsecrets = ["DB_HOST_NAME"]')
    )
    assert cfg.services["backend"].secrets == ("DB_HOST_NAME",)
    assert masking.mask("plain-value-xyz hunter2-long-secret") == "***** *****"
    missing = with_env.replace('env_file = "backend.env"', 'env_file = "backend.env"\nsecrets = ["NOPE"]')
    fails(load, "", "services.backend.secrets", "not defined", base=missing)
    no_env = BASE.replace('routes = ["/"]', 'routes = ["/"]\nsecrets = ["X"]')
    fails(load, "", "services.frontend.secrets", "needs an env_file", base=no_env)


def test_a_webhook_is_a_secret(load):
    masking.forget()
    load('[backup]\nwebhook = "https://hooks.example.invalid/services/T000/B000/abcdefghijklmnop"\n')
    assert "abcdefghijklmnop" not in masking.mask("posting to .../abcdefghijklmnop failed")
    masking.forget()


def test_a_client_cap_and_a_tmpfs_for_bodies_by_default(load):
    edge = load().edge
    assert edge.max_client_conn == 512 and edge.temp_size == 256 << 20
    assert load('[edge]\nmax_client_conn = 0\nmax_body = "1g"\n').edge.temp_size == 2 << 30  # two bodies
    edge = load('[edge]\nmax_client_conn = 40\ntemp_size = "64m"\nmax_body = "64m"\n').edge
    assert edge.max_client_conn == 40 and edge.temp_size == 64 << 20
    fails(load, "[edge]\nmax_client_conn = -1\n", "edge.max_client_conn", "between 0 and 100000")
    fails(load, '[edge]\ntemp_size = "64 MB"\n', "edge.temp_size", "a size")
    fails(load, '[edge]\ntemp_size = "16m"\n', "edge.temp_size", "at least edge.max_body")
