"""The GitHub workflows: the ones `deployer init --ci github` writes for the app, this
repository's own CI and the docs' manual-production alternative are valid against the
GitHub workflow schema that check-jsonschema ships, cd.yml deploys in the right order, and
every one keeps the rules for deploy secrets (`secret_rules`)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

import deployer
from deployer.flows import init

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "deployer" / "assets" / "ci" / "github"


def load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def run_lines(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def step(job: dict, step_id: str) -> dict:
    return next(s for s in job["steps"] if s.get("id") == step_id)


def docs_workflows(tmp_path: Path) -> list[Path]:
    """Every ```yaml block of docs/ci-cd.md that is a whole workflow (it has `jobs:`)."""
    text = (ROOT / "docs" / "ci-cd.md").read_text()
    found = []
    for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S)):
        if re.search(r"^jobs:", block, re.M):
            path = tmp_path / f"docs-{i}.yml"
            path.write_text(block)
            found.append(path)
    return found


def test_zizmor_finds_nothing_in_any_workflow(tmp_path):
    """The static audit of GitHub workflows (template injection, credentials left in the
    checkout, excessive permissions, unpinned actions...), offline: no finding, only the
    ones each workflow answers with a `zizmor: ignore` comment that says why."""
    files = [*sorted(TEMPLATES.glob("*.yml")), *sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
    files += docs_workflows(tmp_path)
    zizmor = Path(sys.executable).with_name("zizmor")
    result = subprocess.run(
        [str(zizmor), "--offline", "--no-progress", *map(str, files)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout


def test_every_workflow_is_valid_against_the_github_schema(tmp_path):
    files = [*sorted(TEMPLATES.glob("*.yml")), *sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
    files += docs_workflows(tmp_path)
    assert len(files) >= 5, files
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cd_releases_to_staging_then_promotes_to_production_by_digest_after_approval():
    cd = load(TEMPLATES / "cd.yml")
    assert cd["on"] == {"push": {"branches": ["main"]}}
    jobs = cd["jobs"]
    assert list(jobs) == ["ci", "staging", "production"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    staging, production = jobs["staging"], jobs["production"]
    # Staging first, automatically; production only after it, behind its environment's reviewers.
    assert staging["needs"] == "ci" and staging["environment"] == "staging"
    assert set(production["needs"]) == {"ci", "staging"} and production["environment"] == "production"
    # One deploy per environment at a time, never cancelled half-way.
    groups = {name: jobs[name]["concurrency"] for name in ("staging", "production")}
    assert groups["staging"]["group"] != groups["production"]["group"]
    assert all(g["cancel-in-progress"] is False for g in groups.values())
    assert step(staging, "release")["run"] == 'deployer release "$VERSION" -e staging'
    # Production promotes exactly the images CI built and staging ran healthy; it never builds.
    promote = step(production, "promote")["run"]
    assert promote == 'deployer promote "$VERSION" --from staging --to production --expect-images "$IMAGES"'
    assert production["env"]["IMAGES"] == "${{ needs.ci.outputs.images }}"
    assert "deployer build" not in run_lines(production) and "deployer release" not in run_lines(production)
    names = [s.get("id") for s in production["steps"]]
    assert names.index("up") < names.index("promote")
    # An external database's URL, when the environment has one, becomes db.url (url_file)
    for job in (staging, production):
        files = next(s for s in job["steps"] if "db.env" in s.get("run", ""))
        assert files["env"]["DB_URL"] == "${{ secrets.DB_URL }}"
        assert """if [ -n "$DB_URL" ]; then printf '%s\\n' "$DB_URL" > db.url; fi""" in files["run"]


def test_ci_builds_tests_and_outputs_the_pushed_digests():
    ci = load(TEMPLATES / "ci.yml")
    assert set(ci["on"]) == {"pull_request", "merge_group", "workflow_call"}  # one run per change
    jobs = ci["jobs"]
    assert "./gradlew --no-daemon check" in run_lines(jobs["backend"])  # tests and lint
    assert all(cmd in run_lines(jobs["frontend"]) for cmd in ("npm ci", "npm run lint", "npm test"))
    assert "npm run build" not in run_lines(jobs["frontend"]), "Next.js is built once, in its image"
    images, push = jobs["images"], jobs["push"]
    assert set(images["needs"]) == set(push["needs"]) == {"backend", "frontend"}
    assert step(images, "build")["run"] == step(push, "build")["run"] == 'deployer build "$VERSION"'
    assert 'deployer push "$VERSION" --json' in step(push, "push")["run"]
    for job in (images, push):  # BuildKit with the Actions cache
        uses = [s.get("uses", "").split("@")[0] for s in job["steps"]]
        assert {"docker/setup-buildx-action", "crazy-max/ghaction-github-runtime"} <= set(uses)
        assert step(job, "build")["env"]["DEPLOYER_CACHE_TO"] == "type=gha,scope=images,mode=max"
    attested = [s["with"] for s in push["steps"] if s.get("uses", "").startswith("actions/attest-build-provenance@")]
    assert [a["subject-name"].split(".")[-1] for a in attested] == ["backend_name }}", "frontend_name }}"]
    assert all(a["push-to-registry"] is True for a in attested)
    assert push["outputs"]["images"] == "${{ steps.push.outputs.images }}"
    assert ci["on"]["workflow_call"]["outputs"]["images"]["value"] == "${{ jobs.push.outputs.images }}"


def test_ci_pushes_images_only_from_main_and_only_that_job_may_write_packages():
    jobs = load(TEMPLATES / "ci.yml")["jobs"]
    images, push = jobs["images"], jobs["push"]
    assert push["if"] == "github.ref == 'refs/heads/main' && github.event_name == 'push'"
    assert push["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    # Pull requests and the merge queue build with the workflow's read-only token, never push:
    # a job's permissions are granted when it runs, whatever its steps' conditions.
    assert images["if"] == "github.event_name != 'push'" and "permissions" not in images
    assert [s.get("id") for s in images["steps"]][-1] == "build"
    assert not any("login-action" in s.get("uses", "") for s in images["steps"])
    writers = [name for name, job in jobs.items() if "write" in str(job.get("permissions", {}))]
    assert writers == ["push"]


def test_rollback_needs_no_colour_and_says_what_it_will_do_before_the_approval():
    rollback = load(TEMPLATES / "rollback.yml")
    inputs = rollback["on"]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == ["production", "staging"]
    assert set(inputs) == {"environment", "version"} and inputs["version"]["required"] is False
    assert "inputs.version || 'the warm standby'" in rollback["run-name"]
    jobs = rollback["jobs"]
    assert set(jobs) == {"staging", "production"}  # one job per environment: each reads its own key only
    for name, job in jobs.items():
        assert job["environment"] == name and job["env"]["ENVIRONMENT"] == name
        assert f"inputs.environment == '{name}'" in job["if"]
        assert step(job, "rollback")["run"] == 'deployer rollback ${VERSION:+"$VERSION"} -e "$ENVIRONMENT"'
        assert "--dry-run" in step(job, "plan")["run"]  # the plan, printed before it acts
        assert job["env"]["VERSION"] == "${{ inputs.version }}"  # an input reaches the shell as data only
        assert job["concurrency"]["group"] == f"deploy-{name}"  # the same groups as cd.yml


def test_this_repositorys_ci_mirrors_dot_ci_run():
    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert "make test" in run_lines(ci["jobs"]["test"])
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_nightly_workflow_runs_the_long_tier_that_make_test_leaves_out():
    nightly = load(ROOT / ".github" / "workflows" / "nightly.yml")
    assert "make test-long" in run_lines(nightly["jobs"]["long"])
    make = (ROOT / "Makefile").read_text()
    test_rule = make.split("\ntest: ", 1)[1].split("\n\n", 1)[0]
    long_rule = make.split("\ntest-long: ", 1)[1].split("\n\n", 1)[0]
    assert '-m "not long"' in test_rule and "test-fast" in test_rule and "-m long" in long_rule


@pytest.mark.parametrize("existing", [False, True])
def test_init_writes_the_workflows_as_shipped(tmp_path, existing):
    for folder in ("backend", "frontend"):
        (tmp_path / folder).mkdir()
    if existing:
        init.init(tmp_path, force=False)
    written = {w.path: w.action for w in init.init(tmp_path, force=False, ci="github")}
    for name in init.WORKFLOWS:
        path = tmp_path / ".github" / "workflows" / name
        shipped = (TEMPLATES / name).read_text().replace("@VERSION@", deployer.__version__)
        assert written[path] == "wrote" and path.read_text() == shipped
        if "pipx install" in shipped:  # this very version, unless DEPLOYER_SPEC names another
            assert f'"${{DEPLOYER_SPEC:-bluegreen-deployer=={deployer.__version__}}}"' in path.read_text()
            assert "@VERSION@" not in path.read_text()
    assert written[tmp_path / "deployer.toml"] == ("kept" if existing else "wrote")
    assert init.has_ci_config(tmp_path / "deployer.toml") is not existing


def test_init_refuses_an_unknown_ci(tmp_path):
    from deployer.errors import InputError

    with pytest.raises(InputError, match="--ci 'gitlab'"):
        init.init(tmp_path, force=False, ci="gitlab")


# -- the rules for CD secrets, held for every workflow we ship or document ------------------

SSH_KEY = re.compile(r"secrets\.(\w*SSH_KEY\w*)")
ON_MAIN = "github.ref == 'refs/heads/main'"


def text(value) -> str:
    return json.dumps(value, sort_keys=True)


def secret_rules(workflow: dict, name: str) -> list[str]:
    """What a workflow breaks of the rules for deploy secrets ([] when nothing):
    - no action (`uses:`) runs in a job after its step that loads an ssh key, and no key is
      in an env that actions see (the workflow's or the job's);
    - production's key is read only in a job of `environment: production`;
    - a job that promotes or switches, and every job of a workflow run by hand that loads a
      key, runs only from main."""
    problems = []
    if SSH_KEY.search(text({k: v for k, v in workflow.items() if k != "jobs"})):
        problems.append(f"{name}: an ssh key outside a step (every action of every job sees it)")
    by_hand = "workflow_dispatch" in (workflow.get("on") or {})
    for job_name, job in workflow["jobs"].items():
        where, steps = f"{name} {job_name}", job.get("steps") or []
        if SSH_KEY.search(text({k: v for k, v in job.items() if k != "steps"})):
            problems.append(f"{where}: an ssh key in the job's env or secrets (its actions see it)")
        loading = [i for i, s in enumerate(steps) if SSH_KEY.search(text(s))]
        late = [s["uses"] for s in steps[loading[0] :] if "uses" in s] if loading else []
        if late:
            problems.append(f"{where}: the action {late[0]} runs after the ssh key is loaded")
        environment = job.get("environment")
        environment = environment.get("name") if isinstance(environment, dict) else environment
        if "PRODUCTION" in " ".join(SSH_KEY.findall(text(job))) and environment != "production":
            problems.append(f"{where}: production's key read in a job of environment {environment!r}")
        deploys = re.search(r"deployer (promote|switch)\b", run_lines(job)) if steps else None
        conditions = [c.strip() for c in str(job.get("if", "")).split("&&")]
        if (deploys or (by_hand and loading)) and ON_MAIN not in conditions:
            problems.append(f"{where}: runs from any branch (needs if: {ON_MAIN})")
    return problems


def test_no_action_runs_with_a_key_production_keeps_its_own_and_deploys_run_from_main(tmp_path):
    files = [*sorted(TEMPLATES.glob("*.yml")), *docs_workflows(tmp_path)]
    assert {"cd.yml", "rollback.yml"} <= {f.name for f in files} and any(f.name.startswith("docs-") for f in files)
    assert [p for f in files for p in secret_rules(load(f), f.name)] == []


def _action_after_the_key(cd: dict) -> None:
    steps = cd["jobs"]["production"]["steps"]
    steps.append(next(s for s in steps if s.get("uses", "").startswith("docker/login-action")))


def _production_key_in_staging(cd: dict) -> None:
    loading = next(s for s in cd["jobs"]["staging"]["steps"] if "STAGING_SSH_KEY" in s.get("env", {}))
    loading["env"]["PRODUCTION_SSH_KEY"] = "${{ secrets.PRODUCTION_SSH_KEY }}"


def _key_in_the_jobs_env(cd: dict) -> None:
    cd["jobs"]["production"]["env"]["SSH_KEY"] = "${{ secrets.PRODUCTION_SSH_KEY }}"


def _promote_from_any_branch(cd: dict) -> None:
    del cd["jobs"]["production"]["if"]


def _a_condition_that_is_always_true(cd: dict) -> None:
    cd["jobs"]["production"]["if"] = f"{ON_MAIN} || true"


def _environment_from_an_input(cd: dict) -> None:
    cd["jobs"]["production"]["environment"] = "${{ inputs.environment }}"


@pytest.mark.parametrize(
    ("breaking", "problem"),
    [
        (
            _action_after_the_key,
            "production: the action docker/login-action@4907a6ddec9925e35a0a9e82d7399ccc52663121 runs after the ssh key is loaded",
        ),
        (_production_key_in_staging, "staging: production's key read in a job of environment 'staging'"),
        (_key_in_the_jobs_env, "production: an ssh key in the job's env or secrets"),
        (_promote_from_any_branch, "production: runs from any branch"),
        (_a_condition_that_is_always_true, "production: runs from any branch"),
        (_environment_from_an_input, "production: production's key read in a job of environment '${{ inputs"),
    ],
)
def test_the_rules_catch_a_workflow_that_breaks_them(breaking, problem, tmp_path):
    broken = copy.deepcopy(load(TEMPLATES / "cd.yml"))
    breaking(broken)
    assert any(problem in p for p in secret_rules(broken, "cd.yml")), secret_rules(broken, "cd.yml")


def test_the_old_rollback_with_both_keys_in_one_job_is_caught():
    old = {
        "on": {"workflow_dispatch": {}},
        "jobs": {
            "rollback": {
                "environment": "${{ inputs.environment }}",
                "steps": [
                    {"uses": "actions/checkout@v4"},
                    {"env": {"KEY": "${{ secrets.PRODUCTION_SSH_KEY }}"}, "run": "ssh-add -"},
                    {"id": "switch", "run": 'deployer switch --to "$COLOUR" -e "$ENVIRONMENT"'},
                ],
            }
        },
    }
    assert secret_rules(old, "rollback.yml") == [
        "rollback.yml rollback: production's key read in a job of environment '${{ inputs.environment }}'",
        f"rollback.yml rollback: runs from any branch (needs if: {ON_MAIN})",
    ]


# -- supply chain and least privilege, for every workflow we ship, document or run ----------

PINNED = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+")


def every_workflow(tmp_path: Path) -> list[Path]:
    return [*TEMPLATES.glob("*.yml"), *(ROOT / ".github" / "workflows").glob("*.yml"), *docs_workflows(tmp_path)]


def test_the_backend_job_runs_gradle_check_and_keeps_its_reports():
    backend = load(TEMPLATES / "ci.yml")["jobs"]["backend"]
    assert "./gradlew --no-daemon check" in step(backend, "check")["run"]
    reports = next(s for s in backend["steps"] if s.get("name") == "Test reports")
    assert reports["if"] == "${{ !cancelled() }}" and reports["with"]["path"] == "backend/build/reports/"


def test_cd_grants_packages_write_only_to_the_job_that_pushes():
    cd = load(TEMPLATES / "cd.yml")
    assert cd["permissions"] == {"contents": "read"}  # the workflow's default: read-only
    writers = [name for name, job in cd["jobs"].items() if (job.get("permissions") or {}).get("packages") == "write"]
    assert writers == ["ci"]  # the call of ci.yml, whose images job pushes on main only


def test_every_action_is_pinned_to_a_commit_and_every_job_is_bounded(tmp_path):
    checked = 0
    for path in every_workflow(tmp_path):
        text = path.read_text()
        for line in re.findall(r"uses: (.+)", text):
            if not line.startswith("./"):  # this repository's own reusable workflow
                assert PINNED.fullmatch(line.strip()), f"{path.name}: {line} is not pinned to a commit SHA"
                checked += 1
        for name, job in load(path)["jobs"].items():
            if "runs-on" in job:
                assert isinstance(job.get("timeout-minutes"), int), f"{path.name} {name}: no timeout-minutes"
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step.get("with", {}).get("persist-credentials") is False, f"{path.name} {name}: checkout"
    assert checked >= 20


def test_dependabot_keeps_the_pins_current(tmp_path):
    shipped = TEMPLATES.parent / "dependabot.yml"
    for path in (ROOT / ".github" / "dependabot.yml", shipped):
        config = load(path)
        assert config["version"] == 2
        assert {u["package-ecosystem"] for u in config["updates"]} >= {"github-actions"}
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.dependabot",
         str(ROOT / ".github" / "dependabot.yml"), str(shipped)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for folder in ("backend", "frontend"):
        (tmp_path / folder).mkdir()
    init.init(tmp_path, force=False, ci="github")
    assert (tmp_path / ".github" / "dependabot.yml").read_text() == shipped.read_text()


def test_the_release_workflow_checks_the_wheel_and_publishes_with_no_stored_token():
    flow = load(ROOT / ".github" / "workflows" / "release.yml")
    trigger = flow.get("on") or flow.get(True)  # YAML 1.1 reads a bare `on` as true
    assert trigger == {"push": {"tags": ["v*"]}}
    assert flow["permissions"] == {}
    build, publish = flow["jobs"]["build"], flow["jobs"]["publish"]
    assert build["permissions"] == {"contents": "read"}
    script = run_lines(build)
    assert "python -m build" in script and 'deployer --version)" = "deployer ${TAG#v}"' in script
    assert publish["needs"] == "build" and publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "release"
    uses = [s["uses"].split("@")[0] for s in publish["steps"]]
    assert uses == ["actions/download-artifact", "pypa/gh-action-pypi-publish"]  # and nothing else runs there
    assert not any("password" in s.get("with", {}) for s in publish["steps"])
