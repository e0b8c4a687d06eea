"""The CLI installs like a CLI: the wheel, built from this checkout, installs into a fresh
venv outside it (its dependencies from the package index, as pipx would), and that
install alone runs `deployer init`, `deployer up` and a release on the real engine:
every image the deployer needs builds from the package's own data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], *, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "DEPLOYER_CONFIG")}
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv with the wheel installed."""
    folder = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(folder)],
        cwd=folder)  # fmt: skip
    [wheel] = folder.glob("bluegreen_deployer-*.whl")  # the distribution's name; the command is `deployer`
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", str(folder / "venv")], cwd=folder)
    run([str(folder / "venv" / "bin" / "pip"), "install", "-q", str(wheel)], cwd=folder)
    return folder / "venv" / "bin"


def test_the_installed_wheel_inits_ups_and_releases(installed, tmp_path, docker_client, test_app_image):
    [wheel] = installed.parent.parent.glob("bluegreen_deployer-*.whl")
    version = wheel.name.split("-")[1]  # from the git tag or commit it was built at (hatch-vcs)
    where = run([str(installed / "python"), "-c", "import deployer; print(deployer.__file__)"], cwd=tmp_path)
    assert where.stdout.startswith(str(installed.parent)) and not where.stdout.startswith(str(ROOT))
    assert run([str(installed / "deployer"), "--version"], cwd=tmp_path).stdout.strip() == f"deployer {version}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", version), version

    app = tmp_path / f"w{uuid.uuid4().hex[:8]}"
    for folder in ("backend", "frontend"):
        (app / folder).mkdir(parents=True)
    deployer = str(installed / "deployer")
    done = run([deployer, "init", "--ci", "github"], cwd=app)
    assert "wrote     " in done.stdout and (app / ".github" / "workflows" / "cd.yml").is_file()
    config = app / "deployer.toml"
    text = config.read_text()
    for old, new in (
        ("public_port = 80\n", "public_port = 0\n"),
        ("preview_port = 8081\n", "preview_port = 0\n"),
        ('restart = "unless-stopped"', 'restart = "no"'),
        ('"/healthz"', '"/health"'),  # the test app's health path
    ):
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    name = app.name
    refs = [f"{name}-{service}:v1" for service in ("backend", "frontend")]
    for ref in refs:
        docker_client.images.get(test_app_image).tag(ref)
    try:
        up = run([deployer, "up"], cwd=app)
        released = run([deployer, "release", "v1", "--no-backup", "--watch", "0"], cwd=app)
        assert "released v1: blue is live" in released.stderr, released.stderr
        status = run([deployer, "status", "--json"], cwd=app).stdout
        assert '"live": "blue"' in status
        # Each of the deployer's own images is the one the installed package names (a hash of its
        # own build inputs, and the base image's ID): built from the wheel's data, or found
        # already built from the same bytes.
        script = (
            "from deployer.adapters.engine import Engine\n"
            "from deployer.flows import images as i\n"
            "base = Engine().image_id('debian:trixie-slim')\n"
            "for n in ('edge', 'db', 'agent'):\n"
            "    f, files, root = i._context(n)\n"
            "    print(n, i.own_tag(n, i.content_tag(files, root), base))"
        )
        tags = dict(
            line.split() for line in run([str(installed / "python"), "-c", script], cwd=tmp_path).stdout.splitlines()
        )
        for own, container in (("edge", "edge"), ("db", "db"), ("agent", "backup")):
            attrs = docker_client.api.inspect_container(f"{name}-infra-{container}-1")
            assert attrs["Config"]["Image"] == tags[own], (own, attrs["Config"]["Image"], up.stderr)
        port = re.search(r'"live_port": (\d+)', status)
        assert port, status
    finally:
        subprocess.run(
            [deployer, "down", "--volumes", "--yes", "--no-backup"], cwd=app, capture_output=True, timeout=300
        )
        try:  # `down --volumes` keeps the dumps by design; this test made none worth keeping
            docker_client.volumes.get(f"{name}-dumps").remove(force=True)
        except Exception:
            pass
        for ref in refs:
            try:
                docker_client.images.remove(ref)
            except Exception:
                pass
