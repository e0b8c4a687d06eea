"""`deployer init [DIR] [--backend spring|generic] [--frontend nextjs|none] [--ci github]`:
a commented deployer.toml and the Dockerfiles for an existing app, and with --ci github the
app's CI/CD workflows.

The config is the annotated example (examples/deployer.toml) with this project's
names and paths, so the reference and the generated file never drift apart. A generic
backend keeps its own Dockerfile and gets plain DB_* keys; without a front end the backend
takes every path. The example's limits and smoke paths stay commented out. The workflows
are package data (deployer/assets/ci/github/), written as they are.
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
# the app's /ai/ requests nowhere. It and the example's limits are written commented out,
# to be filled in.
EXAMPLE_ROUTES = ('[routes."/api/ai/"]', '[routes."/ai/"]')

BACKENDS = ("spring", "generic")
FRONTENDS = ("nextjs", "none")

# A backend that is not Spring Boot: its own Dockerfile, a /health path, and the database
# login in plain keys (the password as the file /run/secrets/DB_PASSWORD).
GENERIC_BACKEND = (
    ('health = "/actuator/health"', 'health = "/health"'),
    ('required_env = ["SPRING_DATASOURCE_PASSWORD"]', 'required_env = ["DB_PASSWORD"]'),
    ('secrets = ["SPRING_DATASOURCE_PASSWORD"]', 'secrets = ["DB_PASSWORD"]'),
    (
        'db_login = { user = "SPRING_DATASOURCE_USERNAME", password = "SPRING_DATASOURCE_PASSWORD" }',
        'db_login = { user = "DB_USER", password = "DB_PASSWORD" }',
    ),
)


def _table(lines: list[str], header: str) -> tuple[int, int]:
    """Where the TOML table `header` starts, and where the next table starts."""
    if header not in lines:
        raise RuntimeError(f"examples/deployer.toml no longer contains {header!r}")
    at = lines.index(header)
    end = at + 1
    while end < len(lines) and not lines[end].startswith("["):
        end += 1
    return at, end


def _commented_out(text: str, header: str) -> str:
    """The TOML table `header` (up to the next blank line or table) as comments."""
    lines = text.split("\n")
    at, end = _table(lines, header)
    end = next((i for i in range(at + 1, end) if not lines[i].strip()), end)
    body = [f"# {line}" if not line.startswith("#") else line for line in lines[at:end]]
    note = ["# (written commented out: set your own values, then uncomment)"]
    return "\n".join(lines[:at] + note + body + lines[end:])


def _in_table(text: str, header: str, old: str, new: str) -> str:
    lines = text.split("\n")
    at, end = _table(lines, header)
    body = "\n".join(lines[at:end])
    if old not in body:
        raise RuntimeError(f"examples/deployer.toml's {header} no longer contains {old!r}")
    return "\n".join([*lines[:at], body.replace(old, new, 1), *lines[end:]])


def _without_table(text: str, header: str) -> str:
    lines = text.split("\n")
    at, end = _table(lines, header)
    return "\n".join(lines[:at] + lines[end:])


@dataclass(frozen=True)
class Written:
    """A file `init` wrote, overwrote or kept."""

    path: Path
    action: str  # "wrote", "overwrote" or "kept"


def project_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:32].rstrip("-")
    return name if len(name) >= 2 else "app"


def config_text(name: str, *, backend: str = "spring", frontend: str = "nextjs") -> str:
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
    for header in EXAMPLE_ROUTES:
        text = _commented_out(text, header)
    if backend == "generic":
        for old, new in GENERIC_BACKEND:
            text = _in_table(text, "[services.backend]", old, new)
    if frontend == "none":  # the backend answers every path
        text = _without_table(text, "[services.frontend]")
        text = _in_table(text, "[services.backend]", 'routes = ["/api/"]', 'routes = ["/"]')
    header = f"# deployer.toml for {name}, written by `deployer init`. Every key is explained below.\n"
    return header + text.split("\n", 3)[3]


def env_files(backend: str = "spring") -> dict[str, str]:
    password = secrets.token_hex(18)
    if backend == "generic":
        app = f"DB_HOST=db\nDB_PORT=5432\nDB_NAME=app\nDB_USER=app\nDB_PASSWORD={password}\n"
    else:
        app = (
            "SPRING_DATASOURCE_URL=jdbc:postgresql://db:5432/app\n"
            f"SPRING_DATASOURCE_USERNAME=app\nSPRING_DATASOURCE_PASSWORD={password}\n"
        )
    return {"db.env": f"POSTGRES_USER=app\nPOSTGRES_PASSWORD={password}\n", "backend.env": app}


# What the build contexts leave out: dependencies and build outputs the image makes itself
# (the backend keeps build/libs/, where CI puts the jar the template then copies), and secrets.
DOCKERIGNORE = {
    "backend": "build/*\n!build/libs/\n.gradle/\ntarget/\n.idea/\n*.iml\n.git\n*.env\n",
    "generic": ".git\n*.env\n",
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


def check_choices(*, ci: str | None, backend: str, frontend: str) -> None:
    """Bad input (exit 2) before anything is read or written."""
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend!r}: one of {', '.join(BACKENDS)}")
    if frontend not in FRONTENDS:
        raise InputError(f"--frontend {frontend!r}: one of {', '.join(FRONTENDS)}")
    if ci is not None and ci not in CI:
        raise InputError(f"--ci {ci!r}: the deployer writes workflows for {', '.join(CI)}")
    if ci and (backend, frontend) != ("spring", "nextjs"):
        raise InputError(
            f"--ci {ci} writes workflows that build a Spring Boot backend with Gradle and a Next.js front end; "
            "with --backend generic or --frontend none, write the CI yourself (docs/ci-cd.md gives its steps)"
        )


def init(
    folder: Path, *, force: bool, ci: str | None = None, backend: str = "spring", frontend: str = "nextjs"
) -> list[Written]:
    check_choices(ci=ci, backend=backend, frontend=frontend)
    folders = ["backend"] + (["frontend"] if frontend == "nextjs" else [])
    missing = [d for d in folders if not (folder / d).is_dir()]
    if missing:
        raise InputError(
            f"{folder}: no {missing[0]}/ folder (init writes files for an API in backend/ and, unless "
            "--frontend none, a Next.js front end in frontend/; any other service is a [services.<name>] "
            "table of deployer.toml)"
        )
    text = config_text(project_name(folder), backend=backend, frontend=frontend)
    files = {folder / "deployer.toml": text + (ci_config() if ci else "")}
    if backend == "spring":  # a generic backend builds with its own Dockerfile
        files[folder / "backend" / "Dockerfile"] = asset("templates", "spring-boot.Dockerfile").read_text()
    if frontend == "nextjs":
        files[folder / "frontend" / "Dockerfile"] = asset("templates", "nextjs.Dockerfile").read_text()
    flows = {folder / ".github" / "workflows" / name: text for name, text in workflows(ci).items()}

    ignores = {folder / "backend" / ".dockerignore": DOCKERIGNORE["backend" if backend == "spring" else "generic"]}
    if frontend == "nextjs":
        ignores[folder / "frontend" / ".dockerignore"] = DOCKERIGNORE["frontend"]
    if ci:  # the actions are pinned by commit: dependabot proposes each update
        ignores[folder / ".github" / "dependabot.yml"] = asset("ci", "dependabot.yml").read_text(encoding="utf-8")
    ignores = {p: t for p, t in ignores.items() if not p.exists()}  # the team's own is kept
    git = gitignore(folder / ".gitignore")
    if git is not None:
        ignores[folder / ".gitignore"] = git
    secrets_files = {folder / name: text for name, text in env_files(backend).items()}
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
