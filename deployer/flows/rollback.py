"""What the watch does on a breach (flows/watch.py): switch back to the warm standby at once,
put the watched colour's previous release back (it was kept running for this: the idle
colour's old standby is retired only after the watch), record `auto-rollback` with the
figures, the limits and the baseline they came from, notify, and fail the command (exit 1). Also the watch's marker and history helpers,
which both share.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from deployer.core import history
from deployer.core.steps import Step
from deployer.core.verdict import Judgement
from deployer.core.watch import PATH, Marker
from deployer.errors import DeployerError, HealthError, LockError
from deployer.flows import notify
from deployer.flows.context import Context, now_text, who


@dataclass(frozen=True)
class Verdict:
    """The watch's verdict on a release."""

    outcome: str  # passed, no-verdict, rolled-back, stopped
    text: str
    figures: dict[str, Any] = field(default_factory=dict)


def roll_back(ctx: Context, marker: Marker, verdict: Judgement, over: str) -> None:
    """Switch back to the warm standby, put the colour's previous release back, record,
    notify, and raise (exit 1)."""
    from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

    from deployer.flows.switch import switch

    reasons = "; ".join(verdict.reasons)
    ctx.say(f"watch: {marker.version} breached over {over}: {reasons} ({verdict.text()}); switching back")
    began, problem, switched = time.monotonic(), "", False
    # The lock may be held for a moment (a status of the lock, an `up`): asked again each second.
    again = Retrying(
        retry=retry_if_exception_type(LockError), stop=stop_after_delay(10), wait=wait_fixed(1), reraise=True
    )
    try:
        again(switch, ctx, marker.previous, announce=False)
        switched = True
    except DeployerError as exc:
        problem = str(exc)
    seconds = round(time.monotonic() - began, 2)
    if switched:
        ctx.say(f"watch: switched back: {marker.previous} ({marker.previous_version}) is live again ({seconds}s)")
    fields = {"reasons": list(verdict.reasons), "figures": verdict.record(), "switch_seconds": seconds}
    if marker.baseline:
        fields["baseline"] = marker.baseline.record()
    if not switched:
        text = (
            f"{marker.version} breached its watch ({reasons}) and the switch back to {marker.previous} failed: "
            f"{problem}. Switch by hand: deployer switch --to {marker.previous}"
        )
        record(ctx, marker, Verdict("failed", text, fields), action="auto-rollback")
        clear(ctx, marker)
        notify.send(ctx, "auto_rollback", text, outcome="failed", version=marker.version, **fields)
        raise HealthError(text, step=Step.WATCH)
    logs = ctx.runtime.logs(marker.colour, marker.release)
    restored = restore_standby(ctx, marker)
    text = (
        f"auto-rollback: {marker.version} on {marker.colour} breached its watch over {over}: {reasons} "
        f"({verdict.text()}). {marker.previous} ({marker.previous_version}) is live again "
        f"(switched in {seconds}s){restored}"
    )
    record(ctx, marker, Verdict("rolled-back", text, fields), action="auto-rollback")
    clear(ctx, marker)
    notify.send(ctx, "auto_rollback", text, outcome="ok", version=marker.version, colour=marker.colour, **fields)
    raise HealthError(text, step=Step.WATCH, logs=logs)


def restore_standby(ctx: Context, marker: Marker) -> str:
    """The watched colour gets its previous release back (still running: it is retired only
    after a watch), and the bad release is removed; as if the release had never run."""
    from deployer.flows.cleanup import settle
    from deployer.flows.lock import held

    try:
        with held(ctx, "auto-rollback"):
            settle(ctx, marker.colour, marker.release, marker.standby)
    except DeployerError as exc:
        return f"; {marker.colour} still holds {marker.version} as its release ({exc})"
    back = f"{marker.standby.version} ({marker.standby.release})" if marker.standby else "no release"
    return f"; {marker.colour} is back to {back} and {marker.version} was removed"


# -- the marker and the history -------------------------------------------------------------------
def clock(ctx: Context) -> int:
    return int(ctx.edge.run("date +%s", step=Step.WATCH).stdout.strip() or time.time())


def clear(ctx: Context, marker: Marker) -> None:
    """Remove the marker if it is still this watch's."""
    mine = f"release {marker.release}"
    ctx.edge.run(f"grep -qx '{mine}' {PATH} 2>/dev/null && rm -f {PATH}; true", step=Step.WATCH)


def record(ctx: Context, marker: Marker, verdict: Verdict, *, action: str = "watch") -> Verdict:
    line = history.entry(
        action,
        when=now_text(),
        by=who(),
        outcome=verdict.outcome,
        version=marker.version,
        colour=marker.colour,
        release=marker.release,
        previous=marker.previous,
        reason=verdict.text[:500],
        **verdict.figures,
    )
    try:
        ctx.edge.append_history(line, step=Step.WATCH)
    except DeployerError:
        ctx.say("warning: the watch's verdict could not be recorded in the history")
    return verdict
