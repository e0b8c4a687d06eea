"""Bad environment variables are bad input: exit code 2 and one line naming the variable,
before the engine is contacted. An unreachable ssh host stays an operational failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def status(config: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DEPLOYER_SSH_COMMAND", "DEPLOYER_CONFIG")}
    return subprocess.run(
        [sys.executable, "-m", "deployer", "status", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=60,
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "host",
    ["garbage", "localhost:2375", "http//x", "ssh://", "ssh://deploy@host:port", "ssh://deploy@host:99999",
     "ssh://-oProxyCommand=id/host", "ssh://a b@host"],
)  # fmt: skip
def test_a_bad_docker_host_is_bad_input(shop_file, host):
    result = status(shop_file, DOCKER_HOST=host)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "DOCKER_HOST" in line and repr(host) in line
    assert "UnreachableError" not in line


def test_a_password_in_docker_host_is_refused_and_never_shown(shop_file):
    result = status(shop_file, DOCKER_HOST="ssh://deploy:Pw0rdSecret99@host.example")
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "DOCKER_HOST" in line and "ssh://deploy:***@host.example" in line and "Pw0rdSecret99" not in line


@pytest.mark.parametrize(("command", "why"), [('ssh "x', "No closing quotation"), ("ssh x\\", "No escaped character")])
def test_a_bad_ssh_command_is_bad_input(shop_file, command, why):
    result = status(shop_file, DOCKER_HOST="ssh://deploy@unreachable.invalid", DEPLOYER_SSH_COMMAND=command)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert f"DEPLOYER_SSH_COMMAND: {why}" in line
    assert "UnreachableError" not in line


def test_an_unreachable_ssh_host_is_still_a_failure(tmp_path, shop_file):
    # A stand-in for ssh that fails as ssh does for a host it cannot resolve (no network needed).
    fake_ssh = "sh -c 'echo \"ssh: Could not resolve hostname unreachable.invalid\" >&2; exit 255' ssh"
    result = status(shop_file, DOCKER_HOST="ssh://deploy@unreachable.invalid", DEPLOYER_SSH_COMMAND=fake_ssh)
    assert result.returncode == 1, result.stderr
    line = one_line(result)
    assert "UnreachableError" in line and "Could not resolve hostname" in line
