"""Builds of the bundled example (examples/backend with the Spring Boot template,
examples/frontend with the Next.js template), before and after: the classic builder with
the templates as they were at `--classic-templates` (a commit before the cache mounts,
which the classic builder cannot build) against BuildKit with today's, side by side in one
run, through `deployer build` itself (DEPLOYER_BUILDER=classic for the peer):

- cold: a base image no build has seen (debian:trixie-slim under a fresh ID: the classic
  builder's cache keys on it), and BuildKit's whole build cache pruned first (`docker buildx
  prune -af`: its keys are the base's content, and its cache mounts);
- warm, with no change;
- after a one-line change in the backend's source (a comment in Main.java);
- after a one-line change in the front end's source (a comment in app/page.js);
- after a dependency change (package.json's version: the install layer runs again).

Each builder builds its own copy of the sources, so both see the same changes; the steps
alternate between the two builders. Every image, the base and the copies are removed at
the end, also on failure.

    .venv/bin/python bench/builds.py [--classic-templates f8da759] [--json bench/results/builds.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "deployer" / "assets" / "templates"
BUILDERS = ("classic", "buildkit")


def project(folder: Path, name: str, base: str, templates: Path) -> Path:
    shutil.copytree(ROOT / "examples" / "backend", folder / "backend")
    shutil.copytree(
        ROOT / "examples" / "frontend", folder / "frontend", ignore=shutil.ignore_patterns("node_modules", ".next")
    )
    for env, text in (("db.env", "POSTGRES_USER=app\nPOSTGRES_PASSWORD=bench\n"), ("backend.env", "X=1\n")):
        (folder / env).write_text(text)
        (folder / env).chmod(0o600)
    config = folder / "deployer.toml"
    config.write_text(f"""
[project]
name = "{name}"
base_image = "{base}"

[services.backend]
image = "{name}-backend"
port = 8080
health = "/actuator/health"
routes = ["/api/"]
env_file = "backend.env"
build = "backend"
dockerfile = "{templates / "spring-boot.Dockerfile"}"

[services.frontend]
image = "{name}-frontend"
port = 3000
health = "/healthz"
routes = ["/"]
build = "frontend"
dockerfile = "{templates / "nextjs.Dockerfile"}"

[database]
env_file = "db.env"
""")
    return config


def build(config: Path, version: str, builder: str) -> float:
    env = {**os.environ, "DEPLOYER_BUILDER": "classic" if builder == "classic" else "buildx"}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "deployer", "-q", "build", version, "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=3600, cwd=ROOT,
    )  # fmt: skip
    took = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"{builder} build {version} failed:\n{done.stderr[-3000:]}")
    return took


def change_backend(folder: Path, n: int) -> None:
    main = folder / "backend" / "src" / "main" / "java" / "app" / "Main.java"
    main.write_text(main.read_text() + f"\n// bench change {n}\n")


def change_frontend(folder: Path, n: int) -> None:
    page = folder / "frontend" / "app" / "page.js"
    page.write_text(page.read_text() + f"\n// bench change {n}\n")


def change_dependencies(folder: Path, n: int) -> None:
    manifest = folder / "frontend" / "package.json"
    data = json.loads(manifest.read_text())
    data["version"] = f"0.1.{n}"
    manifest.write_text(json.dumps(data, indent=2) + "\n")


STEPS = (
    ("cold", None),
    ("warm, no change", None),
    ("one-line change, backend", change_backend),
    ("one-line change, front end", change_frontend),
    ("dependency change (package.json)", change_dependencies),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--classic-templates", default="f8da759", help="the commit whose templates the classic builder builds"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import docker

    client = docker.from_env()
    run = uuid.uuid4().hex[:8]
    base = f"bench-base-{run}:cold"  # a base image ID no cache has seen
    client.images.build(fileobj=io.BytesIO(f"FROM debian:trixie-slim\nLABEL bench={run}\n".encode()), tag=base, rm=True)
    names = {b: f"bb{b[:2]}{run}" for b in BUILDERS}
    folders = {b: Path(tempfile.mkdtemp(prefix=f"bench-builds-{b}-")) for b in BUILDERS}
    figures: dict[str, dict[str, float]] = {step: {} for step, _ in STEPS}
    try:
        old = folders["classic"] / "templates"
        old.mkdir()
        for name in ("spring-boot.Dockerfile", "nextjs.Dockerfile"):
            text = subprocess.run(["git", "show", f"{args.classic_templates}:deployer/assets/templates/{name}"],
                                  capture_output=True, text=True, check=True, cwd=ROOT).stdout  # fmt: skip
            (old / name).write_text(text)
        templates = {"classic": old, "buildkit": TEMPLATES}
        configs = {b: project(folders[b], names[b], base, templates[b]) for b in BUILDERS}
        for n, (step, change) in enumerate(STEPS, start=1):
            for builder in BUILDERS:
                if change:
                    change(folders[builder], n)
                if step == "cold" and builder == "buildkit":
                    subprocess.run(["docker", "buildx", "prune", "-af"], capture_output=True, timeout=600)
                figures[step][builder] = build(configs[builder], f"v{n}", builder)
                print(f"{step:34} {builder:8} {figures[step][builder]:7.1f} s", flush=True)
    finally:
        for builder in BUILDERS:
            for image in client.images.list(name=f"{names[builder]}-*"):
                for tag in image.tags:
                    client.images.remove(tag, force=True)
            shutil.rmtree(folders[builder], ignore_errors=True)
        client.images.remove(base, force=True)
    print("\n| build of the example (backend and front end) | classic (s) | BuildKit (s) | BuildKit / classic |")
    print("|---|--:|--:|--:|")
    for step, _ in STEPS:
        c, b = figures[step].get("classic"), figures[step].get("buildkit")
        if c and b:
            print(f"| {step} | {c:.1f} | {b:.1f} | {b / c:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
