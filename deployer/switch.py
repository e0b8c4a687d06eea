"""`deployer switch --to COLOUR`: the instant rollback. It starts nothing and never reloads nginx."""

from __future__ import annotations

import time
from collections.abc import Callable

from deployer import engine, health, history, infra, lock
from deployer.config import Config
from deployer.errors import HealthError, SwitchError
from deployer.plan import Routes, check_colour


def switch(config: Config, target: str, *, say: Callable[[str], None] = print) -> Routes:
    check_colour(target)
    started = time.monotonic()
    edge = infra.require_edge(config)
    live_url, preview_url = edge.urls()
    with lock.held(edge, f"switch --to {target}"):
        before = edge.routes()
        if before.live == target:
            say(f"{target} is already live")
            return before
        _check_target(config, target, preview_url)
        after = Routes(live=target, preview=before.live)
        edge.set_routes(after, step="switch")
        try:
            health.check_once(config, health.route_checks(config, live_url, target), step="verify")
        except BaseException:
            edge.set_routes(before, step="restore")
            raise
        version = next((c.version for c in engine.colour_containers(config.name, target)), "")
        history.record(
            edge, "switch", colour=target, version=version, previous=before.live or None,
            seconds=round(time.monotonic() - started, 3),
        )
    say(f"switched: {target} ({version}) is live")
    return after


def _check_target(config: Config, target: str, preview_url: str) -> None:
    containers = engine.colour_containers(config.name, target)
    running = {c.service for c in containers if c.status == "running" and not c.failed}
    missing = [s for s in config.services if s not in running]
    if missing:
        raise SwitchError(
            f"cannot switch to {target}: its {', '.join(missing)} is not running (release to it first)", step="check"
        )
    try:
        health.check_once(config, health.service_checks(config, preview_url, target), step="check")
    except HealthError as exc:
        raise SwitchError(f"cannot switch to {target}: it is not healthy: {exc}", step="check") from None
