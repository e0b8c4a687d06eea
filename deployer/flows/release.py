"""`deployer release VERSION`: the steps of a zero-downtime release, each undone on failure.

    lock     take the lock and read the route state (one exec)
    images   every service's image exists on the engine (or is built, with --build)
    backup   a verified dump of the database
    start    the new release starts beside the idle colour's old standby; the idle
             colour's route state names it, so the preview shows it
    health   every service's own health path, on this release, through the edge
    smoke    the smoke paths through the preview route
    switch   one exec: make it live, verify through the live route, record, free the lock
    retire   stop every release the route state no longer names (the old standby)

Until `switch` has made the new release live, a failure or a cancel puts the idle
colour's route state back to the old standby (still running: it stops only in `retire`)
and removes the new release. What to undo is decided from the route state read again
from the edge, never from what this process believes: a cancel that lands while the
switch runs leaves the new release live when the switch got that far.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from deployer.adapters import compose as compose_adapter
from deployer.core import compose, history, names
from deployer.core.state import Pending, record_for
from deployer.core.steps import Step
from deployer.core.versions import check_version
from deployer.errors import DeployerError
from deployer.flows import checks, images
from deployer.flows.cleanup import retire, settle
from deployer.flows.context import Context, now_text, who
from deployer.flows.lock import Lease
from deployer.flows.runner import Run


@dataclass(frozen=True)
class Released:
    colour: str
    release: str
    version: str
    previous: str  # the colour that was live before ('' on the first release)
    seconds: float


def release(ctx: Context, version: str, *, build: bool = False, backup: bool = True) -> Released:
    check_version(version)
    config, edge, say = ctx.config, ctx.edge, ctx.say
    run = Run("release", say)
    lease: Lease | None = None
    fields: dict = {"version": version}
    settled: dict[str, str] = {}
    try:
        with run.step(Step.LOCK):
            edge.require()
            lease = Lease(ctx, f"release {version}")
            state = lease.state
        live = state.live
        idle = names.other(live) if live else names.COLOURS[0]
        standby = state.record(idle)  # the idle colour's current release: the old standby
        fields.update(colour=idle, previous=live or None)
        say(f"live: {live or 'none'} · releasing {version} to {idle}")

        with run.step(Step.IMAGES):
            images.ensure_app_images(ctx, version, build=build)
            fields["images"] = images.ids(ctx, version)

        with run.step(Step.BACKUP):
            fields["backup"] = _backup(ctx, version, backup)

        release_id = secrets.token_hex(4)
        fields["release"] = release_id
        record = record_for(config, idle, release_id, version)
        with run.step(Step.START):
            edge.write_pending(Pending(idle, release_id, version, standby), step=Step.START)
            run.on_failure(
                "remove the new release", lambda: settled.update(outcome=settle(ctx, idle, release_id, standby))
            )
            compose_adapter.up(
                ctx.engine,
                names.release_project(config.name, idle, release_id),
                compose.release(config, idle, release_id, version, deployment=config.deployment),
                step=Step.START,
            )
            edge.write_record(idle, record, step=Step.START)

        with run.step(Step.HEALTH):
            waited = checks.wait_healthy(ctx, idle, release_id)
            fields["healthy_after"] = round(waited, 2)
            say(f"{idle} healthy after {waited:.1f}s")

        with run.step(Step.SMOKE):
            checks.smoke(ctx, idle, release_id)

        with run.step(Step.SWITCH):
            line = history.entry(
                "release",
                when=now_text(),
                by=who(),
                outcome=history.OK,
                seconds=run.seconds(),
                steps=dict(run.steps),
                **fields,
            )
            edge.commit(
                idle, checks.live_probes(ctx, idle, release_id), line, lease.token, config.timeouts.request_timeout
            )
            lease.committed()
    except BaseException as exc:
        _failed(ctx, run, exc, fields, settled)
        raise
    finally:
        if lease is not None:
            lease.free()

    with run.step(Step.RETIRE):
        retired = retire(ctx)
    if retired:
        say(f"retired {', '.join(retired)}")
    say(
        f"released {version}: {idle} is live"
        + (f", {live} is the warm standby" if live else "")
        + f" ({run.seconds():.1f}s)"
    )
    return Released(idle, release_id, version, live, run.seconds())


def _backup(ctx: Context, version: str, wanted: bool) -> str:
    if not wanted or not ctx.config.backup.before_release:
        ctx.say("backup: skipped (--no-backup)" if not wanted else "backup: skipped (backup.before_release = false)")
        return "skipped"
    from deployer.flows import backups

    name = backups.take(ctx, label=f"pre-release {version}", step=Step.BACKUP)
    ctx.say(f"backup: {name} written and verified")
    return name


def _failed(ctx: Context, run: Run, exc: BaseException, fields: dict, settled: dict[str, str]) -> None:
    """Undo, attach the failing containers' logs, and record the failure in the history
    (unless the release had become live after all: the switch recorded it)."""
    failed_early = run.current in (Step.START, Step.HEALTH, Step.SMOKE) and fields.get("release")
    if isinstance(exc, DeployerError) and not exc.logs and failed_early:
        exc.logs = checks.failing_logs(ctx, fields["colour"], fields["release"])
    problems = run.undo()
    if settled.get("outcome") == "live":
        return
    outcome, reason = run.outcome(exc)
    step = getattr(exc, "step", None) or (run.current.value if run.current else "")
    line = history.entry(
        "release",
        when=now_text(),
        by=who(),
        outcome=outcome,
        step=str(step),
        reason=reason[:500],
        seconds=run.seconds(),
        steps=dict(run.steps),
        undo_problems=problems or None,
        **fields,
    )
    try:
        ctx.edge.append_history(line, step="history")
    except BaseException:  # the edge itself may be what failed
        ctx.say("warning: the failure could not be recorded in the history")
    for problem in problems:
        ctx.say(f"warning: could not undo: {problem}")
