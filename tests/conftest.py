"""Shared fixtures. Integration tests run against the real Docker engine.

No Ryuk (its image cannot be pulled here): every fixture removes what it created,
even when the test fails. Names are unique per test, host ports are picked by
Docker, and nothing depends on a clean engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def docker_client():
    """The engine. Missing engine = failure, never a skip: CI must not pass without Docker."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        pytest.fail(f"these tests need a running Docker engine (run ../shared/env/docker-up): {exc}")
    return client


@pytest.fixture(scope="session")
def test_app_image(docker_client) -> str:
    """The test app (tests/app), built once per content through testcontainers."""
    import hashlib

    from testcontainers.core.image import DockerImage

    folder = ROOT / "tests" / "app"
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    tag = f"deployer-testapp:{digest.hexdigest()[:12]}"
    try:
        docker_client.images.get(tag)
    except Exception:
        DockerImage(path=str(ROOT / "tests" / "app"), tag=tag, clean_up=False, buildargs={}).build()
    return tag


@pytest.fixture
def project(tmp_path, docker_client, test_app_image):
    from stack import Stack

    stack = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path, docker_client, test_app_image)
    try:
        yield stack
    finally:
        stack.destroy()


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """The CLI exactly as a user runs it, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
