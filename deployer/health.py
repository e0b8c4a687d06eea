"""Waiting for a colour to become healthy, smoke checks and live verification (httpx + tenacity)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from deployer import engine
from deployer.config import Config
from deployer.errors import HealthError
from deployer.plan import health_urls, host


class NotReady(Exception):
    """Not healthy yet: keep waiting."""


@dataclass(frozen=True)
class Check:
    url: str
    colour: str  # the X-Deployer-Colour the edge must answer with


def probe(client: httpx.Client, check: Check) -> str | None:
    """None when the check passes, else why it did not."""
    try:
        response = client.get(check.url)
    except httpx.HTTPError as exc:
        return f"{check.url}: {type(exc).__name__}"
    colour = response.headers.get("x-deployer-colour", "")
    if response.status_code >= 400:
        return f"{check.url}: HTTP {response.status_code}"
    if colour != check.colour:
        return f"{check.url}: answered by colour {colour or 'none'!r}, expected {check.colour}"
    return None


# How often the wait looks at the containers' state (an Engine API listing) to fail fast on
# a crashed container; the HTTP probes run every timeouts.health_interval.
STATE_CHECK_EVERY = 0.5


def colour_failure(config: Config, colour: str, release: str | None = None) -> str | None:
    """Why the colour's containers (of one release, if given) cannot become healthy by waiting, or None."""
    containers = [
        c for c in engine.colour_containers(config.name, colour) if release is None or c.release == release
    ]
    running = {c.service for c in containers}
    for service in config.services:
        if service not in running:
            return f"no {service} container of {colour}"
    for c in containers:
        if c.failed:
            return f"{c.name} is {c.status} (exit code {c.exit_code}, restarts {c.restart_count})"
    return None


def wait_healthy(
    config: Config,
    colour: str,
    checks: list[Check],
    say: Callable[[str], None] = print,
    *,
    release: str | None = None,
    client: httpx.Client | None = None,
) -> float:
    """Poll until every check passes; give up at the deadline, or soon after a container dies."""
    t = config.timeouts
    last: list[str] = []
    started = time.monotonic()
    next_state_check = [started]
    with _client(config, client) as client:

        def attempt() -> None:
            now = time.monotonic()
            if now >= next_state_check[0]:
                next_state_check[0] = now + STATE_CHECK_EVERY
                dead = colour_failure(config, colour, release)
                if dead:
                    raise HealthError(f"{colour} cannot become healthy: {dead}", step="health")
            failures = [f for f in (probe(client, c) for c in checks) if f]
            if failures:
                last[:] = failures
                raise NotReady(failures[0])

        try:
            for attempt_state in Retrying(
                stop=stop_after_delay(t.health_deadline),
                # 20 ms, 40 ms, ... up to health_interval: an app that is ready at once
                # is seen at once, a slow one is polled every health_interval.
                wait=wait_exponential(multiplier=0.02, min=0.02, max=t.health_interval),
                retry=retry_if_exception_type(NotReady),
                reraise=False,
            ):
                with attempt_state:
                    attempt()
        except RetryError:
            raise HealthError(
                f"{colour} was not healthy after {t.health_deadline:g}s: {'; '.join(last) or 'no answer'}",
                step="health",
            ) from None
    return time.monotonic() - started


def check_once(config: Config, checks: list[Check], *, step: str, client: httpx.Client | None = None) -> None:
    """Every check must pass now (smoke checks, live verification, switch pre-check)."""
    with _client(config, client) as client:
        failures = [f for f in (probe(client, c) for c in checks) if f]
    if failures:
        raise HealthError("; ".join(failures), step=step)


@contextmanager
def _client(config: Config, given: httpx.Client | None) -> Iterator[httpx.Client]:
    """The caller's client (kept open), or a new one closed afterwards."""
    if given is not None:
        yield given
        return
    with httpx.Client(timeout=config.timeouts.request_timeout) as client:
        yield client


def service_checks(config: Config, preview_url: str, colour: str, release_id: str = "") -> list[Check]:
    """Each service's health path, reached directly on one release of a colour through the preview server."""
    return [Check(url, colour) for url in health_urls(preview_url, host(colour, release_id), config.services)]


def route_checks(config: Config, base_url: str, colour: str) -> list[Check]:
    """The smoke paths (or each service's health path) through the public routes."""
    paths = list(config.smoke) or [s.health for s in config.services.values()]
    return [Check(f"{base_url}{p}", colour) for p in paths]
