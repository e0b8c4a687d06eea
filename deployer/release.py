"""`deployer release VERSION`: the steps of a zero-downtime release, each undone on failure.

1 lock · 2 images · 3 backup · 4 site · 5 start the new release of the idle colour
beside its old standby and point the preview at it; from then on the old standby stops
in the background · 6 health · 7 smoke · 8 switch the routes, verify live and record.
Before step 8 a failure removes the new release and leaves live untouched (and the old
standby too, if it had not started stopping); in step 8 the previous routes come back.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from deployer import colours, engine, history, images, lock, site
from deployer.config import Config
from deployer.edge import Edge
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
    clock = _Clock()
    edge = Edge(config)
    _, preview_url = edge.urls()  # one inspect: fails when the edge is not running
    with lock.held(edge, f"release {version}") as lease:
        clock.lap("lock")
        images.ensure_app_images(config, version, build=build, say=say)
        clock.lap("images")
        dump = _backup(config, version, backup, say)
        clock.lap("backup")
        before = lease.routes
        plan = plan_release(version, before)
        say(f"live: {plan.live or 'none'} · releasing {version} to {plan.idle}")
        # A fresh id per release: its containers are a compose project of their own and the
        # routes reach them by a name (backend-green-<id>) that no DNS cache can hold for old ones.
        release_id = secrets.token_hex(4)
        idle_host = host(plan.idle, release_id)
        edge.apply_site(site.render(config), step="site")
        retire: _Background | None = None
        try:
            colours.up(config, plan.idle, version, release_id)
            # The preview names the new release only once it runs: a request that reached the
            # preview earlier would leave the name's "no such host" in an nginx worker's DNS
            # cache for a second, and the smoke checks could meet it.
            edge.set_routes(replace(before, preview=plan.idle, preview_host=idle_host), step="start")
            clock.lap("start")
            # Only now does the idle colour's previous release (the old standby) stop, while the
            # new one warms up: earlier, a failure would leave no standby, and stopping beside a
            # starting container slows dockerd's start.
            retire = _Background(colours.remove, config, plan.idle, keep_release=release_id)
            waited = _healthy_and_smoke(config, plan.idle, release_id, preview_url, say)
            clock.lap("healthy")
            say(f"{plan.idle} healthy after {waited:.1f}s")
        except BaseException as exc:
            _undo_start(config, edge, before, plan.idle, release_id, exc, retire)
            raise
        after = Routes(live=plan.idle, live_host=idle_host, preview=plan.live, preview_host=before.live_host)
        line = history.line(
            "release",
            version=version,
            colour=plan.idle,
            previous=plan.live or None,
            release=release_id,
            seconds=clock.total(),
            healthy_after=round(waited, 2),
            steps=clock.steps,
            backup=dump,
        )
        verify = [f"{INSIDE_LIVE}{path}" for path in verify_paths(config)]
        try:
            edge.commit(after, before, verify, line, lease.holder.token, config.timeouts.request_timeout, step="switch")
            lease.freed = True
        except BaseException:
            retire.join()
            _remove_release(config, plan.idle, release_id)
            raise
    retired = retire.join()
    say(
        f"released {version}: {plan.idle} is live"
        + (f", {plan.live} is the warm standby" if plan.live else "")
        + f" ({clock.total():.1f}s)"
    )
    if isinstance(retired, BaseException):
        say(f"warning: the previous {plan.idle} containers were not all removed ({retired}); the next release retries")
    return after


def _healthy_and_smoke(config: Config, colour: str, release_id: str, preview_url: str, say: Callable[[str], None]) -> float:
    import httpx

    from deployer import health

    with httpx.Client(timeout=config.timeouts.request_timeout) as client:
        checks = health.service_checks(config, preview_url, colour, release_id)
        waited = health.wait_healthy(config, colour, checks, say, release=release_id, client=client)
        health.check_once(config, health.route_checks(config, preview_url, colour), step="smoke", client=client)
    return waited


class _Clock:
    """Seconds spent in each step of a release, for the history."""

    def __init__(self) -> None:
        self.began = self.last = time.monotonic()
        self.steps: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.steps[step] = round(now - self.last, 2)
        self.last = now

    def total(self) -> float:
        return round(time.monotonic() - self.began, 2)


class _Background:
    """Run a call in a thread; join() returns its result, or the exception it raised."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._outcome: Any = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs))
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            self._outcome = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the joiner
            self._outcome = exc

    def join(self) -> Any:
        self._thread.join()
        return self._outcome


def _backup(config: Config, version: str, wanted: bool, say: Callable[[str], None]) -> str:
    if not wanted or not config.backup.before_release:
        say("backup: skipped (--no-backup)" if not wanted else "backup: skipped (backup.before_release = false)")
        return "skipped"
    from deployer.backup import service as backup_service

    dump = backup_service.take(config, label=f"pre-release {version}", verify=True, step="backup")
    say(f"backup: {dump} written and verified")
    return dump


def _undo_start(
    config: Config, edge, before: Routes, idle: str, release_id: str, exc: BaseException, retire: _Background | None
) -> None:
    """Attach the failing container's last log lines and remove the new release. The routes
    go back as they were; if the old standby was already stopping, the preview goes empty."""
    if isinstance(exc, DeployerError) and not exc.logs:
        exc.logs = _failing_logs(config, idle, release_id)
    if retire is not None:
        retire.join()
    _remove_release(config, idle, release_id)
    edge.set_routes(before if retire is None else replace(before, preview="", preview_host=""), step="undo")


def _failing_logs(config: Config, colour: str, release_id: str) -> str:
    containers = [c for c in engine.colour_containers(config.name, colour) if c.release == release_id]
    ordered = sorted(containers, key=lambda c: (not c.failed, c.service))
    return "\n".join(f"--- {c.name} ({c.status}) ---\n{engine.container_logs(c.name, 20)}" for c in ordered[:2])


def _remove_release(config: Config, colour: str, release_id: str) -> None:
    try:
        colours.remove(config, colour, release=release_id)
    except DeployerError:
        pass  # the original failure is the one to report
