"""One-off containers left behind by a command that was killed (core/oneoffs.py has the
rules): found by their labels, and cleared by the next command before it starts its own.

A release, `down` and `backup restore` wait for a migration that still runs (a second one
must not run beside it, nor a restore or a teardown under it), at most until the
migration's own migrate_timeout is up, with a progress line; one that ran past it is
stopped, as the killed release would have done. Waiting rather than refusing: a killed
release is most often a cancelled CI job that is simply run again, and the migration it
left is the very work the next release needs finished. Ctrl-C stops the wait and changes
nothing; `docker rm -f NAME` stops the migration.
"""

from __future__ import annotations

import os
import time

from deployer.adapters import oneoff
from deployer.core import names, oneoffs
from deployer.core.oneoffs import OneOff
from deployer.flows.context import Context, who

SAY_EVERY = 10.0  # seconds between progress lines while waiting


def oneoff_labels(ctx: Context, kind: str, *, command: str, timeout: float, **extra: str) -> dict[str, str]:
    """The labels of a one-off this process starts now, for `command` (`release v2`, `up`)."""
    by = f"{command} by {who()} pid {os.getpid()}"
    return oneoffs.labels(ctx.config.name, ctx.config.deployment, kind, by=by, timeout=timeout, **extra)


def found(ctx: Context) -> list[OneOff]:
    """This deployment's one-offs on the engine, in any state."""
    containers = [
        c
        for c in oneoff.listing(ctx.engine, ctx.config.name)
        if c.labels.get(names.LABEL_DEPLOYMENT, "") == ctx.config.deployment
    ]
    now = oneoff.engine_time(ctx.engine) if any(c.running for c in containers) else 0.0
    return [
        oneoffs.parse(
            c.name, c.labels, running=c.running, started_at=c.started_at, now=now, default_timeout=_timeout(ctx, c)
        )
        for c in containers
    ]


def _timeout(ctx: Context, c) -> float:
    """The timeout of a one-off labelled before they carried it: its service's migrate_timeout."""
    service = ctx.config.services.get(c.labels.get(names.LABEL_SERVICE, ""))
    return float(service.migrate_timeout) if service else 600.0


def clear(
    ctx: Context,
    *,
    wait_for: tuple[str, ...] = (oneoffs.MIGRATE,),
    stop_all: bool = False,
    only: tuple[str, ...] | None = None,
) -> None:
    """Remove the one-offs that ended, stop those past their time, wait for the running
    ones of a kind in `wait_for`; `stop_all` (down) stops the rest too. `only`: just these
    kinds (a command that holds no lock must not remove a migration that a running release
    is about to read)."""
    for one in found(ctx):
        if only is not None and one.kind not in only:
            continue
        action = oneoffs.decide(one, wait_for=wait_for, stop_all=stop_all)
        if action == oneoffs.WAIT:
            _wait(ctx, one)
        elif action == oneoffs.REMOVE:
            oneoff.remove(ctx.engine, one.name)
            ctx.say(f"removed {one.describe()}: it had ended, and its command was gone")
        elif action == oneoffs.STOP:
            oneoff.remove(ctx.engine, one.name)
            ctx.say(f"stopped and removed {one.describe()}: {_why_stopped(one)}")


def _why_stopped(one: OneOff) -> str:
    if one.left <= 0:
        return f"it ran {one.age:.0f}s, past the {one.timeout:.0f}s its own command gave it"
    return "the deployment is being removed"


def _wait(ctx: Context, one: OneOff) -> None:
    """Wait for a running one-off until it ends or its time is up (then stop it)."""
    ctx.say(
        f"waiting for {one.describe()}: it still runs, and its command is gone. Up to {one.left:.0f}s more "
        f"(its timeout); Ctrl-C stops waiting, `docker rm -f {one.name}` stops it"
    )
    deadline = time.monotonic() + one.left
    for _ in range(int(one.left / SAY_EVERY) + 2):  # bounded by its timeout
        left = deadline - time.monotonic()
        if left <= 0:
            break
        code = oneoff.wait(ctx.engine, one.name, min(SAY_EVERY, left))
        if code is not None:
            tail = ctx.engine.logs(one.name, 5) if code != 0 else ""
            oneoff.remove(ctx.engine, one.name)
            ended = "ended" if code == 0 else f"FAILED (exit code {code}; its last lines: {tail or 'none'})"
            ctx.say(f"{one.name} {ended}; removed")
            return
        ctx.say(f"still waiting for {one.name}: {max(0, deadline - time.monotonic()):.0f}s left of its timeout")
    oneoff.remove(ctx.engine, one.name)
    ctx.say(f"stopped and removed {one.describe()}: it ran past the {one.timeout:.0f}s its own command gave it")
