"""`deployer init` on a temporary project, through the CLI."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from deployer import config

ROOT = Path(__file__).resolve().parents[2]


def init(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deployer", "init", str(folder), *args], capture_output=True, text=True
    )


def make_project(tmp_path: Path) -> Path:
    folder = tmp_path / "My Shop"
    (folder / "backend").mkdir(parents=True)
    (folder / "frontend").mkdir()
    return folder


def test_init_writes_files_refuses_then_forces(tmp_path):
    folder = make_project(tmp_path)
    first = init(folder)
    assert first.returncode == 0, first.stderr
    assert "Next steps" in first.stdout
    assert (folder / "backend" / "Dockerfile").read_text() == (
        ROOT / "deployer" / "assets" / "templates" / "spring-boot.Dockerfile"
    ).read_text()
    assert (folder / "frontend" / "Dockerfile").read_text() == (
        ROOT / "deployer" / "assets" / "templates" / "nextjs.Dockerfile"
    ).read_text()
    assert stat.S_IMODE((folder / "db.env").stat().st_mode) == 0o600
    password = (folder / "db.env").read_text().split("POSTGRES_PASSWORD=")[1].strip()
    assert password and password in (folder / "backend.env").read_text()
    assert password not in first.stdout + first.stderr

    cfg = config.load(folder / "deployer.toml")  # the generated config passes validation
    assert cfg.name == "my-shop"
    assert cfg.services["backend"].image == "my-shop-backend"
    assert cfg.services["backend"].dockerfile == (folder / "backend" / "Dockerfile").resolve()
    assert cfg.edge.public_port == 80
    text = (folder / "deployer.toml").read_text()
    assert "shop" not in text.replace("my-shop", "").replace("myshop", ""), "the example's name is left in it"
    assert "docker logs my-shop-infra-edge-1" in text and 'project.id = "myshopstaging2026"' in text

    (folder / "deployer.toml").write_text("# mine\n")
    second = init(folder)
    assert second.returncode == 2
    assert "exists; nothing was written" in second.stderr
    assert (folder / "deployer.toml").read_text() == "# mine\n"

    forced = init(folder, "--force")
    assert forced.returncode == 0
    assert "overwrote" in forced.stdout
    assert "kept" in forced.stdout  # the secrets are never overwritten
    assert (folder / "db.env").read_text().split("POSTGRES_PASSWORD=")[1].strip() == password
    assert config.load(folder / "deployer.toml").name == "my-shop"


def test_init_needs_backend_and_frontend(tmp_path):
    (tmp_path / "backend").mkdir()
    result = init(tmp_path)
    assert result.returncode == 2
    assert "no frontend/ folder" in result.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "backend"]
