"""The checks of a new release, all through the edge (core.probe): the health wait, the
smoke checks, and the logs that explain a failure."""

from __future__ import annotations

import time

from deployer.adapters.engine import Container
from deployer.core import probe as probe_rule
from deployer.core.steps import Step
from deployer.errors import HealthError
from deployer.flows.context import Context
from deployer.runtime.base import Healthy

# How long one exec of the health wait probes before the containers are looked at again
# (one Engine API listing), to give up soon on a crashed container.
STATE_EVERY = 1.0
# A container that listens, but not on its service's `port`, fails the wait once it has
# listened on the same other ports for MISMATCH_FOR seconds: a port mismatch never heals by
# waiting, but an app may open another port (a JMX or metrics agent) well before its own.
# Its ports are looked at every LISTEN_EVERY seconds once LISTEN_AFTER have passed.
LISTEN_AFTER, LISTEN_EVERY, MISMATCH_FOR = 5.0, 2.0, 30.0


class NotReady(Exception):
    """Not healthy yet: keep waiting."""


def release_containers(ctx: Context, colour: str, release_id: str) -> list[Container]:
    return ctx.engine.containers(
        ctx.config.name, deployment=ctx.config.deployment, colour=colour, release=release_id, role="app"
    )


def why_dead(ctx: Context, colour: str, release_id: str) -> str | None:
    """Why the release cannot become healthy by waiting, or None."""
    containers = release_containers(ctx, colour, release_id)
    present = {c.service for c in containers}
    for service in ctx.config.services:
        if service not in present:
            return f"its {service} container is gone"
    for c in containers:
        if c.dead:
            return f"{c.name} is {c.status} (exit code {c.exit_code}, restarts {c.restart_count})"
    return None


def wait_healthy(ctx: Context, colour: str, release_id: str) -> Healthy:
    """Probe every service's health path on this release until all pass; give up at the
    deadline, or soon after a container dies. The exec that sees them pass runs the smoke
    probes too (`smoke` judges them), which saves the smoke check its own exec."""
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay  # a switch needs none

    t = ctx.config.timeouts
    probes = [
        probe_rule.Probe(probe_rule.health_url(colour, s, release_id), colour, release_id) for s in ctx.config.services
    ]
    then = smoke_probes(ctx, colour, release_id)
    last: list[str] = []
    smoked: list[list[str] | None] = [None]
    started = time.monotonic()
    mismatch: dict[str, float] = {}  # what wrong_port says -> when it was first seen
    looked = [0.0]

    def attempt() -> None:
        dead = why_dead(ctx, colour, release_id)
        if dead:
            raise HealthError(f"{colour} cannot become healthy: {dead}", step=Step.HEALTH)
        now = time.monotonic()
        if last and now - started >= LISTEN_AFTER and now - looked[0] >= LISTEN_EVERY:
            looked[0] = now
            elsewhere = wrong_port(ctx, colour, release_id, last)
            if elsewhere not in mismatch:  # none, or other ports than last time: the clock starts again
                mismatch.clear()
                if elsewhere:
                    mismatch[elsewhere] = now
            elif now - mismatch[elsewhere] >= MISMATCH_FOR:
                raise HealthError(f"{colour} cannot become healthy: {elsewhere}", step=Step.HEALTH)
        # One exec probes for up to a second (20 ms, 40 ms, ... up to health_interval apart),
        # then the containers are looked at again: a crash is seen within a second.
        budget = min(STATE_EVERY, max(0.05, t.health_deadline - (time.monotonic() - started)))
        failures, smoked[0] = ctx.edge.poll_then(
            probes, then, t.request_timeout, budget=budget, interval=t.health_interval, step=Step.HEALTH
        )
        if failures:
            last[:] = explained(ctx, failures, colour, release_id)
            raise NotReady(last[0])

    try:
        for state in Retrying(
            stop=stop_after_delay(t.health_deadline), retry=retry_if_exception_type(NotReady), reraise=False
        ):
            with state:
                attempt()
    except RetryError:
        said = [*last, *mismatch] or ["no answer"]  # with the port it listens on, if it listens elsewhere
        raise HealthError(
            f"{colour} was not healthy after {t.health_deadline:g}s: {'; '.join(said)}", step=Step.HEALTH
        ) from None
    return Healthy(time.monotonic() - started, smoked[0])


