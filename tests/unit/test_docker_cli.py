"""The docker command's transport: a failure names the command, its exit code and the
engine, with the command's stderr masked of secrets."""

from __future__ import annotations

import pytest
from python_on_whales.exceptions import DockerException

from deployer.adapters import docker_cli
from deployer.core import masking
from deployer.errors import ENGINE_HOST, EngineError


def test_a_failed_docker_command_is_an_engine_error_naming_the_command_and_the_engine():
    masking.register("s3cr3t-value")
    token = ENGINE_HOST.set("ssh://deploy@web1")
    try:
        with (
            pytest.raises(EngineError) as caught,
            docker_cli.calling("compose up of shop-blue", step="start", command="docker compose up"),
        ):
            raise DockerException(["docker", "compose", "up"], 17, b"", b"password s3cr3t-value refused\n")
    finally:
        ENGINE_HOST.reset(token)
        masking.forget()
    error = caught.value
    assert str(error) == "compose up of shop-blue failed: `docker compose up` exited with 17"
    assert (error.step, error.command, error.status, error.host) == (
        "start",
        "docker compose up",
        17,
        "ssh://deploy@web1",
    )
    assert "s3cr3t-value" not in error.stderr + error.logs and "refused" in error.stderr


def test_the_build_keeps_its_own_last_lines_and_a_question_that_fails_is_no_answer():
    with (
        pytest.raises(EngineError) as caught,
        docker_cli.calling("building app:v1", step="images", command="docker buildx build", logs=lambda: "step 3/9"),
    ):
        raise DockerException(["docker", "buildx", "build"], 1, b"", b"error")
    assert caught.value.logs == "step 3/9"
    assert docker_cli.output(["sh", "-c", "exit 3"]) is None
    assert docker_cli.output(["sh", "-c", "echo abc"]).strip() == "abc"
