"""`deployer init [DIR] [--ci github]`: a commented deployer.toml and the two Dockerfiles
for an existing app, and with --ci github the app's CI/CD workflows.

The config is the annotated example (examples/deployer.toml) with this project's
names and paths, so the reference and the generated file never drift apart. The
workflows are package data (deployer/assets/ci/github/), written as they are.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from deployer.assets import asset, example_config
from deployer.config.model import Edge
from deployer.core.steps import Step
from deployer.errors import DeployerError, InputError

SUBSTITUTIONS = (
    ('name = "shop"', 'name = "{name}"'),
    ('# id = "<your own random id>"', 'id = "{id}"'),
    ('image = "shop-backend"', 'image = "{name}-backend"'),
    ('image = "shop-frontend"', 'image = "{name}-frontend"'),
    ('dockerfile = "../deployer/assets/templates/spring-boot.Dockerfile"', 'dockerfile = "backend/Dockerfile"'),
    ('dockerfile = "../deployer/assets/templates/nextjs.Dockerfile"', 'dockerfile = "frontend/Dockerfile"'),
    ("public_port = 8080", f"public_port = {Edge.public_port}"),  # the example's demo port, the default
    # /api/version is the example's own route: a new app's smoke paths are its health paths
    # where its routes reach them (the default), until the team names its own.
    ('paths = ["/api/version", "/healthz"]', '# paths = ["/api/version", "/healthz"]'),
)


# The example's external upstream is a placeholder host: in a new project it would send
# the app's /ai/ requests nowhere. It is written commented out, to be filled in.
EXAMPLE_UPSTREAM = '[routes."/ai/"]'


def _commented_out(text: str, header: str) -> str:
    """The TOML table `header` (up to the next blank line or table) as comments."""
    lines = text.split("\n")
    if header not in lines:
        raise RuntimeError(f"examples/deployer.toml no longer contains {header!r}")
    at = lines.index(header)
    end = at + 1
    while end < len(lines) and lines[end].strip() and not lines[end].startswith("["):
        end += 1
    body = [f"# {line}" if not line.startswith("#") else line for line in lines[at:end]]
    note = ["# (written commented out: set your own server's URL, then uncomment)"]
    return "\n".join(lines[:at] + note + body + lines[end:])


@dataclass(frozen=True)
class Written:
    path: Path
    action: str  # "wrote", "overwrote" or "kept"


def project_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:32].rstrip("-")
    return name if len(name) >= 2 else "app"


def config_text(name: str) -> str:
    text = example_config().read_text(encoding="utf-8")
    for old, new in SUBSTITUTIONS:
        if old not in text:
            raise RuntimeError(f"examples/deployer.toml no longer contains {old!r}")
        text = text.replace(old, new.format(name=name, id=secrets.token_hex(8)), 1)
    # The comments name what the deployer creates (shop-infra, the volume shop-dumps, ...):
    # this project's names, not the example's.
    compact = name.replace("-", "")[:21]  # a project.id is 8-32 of a-z and 0-9

    def ours(comment: re.Match[str]) -> str:
        line = re.sub(r"\bshop(?=(?:staging|production)2026\b)", compact, comment.group(1))
        return re.sub(r"\bshop\b", name, line)

    text = re.sub(r"(?m)^(#.*)$", ours, text)
    text = _commented_out(text, EXAMPLE_UPSTREAM)
    header = f"# deployer.toml for {name}, written by `deployer init`. Every key is explained below.\n"
    return header + text.split("\n", 3)[3]


def env_files() -> dict[str, str]:
    password = secrets.token_hex(18)
    return {
        "db.env": f"POSTGRES_USER=app\nPOSTGRES_PASSWORD={password}\n",
        "backend.env": (
            "SPRING_DATASOURCE_URL=jdbc:postgresql://db:5432/app\n"
            f"SPRING_DATASOURCE_USERNAME=app\nSPRING_DATASOURCE_PASSWORD={password}\n"
        ),
    }


# What the build contexts leave out: dependencies and build outputs the image makes itself
# (the backend keeps build/libs/, where CI puts the jar the template then copies), and secrets.
DOCKERIGNORE = {
    "backend": "build/*\n!build/libs/\n.gradle/\ntarget/\n.idea/\n*.iml\n.git\n*.env\n",
    "frontend": "node_modules\n.next\nout\n.git\nnpm-debug.log*\n.env*.local\n*.env\n",
}
# The files init writes that hold secrets, and the webhook file CD writes: never in git.
GITIGNORED = ("db.env", "backend.env", "notify.url")


def gitignore(path: Path) -> str | None:
    """The .gitignore with the secret files in it; None when it has them all already."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    have = {line.strip() for line in text.splitlines()}
    missing = [name for name in GITIGNORED if name not in have and "/" + name not in have]
    if not missing:
        return None
    head = text if not text or text.endswith("\n") else text + "\n"
    return head + "# secrets, written by `deployer init` (and notify.url by CD)\n" + "".join(f"{m}\n" for m in missing)


