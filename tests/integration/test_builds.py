"""`deployer build` with BuildKit on the real engine: each service's build arguments and base
image reach the build, the build's output is BuildKit's, a
second build after a one-line change reuses the dependency layer and its cache mount, a
failing build prints its log and exits 1 naming the image, and the classic builder, asked
for, says so once and builds the same Dockerfile with its cache mounts left out."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.docker

DOCKERFILE = """\
ARG BASE_IMAGE=debian:trixie-slim
FROM ${BASE_IMAGE}
USER root
WORKDIR /build
COPY deps.txt .
# the dependency layer: its cache mount keeps what it fetched for the next install
RUN --mount=type=cache,id=CACHE_ID,target=/cache sh -c 'ls /cache; cp deps.txt /cache/seen-$(cat deps.txt); echo "$(echo inst)alled-now"'
COPY src.txt .
RUN cat src.txt
"""


def write_project(project, dockerfile: str = DOCKERFILE, build_args: str = "") -> None:
    context = project.folder / "backend"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile.replace("CACHE_ID", f"deps-{project.name}"))
    (context / "deps.txt").write_text(f"one-{project.name}\n")  # unique: no earlier run's layer is reused
    (context / "src.txt").write_text("line 1\n")
    project.write_config(
        services=f"""
        [services.backend]
        image = "{project.name}-backend"
        port = 8080
        health = "/health"
        routes = ["/"]
        build = "backend"
        build_args = {{ BASE_IMAGE = "{project.app_image}"{build_args} }}
        """
    )


def layers(project, ref: str) -> list[str]:
    return project.docker.images.get(ref).attrs["RootFS"]["Layers"]


def test_buildkit_builds_and_a_one_line_change_reuses_the_dependency_layer(project):
    write_project(project)
    project.images += [f"{project.name}-backend:{v}" for v in ("v1", "v2", "v3")]
    first = project.cli("build", "v1")
    assert first.returncode == 0, first.stderr
    # BuildKit's plain progress: numbered steps ("#5 [2/5] COPY deps.txt .", "#7 DONE 0.1s").
    # The Dockerfile and the .dockerignore load side by side, so either may be #1.
    prefix = re.escape(f"  {project.name}-backend:v1 | ")
    assert re.search(rf"(?m)^{prefix}#[12] \[internal\] load build definition", first.stderr), first.stderr
    assert "installed-now" in first.stderr
    (project.folder / "backend" / "src.txt").write_text("line 1, changed\n")  # a one-line change of the source
    second = project.cli("build", "v2")
    assert second.returncode == 0, second.stderr
    step = next(line for line in second.stderr.splitlines() if "RUN --mount=type=cache" in line)
    number = step.split("|", 1)[1].split()[0]  # "#6"
    assert any(
        line.split("|", 1)[1].strip() == f"{number} CACHED" for line in second.stderr.splitlines() if "|" in line
    )
    assert "installed-now" not in second.stderr, "the dependency step did not run again"
    v1, v2 = layers(project, f"{project.name}-backend:v1"), layers(project, f"{project.name}-backend:v2")
    # The same layers up to the source's: the COPY of src.txt differs, and the RUN after it
    # either adds no layer (an empty diff) or one that may be the same in both.
    shared = next((i for i, (a, b) in enumerate(zip(v1, v2, strict=False)) if a != b), min(len(v1), len(v2)))
    assert v1 != v2 and shared >= len(v1) - 2, ("the same layers up to the source", v1, v2)
    # A dependency change runs the install again, with what the cache mount kept.
    (project.folder / "backend" / "deps.txt").write_text(f"two-{project.name}\n")
    third = project.cli("build", "v3")
    assert third.returncode == 0, third.stderr
    assert f"seen-one-{project.name}" in third.stderr and "installed-now" in third.stderr, "the cache mount kept it"


def test_a_failing_build_prints_its_log_and_exits_1_naming_the_image(project):
    write_project(project, DOCKERFILE.replace("RUN cat src.txt", 'RUN echo "$(echo failing)-step-output" && exit 3'))
    failed = project.cli("build", "v1")
    assert failed.returncode == 1, failed.stderr
    assert f"building {project.name}-backend:v1 failed" in failed.stderr
    assert "failing-step-output" in failed.stderr and "Traceback" not in failed.stderr
    assert project.docker.images.list(name=f"{project.name}-backend") == []


def test_the_classic_builder_asked_for_says_so_once_and_builds_without_the_cache_mounts(project):
    write_project(project)  # RUN --mount=type=cache,...: left out for the classic builder
    project.images.append(f"{project.name}-backend:v1")
    run = project.popen_env({"DEPLOYER_BUILDER": "classic"}, "build", "v1")
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    assert stderr.count("warning: building with the classic builder (DEPLOYER_BUILDER=classic)") == 1
    assert project.docker.images.get(f"{project.name}-backend:v1").labels["org.opencontainers.image.version"] == "v1"


def test_build_passes_each_services_build_args_and_base_image(project):
    write_project(
        project,
        "ARG BASE_IMAGE=debian:trixie-slim\nFROM ${BASE_IMAGE}\nARG GREETING=unset\nLABEL greeting=${GREETING}\n"
        "ARG HEALTHCHECK_PATH=unset\nLABEL health=${HEALTHCHECK_PATH}\n",
        build_args=', GREETING = "hello from the config"',
    )
    project.images.append(f"{project.name}-backend:v1")
    built = project.cli("build", "v1")
    assert built.returncode == 0, built.stderr
    image = project.docker.images.get(f"{project.name}-backend:v1")
    assert image.labels["greeting"] == "hello from the config"
    assert image.labels["health"] == "/health", "the templates' HEALTHCHECK gets the service's health path"
    base = project.docker.images.get(project.app_image)
    assert image.attrs["RootFS"]["Layers"] == base.attrs["RootFS"]["Layers"]  # FROM the image the config named


def test_the_configs_build_cache_reaches_buildx_and_the_environment_takes_its_place(project):
    """[build] cache_from/cache_to go to `docker buildx build`; DEPLOYER_CACHE_FROM, when set
    (a CI job's own cache), replaces cache_from. No registry answers here, so buildx says it
    tried the import and builds on; the inline export needs none."""
    write_project(project)
    project.images.append(f"{project.name}-backend:v1")
    ref = f"127.0.0.1:9/{project.name}-cache"
    with open(project.config, "a") as fh:
        fh.write(f'\n[build]\ncache_from = ["type=registry,ref={ref}"]\ncache_to = "type=inline"\n')
    built = project.cli("build", "v1")
    assert built.returncode == 0, built.stderr
    assert f"importing cache manifest from {ref}" in built.stderr and "exporting cache" in built.stderr
    import os
    import subprocess
    import sys

    other = f"127.0.0.1:9/{project.name}-ci"
    env = {**os.environ, "DEPLOYER_CACHE_FROM": f"type=registry,ref={other}"}
    again = subprocess.run(
        [sys.executable, "-m", "deployer", "build", "v1", "--config", str(project.config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert f"importing cache manifest from {other}" in again.stderr and ref not in again.stderr

    text = project.config.read_text().replace('cache_to = "type=inline"', 'cache_to = "mode=max"')
    project.config.write_text(text)  # no type=: bad input, named, before anything builds
    bad = project.cli("build", "v2")
    assert bad.returncode == 2 and "build.cache_to" in bad.stderr and "type=" in bad.stderr, bad.stderr
