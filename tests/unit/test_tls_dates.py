"""[edge.tls]: the certificate's validity dates. An expired certificate, or one not valid
yet, is bad input (exit code 2, naming edge.tls.cert and the date) before anything
changes; one that expires within 14 days is installed with one warning line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from deployer import config
from deployer.core import tls
from deployer.errors import BAD_INPUT, ConfigError
from deployer.flows import tls as tls_flow
from deployer.flows.context import Context
from deployer.runtime.mode import context

OPENSSL = shutil.which("openssl") or "openssl"
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)

BASE = """
[project]
name = "shop"
[services.backend]
image = "shop-backend"
port = 8080
health = "/health"
routes = ["/"]
[database]
env_file = "db.env"
[edge.tls]
cert = "site.crt"
key = "site.key"
"""

# `openssl req -x509` sets only -days from now (OpenSSL 3.0 has no -not_before/-not_after):
# `openssl ca -selfsign` signs a certificate with any dates.
CA = """
[ca]
default_ca = d
[d]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
email_in_dn = no
unique_subject = no
[p]
commonName = supplied
"""


def make_cert(folder: Path, not_before: datetime, not_after: datetime, stem: str = "site") -> tuple[Path, Path]:
    """A self-signed certificate (P-256) with exactly these dates, and its key (chmod 600)."""
    work = folder / f".ca-{stem}"
    work.mkdir()
    (work / "ca.cnf").write_text(CA)
    (work / "index.txt").write_text("")
    (work / "serial").write_text("01\n")
    cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"

    def openssl(*args: str) -> None:
        subprocess.run([OPENSSL, *args], cwd=work, check=True, capture_output=True)

    openssl(
        *("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=app.test"),
        *("-keyout", str(key), "-out", "req.csr"),
    )
    openssl(
        *("ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", str(key), "-in", "req.csr", "-notext"),
        *("-startdate", stamp(not_before), "-enddate", stamp(not_after), "-out", str(cert)),
    )
    key.chmod(0o600)
    return cert, key


def stamp(when: datetime) -> str:
    """openssl's date: UTCTime up to 2049, GeneralizedTime from 2050 (as RFC 5280 wants)."""
    return when.strftime("%y%m%d%H%M%SZ" if when.year < 2050 else "%Y%m%d%H%M%SZ")


@pytest.fixture
def load(config_file):
    return lambda: config.load(config_file(BASE))


# -- reading the dates ----------------------------------------------------------------------
def test_the_leaf_dates_count_and_a_chain_is_read_from_its_first_certificate(tmp_path):
    from deployer.config import edge as edge_config
    from deployer.config.reader import Reader

    r = Reader({}, tmp_path / "deployer.toml")
    old, _ = make_cert(tmp_path, datetime(2019, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC))
    late, _ = make_cert(tmp_path, datetime(2049, 6, 1, tzinfo=UTC), datetime(2051, 3, 4, 5, 6, 7, tzinfo=UTC), "late")
    in_2050 = datetime(2050, 1, 1, tzinfo=UTC)
    assert edge_config.check_dates(r, late, now=in_2050) is None  # a GeneralizedTime (2050 on)
    chain = tmp_path / "chain.pem"
    chain.write_text(old.read_text() + late.read_text())
    with pytest.raises(ConfigError, match="expired on 2020-01-01 00:00 UTC"):
        edge_config.check_dates(r, chain, now=in_2050)  # only the first certificate (the leaf) counts
    assert tls.stamp(datetime(2020, 1, 1, tzinfo=UTC)) == "2020-01-01 00:00 UTC"