def backup_of(path: Path) -> Path:
    """Where `init --force` keeps a file it replaces: <name>.bak, or .bak.2, .bak.3, ..."""
    candidate, n = path.with_name(path.name + ".bak"), 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.bak.{n}")
    return candidate


def init(folder: Path, *, force: bool, ci: str | None = None) -> list[Written]:
    if ci is not None and ci not in CI:
        raise InputError(f"--ci {ci!r}: the deployer writes workflows for {', '.join(CI)}")
    missing = [d for d in ("backend", "frontend") if not (folder / d).is_dir()]
    if missing:
        raise InputError(
            f"{folder}: no {missing[0]}/ folder (init writes files for a Spring Boot API in backend/ and a "
            "Next.js front end in frontend/; any other service is a [services.<name>] table of deployer.toml)"
        )
    files = {
        folder / "deployer.toml": config_text(project_name(folder)) + (ci_config() if ci else ""),
        folder / "backend" / "Dockerfile": asset("templates", "spring-boot.Dockerfile").read_text(),
        folder / "frontend" / "Dockerfile": asset("templates", "nextjs.Dockerfile").read_text(),
    }
    flows = {folder / ".github" / "workflows" / name: text for name, text in workflows(ci).items()}

    ignores = {folder / d / ".dockerignore": text for d, text in DOCKERIGNORE.items()}
    if ci:  # the actions are pinned by commit: dependabot proposes each update
        ignores[folder / ".github" / "dependabot.yml"] = asset("ci", "dependabot.yml").read_text(encoding="utf-8")
    ignores = {p: t for p, t in ignores.items() if not p.exists()}  # the team's own is kept
    git = gitignore(folder / ".gitignore")
    if git is not None:
        ignores[folder / ".gitignore"] = git
    secrets_files = {folder / name: text for name, text in env_files().items()}
    for path in [*files, *flows, *secrets_files, *ignores]:  # before anything is written
        _check_target(folder, path)
    written = []
    if ci and not force:  # adding CI to a project that has its deployer.toml already
        written = [Written(p, "kept") for p in files if p.exists()]
        files = {p: t for p, t in files.items() if not p.exists()}
    files.update(flows)
    existing = [p for p in files if p.exists()]
    if existing and not force:
        raise InputError(f"{existing[0]} exists; nothing was written (use --force to overwrite)")
    new_secrets = {p: t for p, t in secrets_files.items() if not p.exists()}  # secrets: never overwritten
    for path in [*files, *new_secrets, *ignores]:
        _check_writable(path)
    path = folder
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            action = "wrote"
            if path.exists():
                if path.read_text(encoding="utf-8", errors="replace") == text:
                    written.append(Written(path, "unchanged"))
                    continue
                kept = backup_of(path)
                path.rename(kept)  # --force keeps what it replaces
                written.append(Written(kept, "backed up"))
                action = "overwrote"
            path.write_text(text, encoding="utf-8")
            written.append(Written(path, action))
        for path, text in ignores.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            action = "updated" if path.exists() else "wrote"
            path.write_text(text, encoding="utf-8")
            written.append(Written(path, action))
        for path, text in secrets_files.items():  # owner-only
            if path not in new_secrets:
                written.append(Written(path, "kept"))
                continue
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            written.append(Written(path, "wrote"))
    except OSError as exc:  # checked above: a full disk, or a change made meanwhile
        done = ", ".join(str(w.path) for w in written if w.action != "kept") or "nothing"
        raise DeployerError(
            f"{path}: {exc.strerror or exc}; written before it: {done}", step=Step.WRITE_FILES
        ) from None
    return written


