"""The CD path end to end, as cd.yml and rollback.yml run it, on two real remote hosts
(staging, production), a build machine standing for the CI runner's engine, and a registry:
build v1, release it to staging, promote it to production, build v2, release it to
staging, promote it to production under load (0 failed requests), roll production back
with the rollback workflow's command; and neither environment touched by the other's steps.
Then every refusal of a promotion (exit 2, nothing changed on either host), and the
no-registry mode: images streamed by save/load over ssh, skipped by ID. Last, a staging
history forged to name another registry, or a digest of another image: refused before any
pull, and the other registry never asked."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import textwrap
import time

import pytest
from pipeline import Pipeline, run_step

pytestmark = pytest.mark.docker

SERVICES = ("backend", "frontend")


def write_config(folder, name: str, pipeline: Pipeline, *, registry: str) -> None:
    env = folder / "db.env"
    env.write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=cd-secret-pw\n")
    env.chmod(0o600)
    services = "".join(
        f"""
        [services.{service}]
        image = "{name}-{service}"
        port = {port}
        health = "/health"
        routes = ["{route}"]
        build = "{service}"
        stop_grace = 5
        """
        for service, port, route in (("backend", 8080, "/api/"), ("frontend", 8081, "/"))
    )
    (folder / "deployer.toml").write_text(
        textwrap.dedent(f'[project]\nname = "{name}"\nrestart = "no"\n')
        + textwrap.dedent(services)
        + textwrap.dedent(
            f"""
            [edge]
            public_port = 0
            preview_port = 0
            [database]
            env_file = "db.env"
            [timeouts]
            health_deadline = 12
            request_timeout = 2
            [smoke]
            paths = ["/api/version", "/"]
            [watch]
            window = 0
            {registry}
            [environments.staging]
            engine.host = "{pipeline.staging.docker_host}"
            project.id = "staging{name}"

            [environments.production]
            engine.host = "{pipeline.production.docker_host}"
            project.id = "production{name}"
            """
        )
    )


def write_sources(folder, app_image: str, release: str, env: str = "") -> None:
    """Each service's build context: the test app with a file that makes each version's image its own."""
    for service in SERVICES:
        (folder / service).mkdir(exist_ok=True)
        (folder / service / "release.txt").write_text(release)
        (folder / service / "Dockerfile").write_text(
            f"ARG BASE_IMAGE\nFROM {app_image}\nCOPY release.txt /release.txt\n{env}"
        )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, test_app_image):
    folder = tmp_path_factory.mktemp("cd")
    cd = Pipeline(folder, preload=(test_app_image,)).start()
    try:
        yield cd
    finally:
        cd.remove()


@pytest.fixture(scope="module")
def project(pipeline, tmp_path_factory, test_app_image):
    folder = tmp_path_factory.mktemp("app")
    registry = f'[registry]\nurl = "{pipeline.registry}/cd"\nanonymous = true'
    write_config(folder, pipeline.name, pipeline, registry=registry)
    config = (folder / "deployer.toml").read_text()
    (folder / "plain.toml").write_text(config.replace(registry, ""))  # the same deployment, without [registry]
    (folder / "locked.toml").write_text(config.replace("anonymous = true", ""))  # one that needs a login
    outputs = {"GITHUB_OUTPUT": str(folder / "github_output"), "GITHUB_STEP_SUMMARY": str(folder / "github_summary")}
    return folder, pipeline.env(folder / "deployer.toml", **outputs)


def step(env, workflow: str, job: str, step_id: str, **variables: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = run_step(env, workflow, job, step_id, **variables)
    print(f"{workflow} {job}.{step_id} {variables.get('VERSION', '')}: {time.monotonic() - started:.1f}s")
    assert result.returncode == 0, f"{workflow} {job}.{step_id} failed:\n{result.stdout}\n{result.stderr}"
    return result


def deployer(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["deployer", *args], env=env, capture_output=True, text=True, timeout=600)


def build_and_push(project, app_image: str, version: str) -> str:
    """ci.yml's push job on main: build, push; returns its `images` output."""
    folder, env = project
    write_sources(folder, app_image, version)
    step(env, "ci.yml", "push", "build", VERSION=version)
    output = folder / "github_output"
    output.write_text("")
    step(env, "ci.yml", "push", "push", VERSION=version)
    images = output.read_text().strip().removeprefix("images=")
    assert set(json.loads(images)) == set(SERVICES), images
    return images


