"""`deployer release VERSION`: the steps of a zero-downtime release, each undone on failure.

1 lock · 2 images · 3 backup · 4 start the idle colour · 5 health · 6 smoke
· 7 switch the routes · 8 verify live and record. Before step 7 a failure removes
the idle colour and leaves live untouched; in steps 7-8 the previous routes come back.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import replace

from deployer import colours, engine, health, history, images, infra, lock, site
from deployer.config import Config
from deployer.errors import DeployerError
from deployer.plan import Routes, check_version, host, plan_release
from deployer.switch import INSIDE_LIVE, verify_paths


def release(
    config: Config,
    version: str,
    *,
    build: bool = False,
    backup: bool = True,
    say: Callable[[str], None] = print,
) -> Routes:
    check_version(version)
    started = time.monotonic()
    edge = infra.require_edge(config)
    _, preview_url = edge.urls()
    with lock.held(edge, f"release {version}") as lease:
        images.ensure_app_images(config, version, build=build, say=say)
        dump = _backup(config, version, backup, say)
        edge.apply_site(site.render(config), step="site")
        before = lease.routes
        plan = plan_release(version, before)
        say(f"live: {plan.live or 'none'} · releasing {version} to {plan.idle}")
        # A fresh id per release: the public routes reach the new containers by a name
        # (backend-green-<id>) that no DNS cache in the edge can hold for old ones.
        idle_host = host(plan.idle, secrets.token_hex(4))
        try:
            colours.up(config, plan.idle, version, idle_host.rpartition("-")[2])
            edge.set_routes(replace(before, preview=plan.idle, preview_host=idle_host), step="start")
            waited = health.wait_healthy(config, plan.idle, health.service_checks(config, preview_url, plan.idle), say)
            say(f"{plan.idle} healthy after {waited:.1f}s")
            health.check_once(config, health.route_checks(config, preview_url, plan.idle), step="smoke")
        except BaseException as exc:
            _undo_start(config, edge, before, plan.idle, exc)
            raise
        after = Routes(live=plan.idle, live_host=idle_host, preview=plan.live, preview_host=before.live_host)
        line = history.line(
            "release",
            version=version,
            colour=plan.idle,
            previous=plan.live or None,
            seconds=round(time.monotonic() - started, 2),
            backup=dump,
        )
        verify = [f"{INSIDE_LIVE}{path}" for path in verify_paths(config)]
        try:
            edge.commit(after, before, verify, line, lease.holder.token, config.timeouts.request_timeout, step="switch")
            lease.freed = True
        except BaseException:
            _remove_colour(config, plan.idle)
            raise
    say(f"released {version}: {plan.idle} is live" + (f", {plan.live} is the warm standby" if plan.live else ""))
    return after


def _backup(config: Config, version: str, wanted: bool, say: Callable[[str], None]) -> str:
    if not wanted or not config.backup.before_release:
        say("backup: skipped (--no-backup)" if not wanted else "backup: skipped (backup.before_release = false)")
        return "skipped"
    from deployer.backup import service as backup_service

    dump = backup_service.take(config, label=f"pre-release {version}", verify=True, step="backup")
    say(f"backup: {dump} written and verified")
    return dump


def _undo_start(config: Config, edge, before: Routes, idle: str, exc: BaseException) -> None:
    """Attach the failing container's last log lines, remove the idle colour, restore preview."""
    if isinstance(exc, DeployerError) and not exc.logs:
        exc.logs = _failing_logs(config, idle)
    _remove_colour(config, idle)
    edge.set_routes(replace(before, preview="", preview_host=""), step="undo")


def _failing_logs(config: Config, colour: str) -> str:
    containers = engine.colour_containers(config.name, colour)
    ordered = sorted(containers, key=lambda c: (not c.failed, c.service))
    return "\n".join(f"--- {c.name} ({c.status}) ---\n{engine.container_logs(c.name, 20)}" for c in ordered[:2])


def _remove_colour(config: Config, colour: str) -> None:
    try:
        colours.down(config, colour)
    except DeployerError:
        pass  # the original failure is the one to report