def _check_target(folder: Path, path: Path) -> None:
    """Bad input (exit 2): a path init writes a file to that is a folder, a broken symlink
    or anything else but a regular file, or under something that is not a folder."""
    try:
        for parent in reversed(path.relative_to(folder).parents[:-1]):  # .github, .github/workflows
            parent = folder / parent
            if (parent.is_symlink() or parent.exists()) and not parent.is_dir():
                raise InputError(f"{parent} is not a folder: init writes {path} there; nothing was written")
        if path.is_symlink() and not path.exists():
            raise InputError(
                f"{path} is a broken symlink (to {os.readlink(path)}): init writes a file there; nothing was written"
            )
        if path.is_dir():
            raise InputError(f"{path} is a folder: init writes a file there; nothing was written")
        if path.exists() and not path.is_file():
            raise InputError(f"{path} is not a regular file: init writes a file there; nothing was written")
    except OSError as exc:  # a folder that cannot be searched
        raise InputError(f"{path}: {exc.strerror or exc}; nothing was written") from None


def _check_writable(path: Path) -> None:
    """Bad input (exit 2): a file init writes (or the folder it creates it in) that this user cannot write."""
    if path.exists():
        target, mode = path, os.W_OK
    else:
        target, mode = path.parent, os.W_OK | os.X_OK
        while not target.exists():  # .github/workflows is created
            target = target.parent
    if not os.access(target, mode):
        raise InputError(f"{target} is not writable: init writes {path}; nothing was written")


CI = ("github",)
WORKFLOWS = ("ci.yml", "cd.yml", "rollback.yml")


def workflows(ci: str | None) -> dict[str, str]:
    """The workflow files of a CI system, by file name."""
    if ci is None:
        return {}
    import deployer

    # The workflows install exactly this deployer, unless the repository variable
    # DEPLOYER_SPEC names another (a wheel's URL, `git+https://...@<tag>`).
    return {
        name: asset("ci", ci, name).read_text(encoding="utf-8").replace("@VERSION@", deployer.__version__)
        for name in WORKFLOWS
    }


def ci_config() -> str:
    """[registry] and [environments.*] for the workflows, appended to a new deployer.toml."""
    text = asset("ci", "github", "deployer.toml").read_text(encoding="utf-8")
    return text.replace("{staging_id}", secrets.token_hex(8)).replace("{production_id}", secrets.token_hex(8))


def has_ci_config(path: Path) -> bool:
    """Whether a deployer.toml has the [registry] and [environments.*] the workflows use."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return "registry" in data and "environments" in data


NEXT_STEPS_CI = """
CI/CD (docs/ci-cd.md):
  1. Set the hosts in deployer.toml's [environments.staging] and [environments.production],
     and [registry] url to ghcr.io/<the repository's owner, lowercase>.
  2. Create the GitHub environments staging and production (production: required reviewers;
     both: deployment branches limited to main), with the secrets DB_ENV and BACKEND_ENV
     (the env files' text), STAGING_SSH_KEY (a repository secret) and PRODUCTION_SSH_KEY
     (an environment secret of production, never a repository secret), and the repository
     variable DEPLOY_KNOWN_HOSTS (the workflows install this deployer's version;
     DEPLOYER_SPEC, if set, names another).
  3. Require the CI checks backend, frontend and images on main (branch protection).
"""

NEXT_STEPS = """
What the apps need:
  - The backend answers its health path: add Spring Boot Actuator
    (org.springframework.boot:spring-boot-starter-actuator) for /actuator/health.
  - The database password arrives as a file under /run/secrets (services.backend.secrets):
    add spring.config.import=optional:configtree:/run/secrets/ to application.properties.
  - The front end answers /healthz (a Next.js route that returns 200).
Next steps:
  1. Keep db.env and backend.env out of git (they hold the database password).
  2. Check the config, with no engine:  deployer config check
     (ports, health paths and routes are the ones to read in deployer.toml)
  3. Build the images:        deployer build v1
     (or in CI: build the jar to backend/build/libs/ first; the Dockerfile then skips the JDK)
  4. Start the edge and db:   deployer up
  5. Release:                 deployer release v1
  6. Roll back at any time:   deployer rollback
"""
