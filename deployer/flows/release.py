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

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from deployer.config import envfile
from deployer.core import history, names
from deployer.core.state import EdgeState, Pending, Record, record_for
from deployer.core.steps import Step
from deployer.core.versions import check_version
from deployer.core.watch import Marker
from deployer.errors import DeployerError, EdgeError
from deployer.flows import agent_call, artifacts, backups, checks, dbguard, migrate, notify, oneoffs, pitr, prune
from deployer.flows import watch as watch_flow
from deployer.flows.cleanup import cleared, settle
from deployer.flows.context import Context, now_text, who
from deployer.flows.lock import Lease
from deployer.flows.runner import Run, background, finished


@dataclass(frozen=True)
class Released:
    """A release that went live."""

    colour: str
    release: str
    version: str
    previous: str  # the colour that was live before ('' on the first release)
    seconds: float


@dataclass
class Attempt:
    """A release under way: what its steps found and made, read by the later steps, the undo
    and the history line."""

    version: str
    lease: Lease | None = None
    state: EdgeState = field(default_factory=EdgeState)  # the route state read with the lock
    live: str = ""  # the live colour before ('' on the first release)
    colour: str = ""  # the idle colour, released to
    standby: Record | None = None  # the idle colour's release before: the old standby
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # the env files, read once
    artifacts: dict[str, Any] = field(default_factory=dict)  # the image IDs (and digests) it runs
    pins: dict[str, str] = field(default_factory=dict)  # the runtime's references (a swarm's digests)
    backup: str = ""
    restore_point: str = ""  # with [backup] pitr: where the release began, in the WAL
    release: str = ""  # its id, from the migrate step on
    migrated: list[str] = field(default_factory=list)  # the services whose migration ran
    healthy_after: float | None = None
    clearing: Future | None = None  # the removal of what earlier releases told to stop
    armed: Marker | None = None  # the watch's marker
    live_after_all: bool = False  # the undo found it live: the switch recorded it

    @property
    def previous(self) -> Record | None:
        return self.state.record(self.live) if self.live else None

    def fields(self) -> dict[str, Any]:
        """The history line's fields (history.entry drops the ones that are None)."""
        return {
            "version": self.version,
            "colour": self.colour or None,
            "previous": self.live or None,
            **self.artifacts,
            "swarm_images": self.pins or None,
            "backup": self.backup or None,
            "restore_point": self.restore_point or None,
            "release": self.release or None,
            "migrated": self.migrated or None,
            "healthy_after": self.healthy_after,
        }


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
    ctx.runtime.prepare()  # exit 2 before anything changes (on a swarm: a manager, placements the nodes can meet)
    run, a, say = Run("release", ctx.say), Attempt(version), ctx.say
    try:
        with run.step(Step.LOCK):
            _lock(ctx, run, a)
        _announce(ctx, a)
        with run.step(Step.PREFLIGHT):
            a.env = _preflight(ctx)
        with run.step(Step.IMAGES):
            a.artifacts = artifacts.ensure(ctx, version, build=build, pinned=pinned)
            a.pins = ctx.runtime.pin(version, pinned)  # on a swarm, the digest each node pulls
        with run.step(Step.BACKUP):
            a.backup = _backup(ctx, version, backup)
            if ctx.config.backup.pitr:  # instant: `backup restore --to-time` reaches the moment before it
                a.restore_point = pitr.restore_point(ctx, f"pre-release-{version}")
                ctx.say(f"backup: restore point {a.restore_point} made")
        a.release = names.new_release_id()
        with run.step(Step.MIGRATE):
            a.migrated = migrate.run(ctx, version, a.release, a.colour, dump=a.backup, env=a.env)
        with run.step(Step.START):
            # The pending mark is written while the release starts (an exec off the path to the
            # app's start), always before the record names the release; the undo waits for it.
            mark = Pending(a.colour, a.release, version, a.standby)
            pending = background(ctx.edge.write_pending, mark, step=Step.START)
            run.on_failure("remove the new release", lambda: _remove(ctx, a, pending))
            _start(ctx, a, pending)
        with run.step(Step.HEALTH):
            healthy = ctx.runtime.wait_healthy(a.colour, a.release)  # on one host, its last exec ran the smoke probes
            a.healthy_after = round(healthy.seconds, 2)
            say(f"{a.colour} healthy after {healthy.seconds:.1f}s")
        with run.step(Step.SMOKE):
            checks.smoke(ctx, a.colour, a.release, healthy.smoke)
        with run.step(Step.SWITCH):
            line = history.entry("release", when=now_text(), by=who(), outcome=history.OK, seconds=run.seconds(),
                                 steps=dict(run.steps), **a.fields())  # fmt: skip
            a.armed = _arm(ctx, a, watch)
            run.on_failure("remove the watch's marker", lambda: _disarm(ctx, a))
            _commit(ctx, a, line)
    except BaseException as exc:
        _failed(ctx, run, exc, a)
        cleared(a.clearing)  # no thread outlives the command
        raise
    finally:
        if a.lease is not None:
            a.lease.free()
    with run.step(Step.WATCH):  # raises after an automatic rollback (exit 1)
        watch_flow.after_switch(ctx, a.armed)
    with run.step(Step.RETIRE):
        _retire(ctx, a)
    notify.send(ctx, "release_succeeded", f"released {version}: {a.colour} is live", version=version, colour=a.colour)
    warm = f", {a.live} is the warm standby" if a.live else ""
    say(f"released {version}: {a.colour} is live{warm} ({run.seconds():.1f}s)")
    return Released(a.colour, a.release, version, a.live, run.seconds())


