"""`deployer watch`, `deployer maintenance on|off|status` and `deployer prune`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from deployer.cli.common import ConfigOption, EnvOption, context, handled, say

maintenance_app = typer.Typer(
    no_args_is_help=True, help="Serve a 503 page on the public route (the preview keeps working)."
)


def watch_seconds(value: str | None) -> float | None:
    """--watch: a duration ("90s", "3m", "0" for none); InputError (exit 2) otherwise."""
    if value is None:
        return None
    from deployer.core.durations import parse_duration
    from deployer.errors import InputError

    seconds = parse_duration(value)
    if seconds is None or not (seconds == 0 or 10 <= seconds <= 3600):
        raise InputError(f"--watch must be 0 (no watch) or a duration from 10s to 1h, such as 90s or 3m: {value!r}")
    return seconds


WatchOption = Annotated[
    str | None,
    typer.Option("--watch", help="Watch the new live release this long after the switch (90s, 3m; 0: no watch)."),
]


@handled
def watch(config: ConfigOption = None, env: EnvOption = None) -> None:
    """Follow the running post-release watch to its verdict (and take it over if its process is gone)."""
    from deployer.flows import watch as flow

    with context(config, env, check_paths=False) as ctx:
        verdict = flow.attach(ctx)
    if verdict is None:
        return
    say(verdict.text or verdict.outcome)
    if verdict.outcome in ("rolled-back", "failed"):
        raise typer.Exit(1)


@handled
def prune(
    config: ConfigOption = None,
    env: EnvOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    keep: Annotated[
        int | None,
        typer.Option(
            "--keep",
            min=0,
            max=1000,
            help="Versions to keep per service (default disk.keep_versions); 0, after `deployer down`: every one.",
        ),
    ] = None,
) -> None:
    """Remove old release images (keeping the newest per service and every one in use), dangling build layers, and the edge's metrics of gone releases."""
    from deployer.errors import InputError
    from deployer.flows import prune as flow
    from deployer.flows.lock import held

    with context(config, env, check_paths=False) as ctx:
        if keep == 0 and (edge := ctx.engine.container(ctx.edge.container)) is not None:
            raise InputError(
                f"prune: --keep 0 removes every release image, so it runs after `deployer down`; {edge.name} "
                "still runs (while it does, keep 1 or more: the live and standby versions stay whatever --keep says)"
            )
        with held(ctx, "prune"):
            pruned = flow.prune(ctx, dry_run=dry_run, keep=keep)
    for service, versions in pruned.kept.items():
        say(f"{service}: keeping {', '.join(versions) or 'nothing'}")
    for ref in pruned.removed:
        say(("would remove " if dry_run else "removed ") + ref)
    for problem in pruned.problems:
        say(f"kept {problem}")
    if not dry_run:
        say(pruned.summary())


@maintenance_app.command("on")
@handled
def maintenance_on(
    config: ConfigOption = None,
    env: EnvOption = None,
    message: Annotated[str | None, typer.Option("--message", help="Plain text shown on the page.")] = None,
    retry_after: Annotated[int, typer.Option("--retry-after", help="Seconds, sent as Retry-After.")] = 300,
) -> None:
    """Answer every public request with a 503 page and Retry-After (no reload; the preview keeps working)."""
    from deployer.core.maintenance import check_message, check_retry_after

    if message is not None:
        check_message(message)  # bad input before anything else (exit 2)
    check_retry_after(retry_after)
    from deployer.flows import maintenance as flow

    with context(config, env, check_paths=False) as ctx:
        flow.on(ctx, message, retry_after)
    say("maintenance on: the public route answers 503; the preview route still serves the other colour")


@maintenance_app.command("off")
@handled
def maintenance_off(config: ConfigOption = None, env: EnvOption = None) -> None:
    """Serve the live colour on the public route again."""
    from deployer.flows import maintenance as flow

    with context(config, env, check_paths=False) as ctx:
        was = flow.off(ctx)
    say("maintenance off: the public route serves the live colour" if was else "maintenance was off already")


@maintenance_app.command("status")
@handled
def maintenance_status(
    config: ConfigOption = None,
    env: EnvOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whether maintenance mode is on, since when and with which message."""
    from deployer.flows import maintenance as flow

    with context(config, env, check_paths=False) as ctx:
        page = flow.current(ctx)
    if as_json:
        print(json.dumps(vars(page) if page else None))
    elif page is None:
        print("off")
    else:
        print(f"on since {page.since} (by {page.by}), Retry-After {page.retry_after}s: {page.message}")


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
    app.command("prune")(prune)
    app.add_typer(maintenance_app, name="maintenance")
