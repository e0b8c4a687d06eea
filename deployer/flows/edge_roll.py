"""Replacing the edge with no failed request and no refused connection: what `deployer up`
does when the edge's image or settings changed (`--refresh-images`, a newer base image, a
new deployer version), and the one move of an edge of the earlier layout onto its ports.

The edge's nginx runs in the network namespace of `<name>-infra-ports-1`, a container that
holds the published ports, only sleeps, and is not replaced (core/compose.py). So:

    start    compose starts a second edge container from the new file beside the running one
             (`up --no-deps --no-recreate --scale edge=2`); its nginx listens on the same ports
             (every TCP `listen` has `reuseport`), the kernel spreads new connections over
             both, and it reads the same route state, site and certificate from the volume
    check    it runs, and its own nginx answers on its control socket
    names    the old container becomes <name>-infra-edge-1-old and the new one takes
             <name>-infra-edge-1, so every exec from here on (the lock's, status's) reaches it
    drain    the old nginx answers every request with `Connection: close` (its control
             socket's /drain), so each keep-alive client opens a new connection; wait until
             it has no waiting connection left, at most edge.keepalive_timeout (by then its
             own timeout has closed every connection that was idle before the drain)
    quit     `docker stop` sends SIGQUIT: nginx closes its listeners (the kernel hands what
             is queued on them to the new edge's listeners: net.ipv4.tcp_migrate_req on the
             ports holder), lets in-flight requests finish, and exits; the container goes

A failure or a cancel before `names` removes the new container: the old edge serves on,
untouched. After it, the next `up` finishes what is left (settle). One edge at a time owns
the writes: the lock, the history and the route state are files of the shared volume, and
scripts reach the edge by its name. The new edge's metrics start at zero; the old one's
access log goes with its container.
"""

from __future__ import annotations

import time
from typing import Any

from deployer.adapters import compose as compose_adapter
from deployer.adapters.edge import Edge
from deployer.adapters.lifecycle import rename, start, stop
from deployer.core import compose, names, scripts, site
from deployer.core.steps import Step
from deployer.core.watch import Marker
from deployer.errors import ConfigError, EdgeError, EngineError, LockError
from deployer.flows.context import Context

OLD = "-old"  # suffix of the replaced edge's name while it drains
QUIT_GRACE = 35  # seconds for `docker stop`: nginx's worker_shutdown_timeout (30 s) and a margin
DRAIN_LIMIT = 60  # seconds at most that an old edge drains, whatever edge.keepalive_timeout


def layout(ctx: Context) -> str:
    """'none' (no edge yet), 'single' (an edge of the earlier layout publishes the ports
    itself) or 'pod' (the edge runs in the ports holder's network namespace)."""
    attrs = ctx.engine.inspect(ctx.edge.container)
    if attrs is None:
        return "none"
    mode = (attrs.get("HostConfig") or {}).get("NetworkMode") or ""
    return "pod" if mode.startswith("container:") else "single"


def running(ctx: Context) -> bool:
    c = ctx.engine.container(ctx.edge.container)
    return c is not None and c.running


def ports_image(ctx: Context, fallback: str) -> str:
    """The ports holder's image, by ID: the one it runs (so nothing replaces it), else the base
    image's (else `fallback`'s: any image with `sleep`)."""
    attrs = ctx.engine.inspect(names.infra_container(ctx.config.name, "ports"))
    return (attrs or {}).get("Image") or ctx.engine.image_id(ctx.config.base_image) or fallback


def stale(ctx: Context, data: dict[str, Any]) -> bool:
    """The running edge was made from another image or other settings than `data`'s edge."""
    c = ctx.engine.container(ctx.edge.container)
    return c is not None and c.labels.get(compose.EDGE_SPEC) != data["services"]["edge"]["labels"][compose.EDGE_SPEC]