def test_what_is_not_a_certificate_is_named(tmp_path):
    from deployer.config import edge as edge_config
    from deployer.config.reader import Reader

    bad = tmp_path / "bad.crt"
    bad.write_text("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="cannot read the validity dates") as info:
        edge_config.check_dates(Reader({}, tmp_path / "deployer.toml"), bad)
    assert info.value.key == "edge.tls.cert"


# -- config loading: dates do not stop a rollback, a down or a restore -----------------------
def test_an_expired_certificate_does_not_stop_loading_the_config(load, tmp_path):
    make_cert(tmp_path, datetime(2019, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC))
    assert load().edge.tls is not None  # switch, down, backup restore still work


def test_not_valid_yet_is_bad_input_but_a_few_minutes_of_clock_difference_are_tolerated(tmp_path, config_file):
    from deployer.config import edge as edge_config
    from deployer.config.reader import Reader

    r = Reader({}, tmp_path / "deployer.toml")
    start = NOW + 3 * DAY
    future, _ = make_cert(tmp_path, start, NOW + 90 * DAY, "future")
    with pytest.raises(ConfigError) as info:
        edge_config.check_dates(r, future)
    assert info.value.key == "edge.tls.cert" and info.value.exit_code == BAD_INPUT == 2
    assert f"not valid before {tls.stamp(start)}" in str(info.value) and "\n" not in str(info.value)
    fresh, _ = make_cert(tmp_path, NOW + timedelta(minutes=2), NOW + 90 * DAY, "fresh")
    assert edge_config.check_dates(r, fresh) is None


def test_a_certificate_that_expires_soon_loads(load, tmp_path):
    make_cert(tmp_path, NOW - 80 * DAY, NOW + 5 * DAY)
    assert load().edge.tls.cert == tmp_path / "site.crt"


def test_check_dates_warns_within_14_days_only(tmp_path):
    from deployer.config import edge as edge_config
    from deployer.config.reader import Reader

    cert, _ = make_cert(tmp_path, datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))
    r = Reader({}, tmp_path / "deployer.toml")
    assert edge_config.check_dates(r, cert, now=datetime(2030, 3, 1, tzinfo=UTC)) is None
    soon = edge_config.check_dates(r, cert, now=datetime(2030, 3, 20, tzinfo=UTC))
    assert soon and "edge.tls.cert" in soon and "expires on 2030-04-01 00:00 UTC" in soon
    assert edge_config.check_dates(r, cert, now=datetime(2030, 4, 1, tzinfo=UTC)) is not None  # the last second
    with pytest.raises(ConfigError, match="expired on 2030-04-01 00:00 UTC"):
        edge_config.check_dates(r, cert, now=datetime(2030, 4, 1, 0, 0, 1, tzinfo=UTC))


# -- the upload: deployer up and deployer edge reload ---------------------------------------
class FakeEngine:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def put_files(self, container, home, files, *, step):
        self.calls.append(f"put_files {sorted(files)}")


class FakeEdge:
    container = "shop-edge"

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def require(self):
        self.calls.append("require")

    def run(self, script, *, step):
        self.calls.append("run")
        return SimpleNamespace(ok=True, stdout="ok\nsubject=CN = app.test notAfter=...", stderr="")

    def published_port(self, port):
        return 443


def flow_context(path: Path) -> tuple[Context, list[str], list[str]]:
    said: list[str] = []
    calls: list[str] = []
    ctx = context(config.load(path, check_paths=False), say=said.append)  # as `deployer edge reload`
    ctx.engine = FakeEngine(calls)
    ctx.edge = FakeEdge(calls)
    return ctx, said, calls


@pytest.mark.parametrize("dates", [(NOW - 400 * DAY, NOW - DAY), (NOW + DAY, NOW + 90 * DAY)])
def test_reload_refuses_a_certificate_out_of_its_dates_before_anything(tmp_path, config_file, dates):
    make_cert(tmp_path, *dates)
    ctx, said, calls = flow_context(config_file(BASE))
    with pytest.raises(ConfigError) as info:
        tls_flow.reload(ctx)
    assert info.value.key == "edge.tls.cert" and info.value.exit_code == 2
    assert calls == [] and said == []


def test_reload_and_up_install_a_certificate_that_expires_soon_with_one_warning(tmp_path, config_file):
    make_cert(tmp_path, NOW - 80 * DAY, NOW + 5 * DAY)
    ctx, said, calls = flow_context(config_file(BASE))
    assert tls_flow.reload(ctx) == "subject=CN = app.test notAfter=..."
    assert calls[0] == "require" and calls[1].startswith("put_files") and calls[2] == "run"
    warnings = [line for line in said if line.startswith("warning:")]
    assert len(warnings) == 1 and f"expires on {tls.stamp(NOW + 5 * DAY)}" in warnings[0], said
    assert "edge.tls.cert" in warnings[0]

    said.clear()
    tls_flow.install(ctx, step="up")  # what `deployer up` calls after the config loaded
    assert len([line for line in said if line.startswith("warning:")]) == 1


def test_install_with_a_fresh_certificate_says_nothing(tmp_path, config_file):
    make_cert(tmp_path, NOW - DAY, NOW + 90 * DAY)
    ctx, said, calls = flow_context(config_file(BASE))
    tls_flow.install(ctx, step="up")
    assert said == [] and len(calls) == 2


# -- the command line: one line, exit code 2, no engine touched ------------------------------
@pytest.mark.parametrize("command", [["up"], ["edge", "reload"]])
def test_the_cli_refuses_an_expired_certificate_in_one_line(tmp_path, config_file, command):
    make_cert(tmp_path, datetime(2019, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC))
    config_file(BASE)
    # No Docker engine: had the command reached one, it would fail with exit code 1.
    environ = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    environ.pop("DEPLOYER_TRACEBACK", None)
    done = subprocess.run(
        [sys.executable, "-m", "deployer", *command, "--config", str(tmp_path / "deployer.toml")],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "edge.tls.cert: the certificate in" in lines[0] and "expired on 2020-01-01 00:00 UTC; renew it" in lines[0]
