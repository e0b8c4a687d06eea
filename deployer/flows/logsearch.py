"""`deployer logs --slow` and `deployer logs --request`: which requests were slow, and where
one request's time went, from the edge's access log and the app's own lines.

The logs are read as `deployer logs` reads them (operate.stream_logs, through the runtime's
sources: a container, or a swarm service's every task; locally or over ssh). The edge's
lines are streamed through core/accesslog.py: only the slowest N, or the one id's lines,
are kept."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from deployer.adapters import operate
from deployer.core import accesslog, names
from deployer.core.durations import parse_duration
from deployer.core.steps import Step
from deployer.errors import DeployerError, EngineError, InputError
from deployer.flows.context import Context

SLOW_SINCE, REQUEST_SINCE = "1h", "24h"
SLOW_LIMIT = 20
MAX_MATCHES = 100  # of one id (a client may send the same id again and again)
MAX_APP_LINES = 1000


@dataclass
class Served:
    """The app lines of one service's release that name the id, or why there are none."""

    service: str
    colour: str
    release: str
    lines: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Found:
    """A request's lines: the edge's and the apps'."""

    edge: list[dict[str, Any]]  # the edge's lines of the id, oldest first (at most MAX_MATCHES)
    more: int  # how many more the edge logged
    served: list[Served]


def _start(since: str) -> int:
    return int(time.time() - (parse_duration(since) or 0))


def _read(ctx: Context, sources: list[operate.Source], since: str, write: Any) -> None:
    operate.stream_logs(ctx.engine, sources, follow=False, since=_start(since), tail=None, write=write, step=Step.LOGS)


def slow(ctx: Context, threshold: float, *, since: str | None, service: str | None, limit: int | None) -> Any:
    """The slowest requests of the window at or above `threshold` seconds, slowest first (a
    core.accesslog.Slowest: `result()` and `matched`)."""
    if service is not None and service not in ctx.config.services:
        known = ", ".join(ctx.config.services)
        raise InputError(f"--service: no service {service!r} in {ctx.config.path.name} (one of {known})")
    found = accesslog.Slowest(threshold, SLOW_LIMIT if limit is None else limit, service)
    _read(ctx, [ctx.runtime.infra_log("edge")], since or SLOW_SINCE, found.add)
    return found


def request(ctx: Context, request_id: str, *, since: str | None) -> Found:
    """The edge's lines of the id, then the lines naming it of each release that served it."""
    window = since or REQUEST_SINCE
    edge: list[dict[str, Any]] = []
    more = 0

    def keep(line: str) -> None:
        nonlocal more
        if request_id not in line:  # most lines: no JSON parsed
            return
        entry = accesslog.parse(line)
        if entry is None or entry["request_id"] != request_id:
            return
        if len(edge) < MAX_MATCHES:
            edge.append(entry)
        else:
            more += 1

    _read(ctx, [ctx.runtime.infra_log("edge")], window, keep)
    if not edge:
        raise DeployerError(
            f"request {request_id} is not in the edge's access log of the last {window} "
            "(a longer --since, or is edge.access_log off?)",
            step=Step.LOGS,
        )
    served = []
    for service, colour, release in dict.fromkeys((e.get("service"), e.get("colour"), e.get("release")) for e in edge):
        if not service:
            continue  # the edge answered itself
        served.append(_app_lines(ctx, request_id, str(service), str(colour), str(release), window))
    return Found(edge, more, served)


def _app_lines(ctx: Context, request_id: str, service: str, colour: str, release: str, since: str) -> Served:
    served = Served(service, colour, release)
    ours = service in ctx.config.services and colour in names.COLOURS and names.RELEASE_ID.fullmatch(release)
    if not ours:
        served.note = f"{service} is not a service of this deployment's releases: the edge line only"
        return served
    sources = ctx.runtime.log_sources(colour, release, [service])
    gone = f"the release {release} of {colour} is gone: the edge line only"
    if not sources:
        served.note = gone
        return served

    def keep(line: str) -> None:
        if len(served.lines) < MAX_APP_LINES and accesslog.mentions(line, request_id):
            served.lines.append(line)

    try:
        _read(ctx, sources, since, keep)
    except EngineError as exc:  # on a swarm, a removed release's service cannot be read
        served.note = f"{gone} ({exc})"
        return served
    if not served.lines:
        served.note = f"no line of {service} in {colour} (release {release}) names {request_id}"
    return served
