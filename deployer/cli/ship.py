"""`deployer push` and `deployer promote`: release images that move between machines
(the work is in deployer/flows/artifacts.py and deployer/flows/promote.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from deployer.cli.common import ConfigOption, EnvOption, context, handled
from deployer.cli.safety import WatchOption, watch_seconds


@handled
def push(
    version: Annotated[
        str, typer.Argument(metavar="VERSION", help="The version whose images move: the tag of every service's image.")
    ],
    config: ConfigOption = None,
    env: EnvOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print service -> {id, digest} as one line of JSON (a CI output).")
    ] = False,
) -> None:
    """Move VERSION's images from this machine's engine: with [registry], push them (and
    pull them on the environment's host); without, stream them to the host over ssh."""
    from deployer.core.versions import check_version

    check_version(version)
    from deployer.flows import artifacts

    with context(config, env, check_paths=False) as ctx:
        moved = artifacts.push(ctx, version)
    if as_json:
        print(json.dumps(moved, separators=(",", ":"), sort_keys=True))
        return
    for service, found in sorted(moved.items()):
        print(f"{service}\t{found['id']}\t{found.get('digest', '')}".rstrip())


@handled
def promote(
    version: Annotated[str, typer.Argument(metavar="VERSION", help="The version to promote.")],
    from_env: Annotated[str, typer.Option("--from", help="The environment that released it healthy.")],
    to_env: Annotated[str, typer.Option("--to", help="The environment to release it on.")],
    config: ConfigOption = None,
    backup: Annotated[bool, typer.Option("--backup/--no-backup", help="Dump the target's database first.")] = True,
    expect_images: Annotated[
        str | None,
        typer.Option(
            "--expect-images",
            help="JSON of service -> image ID (or `deployer push --json` output): refuse unless the source released exactly these.",
        ),
    ] = None,
    watch: WatchOption = None,
) -> None:
    """Release on --to exactly the images (by ID and digest) that --from released healthy,
    then watch it like a release. Nothing is built: the images move from the registry, this
    machine or the --from host."""
    from deployer.core.versions import check_version
    from deployer.errors import InputError

    check_version(version)
    if from_env == to_env:
        raise InputError(f"--from and --to are both {from_env!r}: promote moves a release to another environment")
    from deployer.flows import promote as flow

    expect = flow.expected_images(expect_images) if expect_images is not None else None
    window = watch_seconds(watch)
    with context(config, from_env, check_paths=False) as source, context(config, to_env) as target:
        flow.promote(source, target, version, backup=backup, expect=expect, watch=window)
