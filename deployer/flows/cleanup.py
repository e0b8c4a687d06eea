"""Removing releases on one host (runtime/compose.py): the ones the route state no longer
names, with their services' stop grace; and the undo of a release that did not complete
(`settle`, in either runtime)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from deployer.adapters.engine import Container
from deployer.adapters.models import TOLD_CPU_SHARES
from deployer.core.state import EdgeState, Record
from deployer.core.steps import Step
from deployer.core.undo import LIVE, decide
from deployer.flows.context import Context
from deployer.flows.runner import background


def retire(
    ctx: Context,
    state: EdgeState | None = None,
    *,
    wait: bool = True,
    among: list[Container] | None = None,
    keep: set[tuple[str, str]] | None = None,
) -> list[str]:
    """Stop and remove every app container that the route state no longer names: the old
    standby of a release, and whatever a killed command left behind. Never one that a
    colour's current release needs. Returns the releases removed.

    `wait=False` (the end of a release): a running container is only told to stop (its
    stop signal, restart policy off) and not waited for; the engine lets it exit and the
    next retire removes it, or, if it is still running then, stops it with its stop grace
    (SIGKILL after). Exited ones are removed now either way.

    `among` and `keep` (the end of a release): the containers it listed under its lock
    (clear_told) and the (colour, release) pairs its switch left in the route state. No
    exec and no listing then, and no container created since (a release that started after
    the switch freed the lock) can be among them."""
    if among is None or keep is None:
        state = state or ctx.edge.state(step=Step.RETIRE)
        keep = {(c, r.release) for c, r in state.records.items() if r}
        if state.pending:  # a release that started since (the lock was freed at the switch)
            keep.add((state.pending.colour, state.pending.release))
        among = ctx.engine.containers(ctx.config.name, deployment=ctx.config.deployment, role="app")
    doomed = [c for c in among if (c.colour, c.release) not in keep]
    if wait:
        remove(ctx, doomed)
    else:
        let_go(ctx, doomed)
    return sorted({f"{c.colour}-{c.release} ({c.version})" for c in doomed})


def _grace(ctx: Context, service: str) -> float:
    s = ctx.config.services.get(service)
    return s.stop_grace if s else 10


def remove(ctx: Context, containers: list[Container]) -> None:
    """Stop (SIGTERM, then the service's stop_grace) and remove these containers, in parallel."""
    if not containers:
        return
    with ThreadPoolExecutor(max_workers=min(16, len(containers))) as pool:
        list(pool.map(lambda c: ctx.engine.stop_and_remove(c.name, _grace(ctx, c.service)), containers))


def told_before(c: Container) -> bool:
    """Was this running container told to stop by an earlier retire (engine.stop_and_remove with a signal)?"""
    return c.cpu_shares == TOLD_CPU_SHARES


def let_go(ctx: Context, containers: list[Container]) -> None:
    """Tell running containers to stop without waiting for them; remove the exited ones, and
    stop with their grace (and remove) the ones an earlier retire told and that still run."""
    if not containers:
        return

    def one(c: Container) -> None:
        if c.running and not told_before(c):
            ctx.engine.stop_and_remove(c.name, 0, signal=c.stop_signal)
        else:
            ctx.engine.stop_and_remove(c.name, _grace(ctx, c.service))

    with ThreadPoolExecutor(max_workers=min(16, len(containers))) as pool:
        list(pool.map(one, containers))


def clear_told(ctx: Context, keep: set[tuple[str, str]]) -> Future | None:
    """Start removing, in a thread, the containers that an earlier release told to stop (or
    that have exited) and that no (colour, release) in `keep` names: the end of the release
    would do it, but the health wait is idle time. A running container nobody told is left
    for `retire`, after the health and smoke checks. `cleared` waits for it."""

    def clear() -> list[Container]:
        containers = ctx.engine.containers(ctx.config.name, deployment=ctx.config.deployment, role="app")
        done = [c for c in containers if (c.colour, c.release) not in keep and (not c.running or told_before(c))]
        let_go(ctx, done)
        gone = {c.id for c in done}
        return [c for c in containers if c.id not in gone]

    return background(clear)


def cleared(future: Future | None) -> list[Container] | None:
    """Wait for clear_told: the containers it listed and left in place (None when it did not
    run or failed: `retire` then looks at the route state and every container again)."""
    if future is None:
        return None
    try:
        return future.result()
    except Exception:
        return None


def settle(ctx: Context, colour: str, release_id: str, standby: Record | None) -> str:
    """Undo a release that did not complete, from the edge's truth (core/undo.py decides).

    Returns "live" when the release had become live after all (a cancel during the
    switch): then nothing is removed. Otherwise ("removed") the colour's route state goes
    back to the old standby and the new release is removed."""
    undo = decide(ctx.edge.state(step=Step.UNDO), colour, release_id, standby)
    if undo.outcome == LIVE:
        ctx.say(f"the switch had completed: {colour} ({release_id}) is live; nothing was undone")
    if undo.put_back:
        ctx.edge.write_record(colour, undo.standby, step=Step.UNDO)
    if undo.remove:
        ctx.runtime.remove(colour, release_id)
    if undo.clear_pending:
        ctx.edge.write_pending(None, step=Step.UNDO)
    return undo.outcome