def smoke_probes(ctx: Context, colour: str, release_id: str) -> list[probe_rule.Probe]:
    return [probe_rule.Probe(f"{probe_rule.PREVIEW}{p}", colour, release_id) for p in ctx.config.verify_paths()]


def smoke(ctx: Context, colour: str, release_id: str, failures: list[str] | None = None) -> None:
    """The smoke paths through the preview route: each must be answered by the new release.
    `failures`: the verdict of the health wait's last exec (None: probe now)."""
    if failures is None:
        failures = ctx.edge.probe(
            smoke_probes(ctx, colour, release_id), ctx.config.timeouts.request_timeout, step=Step.SMOKE
        )
    if failures:
        raise HealthError("smoke check failed: " + "; ".join(failures), step=Step.SMOKE)


def live_probes(ctx: Context, colour: str, release_id: str = "") -> list[probe_rule.Probe]:
    """What the switch verifies through the live route."""
    return [probe_rule.Probe(f"{probe_rule.LIVE}{p}", colour, release_id) for p in ctx.config.verify_paths()]


def failing_logs(ctx: Context, colour: str, release_id: str) -> str:
    """The last log lines of the release's containers, the failing ones first."""
    try:
        containers = release_containers(ctx, colour, release_id)
    except Exception:  # the engine went away: the original failure is what matters
        return ""
    ordered = sorted(containers, key=lambda c: (not c.dead, c.service))
    return "\n".join(f"--- {c.name} ({c.status}) ---\n{ctx.engine.logs(c.name, 20)}" for c in ordered[:2])


def explained(ctx: Context, failures: list[str], colour: str, release_id: str = "") -> list[str]:
    """A failed health probe in the user's words: the service, the path it probed on which
    port of its container, and the config keys that set them (not the edge's own URL)."""
    out = []
    for failure in failures:
        for s in ctx.config.services.values():
            url = probe_rule.health_url(colour, s.name, release_id)
            if failure.startswith(url + ":"):
                said = failure[len(url) + 1 :].strip()
                keys = f"services.{s.name}.health, services.{s.name}.port"
                if said in ("HTTP 502", "HTTP 504", "no answer"):
                    failure = f"{s.name}: nothing answered GET {s.health} on port {s.port} of its container ({keys})"
                else:
                    failure = f"{s.name}: GET {s.health} on port {s.port} of its container answered {said} ({keys})"
                break
        out.append(failure)
    return out


def wrong_port(ctx: Context, colour: str, release_id: str, failures: list[str]) -> str | None:
    """A service that gets no answer and whose container listens, but not on its `port`."""
    quiet = [
        s for s in ctx.config.services.values() if any(f.startswith(f"{s.name}: nothing answered") for f in failures)
    ]
    for c in release_containers(ctx, colour, release_id) if quiet else []:
        service = ctx.config.services.get(c.service)
        if service is None or service not in quiet or not c.running:
            continue
        ports = listening(ctx, c.name)
        if ports and service.port not in ports:
            shown = ", ".join(str(p) for p in sorted(ports))
            return f"{service.name} listens on port {shown} in its container, not on services.{service.name}.port = {service.port}"
    return None


def listening(ctx: Context, container: str) -> set[int]:
    """The TCP ports a container listens on, from /proc/net (empty when it cannot be read:
    an image with no shell or cat)."""
    try:
        result = ctx.engine.exec(container, ["cat", "/proc/net/tcp", "/proc/net/tcp6"], step=Step.HEALTH)
    except Exception:
        return set()
    return probe_rule.listening_ports(result.stdout)
