"""`deployer init`: the files a new project starts from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployer.cli.common import handled


@handled
def init(
    folder: Annotated[
        Path, typer.Argument(metavar="FOLDER", help="Project folder with backend/ and frontend/.")
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite deployer.toml and the Dockerfiles.")] = False,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="spring: a Spring Boot API and its Dockerfile; generic: any HTTP API with its own Dockerfile.",
        ),
    ] = "spring",
    frontend: Annotated[
        str, typer.Option("--frontend", help="nextjs: a Next.js front end in frontend/; none: the backend alone.")
    ] = "nextjs",
    ci: Annotated[
        str | None,
        typer.Option("--ci", help="Also write the app's CI/CD workflows: github (ci.yml, cd.yml, rollback.yml)."),
    ] = None,
) -> None:
    """Write a commented deployer.toml and Dockerfiles for an API (and a Next.js front end)."""
    from deployer.flows import init as setup
    from deployer.flows import init_steps

    for item in setup.init(folder, force=force, ci=ci, backend=backend, frontend=frontend):
        print(f"{item.action:9} {item.path}")
    dockerfile = (folder / "backend" / "Dockerfile").is_file()
    print(init_steps.next_steps(backend=backend, frontend=frontend, backend_dockerfile=dockerfile))
    if ci:
        if not setup.has_ci_config(folder / "deployer.toml"):
            print("Add to deployer.toml (the workflows use it):" + setup.ci_config())
        print(init_steps.NEXT_STEPS_CI)
