"""Disk hygiene: `deployer prune`, and the end of every release (disk.prune_after_release).

For each service, the tags of its image are sorted newest first (by the image's creation
time) and the newest disk.keep_versions are kept. Never removed, whatever their age:
  - the version of either colour's route state (live and standby), of an unfinished
    release and of the release a watch would put back;
  - an image that any container on the engine uses, running or stopped.
Then the dangling layers of the project's own builds (untagged images labelled
deployer.project=<name>) go. Nothing is removed by force: the engine refuses on its own
to delete an image a container uses. Last, the edge forgets the metrics of the releases
that no colour holds any more (it does so on its own too, ten minutes after they went).

`disk_usage` is what `deployer status` shows: the images, the dumps, the database volume,
and the free space on the host's disk under each.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from deployer.adapters import disk
from deployer.core import names
from deployer.core.durations import bytes_text
from deployer.core.state import EdgeState
from deployer.core.steps import Step
from deployer.core.watch import Marker
from deployer.errors import DeployerError
from deployer.flows.context import Context
from deployer.flows.images import OWN


@dataclass
class Pruned:
    """What `prune` removed, kept and forgot."""

    removed: list[str] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)  # service -> versions kept
    problems: list[str] = field(default_factory=list)
    dangling: int = 0
    reclaimed: int = 0
    forgotten: list[str] = field(default_factory=list)  # releases whose edge metrics went

    def summary(self) -> str:
        gone = f"removed {len(self.removed)} old release image tag(s)" if self.removed else "no old release image"
        layers = f", {self.dangling} dangling layer(s) ({bytes_text(self.reclaimed)})" if self.dangling else ""
        metrics = (
            f"; forgot the edge's metrics of gone release(s) {', '.join(self.forgotten)}" if self.forgotten else ""
        )
        return gone + layers + metrics


def protected_versions(state: EdgeState | None) -> set[str]:
    """Versions the route state names (or could put back): never pruned."""
    if state is None:
        return set()
    found = {r.version for r in state.records.values() if r}
    if state.pending:
        found.add(state.pending.version)
        if state.pending.previous:
            found.add(state.pending.previous.version)
    marker = Marker.parse(state.watch)
    if marker:
        found |= {marker.version, marker.previous_version}
        if marker.standby:
            found.add(marker.standby.version)
    return found


def plan(
    tags: list[tuple[str, str, int]], keep: int, protected: set[str], used: set[str]
) -> tuple[list[str], list[str]]:
    """(versions to keep, tags to remove) of one repository, from (tag, image id, created)."""
    ordered = sorted(tags, key=lambda t: (t[2], t[0]), reverse=True)
    keeping, removing = [], []
    for i, (ref, image_id, _) in enumerate(ordered):
        version = ref.rsplit(":", 1)[1]
        if i < keep or version in protected or image_id in used:
            keeping.append(version)
        else:
            removing.append(ref)
    return keeping, removing


def prune(ctx: Context, *, dry_run: bool = False, keep: int | None = None, state: EdgeState | None = None) -> Pruned:
    config, engine = ctx.config, ctx.engine
    keep = config.disk.keep_versions if keep is None else keep
    if state is None:
        edge = engine.container(ctx.edge.container)
        state = ctx.edge.state(step=Step.PRUNE) if edge is not None and edge.running else None
    protected, used = protected_versions(state), disk.used_image_ids(engine)
    result = Pruned()
    for s in config.services.values():
        tags = [(t, i.id, i.created) for i in disk.images(engine, s.image) for t in i.tags]
        kept, doomed = plan(tags, keep, protected, used)
        result.kept[s.name] = kept
        for ref in doomed:
            problem = "" if dry_run else disk.remove_tag(engine, ref)
            if problem:
                result.problems.append(f"{ref}: {problem}")
            else:
                result.removed.append(ref)
    if not dry_run:
        result.dangling, result.reclaimed = disk.prune_dangling(engine, f"{names.LABEL_PROJECT}={config.name}")
    if not dry_run and state is not None:
        try:
            result.forgotten = ctx.edge.forget_metrics(step=Step.PRUNE)
        except DeployerError as exc:
            result.problems.append(f"the edge's metrics of gone releases: {exc}")
    return result


def left_after_down(ctx: Context, *, dumps: str) -> list[str]:
    """What `down` leaves on the engine, and how to remove it (the dumps: only by hand)."""
    config = ctx.config
    tags = sum(len(i.tags) for s in config.services.values() for i in disk.images(ctx.engine, s.image))
    removal = f"delete the folder {dumps}" if config.backup.dir else f"`docker volume rm {dumps}`"
    lines = [f"left: the dumps in {dumps} (`deployer backup fetch` copies them off this host first; {removal})"]
    if config.backup.pitr:
        repository = names.volume(config.name, "pgbackrest")
        lines.append(f"left: the pgBackRest repository in {repository} (`docker volume rm {repository}`)")
        lines.append(
            f"left: the data volumes kept by restores to a moment, {config.name}-db-before-* "
            "(`deployer backup restore --drop-old --yes` before `down`, or `docker volume rm`)"
        )
    if tags:
        lines.append(f"left: {tags} release image tag(s) of the services (`deployer prune --keep 0` removes them)")
    lines.append(
        f"left: the deployer's own images ({', '.join(OWN.values())}), shared by every deployment on this "
        "engine (`docker image rm` them once none is left)"
    )
    return lines


def after_release(ctx: Context) -> None:
    """The end of a release: prune under the lock, or not at all (never a failure)."""
    if not ctx.config.disk.prune_after_release:
        return
    from deployer.flows.lock import Lease

    try:
        lease = Lease(ctx, "prune after release")
    except DeployerError as exc:
        ctx.say(f"prune: skipped ({exc})")
        return
    try:
        pruned = prune(ctx, state=lease.state)
        if pruned.removed or pruned.dangling or pruned.forgotten:
            ctx.say(f"prune: {pruned.summary()}")
        for problem in pruned.problems:
            ctx.say(f"prune: kept {problem}")
    except DeployerError as exc:
        ctx.say(f"warning: prune failed ({exc}); the release is done")
    finally:
        lease.free()


def disk_usage(ctx: Context) -> dict[str, Any]:
    """For `deployer status`: bytes used by the images, the dumps and the database volume,
    the free space under them, and a warning under disk.min_free."""
    config, engine = ctx.config, ctx.engine
    db = names.infra_container(config.name, "db")
    backup = names.infra_container(config.name, "backup")

    def running(name: str) -> bool:
        c = engine.container(name)
        return bool(c and c.running)

    with ThreadPoolExecutor(max_workers=3) as pool:
        db_use = pool.submit(lambda: disk.usage(engine, db, "/var/lib/postgresql/data") if running(db) else None)
        dumps = pool.submit(lambda: disk.usage(engine, backup, "/backups") if running(backup) else None)
        found = pool.submit(lambda: {i.id: i for s in config.services.values() for i in disk.images(engine, s.image)})
        images, db_usage, dump_usage = found.result(), db_use.result(), dumps.result()
    out: dict[str, Any] = {
        "images": {"count": len(images), "bytes": sum(i.size for i in images.values())},
        "database": vars(db_usage) if db_usage else None,
        "dumps": vars(dump_usage) if dump_usage else None,
        "min_free": config.disk.min_free,
    }
    low = [
        f"{what}: {bytes_text(u.free)} free"
        for what, u in (("database volume", db_usage), ("dumps", dump_usage))
        if u and u.free is not None and u.free < config.disk.min_free
    ]
    out["warning"] = (
        f"low disk space ({'; '.join(low)}; disk.min_free = {bytes_text(config.disk.min_free)}): run `deployer prune`"
        if low
        else None
    )
    return out