def truth(host, name: str) -> tuple:
    """What a host holds of a deployment: its containers (name, status) and its history."""
    containers = sorted((c.name, c.status) for c in host.client.containers.list(all=True, filters={"name": name}))
    code, history = host.exec(
        [
            "sh",
            "-c",
            f"docker exec {name}-infra-edge-1 cat /var/lib/deployer/history.jsonl /var/lib/deployer/state/live 2>/dev/null || true",
        ]
    )
    return containers, history


def live_port(host, name: str) -> int:
    holder = host.client.containers.get(f"{name}-infra-ports-1")  # it publishes the edge's ports
    return int(holder.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])


def serving(host, name: str) -> tuple[str, str]:
    _, out = host.exec(["curl", "-s", f"http://127.0.0.1:{live_port(host, name)}/api/version"])
    body = json.loads(out)
    return body["version"], body["colour"]


def status(env, environment: str) -> dict:
    result = deployer(env, "status", "-e", environment, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_cd_path_build_staging_promote_under_load_and_roll_back(pipeline, project, test_app_image):
    folder, env = project
    name, staging, production = pipeline.name, pipeline.staging, pipeline.production
    started = time.monotonic()

    # 1-3: build v1, release it to staging, promote it to production.
    images_v1 = build_and_push(project, test_app_image, "v1")
    step(env, "cd.yml", "staging", "up")
    released = step(env, "cd.yml", "staging", "release", VERSION="v1")
    assert "[staging] " in released.stderr and "pulled" in released.stderr, released.stderr
    assert serving(staging, name) == ("v1", "blue")
    before = truth(staging, name)
    step(env, "cd.yml", "production", "up")
    promoted = step(env, "cd.yml", "production", "promote", VERSION="v1", IMAGES=images_v1)
    assert "[production] promoting v1 from staging" in promoted.stderr, promoted.stderr
    assert serving(production, name) == ("v1", "blue")
    assert truth(staging, name) == before  # production's steps leave staging as it was

    # 4: build v2 and release it to staging; production is not touched.
    images_v2 = build_and_push(project, test_app_image, "v2")
    before = truth(production, name)
    step(env, "cd.yml", "staging", "release", VERSION="v2")
    assert serving(staging, name) == ("v2", "green")
    assert truth(production, name) == before

    # 5: promote v2 to production under load, sent from inside the production host.
    port = live_port(production, name)
    stop = f"/tmp/stop-{name}"
    load = subprocess.Popen(
        ["docker", "exec", production.container.name, "sh", "-c",
         f"ok=0; bad=0; for i in $(seq 1 5000); do [ -e {stop} ] && break; "
         f"c=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://127.0.0.1:{port}/api/version); "
         f'if [ "$c" = 200 ]; then ok=$((ok+1)); else bad=$((bad+1)); fi; sleep 0.01; done; echo "$ok $bad"'],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    before = truth(staging, name)
    try:
        step(env, "cd.yml", "production", "promote", VERSION="v2", IMAGES=images_v2)
    finally:
        production.exec(["touch", stop])
    answered, failed = (int(x) for x in load.communicate(timeout=120)[0].split())
    assert failed == 0 and answered > 20, (answered, failed)
    assert serving(production, name) == ("v2", "green")

    # 6: roll production back with the rollback workflow's commands: no colour to name, the
    # plan first, then the standby made live.
    planned = step(env, "rollback.yml", "production", "plan", ENVIRONMENT="production", VERSION="")
    assert "[production] would switch live traffic from green (v2) to blue (v1)" in planned.stderr, planned.stderr
    assert serving(production, name) == ("v2", "green")
    rolled = step(env, "rollback.yml", "production", "rollback", ENVIRONMENT="production", VERSION="")
    assert "[production] switched: blue (v1) is live" in rolled.stderr, rolled.stderr
    assert serving(production, name) == ("v1", "blue")
    assert truth(staging, name) == before

    # 7: what each host recorded: production released exactly staging's image IDs, by digest.
    on_staging, on_production = status(env, "staging"), status(env, "production")
    assert on_staging["environment"] == "staging" and on_production["environment"] == "production"
    assert on_staging["engine"] == staging.docker_host and on_production["engine"] == production.docker_host
    assert [(e["action"], e.get("version")) for e in on_staging["releases"]] == [("release", "v1"), ("release", "v2")]
    assert [(e["action"], e.get("version")) for e in on_production["releases"]] == [
        ("release", "v1"),
        ("release", "v2"),
        ("switch", None),
    ]
    for version, images in (("v1", images_v1), ("v2", images_v2)):
        built = {s: v["id"] for s, v in json.loads(images).items()}
        [s_entry] = [e for e in on_staging["releases"] if e.get("version") == version]
        [p_entry] = [e for e in on_production["releases"] if e.get("version") == version]
        assert s_entry["images"] == p_entry["images"] == built
        assert p_entry["promoted_from"] == "staging"
        assert p_entry["digests"] == {s: v["digest"] for s, v in json.loads(images).items()}
        for service, image_id in built.items():  # pulled from the registry, never built there
            pulled = production.client.images.get(image_id)
            assert f"{name}-{service}:{version}" in pulled.tags
            assert any(d.startswith(f"{pipeline.registry}/cd/") for d in pulled.attrs["RepoDigests"])
    shown = deployer(env, "status", "-e", "production")
    assert shown.stdout.startswith("[production] "), shown.stdout
    assert json.loads(images_v1)["backend"]["id"][7:19] in shown.stdout
    print(f"CD path: {time.monotonic() - started:.1f}s")


def test_without_a_registry_images_stream_over_ssh_and_skip_what_the_host_has(pipeline, project, test_app_image):
    folder, env = project
    name = pipeline.name
    env = {**env, "DEPLOYER_CONFIG": str(folder / "plain.toml")}
    write_sources(folder, test_app_image, "v5, no registry")
    assert deployer(env, "build", "v5").returncode == 0
    released = deployer(env, "release", "v5", "-e", "staging", "--no-backup")
    assert released.returncode == 0, released.stderr
    assert "streamed from this machine's engine" in released.stderr and " MB in " in released.stderr
    pushed = deployer(env, "push", "v5", "-e", "staging")  # the host has them: nothing moves
    assert pushed.returncode == 0 and "streamed" not in pushed.stderr, pushed.stderr
    ids = dict(line.split("\t")[:2] for line in pushed.stdout.splitlines())
    for service in SERVICES:  # gone from the build machine: staging is the only source left
        pipeline.builder.client.images.remove(f"{name}-{service}:v5")
    promoted = deployer(env, "promote", "v5", "--from", "staging", "--to", "production", "--no-backup")
    assert promoted.returncode == 0, promoted.stderr
    assert f"streamed from staging ({pipeline.staging.docker_host})" in promoted.stderr, promoted.stderr
    assert serving(pipeline.production, name)[0] == "v5"
    for service in SERVICES:
        assert pipeline.production.client.images.get(f"{name}-{service}:v5").id == ids[service]


def refused(env, words: str, *args: str, **variables: str) -> None:
    result = deployer({**env, **variables}, *args)
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    assert words in result.stderr, (args, result.stderr)
    assert "Traceback" not in result.stderr


def test_promotions_that_must_not_happen_change_nothing_on_either_host(pipeline, project, test_app_image, tmp_path):
    folder, env = project
    name, staging, production = pipeline.name, pipeline.staging, pipeline.production
    # A release that failed on staging (its backend never turns healthy).
    write_sources(folder, test_app_image, "v3", env="ENV NEVER_HEALTHY=1\n")
    step(env, "ci.yml", "images", "build", VERSION="v3")
    failed = run_step(env, "cd.yml", "staging", "release", VERSION="v3")
    assert failed.returncode == 1 and "[staging] ERROR" in failed.stderr, failed.stderr
    write_sources(folder, test_app_image, "v4")
    step(env, "ci.yml", "images", "build", VERSION="v4")  # built, never pushed
    empty = tmp_path / "docker-config"
    empty.mkdir()

    before = truth(staging, name), truth(production, name)
    refused(env, "staging never released v9", "promote", "v9", "--from", "staging", "--to", "production")
    refused(env, "v3 failed on staging in step 'health'", "promote", "v3", "--from", "staging", "--to", "production")
    refused(env, "--from and --to are both 'staging'", "promote", "v2", "--from", "staging", "--to", "staging")
    refused(env, "environments.qa: no such environment", "promote", "v2", "--from", "staging", "--to", "qa")
    v1 = json.dumps({s: {"id": "sha256:" + "0" * 64} for s in SERVICES})
    refused(env, "not the sha256:000000000000 expected", "promote", "v2", "--from", "staging", "--to", "production",
            "--expect-images", v1)  # fmt: skip
    refused(env, "--expect-images: not JSON", "promote", "v2", "--from", "staging", "--to", "production",
            "--expect-images", "v2")  # fmt: skip
    refused(env, "registry credentials missing: no login for", "release", "v4", "-e", "staging",
            DEPLOYER_CONFIG=str(folder / "locked.toml"), DOCKER_CONFIG=str(empty))  # fmt: skip
    refused(env, f"does not exist on {staging.docker_host} nor on this machine's engine", "release", "v9", "-e",
            "staging", DEPLOYER_CONFIG=str(folder / "plain.toml"))  # fmt: skip
    refused(env, "does not exist on this machine's engine", "push", "v9", "-e", "staging",
            DEPLOYER_CONFIG=str(folder / "plain.toml"))  # fmt: skip
    refused(env, "environments.qa: no such environment", "status", "-e", "qa")
    assert (truth(staging, name), truth(production, name)) == before


def push_copy(pipeline: Pipeline, image, repository: str) -> str:
    """The builder pushes `image` as repository:forged; returns repository@sha256:... ."""
    image.tag(repository, "forged")
    for line in pipeline.builder.client.images.push(repository, tag="forged", stream=True, decode=True):
        assert "error" not in line, line
    pushed = pipeline.builder.client.images.get(f"{repository}:forged").attrs["RepoDigests"]
    return next(d for d in pushed if d.startswith(f"{repository}@"))


def forge(host, name: str, version: str, images: dict[str, str], digests: dict[str, str]) -> None:
    """A healthy release of VERSION in the host's history, as a host taken over could write it."""
    line = json.dumps({"action": "release", "version": version, "outcome": "ok", "time": "2026-01-01T00:00:00Z",
                       "by": "ci", "colour": "blue", "images": images, "digests": digests})  # fmt: skip
    edge = f"{name}-infra-edge-1"
    code, out = host.exec(["docker", "exec", edge, "sh", "-c", f"printf '%s\\n' {shlex.quote(line)} >> /var/lib/deployer/history.jsonl"])  # fmt: skip
    assert code == 0, out


def requests_to(container) -> list[str]:
    return [line for line in container.logs().decode(errors="replace").splitlines() if "http.request.method" in line]


def has(host, image_id: str) -> bool:
    return any(i.id == image_id for i in host.client.images.list(all=True))


def test_a_forged_history_is_refused_before_any_pull_and_the_login_goes_nowhere(pipeline, project, test_app_image, tmp_path):  # fmt: skip
    folder, env = project
    name, staging, production = pipeline.name, pipeline.staging, pipeline.production
    write_sources(folder, test_app_image, "v8")  # the build folders the config names
    step(env, "cd.yml", "staging", "up")  # idempotent: both ready, so only the checks can refuse
    step(env, "cd.yml", "production", "up")
    stray, stray_log = pipeline.stray_registry()
    app = pipeline.builder.client.images.get(test_app_image)  # an image production has never had
    assert not has(production, app.id)
    login = tmp_path / "docker-login"  # a login for the configured registry only
    login.mkdir()
    auth = base64.b64encode(b"cd-user:cd-registry-pw").decode()
    (login / "config.json").write_text(json.dumps({"auths": {pipeline.registry: {"auth": auth}}}))
    locked = {**env, "DEPLOYER_CONFIG": str(folder / "locked.toml"), "DOCKER_CONFIG": str(login)}

    # 1. staging's history names another registry, which holds that image: refused before any
    #    request reaches it (no pull, so no login either).
    elsewhere = {s: push_copy(pipeline, app, f"{stray}/cd/{name}-{s}") for s in SERVICES}
    forge(staging, name, "v8", {s: app.id for s in SERVICES}, elsewhere)
    # 2. a digest in the configured registry whose manifest names another image than the one
    #    the history pins: refused before the pull, by the manifest's config.
    inside = {s: push_copy(pipeline, app, f"{pipeline.registry}/cd/{name}-{s}") for s in SERVICES}
    forge(staging, name, "v9", {s: "sha256:" + "e" * 64 for s in SERVICES}, inside)
    seen = len(requests_to(stray_log))
    assert seen > 0  # its log shows requests: the builder's pushes
    before = truth(staging, name), truth(production, name)

    forged = deployer(locked, "promote", "v8", "--from", "staging", "--to", "production", "--no-backup")
    assert forged.returncode == 2, forged.stdout + forged.stderr
    assert f"names the registry {stray}, not {pipeline.registry}" in forged.stderr, forged.stderr
    assert "cd-registry-pw" not in forged.stdout + forged.stderr and "Traceback" not in forged.stderr
    other = deployer(env, "promote", "v9", "--from", "staging", "--to", "production", "--no-backup")
    assert other.returncode == 2, other.stdout + other.stderr
    assert f"names image {app.id[:19]} in the registry, not the sha256:eeeeeeeeeeee" in other.stderr, other.stderr

    assert requests_to(stray_log)[seen:] == []
    assert not has(production, app.id)  # nothing was pulled
    assert (truth(staging, name), truth(production, name)) == before
