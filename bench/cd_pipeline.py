"""From a clean checkout of the example to v2 live in production: builds, staging, promotion.

    .venv/bin/python bench/cd_pipeline.py [--watch 30s] [--json bench/results/cd-pipeline.json]

What it does, timing each command as cd.yml runs it (tests/pipeline.py makes the hosts):

  1. a clean checkout: `git archive HEAD examples deployer/assets/templates` into a temp
     folder, its env files written by examples/secrets.sh, [environments.staging] and
     [environments.production] appended (each a dockerd + sshd test host over ssh);
  2. a source change (a new file in backend/ and frontend/), then `deployer build v1`
     on this machine's engine: the Spring-shaped backend and the Next.js front end really
     build (apt, javac, next build) from the changed layer on; the engine's build cache
     keeps what comes before it, as a CI runner's cache would;
  3. `deployer up -e staging`, `deployer release v1 -e staging`: the images are streamed
     to staging over ssh (no registry: `docker save | docker load`);
  4. `deployer up -e production`, `deployer promote v1 --from staging --to production`;
  5. another source change, `deployer build v2`, `release v2 -e staging`,
     `promote v2 --from staging --to production`: v2 is live in production.

The total is the sum of the steps from 1 to the end of 5, with the hosts already running
(they stand for servers that exist). The last three steps are the commit-to-production
figure of a change. `--cold` first prunes BuildKit's whole build cache (`docker buildx
prune -af`, not counted), as a CI runner with no cache starts: every step of both apps'
images is built again, from the base image on. `--watch` sets the example's post-release watch window (none by
default), which each release and promotion then waits out. Everything is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pipeline import Pipeline  # noqa: E402


def timed(label: str, argv: list[str], env: dict[str, str], cwd: Path, figures: dict[str, float]) -> None:
    started = time.monotonic()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600)
    figures[label] = round(time.monotonic() - started, 1)
    print(f"{figures[label]:7.1f}s  {label}", flush=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def checkout(folder: Path, pipeline: Pipeline, watch: str = "0") -> Path:
    archive = subprocess.run(
        ["git", "archive", "HEAD", "examples", "deployer/assets/templates"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    subprocess.run(["sh", str(folder / "examples" / "secrets.sh")], check=True, capture_output=True)
    config = folder / "examples" / "deployer.toml"
    text = config.read_text().replace('name = "shop"', f'name = "{pipeline.name}"', 1)
    text = text.replace('image = "shop-', f'image = "{pipeline.name}-')
    text = text.replace("public_port = 8080", "public_port = 0").replace("preview_port = 8081", "preview_port = 0")
    text = text.replace('restart = "unless-stopped"', 'restart = "no"')
    text += "".join(
        f'\n[environments.{env}]\nengine.host = "{host.docker_host}"\nproject.id = "{env}{pipeline.name}"\n'
        for env, host in (("staging", pipeline.staging), ("production", pipeline.production))
    )
    text = text.replace('window = "3m"', f'window = "{watch}"')  # the post-release watch of each release
    config.write_text(text)
    return config


def change(folder: Path, version: str) -> None:
    """A commit's worth of change in both apps."""
    for app in ("backend", "frontend"):
        (folder / "examples" / app / "release.txt").write_text(f"{version} {time.time()}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--watch", default="0", help='the post-release watch window, e.g. "30s" (default 0: none)')
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--cold", action="store_true", help="prune BuildKit's build cache first: a runner with no cache")
    args = ap.parse_args(argv)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="deployer-cd-bench-") as tmp:
        folder = Path(tmp)
        started = time.monotonic()
        pipeline = Pipeline(folder).start()
        figures["hosts (not counted)"] = round(time.monotonic() - started, 1)
        env = {**pipeline.env(folder / "x"), "DOCKER_HOST": ""}
        env.pop("DEPLOYER_CONFIG")
        deployer = [sys.executable, "-m", "deployer"]
        try:
            begun = time.monotonic()
            config = checkout(folder, pipeline, args.watch)
            figures["clean checkout"] = round(time.monotonic() - begun, 1)
            env["DEPLOYER_CONFIG"] = str(config)
            change(folder, "v1")
            if args.cold:
                pruned = time.monotonic()
                subprocess.run(["docker", "buildx", "prune", "-af"], capture_output=True, timeout=600, check=True)
                figures["buildx prune (not counted)"] = round(time.monotonic() - pruned, 1)
                begun += figures["buildx prune (not counted)"]
            timed("build v1", [*deployer, "build", "v1"], env, folder, figures)
            timed("up staging", [*deployer, "up", "-e", "staging"], env, folder, figures)
            timed("release v1 to staging", [*deployer, "release", "v1", "-e", "staging"], env, folder, figures)
            timed("up production", [*deployer, "up", "-e", "production"], env, folder, figures)
            promote = [*deployer, "promote", "--from", "staging", "--to", "production"]
            timed("promote v1 to production", [*promote, "v1"], env, folder, figures)
            change(folder, "v2")
            timed("build v2", [*deployer, "build", "v2"], env, folder, figures)
            timed("release v2 to staging", [*deployer, "release", "v2", "-e", "staging"], env, folder, figures)
            timed("promote v2 to production", [*promote, "v2"], env, folder, figures)
            figures["total: clean checkout to v2 live in production"] = round(time.monotonic() - begun, 1)
            print(f"{figures['total: clean checkout to v2 live in production']:7.1f}s  TOTAL", flush=True)
        finally:
            for environment in ("staging", "production"):
                subprocess.run([*deployer, "down", "--volumes", "--yes", "--no-backup", "-e", environment],
                               env=env, capture_output=True, timeout=300)  # fmt: skip
            pipeline.remove()
            for version in ("v1", "v2"):
                for service in ("backend", "frontend"):
                    subprocess.run(["docker", "rmi", f"{pipeline.name}-{service}:{version}"], capture_output=True)
    if args.json:
        args.json.write_text(
            json.dumps({"figures": figures, "cold": args.cold, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2)
        )
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    sys.exit(main())
