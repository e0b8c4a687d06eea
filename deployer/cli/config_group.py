"""`deployer config check|show`: the config as a release reads it, with no engine."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from deployer.cli.common import ConfigOption, EnvOption, acting_on, error, handled, say
from deployer.core.masking import mask

app = typer.Typer(no_args_is_help=True, help="Check or show deployer.toml without reaching an engine.")


@app.command("check")
@handled
def check(
    config: ConfigOption = None,
    env: EnvOption = None,
    secrets: Annotated[
        bool,
        typer.Option(
            "--secrets/--no-secrets",
            help="Also check the env files and TLS files (--no-secrets in CI, which does not have them).",
        ),
    ] = True,
) -> None:
    """Validate the config, the env files (modes, required keys), the TLS files, the build
    contexts and their Dockerfiles: one line per problem, exit 2 when there is one."""
    from deployer.config.check import check as run_check

    acting_on(env)
    loaded, problems = run_check(config, env, secrets=secrets)
    for warning in loaded.warnings:
        say(f"warning: {warning}")
    for problem in problems:
        error(f"ERROR (ConfigError): {problem}")
    if problems:
        raise typer.Exit(2)
    skipped = "" if secrets else " (env and TLS files not checked)"
    say(f"{loaded.path}: ok: {len(loaded.services)} services{skipped}")


@app.command("show")
@handled
def show(
    config: ConfigOption = None,
    env: EnvOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the resolved config (the environment's values merged in, every default
    filled), with secrets masked. It reads no env file."""
    from deployer import config as config_mod
    from deployer.config.check import flat, shown

    acting_on(env)
    data = shown(config_mod.load(config, check_paths=False, environment=env))
    if as_json:
        print(mask(json.dumps(data, indent=2, sort_keys=True)))
        return
    for key, value in flat(data):
        print(mask(f"{key} = {json.dumps(value)}"))