def ports_changed(ctx: Context, data: dict[str, Any], secrets: dict[str, str]) -> bool:
    """The ports holder would be made anew (its ports or settings changed): the edge must then
    restart with it."""
    attrs = ctx.engine.inspect(names.infra_container(ctx.config.name, "ports"))
    if attrs is None:
        return True
    have = ((attrs.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.config-hash", "")
    want = compose_adapter.config_hash(ctx.engine, names.infra_project(ctx.config.name), data, "ports", secrets=secrets)
    return not want or have != want


def check(ctx: Context, rendered: str) -> None:
    """Before anything changes: a replacement needs every TCP listener of the site to have
    `reuseport`, and no watch may be judging the edge's counters (the new edge's start at 0)."""
    missing = site.without_reuseport(rendered)
    why = f"`listen {missing[0]};` has no `reuseport`" if missing else site.cannot_drain(rendered)
    if why:
        raise ConfigError(
            ctx.config.path,
            "edge.template",
            f"{why}: the edge could not be replaced beside the running one (docs/zero-downtime.md)",
        )
    marker = Marker.parse(ctx.edge.state(step=Step.UP).watch)
    now = int(ctx.edge.run("date +%s", step=Step.UP).stdout.strip() or 0)
    if marker and marker.alive(now):
        raise LockError(
            f"the edge must be replaced, but {marker.version} on {marker.colour} is being watched "
            f"({marker.left(now)}s left) on its counters, which a new edge starts at zero: run `deployer up` "
            "again after the verdict (`deployer watch` follows it)",
            step=Step.UP,
        )


def replace(ctx: Context, data: dict[str, Any], secrets: dict[str, str], *, rendered: str) -> None:
    """Start the new edge beside the running one, then drain and stop the old one."""
    engine, config = ctx.engine, ctx.config
    began = time.monotonic()
    old = engine.container(ctx.edge.container)
    if old is None or not old.running:
        raise EdgeError(f"the edge {ctx.edge.container} is not running: nothing to replace", step=Step.UP)
    old_edge = Edge(engine, config.name, config.deployment, container=old.id)
    staged = old_edge.stage_site(rendered, step=Step.UP)
    new = None
    try:
        compose_adapter.up(
            engine, names.infra_project(config.name), data, step=Step.UP, secrets=secrets, wait=True,
            services=["edge"], scales={"edge": 2}, beside=True,
        )  # fmt: skip
        new = _newcomer(ctx, old.id)
        _check_new(ctx, new)
    except BaseException:  # a failure or a cancel: the old edge serves on, as it was
        for c in [new] if new else [c for c in _edges(ctx) if c.id != old.id]:
            engine.stop_and_remove(c.id, 5)
        if staged:
            old_edge.unstage_site(step=Step.UP)
        raise
    assert new is not None
    rename(engine, old.id, old.name + OLD, step=Step.UP)
    rename(engine, new.id, ctx.edge.container, step=Step.UP)
    left = _retire(ctx, Edge(engine, config.name, config.deployment, container=old.id))
    ctx.say(f"edge: replaced with no interruption in {time.monotonic() - began:.1f}s{left}")


def _edges(ctx: Context) -> list:
    return ctx.engine.containers(ctx.config.name, deployment=ctx.config.deployment, role="edge")


def _newcomer(ctx: Context, old_id: str):
    found = sorted((c for c in _edges(ctx) if c.id != old_id), key=lambda c: c.started_at, reverse=True)
    return found[0] if found else None


def _check_new(ctx: Context, new) -> None:
    """The new edge runs, and its own nginx (not the old one, which shares its ports) answers."""
    if new is None or not new.running:
        logs = ctx.engine.logs(new.id, 20) if new else ""
        raise EngineError("the new edge did not start; the old one serves on", step=Step.UP, logs=logs)
    if not Edge(ctx.engine, ctx.config.name, container=new.id).run(scripts.ANSWERS, step=Step.UP).ok:
        raise EngineError(
            "the new edge's nginx does not answer on its control socket; the old one serves on",
            step=Step.UP,
            logs=ctx.engine.logs(new.id, 20),
        )


def _retire(ctx: Context, old: Edge) -> str:
    """Drain an edge that another one has replaced, then stop and remove it; says what it left.
    The drain waits until no connection waits on it, at most edge.keepalive_timeout (and
    DRAIN_LIMIT), in execs of at most 20 s."""
    limit = min(ctx.config.edge.keepalive_timeout, DRAIN_LIMIT) + 1
    counts = None
    if not old.drain(step=Step.UP):
        ctx.say("warning: the old edge could not drain (its site has no /drain): idle keep-alive clients see a close")
    else:
        deadline = time.monotonic() + limit
        while counts is None or (counts[1] and time.monotonic() < deadline):
            counts = old.drained(min(20.0, max(0.2, deadline - time.monotonic())), step=Step.UP) or (0, 0)
    ctx.engine.stop_and_remove(old.container, QUIT_GRACE)
    if counts and counts[1]:
        return f" ({counts[1]} idle connection(s) were still open after {limit:g}s and were closed)"
    return ""


def settle(ctx: Context) -> None:
    """Finish a replacement that a killed or failed `up` left half done: the running edge that
    was started last keeps (or takes) the edge's name; every other edge is drained and goes."""
    edges, name = _edges(ctx), ctx.edge.container
    named = next((c for c in edges if c.name == name), None)
    if not edges or (named and len(edges) == 1):
        return
    running = sorted((c for c in edges if c.running), key=lambda c: c.started_at, reverse=True)
    keep = named if named and named.running else running[0] if running else named or edges[0]
    for c in edges:
        if c.id == keep.id:
            continue
        if c.running:
            _retire(ctx, Edge(ctx.engine, ctx.config.name, ctx.config.deployment, container=c.id))
        else:
            ctx.engine.stop_and_remove(c.id, 5)
    if keep.name != name:
        rename(ctx.engine, keep.id, name, step=Step.UP)
    if len(edges) > 1:
        ctx.say("edge: finished the replacement of the edge that an earlier `up` left half done")


def move(ctx: Context, up: Any) -> None:
    """The one move of an edge of the earlier layout (it publishes the ports itself) onto the
    ports holder: the old edge stops (in-flight requests finish, at most 10 s), then `up()`
    starts the holder and the new edge (compose removes the old one). New connections are
    refused in between. Should `up()` fail, the old edge starts again."""
    began = time.monotonic()
    ctx.say("edge: moving it onto its ports holder, once: new connections are refused until it is back")
    stop(ctx.engine, ctx.edge.container, 10, step=Step.UP)
    try:
        up()
    except BaseException:
        if start(ctx.engine, ctx.edge.container, step=Step.UP):
            ctx.say("edge: the move failed; the old edge serves again")
        raise
    ctx.say(f"edge: moved; the public port was closed for {time.monotonic() - began:.1f}s")
