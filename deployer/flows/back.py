"""`deployer rollback [VERSION]`: the rollback that needs no thinking.

Without VERSION it makes the warm standby live, whatever its colour: one `switch` (nothing
starts, no reload). With VERSION it makes live the colour that runs that version, or, when
neither does, releases that version from the images the engine kept (`prune` keeps the
newest per service), never building. What it will do is decided from the route state
alone (`plan`, a pure function), so `--dry-run` says it before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.core import names
from deployer.core.state import EdgeState
from deployer.core.steps import Step
from deployer.errors import InputError, SwitchError
from deployer.flows.context import Context

SWITCH, LIVE, RELEASE = "switch", "already live", "release"


@dataclass(frozen=True)
class Plan:
    """What a rollback does."""

    action: str  # SWITCH to `colour`, `colour` is LIVE already, or RELEASE `version` to the idle colour
    colour: str
    version: str

    def describe(self, state: EdgeState) -> str:
        live = state.live_record
        now = f"{state.live} ({live.version})" if live else "nothing"
        if self.action == SWITCH:
            return f"switch live traffic from {now} to {self.colour} ({self.version}), the running standby"
        if self.action == LIVE:
            return f"{self.colour} ({self.version}) is already live: nothing to do"
        return f"release {self.version} from its kept images (no build) to the idle colour; {now} is live now"


def plan(state: EdgeState, version: str | None) -> Plan:
    """What `rollback` does in this route state (SwitchError, exit 1, when it cannot)."""
    if version is None:
        if not state.live:
            raise SwitchError("nothing is live yet: there is no release to roll back from", step=Step.CHECK)
        standby = names.other(state.live)
        record = state.record(standby)
        if record is None:
            raise SwitchError(
                f"there is no warm standby: {standby} has no release (roll back to a version: "
                f"`deployer rollback VERSION` releases its kept images)",
                step=Step.CHECK,
            )
        return Plan(SWITCH, standby, record.version)
    for colour in names.COLOURS:
        record = state.record(colour)
        if record is not None and record.version == version:
            return Plan(LIVE if colour == state.live else SWITCH, colour, version)
    return Plan(RELEASE, "", version)


def rollback(
    ctx: Context, version: str | None, *, dry_run: bool = False, backup: bool = True, watch: float | None = None
) -> Plan:
    """Carry the plan out (or only say it, with `dry_run`)."""
    ctx.edge.require()
    state = ctx.edge.state(step=Step.CHECK)
    chosen = plan(state, version)
    if chosen.action == RELEASE:
        _kept(ctx, chosen.version)
    ctx.say(("would " if dry_run else "rollback: ") + chosen.describe(state))
    if dry_run or chosen.action == LIVE:
        return chosen
    if chosen.action == SWITCH:
        from deployer.flows import switch

        outcome = switch.switch(ctx, chosen.colour)
        ctx.say(
            f"switched: {chosen.colour} ({outcome.version}) is live, {outcome.previous or 'no colour'} is the standby"
        )
        return chosen
    from deployer.flows import release

    release.release(ctx, chosen.version, build=False, backup=backup, watch=watch)
    return chosen


def _kept(ctx: Context, version: str) -> None:
    """Every image of the version is at hand (on the engine, or where a release moves it
    from): a rollback never builds. InputError, exit 2, before anything changes."""
    from deployer.flows import artifacts

    gone = [i.ref for i in artifacts.check(ctx, version) if i.how == "missing"]
    if gone:  # pruned, or never built here
        raise InputError(
            f"no colour runs {version} and its image {gone[0]} is not on {ctx.engine.where} any more: "
            f"nothing was changed (build and release it: `deployer release {version} --build`)"
        )
