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


def built_image(docker_client, folder: Path, repo: str, files: list[str] | None = None) -> str:
    """`<repo>:<hash of the files>` built from `folder` through testcontainers, unless it exists.

    `files`: those the image is made of (by default every file in the folder), so that editing the
    others does not rebuild it."""
    import hashlib

    from testcontainers.core.image import DockerImage

    if files is None:
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    else:
        paths = sorted(folder / name for name in files)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    tag = f"{repo}:{digest.hexdigest()[:12]}"
    try:
        docker_client.images.get(tag)
    except Exception:
        DockerImage(path=str(folder), tag=tag, clean_up=False, buildargs={}).build()
    return tag


@pytest.fixture(scope="session")
def test_app_image(docker_client) -> str:
    """The test app (tests/app), built once per content."""
    return built_image(docker_client, ROOT / "tests" / "app", "deployer-testapp")


@pytest.fixture(scope="session")
def lua_image(docker_client) -> str:
    """The runner of the edge's Lua specs (tests/lua), built once per content of its Dockerfile:
    the specs are mounted when it runs."""
    return built_image(docker_client, ROOT / "tests" / "lua", "deployer-testlua", files=["Dockerfile"])


@pytest.fixture(scope="session")
def prometheus_image(docker_client) -> str:
    """Debian's Prometheus (tests/prometheus), built once per content of its Dockerfile."""
    return built_image(docker_client, ROOT / "tests" / "prometheus", "deployer-testprom", files=["Dockerfile"])


@pytest.fixture(scope="session")
def chromium_image(docker_client) -> str:
    """Debian's headless Chromium (tests/chromium), built once per content of its Dockerfile."""
    return built_image(docker_client, ROOT / "tests" / "chromium", "deployer-testchromium", files=["Dockerfile"])


@pytest.fixture
def project(tmp_path, docker_client, test_app_image):
    from stack import Stack

    stack = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path, docker_client, test_app_image)
    try:
        yield stack
    finally:
        stack.destroy()


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory, docker_client, test_app_image):
    """One project per module, up, with v1 live on blue and nothing on green: for the tests
    that only read it or refuse to change it, so that each does not pay for an `up`."""
    from stack import Stack

    stack = Stack(f"t{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("live"), docker_client, test_app_image)
    try:
        stack.release_all("v1")
        yield stack
    finally:
        stack.destroy()


@pytest.fixture
def shared(live_stack):
    """The module's live stack. A test may rewrite its config; the next one gets it back, and
    finds v1 still live on blue (or the test that changed it fails here)."""
    yield live_stack
    live_stack.write_config()
    assert live_stack.serving() == ("v1", "blue"), "a test on the shared stack changed what is live"


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


# -- the slowest modules first --------------------------------------------------------------
# On several workers (`-n 2 --dist loadfile`, one module per worker at a time) a long module
# collected late would run alone at the end. These start first; the order inside a module,
# and of the others, is kept.
SLOW_MODULES = ("test_swarm.py", "test_release.py", "test_cd.py", "test_guards.py", "test_edge.py", "test_refresh.py")


def pytest_collection_modifyitems(items) -> None:
    def weight(item) -> int:
        name = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        return SLOW_MODULES.index(name) if name in SLOW_MODULES else len(SLOW_MODULES)

    items.sort(key=weight)  # stable: each module's own order holds


# -- nothing left behind ---------------------------------------------------------------------
# Every test removes the containers, networks and volumes it made, even when it fails. The
# session checks it: what exists on the engine at the end and did not at the start fails
# the run, named. Images are not counted (built images are a cache the next run reuses).
_ENGINE_AT_START: dict[str, set[str]] | None = None


def _engine_objects() -> dict[str, set[str]] | None:
    try:
        import docker

        client = docker.from_env()
        return {
            "container": {c.name for c in client.containers.list(all=True)},
            "network": {n.name for n in client.networks.list()},
            "volume": {v.name for v in client.volumes.list()},
        }
    except Exception:
        return None  # no engine: the docker tests fail on their own


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")  # an xdist worker: the controller checks for all


def pytest_collection_finish(session) -> None:
    global _ENGINE_AT_START
    if _is_worker(session.config):
        return
    if any(item.get_closest_marker("docker") for item in session.items):
        _ENGINE_AT_START = _engine_objects()


def pytest_sessionstart(session) -> None:
    # Under xdist the controller collects nothing; it takes the snapshot before any worker starts.
    global _ENGINE_AT_START
    if getattr(session.config.option, "numprocesses", None) and not _is_worker(session.config):
        _ENGINE_AT_START = _engine_objects()


def pytest_sessionfinish(session, exitstatus) -> None:
    if _ENGINE_AT_START is None or _is_worker(session.config):
        return
    now = _engine_objects()
    if now is None:
        return
    left = [f"{kind} {name}" for kind, names in now.items() for name in sorted(names - _ENGINE_AT_START[kind])]
    lost = _lost_by_the_engine([x.split(" ", 1)[1] for x in left if x.startswith("network ")])
    left = [x for x in left if x.removeprefix("network ") not in lost]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    say = (
        (lambda text, **how: reporter.write_line(text, **how))
        if reporter
        else (lambda text, **how: print(text, file=sys.stderr))
    )
    for name, why in lost.items():
        say(f"kept by the engine, not by a test: network {name}: {why}", yellow=True)
    if left:
        say("left on the engine by this run (a test did not clean up): " + ", ".join(left), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _lost_by_the_engine(networks: list[str]) -> dict[str, str]:
    """The leftover networks that no test can remove: dockerd 20.10 sometimes keeps counting an
    endpoint after its container is gone, and refuses every removal of that network (listing
    no container on it) until it restarts. A test's teardown tried; that is the engine's fault,
    said, not failed. Any other leftover network is a test's, and fails the run (removed here
    when it can be, so that it does not stay on the machine)."""
    from deployer.adapters.engine import LOST_COUNT, Engine

    engine, lost = Engine(), {}
    try:
        for name in networks:
            why = engine.remove_network(name, wait=5)
            if LOST_COUNT in why:
                lost[name] = why
    finally:
        engine.close()
    return lost


# -- where the time goes ----------------------------------------------------------------------
# The integration tier prints the seconds each module took (setup, call and teardown, module
# fixtures included), slowest first: the figure the 25-minute budget is spent by.
_MODULE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report) -> None:
    module = report.nodeid.split("::", 1)[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    timed = {m: s for m, s in _MODULE_SECONDS.items() if "tests/unit" not in m}
    if not timed or sum(timed.values()) < 60:
        return
    terminalreporter.section("seconds per module")
    for module, seconds in sorted(timed.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f}  {module}")
    terminalreporter.write_line(f"{sum(timed.values()):8.1f}  in all")
