"""`deployer down`: what it does under its lock on either runtime (`teardown`), before the
edge, the database and the networks go; and the whole of it on one host (`down`; a swarm's
is runtime/swarm_infra.py)."""

from __future__ import annotations

from deployer.adapters import compose as compose_adapter
from deployer.adapters import volumes as volumes_adapter
from deployer.core import names
from deployer.core.state import EdgeState
from deployer.core.steps import Step
from deployer.errors import BackupError
from deployer.flows import agent_call, backups, prune
from deployer.flows import volumes as ownership
from deployer.flows.context import Context
from deployer.flows.infra import check_owner, spec
from deployer.flows.lock import held
from deployer.flows.oneoffs import clear
from deployer.flows.runner import harness_pause


def teardown(ctx: Context, lease, *, final_dump: bool) -> None:
    """`down` under its lock, on one host and on a swarm alike, before the edge and the
    database go: refused (exit 1) while a restore a killed command left runs; the final
    verified dump; every release and one-off gone; the lease closed in the edge, so no
    command can take the lock before the edge itself is removed (flows/lock.py)."""
    agent_call.refuse_a_running_restore(ctx, Step.DOWN)
    if final_dump:
        dump = backups.take(ctx, label="final, before down", step=Step.DOWN)
        ctx.say(f"final dump before the database volume goes: {dump}")
    ctx.runtime.retire(EdgeState())  # an empty route state names no release: all go
    clear(ctx, stop_all=True)  # one-offs: a running migration is waited for, the rest stopped
    if lease is not None:
        lease.close(step=Step.DOWN)
    harness_pause(Step.DOWN, ctx.say)


NO_FINAL_DUMP = (
    "the database is not running, so no final dump can be taken before its volume goes; nothing was "
    "removed: `deployer up` starts it again with its data (then run this again), or add --no-backup "
    "to remove the volume without a dump"
)


def volume_doubts(ctx: Context) -> list[str]:
    """Before `down --volumes`: why a volume it would remove cannot be shown to be this
    deployment's (refused unless the project name is typed); empty when all can."""
    check_owner(ctx)
    return ownership.doubts(ctx, ownership.removed(ctx.config))


def down(ctx: Context, *, volumes: bool, backup: bool = True, typed: bool = False) -> None:
    """Remove every release and the infrastructure. With volumes=True also the database's and
    the edge's volumes, after a final verified dump (unless backup=False); the dumps stay.
    Volumes not shown to be this deployment's are refused (exit 2) unless `typed` (the
    project name was typed at the prompt).

    The lock is held until the infrastructure and the volumes are gone: closed in the edge
    before the edge goes (flows/lock.py), so no command can take it in between."""
    config, engine, say = ctx.config, ctx.engine, ctx.say
    external = config.database.external  # never touched: no container, no volume of ours
    removed = ownership.removed(config)
    check_owner(ctx)
    if volumes and not typed and (doubts := ownership.doubts(ctx, removed)):
        raise ownership.refusal(doubts)
    data, secrets = spec(ctx)
    db = None if external else engine.container(names.infra_container(config.name, "db"))
    if (
        volumes
        and backup
        and not external
        and not (db and db.running)
        and volumes_adapter.exists(engine, names.volume(config.name, "db-data"))
    ):
        raise BackupError(NO_FINAL_DUMP, step=Step.DOWN)
    with held(ctx, "down") as lease:
        teardown(ctx, lease, final_dump=bool(volumes and backup and db and db.running))
        compose_adapter.down(engine, names.infra_project(config.name), data, step=Step.DOWN, secrets=secrets)
        for name in (names.edge_network(config.name), names.data_network(config.name)) + (
            (names.backup_out_network(config.name),) if config.backup.offsite else ()
        ):
            if why := engine.remove_network(name):
                say(f"network {name} kept ({why}); `docker network rm {name}` once nothing uses it")
        if volumes:
            for what in removed:
                volumes_adapter.remove(engine, names.volume(config.name, what), step=Step.DOWN)
    if external:
        say(f"removed{', edge volume too' if volumes else ''}; the external database was not touched")
        left = names.volume(config.name, "db-data")
        if volumes_adapter.exists(engine, left):
            say(f"kept: volume {left}, the bundled database's from before url_file (`docker volume rm {left}`)")
    else:
        say("removed, database volume too" if volumes else "removed (database volume kept)")
    for line in prune.left_after_down(ctx, dumps=config.backup.dir or names.volume(config.name, "dumps")):
        say(line)
