"""`deployer switch --to COLOUR`: the instant rollback. It starts nothing and never reloads nginx.

It costs one container listing and one `docker exec` in the edge, whose script
takes the lock, probes the target, swaps the routes, verifies through the live
route (restoring on failure), records the history and frees the lock.
"""

from __future__ import annotations

from collections.abc import Callable

from deployer import engine, history, lock
from deployer.config import Config
from deployer.edge import LIVE_PORT, PREVIEW_PORT, Edge
from deployer.edge_scripts import PREVIOUS
from deployer.errors import SwitchError
from deployer.plan import check_colour, health_urls, host

INSIDE_LIVE = f"http://127.0.0.1:{LIVE_PORT}"
INSIDE_PREVIEW = f"http://127.0.0.1:{PREVIEW_PORT}"


def switch(config: Config, target: str, *, say: Callable[[str], None] = print) -> str:
    """Returns the colour that was live before."""
    check_colour(target)
    version, release_id = _running_release(config, target)
    holder = lock.Holder.me(f"switch --to {target}")
    line = history.line("switch", colour=target, version=version, previous=PREVIOUS)
    target_host = host(target, release_id)
    outcome = Edge(config).switch(
        target,
        target_host,
        holder.to_json(),
        holder.token,
        probes=health_urls(INSIDE_PREVIEW, target_host, config.services),
        verify=[f"{INSIDE_LIVE}{path}" for path in verify_paths(config)],
        history_line=line,
        timeout=config.timeouts.request_timeout,
    )
    if outcome.already:
        say(f"{target} ({version}) is already live")
    else:
        say(f"switched: {target} ({version}) is live, {outcome.previous} is the standby")
    return outcome.previous


def verify_paths(config: Config) -> list[str]:
    return list(config.smoke) or [s.health for s in config.services.values()]


def _running_release(config: Config, target: str) -> tuple[str, str]:
    """(version, release id) of the target colour, whose every service must be running.

    A colour normally holds one release. While a release runs (or after one was killed)
    it can hold two; the newest release whose every service runs is the one to switch to."""
    containers = engine.colour_containers(config.name, target)
    by_release: dict[str, list[engine.Container]] = {}
    for c in containers:
        if c.service in config.services:
            by_release.setdefault(c.release, []).append(c)
    complete = [
        group
        for group in by_release.values()
        if {c.service for c in group if c.status == "running" and not c.failed} >= set(config.services)
    ]
    if complete:
        newest = max(complete, key=lambda group: max(c.started_at for c in group))
        return newest[0].version, newest[0].release
    state = {c.service: c.status if not c.failed else "failing" for c in containers}
    for service in config.services:
        if service not in state:
            raise SwitchError(f"cannot switch to {target}: it has no {service} (release to it first)", step="check")
        if state[service] != "running":
            raise SwitchError(f"cannot switch to {target}: its {service} is {state[service]}", step="check")
    raise SwitchError(f"cannot switch to {target}: no release of it has every service running", step="check")