def _lock(ctx: Context, run: Run, a: Attempt) -> None:
    """Take the lock and read the route state; refuse under a running watch or restore."""
    ctx.edge.require()
    a.lease = Lease(ctx, f"release {a.version}")
    run.guard = a.lease.check  # every later step first checks that the lock is still ours
    a.state = a.lease.state
    watch_flow.guard(ctx, a.state)
    oneoffs.clear(ctx)  # a migration a killed release left running: never a second beside it
    agent_call.refuse_a_running_restore(ctx, Step.LOCK)  # nor a release under a killed restore
    a.live = a.state.live
    a.colour = names.other(a.live) if a.live else names.COLOURS[0]
    a.standby = a.state.record(a.colour)  # the idle colour's current release: the old standby


def _announce(ctx: Context, a: Attempt) -> None:
    ctx.say(f"live: {a.live or 'none'} · releasing {a.version} to {a.colour}")
    notify.send(ctx, "release_started", f"releasing {a.version} to {a.colour}", version=a.version, colour=a.colour)


def _preflight(ctx: Context) -> dict[str, dict[str, str]]:
    """The env files, read once: the login checked, the migration and the release get the
    same values, even if a file changes while the release runs."""
    env = envfile.service_env(ctx.config)
    for warning in envfile.exposed(ctx.config, env):
        ctx.say(f"warning: {warning}")
    dbguard.preflight(ctx, env)
    return env


def _backup(ctx: Context, version: str, wanted: bool) -> str:
    if not wanted or not ctx.config.backup.before_release:
        ctx.say("backup: skipped (--no-backup)" if not wanted else "backup: skipped (backup.before_release = false)")
        return "skipped"
    name = backups.take(ctx, label=f"pre-release {version}", step=Step.BACKUP)
    ctx.say(f"backup: {name} written and verified")
    return name


def _start(ctx: Context, a: Attempt, pending: Future) -> None:
    """The release starts beside the old standby; then the idle colour's record names it."""
    ctx.runtime.start(a.colour, a.release, a.version, a.env, a.pins)
    pending.result()  # its failure is the step's
    ctx.edge.write_record(a.colour, record_for(ctx.config, a.colour, a.release, a.version), step=Step.START)
    keep = {(c, r.release) for c, r in a.state.records.items() if r} | {(a.colour, a.release)}
    if a.state.pending:
        keep.add((a.state.pending.colour, a.state.pending.release))
    a.clearing = ctx.runtime.clear_told(keep)  # during the health wait


def _remove(ctx: Context, a: Attempt, pending: Future) -> None:
    """The undo of `start`: the old standby's record back and the release removed, unless it
    went live after all (a cancel after the switch's swap; core/undo.py)."""
    finished(pending)
    a.live_after_all = settle(ctx, a.colour, a.release, a.standby) == "live"


def _arm(ctx: Context, a: Attempt, window: float | None) -> Marker | None:
    """The watch's marker, written while the lock is ours (the switch frees it)."""
    previous = a.previous
    return watch_flow.arm(
        ctx,
        colour=a.colour,
        release_id=a.release,
        version=a.version,
        previous=a.live,
        previous_version=previous.version if previous else "",
        standby=a.standby,
        window=window,
    )


def _commit(ctx: Context, a: Attempt, line: str) -> None:
    """One exec: while our lock token holds, make it live, verify through the live route
    (the old live colour comes back on failure), record `line`, free the lock."""
    assert a.lease is not None
    probes = checks.live_probes(ctx, a.colour, a.release)
    ctx.edge.commit(a.colour, probes, line, a.lease.token, ctx.config.timeouts.request_timeout)
    a.lease.committed()


def _disarm(ctx: Context, a: Attempt) -> None:
    """The undo of `switch`: the watch's marker goes, unless the release went live all the
    same (a cancel after the swap)."""
    if a.armed is None:
        return
    try:
        went_live = ctx.edge.state(step=Step.UNDO).serves(a.colour, a.release)
    except Exception:
        went_live = False
    if not went_live:
        watch_flow.disarm(ctx, a.armed)


def _retire(ctx: Context, a: Attempt) -> None:
    """The old standby is told to stop, not waited for: its shutdown is the app's time, not
    the release's (flows/cleanup.py; the next release removes it). Then old images go."""
    among = cleared(a.clearing)  # the containers the last release told to stop are gone
    previous = a.previous
    kept = {(a.colour, a.release)} | ({(a.live, previous.release)} if previous else set())
    retired = ctx.runtime.retire(wait=False, among=among, keep=kept)  # kept: what the switch left named
    if retired:
        ctx.say(f"retired {', '.join(retired)} (told to stop; removed by the next release)")
    prune.after_release(ctx)


def _failed(ctx: Context, run: Run, exc: BaseException, a: Attempt) -> None:
    """Undo, attach the failing containers' logs, and record the failure in the history
    (unless the release had become live after all: the switch recorded it)."""
    failed_early = run.current in (Step.START, Step.HEALTH, Step.SMOKE) and a.release
    if isinstance(exc, DeployerError) and not exc.logs and failed_early:
        exc.logs = ctx.runtime.logs(a.colour, a.release)
    problems = run.undo()
    if a.live_after_all:
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
        **a.fields(),
    )
    try:
        ctx.edge.append_history(line, step=Step.HISTORY)
    except BaseException:  # the edge itself may be what failed
        if not isinstance(exc, EdgeError):  # when it is, the error says so already
            ctx.say("warning: the failure could not be recorded in the history")
    for problem in problems:
        ctx.say(f"warning: could not undo: {problem}")
    text = f"release of {a.version} {outcome} in step '{step}': {reason[:300]}"
    notify.send(ctx, "release_failed", text, version=a.version, step=str(step), outcome=outcome)
