"""`deployer switch --to COLOUR`: the instant rollback. It starts nothing and never reloads nginx.

One exec in the edge takes the lock (taking over a stale one, with a warning: a crashed
release must never block a rollback), checks that the target colour has a release and
that each of its services answers its health path, makes it live, verifies through the
live route (putting the old colour back on failure), records the switch and frees the
lock. Whatever the number of services, it is one edge operation.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.adapters.edge import Switched
from deployer.core import history
from deployer.core import probe as probe_rule
from deployer.core.lockrecord import describe
from deployer.core.scripts import PREVIOUS
from deployer.core.versions import check_colour
from deployer.errors import SwitchError
from deployer.flows import checks
from deployer.flows.context import Context, now_text, who
from deployer.flows.lock import holder, lease_seconds


@dataclass(frozen=True)
class Outcome:
    """What `switch` did."""

    target: str
    previous: str
    already: bool
    version: str


def switch(ctx: Context, target: str, *, announce: bool = True) -> Outcome:
    """`announce`: tell [notify] (an auto-rollback tells it its own way)."""
    check_colour(target)
    config = ctx.config
    line = history.entry("switch", when=now_text(), by=who(), outcome=history.OK, colour=target, previous=PREVIOUS)
    # One request checks every service of the target's current release (the edge fans out).
    probes = [probe_rule.Probe(probe_rule.health_url(target), target)]
    try:
        switched, stale = ctx.edge.switch(
            target,
            holder(f"switch --to {target}"),
            probes=probes,
            verify=checks.live_probes(ctx, target),
            history_line=line,
            timeout=config.timeouts.request_timeout,
            lease=lease_seconds(),
        )
    except SwitchError as exc:
        if exc.step == "check":
            ctx.runtime.explain(target, exc)
        raise
    if stale:
        ctx.say(f"warning: took over a stale lock (its holder's lease had passed): {describe(stale)}")
    outcome = _outcome(target, switched)
    if announce and not outcome.already and (config.notify.webhook or config.notify.command):
        from deployer.flows import notify

        text = f"switched: {target} ({outcome.version}) is live, {outcome.previous or 'no colour'} is the standby"
        notify.send(ctx, "switch", text, colour=target, version=outcome.version, previous=outcome.previous or None)
    return outcome


def _outcome(target: str, switched: Switched) -> Outcome:
    version = switched.record.version if switched.record else ""
    return Outcome(target, switched.previous, switched.already, version)
