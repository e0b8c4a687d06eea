"""`deployer logs` and `deployer exec`: a service of a colour, found through the route state
and the runtime (a container on one host, a swarm service's tasks), read or run in.

A colour is named as the operator thinks of it: live, standby, blue or green. The
infrastructure's parts (edge, db, backup) are services too, of no colour."""

from __future__ import annotations

import time
from collections.abc import Callable

from deployer.adapters import operate
from deployer.core import names
from deployer.core.durations import parse_duration
from deployer.core.steps import Step
from deployer.errors import DeployerError, InputError
from deployer.flows.context import Context

INFRA = ("edge", "db", "backup")
COLOUR_WORDS = ("live", "standby", *names.COLOURS)


def check(ctx: Context, service: str | None, colour: str, since: str | None = None, tail: int | None = None) -> None:
    """Bad input, exit 2, before the engine is asked anything."""
    known = [*ctx.config.services, *INFRA]
    if service is not None and service not in known:
        raise InputError(f"no service {service!r} in {ctx.config.path.name} (one of {', '.join(known)})")
    if service == "db" and ctx.config.database.external:
        raise InputError(
            "the database is external ([database] url_file): it has no container here; its server's own "
            "tools give its logs and a shell"
        )
    if colour not in COLOUR_WORDS:
        raise InputError(f"--colour must be one of {', '.join(COLOUR_WORDS)}: {colour!r}")
    if since is not None and not parse_duration(since):
        raise InputError(f"--since must be a duration such as 30s, 10m or 2h: {since!r}")
    if tail is not None and tail < 0:
        raise InputError(f"--tail must be 0 or more: {tail}")


def release_of(ctx: Context, colour: str) -> tuple[str, str]:
    """(colour, release id) of live, standby, blue or green (exit 1 when it has none)."""
    ctx.edge.require()
    state = ctx.edge.state(step=Step.CHECK)
    named = colour
    if colour in ("live", "standby"):
        if not state.live:
            raise DeployerError("nothing is live yet (release first)", step=Step.CHECK)
        named = state.live if colour == "live" else names.other(state.live)
    record = state.record(named)
    if record is None:
        raise DeployerError(f"{colour} ({named}) has no release", step=Step.CHECK)
    return named, record.release


def logs(
    ctx: Context,
    service: str | None,
    colour: str,
    *,
    follow: bool,
    since: str | None,
    tail: int | None,
    write: Callable[[str], None],
) -> None:
    check(ctx, service, colour, since, tail)
    if service in INFRA:
        sources = [ctx.runtime.infra_log(service)]
    else:
        wanted = [service] if service else list(ctx.config.services)
        sources = ctx.runtime.log_sources(*release_of(ctx, colour), wanted)
    start = int(time.time() - (parse_duration(since) or 0)) if since else None
    operate.stream_logs(ctx.engine, sources, follow=follow, since=start, tail=tail, write=write, step=Step.LOGS)


def run(ctx: Context, service: str, colour: str, argv: list[str], *, interactive: bool) -> int:
    check(ctx, service, colour)
    if not argv:
        raise InputError("name the program to run after `--`, such as: deployer exec backend -- sh")
    if service in INFRA:
        container = ctx.runtime.infra_container(service)
    else:
        container = ctx.runtime.exec_container(*release_of(ctx, colour), service)
    return operate.run_exec(ctx.engine, container, argv, interactive=interactive, step=Step.EXEC)
