"""`deployer init` on a temporary project, through the CLI."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deployer import config
from deployer.errors import InputError
from deployer.flows import init as setup

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
    assert len(cfg.deployment) == 16, "an id of its own, never one that copies of the example share"
    text = (folder / "deployer.toml").read_text()
    assert "shop" not in text.replace("my-shop", "").replace("myshop", ""), "the example's name is left in it"
    assert "docker logs my-shop-infra-edge-1" in text and 'project.id = "myshopstaging2026"' in text
    assert "/ai/" not in [r.prefix for r in cfg.edge.routes], (
        "the example's placeholder upstream would take the app's /ai/ requests"
    )
    assert '# upstream = "https://gpu.example.invalid:8443"' in text

    (folder / "deployer.toml").write_text("# mine\n")
    second = init(folder)
    assert second.returncode == 2
    assert "exists; nothing was written" in second.stderr
    assert (folder / "deployer.toml").read_text() == "# mine\n"

    forced = init(folder, "--force")
    assert forced.returncode == 0
    assert "overwrote" in forced.stdout
    assert (folder / "deployer.toml.bak").read_text() == "# mine\n"  # --force keeps what it replaces
    assert f"backed up {folder / 'deployer.toml.bak'}" in forced.stdout
    assert "deployer.toml.bak" not in " ".join(p.name for p in (folder / "backend").iterdir())
    assert "kept" in forced.stdout  # the secrets are never overwritten
    assert (folder / "db.env").read_text().split("POSTGRES_PASSWORD=")[1].strip() == password
    assert config.load(folder / "deployer.toml").name == "my-shop"


def test_init_needs_backend_and_frontend(tmp_path):
    (tmp_path / "backend").mkdir()
    result = init(tmp_path)
    assert result.returncode == 2
    assert "no frontend/ folder" in result.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "backend"]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _refused(result: subprocess.CompletedProcess, names: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert names in lines[0] and "nothing was written" in lines[0]
    assert "Traceback" not in result.stderr and "internal" not in result.stderr
    assert result.stdout == ""


def test_init_refuses_a_folder_where_a_file_goes_and_writes_nothing(tmp_path):
    folder = make_project(tmp_path)
    (folder / "backend" / "Dockerfile").mkdir()
    before = _files(folder)
    for args in ((), ("--force",), ("--ci", "github"), ("--force", "--ci", "github")):
        result = init(folder, *args)
        _refused(result, str(folder / "backend" / "Dockerfile"))
        assert "is a folder" in result.stderr
        assert _files(folder) == before


def test_init_refuses_a_broken_symlink_and_writes_nothing(tmp_path):
    folder = make_project(tmp_path)
    (folder / "db.env").symlink_to(tmp_path / "nowhere")
    before = _files(folder)
    for args in ((), ("--force",)):
        result = init(folder, *args)
        _refused(result, str(folder / "db.env"))
        assert "broken symlink" in result.stderr
        assert _files(folder) == before
    assert not (tmp_path / "nowhere").exists()


def test_init_refuses_a_file_where_the_workflows_folder_goes(tmp_path):
    folder = make_project(tmp_path)
    (folder / ".github").write_text("not a folder\n")
    before = _files(folder)
    result = init(folder, "--ci", "github")
    _refused(result, str(folder / ".github"))
    assert _files(folder) == before


def test_init_refuses_a_special_file(tmp_path):
    folder = make_project(tmp_path)
    os.mkfifo(folder / "deployer.toml")
    before = _files(folder)
    result = init(folder, "--force")
    _refused(result, str(folder / "deployer.toml"))
    assert "not a regular file" in result.stderr
    assert _files(folder) == before


def test_init_refuses_a_folder_it_cannot_write(tmp_path, monkeypatch):
    """In process: the tests may run as root, for whom every file is writable."""
    folder = make_project(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder / "frontend" else real_access(p, mode))
    with pytest.raises(InputError, match="frontend is not writable"):
        setup.init(folder, force=False)
    assert _files(folder) == ["backend", "frontend"]


def test_init_keeps_env_files_that_are_symlinks_to_files(tmp_path):
    folder = make_project(tmp_path)
    (tmp_path / "secrets.env").write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=mine-password\n")
    (folder / "db.env").symlink_to(tmp_path / "secrets.env")
    result = init(folder)
    assert result.returncode == 0, result.stderr
    assert f"kept      {folder / 'db.env'}" in result.stdout
    assert "mine-password" in (tmp_path / "secrets.env").read_text()


def test_init_fits_a_stock_app_and_keeps_secrets_out_of_git_and_images(tmp_path):
    folder = make_project(tmp_path)
    (folder / ".gitignore").write_text("node_modules/\n/db.env")  # the team's own, one secret already
    (folder / "frontend" / ".dockerignore").write_text("mine\n")
    result = init(folder)
    assert result.returncode == 0, result.stderr
    cfg = config.load(folder / "deployer.toml")
    assert cfg.smoke == ()  # not the example's /api/version: the health paths the routes reach
    assert cfg.verify_paths() == ["/healthz"]
    assert "spring-boot-starter-actuator" in result.stdout and "configtree:/run/secrets/" in result.stdout
    assert "deployer config check" in result.stdout and "deployer rollback" in result.stdout
    ignored = (folder / ".gitignore").read_text().splitlines()
    assert ignored[:2] == ["node_modules/", "/db.env"] and {"backend.env", "notify.url"} <= set(ignored)
    assert "db.env" not in ignored  # already there as /db.env
    assert "!build/libs/" in (folder / "backend" / ".dockerignore").read_text()
    assert (folder / "frontend" / ".dockerignore").read_text() == "mine\n"  # the team's own is kept
    again = init(folder, "--force")
    assert again.returncode == 0, again.stderr
    assert (folder / ".gitignore").read_text().splitlines() == ignored  # nothing appended twice
    assert f"unchanged {folder / 'backend' / 'Dockerfile'}" in again.stdout  # the same text: no backup
    assert not list((folder / "backend").glob("*.bak*"))
    assert [p.name for p in folder.glob("*.bak*")] == ["deployer.toml.bak"]  # a new project.id: kept


def test_init_for_a_generic_backend_and_no_front_end(tmp_path):
    folder = tmp_path / "api"
    (folder / "backend").mkdir(parents=True)
    (folder / "backend" / "Dockerfile").write_text("FROM scratch\n")  # the team's own, kept
    result = init(folder, "--backend", "generic", "--frontend", "none")
    assert result.returncode == 0, result.stderr
    assert (folder / "backend" / "Dockerfile").read_text() == "FROM scratch\n"
    assert not (folder / "frontend").exists()
    cfg = config.load(folder / "deployer.toml")
    (backend,) = cfg.services.values()
    assert backend.name == "backend" and backend.health == "/health" and backend.routes == ("/",)
    assert backend.secrets == ("DB_PASSWORD",) and backend.dockerfile == (folder / "backend" / "Dockerfile").resolve()
    env = (folder / "backend.env").read_text()
    assert "DB_HOST=db\n" in env and "DB_USER=app\n" in env and "SPRING" not in env
    password = env.split("DB_PASSWORD=")[1].strip()
    assert f"POSTGRES_PASSWORD={password}" in (folder / "db.env").read_text()
    assert cfg.verify_paths() == ["/health"], "no example smoke path: the health path the route reaches"
    assert "Spring" not in result.stdout and "/run/secrets/DB_PASSWORD" in result.stdout
    assert "Next.js" not in result.stdout and "backend/Dockerfile." in result.stdout


def test_init_writes_no_example_limits_and_refuses_what_it_cannot_write(tmp_path):
    folder = make_project(tmp_path)
    text = setup.config_text("shop")
    assert '\n# [routes."/api/ai/"]\n' in text and '\n# [routes."/ai/"]\n' in text
    for args, words in (
        (("--backend", "rust"), "--backend 'rust': one of spring, generic"),
        (("--frontend", "vue"), "--frontend 'vue': one of nextjs, none"),
        (("--backend", "generic", "--ci", "github"), "--ci github writes workflows that build a Spring Boot"),
    ):
        result = init(folder, *args)
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
        assert sorted(folder.rglob("*")) == [folder / "backend", folder / "frontend"], "nothing written"
    result = init(tmp_path / "empty-api", "--frontend", "none")
    assert result.returncode == 2 and "no backend/ folder" in result.stderr
    spring_alone = init(folder, "--frontend", "none")
    assert spring_alone.returncode == 0, spring_alone.stderr
    assert not (folder / "frontend" / "Dockerfile").exists()
    assert "spring-boot-starter-actuator" in spring_alone.stdout
