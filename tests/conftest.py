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
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"these tests need a running Docker engine (run ../shared/env/docker-up): {exc}")
    return client


@pytest.fixture(scope="session")
def test_app_image(docker_client) -> str:
    """The test app (tests/app), built once per content through testcontainers."""
    from testcontainers.core.image import DockerImage

    from deployer.images import content_tag

    tag = f"deployer-testapp:{content_tag(ROOT / 'tests' / 'app')}"
    try:
        docker_client.images.get(tag)
    except Exception:  # noqa: BLE001
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
