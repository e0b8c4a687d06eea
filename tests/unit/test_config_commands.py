"""`deployer config check` and `deployer config show` need no engine: run as a user runs them
(DOCKER_HOST points nowhere, so any engine call would fail), they check every file the config
names at once, one line per problem, exit 2, and show the resolved config with secrets masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import write_config

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}

CONFIG = """
[project]
name = "shop"
[services.backend]
image = "shop-backend"
port = 8080
health = "/health"
routes = ["/api/"]
env_file = "backend.env"
required_env = ["DB_PASSWORD", "API_KEY"]
build = "backend"
[services.frontend]
image = "shop-web"
port = 3000
health = "/healthz"
routes = ["/"]
build = "frontend"
dockerfile = "web.Dockerfile"
[database]
env_file = "db.env"
[backup]
webhook = "https://hooks.example.test/services/T000/B000/abcdefghijklmnopqrstuvwx"
[environments.staging]
services.backend.env_file = "staging.env"
"""


def deployer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **NO_ENGINE},
    )


def project(tmp_path: Path) -> Path:
    """A project whose files are all right: both env files, both contexts with their Dockerfiles."""
    write_config(tmp_path, CONFIG)
    for name in ("backend.env", "staging.env"):
        (tmp_path / name).write_text("DB_PASSWORD=hunter2-secret\nAPI_KEY=k-123456789\n")
        (tmp_path / name).chmod(0o600)
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "frontend").mkdir()
    (tmp_path / "web.Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_a_good_project_checks_ok_with_no_engine(tmp_path):
    folder = project(tmp_path)
    result = deployer("config", "check", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "ok: 2 services" in result.stderr and "Traceback" not in result.stderr
    staging = deployer("config", "check", "-e", "staging", cwd=folder)
    assert staging.returncode == 0, staging.stderr
    assert lines(staging)[0].startswith("· [staging] ")


def test_every_file_problem_is_one_line_and_nothing_changes(tmp_path):
    folder = project(tmp_path)
    (folder / "backend.env").write_text("DB_PASSWORD=hunter2-secret\n")  # API_KEY missing
    (folder / "db.env").chmod(0o644)  # readable by everyone
    (folder / "backend" / "Dockerfile").unlink()
    (folder / "web.Dockerfile").unlink()
    before = sorted((p.name, p.stat().st_mode, p.stat().st_mtime_ns) for p in folder.rglob("*"))

    result = deployer("config", "check", cwd=folder)
    assert result.returncode == 2
    assert "warning: backup.webhook holds what looks like a token" in result.stderr
    found = [line for line in lines(result) if "warning:" not in line]
    assert len(found) == 4, result.stderr
    assert all(line.startswith("ERROR (ConfigError): ") for line in found)
    text = "\n".join(found)
    assert "services.backend.required_env: API_KEY is required" in text
    assert "database.env_file" in text and "chmod 600" in text
    assert "services.backend.build" in text and "has no Dockerfile" in text
    assert "services.frontend.dockerfile: web.Dockerfile does not exist" in text
    assert "hunter2" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert sorted((p.name, p.stat().st_mode, p.stat().st_mtime_ns) for p in folder.rglob("*")) == before

    # --no-secrets (a CI job without the env files) checks the values and the contexts only
    (folder / "backend.env").unlink()
    (folder / "db.env").unlink()
    ci = deployer("config", "check", "--no-secrets", cwd=folder)
    assert ci.returncode == 2 and len([line for line in lines(ci) if "ERROR" in line]) == 2, ci.stderr
    assert "env_file" not in ci.stderr


def test_a_wrong_value_and_a_missing_environment_are_one_line(tmp_path):
    folder = project(tmp_path)
    (folder / "deployer.toml").write_text(CONFIG.replace("port = 8080", 'port = "eighty"'))
    result = deployer("config", "check", cwd=folder)
    assert result.returncode == 2 and len(lines(result)) == 1, result.stderr
    assert "services.backend.port" in result.stderr
    (tmp_path / "again").mkdir()
    missing = deployer("config", "check", "-e", "prod", cwd=project(tmp_path / "again"))
    assert missing.returncode == 2 and len(lines(missing)) == 1, missing.stderr
    assert "prod" in missing.stderr
    empty = deployer("config", "show", "-e", "", cwd=folder)
    assert empty.returncode == 2 and "-e/--env" in empty.stderr and empty.stdout == ""


def test_show_prints_the_resolved_config_with_secrets_masked(tmp_path):
    folder = project(tmp_path)
    (folder / "backend.env").unlink()  # show reads no env file
    result = deployer("config", "show", "-e", "staging", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["environment"] == "staging"
    assert data["services"]["backend"]["env_file"] == str(folder / "staging.env")
    assert data["services"]["backend"]["stop_grace"] == 30  # a default, filled in
    assert "abcdefghijklmnopqrstuvwx" not in result.stdout and "hooks.example.test" not in result.stdout

    plain = deployer("config", "show", cwd=folder)
    assert plain.returncode == 0, plain.stderr
    assert "services.frontend.port = 3000" in plain.stdout.splitlines()
    assert "abcdefghijklmnopqrstuvwx" not in plain.stdout


def test_a_reader_that_leaves_early_is_no_error(tmp_path):
    folder = project(tmp_path)
    result = subprocess.run(
        f"{sys.executable} -m deployer config show | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=folder,
        env={**os.environ, **NO_ENGINE},
    )
    assert result.stdout.startswith("path = ") and result.stderr == "", result.stderr


def test_a_webhook_comes_from_the_environment_or_a_private_file(tmp_path):
    folder = project(tmp_path)
    text = CONFIG.replace(
        'webhook = "https://hooks.example.test/services/T000/B000/abcdefghijklmnopqrstuvwx"',
        'webhook = "env:BACKUP_HOOK"',
    )
    (folder / "deployer.toml").write_text(text + '[notify]\nwebhook = "file:notify.url"\n')
    (folder / "notify.url").write_text("https://hooks.example.test/T1/B1/zyxwvutsrqponmlkjihgfedc\n")
    (folder / "notify.url").chmod(0o600)
    hook = {"BACKUP_HOOK": "https://hooks.example.test/T2/B2/qwertyuiopasdfghjklzxcvb"}

    unset = deployer("config", "check", cwd=folder)
    assert unset.returncode == 2, unset.stderr
    assert [line for line in lines(unset)] == [
        f"ERROR (ConfigError): {folder / 'deployer.toml'}: backup.webhook: "
        "the environment variable BACKUP_HOOK is not set (the webhook's URL)"
    ]
    shown = subprocess.run(
        [sys.executable, "-m", "deployer", "config", "show", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=folder,
        env={**os.environ, **NO_ENGINE, **hook},
    )
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["backup"]["webhook"] and data["notify"]["webhook"]  # read, then masked
    assert "qwertyuiop" not in shown.stdout and "zyxwvutsrq" not in shown.stdout and "warning" not in shown.stderr

    (folder / "notify.url").chmod(0o644)
    loose = subprocess.run(
        [sys.executable, "-m", "deployer", "config", "check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=folder,
        env={**os.environ, **NO_ENGINE, **hook},
    )
    assert loose.returncode == 2 and "notify.webhook" in loose.stderr and "chmod 600" in loose.stderr
    assert "zyxwvutsrq" not in loose.stderr
