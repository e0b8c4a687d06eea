"""`deployer release VERSION`: the steps of a zero-downtime release, each undone on failure.

    lock     take the lock and read the route state (one exec); refuse while a watch runs;
             wait for a migration a killed release left running, remove ended one-offs
    preflight each service's database login (services.*.db_login) connects
    images   every service's image exists on the engine (or is built, with --build)
    backup   a verified dump of the database
    migrate  each service's `migrate` command, from the new image (flows/migrate.py)
    start    the new release starts beside the idle colour's old standby; the idle
             colour's route state names it, so the preview shows it
    health   every service's own health path, on this release, through the edge
    smoke    the smoke paths through the preview route
    switch   one exec: make it live, verify through the live route, record, free the lock
    watch    judge the new live release on the edge's metrics; on a breach, switch back to
             the warm standby and put the old standby back (flows/watch.py)
    retire   tell every release the route state no longer names (the old standby) to stop,
             without waiting for its shutdown; remove what earlier releases told; prune
             old release images (flows/prune.py)

Until `switch` has made the new release live, a failure or a cancel puts the idle
colour's route state back to the old standby (still running: it stops only in `retire`)
and removes the new release. What to undo is decided from the route state read again
from the edge, never from what this process believes: a cancel that lands while the
switch runs leaves the new release live when the switch got that far.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployer.adapters import compose as compose_adapter
from deployer.config import envfile
from deployer.core import compose, history, names
from deployer.core.state import Pending, record_for
from deployer.core.steps import Step
from deployer.core.versions import check_version
from deployer.errors import DeployerError, EdgeError
from deployer.flows import agent_call, artifacts, backups, checks, dbguard, migrate, notify, oneoffs, prune
from deployer.flows import watch as watch_flow
from deployer.flows.cleanup import clear_told, cleared, retire, settle
from deployer.flows.context import Context, now_text, who
from deployer.flows.lock import Lease
from deployer.flows.runner import Run, background, finished


@dataclass(frozen=True)
class Released:
    colour: str
    release: str
    version: str
    previous: str  # the colour that was live before ('' on the first release)
    seconds: float


def release(
    ctx: Context,
    version: str,
    *,
    build: bool = False,
    backup: bool = True,
    pinned: artifacts.Pinned | None = None,
    watch: float | None = None,
) -> Released:
    """`pinned`: the exact image IDs to release (a promotion), and where to find them.
    `watch`: seconds to watch after the switch (None: [watch] window; 0: no watch)."""
    check_version(version)
    artifacts.check(ctx, version, build=build, pinned=pinned)  # exit 2 before anything changes
    if ctx.config.swarm:  # swarm mode (flows/swarm_release.py): a manager, placements the nodes can meet
        from deployer.flows import swarm_release

        swarm_release.preflight(ctx)  # exit 2 before anything changes
    config, edge, say = ctx.config, ctx.edge, ctx.say
    run = Run("release", say)
    lease: Lease | None = None
    clearing = None
    fields: dict = {"version": version}
    settled: dict[str, str] = {}
    if not config.swarm:
        compose_adapter.warm_up()  # its import overlaps the waits on the engine before `compose up`
    try:
        with run.step(Step.LOCK):
            edge.require()
            lease = Lease(ctx, f"release {version}")
            run.guard = lease.check  # every later step first checks that the lock is still ours
            state = lease.state
            watch_flow.guard(ctx, state)
            oneoffs.clear(ctx)  # a migration a killed release left running: never a second beside it
            agent_call.refuse_a_running_restore(ctx, Step.LOCK)  # nor a release under a killed restore
        live = state.live
        idle = names.other(live) if live else names.COLOURS[0]
        standby = state.record(idle)  # the idle colour's current release: the old standby
        fields.update(colour=idle, previous=live or None)
        say(f"live: {live or 'none'} · releasing {version} to {idle}")
        notify.send(ctx, "release_started", f"releasing {version} to {idle}", version=version, colour=idle)

        with run.step(Step.PREFLIGHT):
            # The env files, read once: the login checked, the migration and the release get
            # the same values, even if a file changes while the release runs.
            env = envfile.service_env(config)
            for warning in envfile.exposed(config, env):
                say(f"warning: {warning}")
            dbguard.preflight(ctx, env)

        with run.step(Step.IMAGES):
            fields.update(artifacts.ensure(ctx, version, build=build, pinned=pinned))
            if config.swarm:  # swarm mode: the nodes pull each image by digest
                fields["swarm_images"] = swarm_release.images(ctx, version, pinned=pinned)

        with run.step(Step.BACKUP):
            fields["backup"] = _backup(ctx, version, backup)

        release_id = names.new_release_id()
        fields["release"] = release_id
        with run.step(Step.MIGRATE):
            fields["migrated"] = migrate.run(ctx, version, release_id, idle, dump=fields["backup"], env=env) or None
        record = record_for(config, idle, release_id, version)
        with run.step(Step.START):
            # The pending record is written while compose starts (an exec off the path to the
            # app's start), always before the record names the release; the undo waits for it.
            pending = background(edge.write_pending, Pending(idle, release_id, version, standby), step=Step.START)
            run.on_failure(
                "remove the new release",
                lambda: (finished(pending), settled.update(outcome=settle(ctx, idle, release_id, standby))),
            )
            if config.swarm:  # swarm mode: the release is a stack (flows/swarm_release.py)
                swarm_release.start(ctx, idle, release_id, version, fields["swarm_images"], env)
            else:  # env: data, and secrets delivered as files
                compose_adapter.up(
                    ctx.engine,
                    names.release_project(config.name, idle, release_id),
                    compose.release(config, idle, release_id, version, deployment=config.deployment, env=env),
                    step=Step.START,
                    secrets=compose.release_secrets(config, env),
                )
            pending.result()  # its failure is the step's
            edge.write_record(idle, record, step=Step.START)
            keep = {(c, r.release) for c, r in state.records.items() if r} | {(idle, release_id)}
            if state.pending:
                keep.add((state.pending.colour, state.pending.release))
            clearing = clear_told(ctx, keep)  # during the health wait

        with run.step(Step.HEALTH):
            if config.swarm:
                healthy = checks.Healthy(swarm_release.wait_healthy(ctx, idle, release_id))
            else:  # its last exec runs the smoke probes too
                healthy = checks.wait_healthy(ctx, idle, release_id)
            fields["healthy_after"] = round(healthy.seconds, 2)
            say(f"{idle} healthy after {healthy.seconds:.1f}s")

        with run.step(Step.SMOKE):
            checks.smoke(ctx, idle, release_id, healthy.smoke)

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
            previous = state.record(live) if live else None
            armed = watch_flow.arm(
                ctx,
                colour=idle,
                release_id=release_id,
                version=version,
                previous=live,
                previous_version=previous.version if previous else "",
                standby=standby,
                window=watch,
            )
            try:
                edge.commit(
                    idle, checks.live_probes(ctx, idle, release_id), line, lease.token, config.timeouts.request_timeout
                )
            except BaseException:
                try:  # the release may have gone live all the same (a cancel after the swap)
                    went_live = edge.state(step=Step.UNDO).serves(idle, release_id)
                except Exception:
                    went_live = False
                if not went_live:
                    watch_flow.disarm(ctx, armed)
                raise
            lease.committed()
    except BaseException as exc:
        _failed(ctx, run, exc, fields, settled)
        cleared(clearing)  # no thread outlives the command
        raise
    finally:
        if lease is not None:
            lease.free()

    with run.step(Step.WATCH):  # raises after an automatic rollback (exit 1)
        watch_flow.after_switch(ctx, armed)
    with run.step(Step.RETIRE):
        # The old standby is told to stop, not waited for: its shutdown is the app's time,
        # not the release's (flows/cleanup.py; the next release removes it).
        among = cleared(clearing)  # the containers the last release told to stop are gone
        kept = {(idle, release_id)} | ({(live, previous.release)} if live and previous else set())
        retired = retire(ctx, wait=False, among=among, keep=kept)  # kept: what the switch left named
        if retired:
            say(f"retired {', '.join(retired)} (told to stop; removed by the next release)")
        prune.after_release(ctx)
    notify.send(ctx, "release_succeeded", f"released {version}: {idle} is live", version=version, colour=idle)
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
        if not isinstance(exc, EdgeError):  # when it is, the error says so already
            ctx.say("warning: the failure could not be recorded in the history")
    for problem in problems:
        ctx.say(f"warning: could not undo: {problem}")
    text = f"release of {fields.get('version')} {outcome} in step '{step}': {reason[:300]}"
    notify.send(ctx, "release_failed", text, version=fields.get("version"), step=str(step), outcome=outcome)
