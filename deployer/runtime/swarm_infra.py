"""`deployer up` and `deployer down` on a swarm (engine.mode = "swarm"; the swarm runtime
calls these). The same parts as on one host, placed on the cluster (docs/scale-out.md):

    overlays   <name>-edge (attachable) and <name>-data (internal)
    <name>-db      the database, pinned with its volume to the node db_constraints matches
                   (default: the manager), and the backup agent with the dumps, on the manager
    <name>-infra   control: the edge every script runs in (route state, lock, history), on
                   the manager engine.host names; edge: the public replicas, one per node,
                   ports in host mode, whose route state follows control's (lua/deployer/sync.lua)

Before anything changes: the engine must be a swarm manager, and every placement must be
satisfiable by the cluster's ready nodes (exit 2 otherwise). The deployer's own images are
built (or found) on the manager and pushed to [registry], because the nodes pull
(swarm_images.py).
"""

from __future__ import annotations

import secrets as random

from deployer.adapters import node_task
from deployer.adapters import volumes as volumes_adapter
from deployer.adapters.swarm import Swarm
from deployer.config import envfile
from deployer.core import agentconfig, names
from deployer.core import stack as stack_rule
from deployer.core.steps import Step
from deployer.errors import BackupError, EngineError
from deployer.flows import images, infra
from deployer.flows import teardown as down_flow
from deployer.flows import tls as flows_tls
from deployer.flows import volumes as ownership
from deployer.flows.context import Context
from deployer.flows.lock import held
from deployer.flows.oneoffs import clear
from deployer.flows.teardown import teardown
from deployer.runtime import swarm_dbguard
from deployer.runtime.swarm_images import OwnImages
from deployer.runtime.swarm_release import preflight, registry_auth, release_stacks, wait_tasks

SYNC_HEADER = "X-Deployer-Sync-Token"


def _sync_token(cluster: Swarm, project: str) -> str:
    """The token the control and the edge replicas share: made once, kept while it is in use."""
    found = cluster.api.secrets(filters={"label": [f"{names.LABEL_PROJECT}={project}", "deployer.secret=sync"]})
    if found:
        return found[0]["Spec"]["Name"]
    return cluster.ensure_secret(project, "sync", f"{SYNC_HEADER}: {random.token_hex(24)}\n", step=Step.UP)


def up(ctx: Context, *, recreate_db: bool = False, refresh: bool = False) -> None:
    config, engine, say = ctx.config, ctx.engine, ctx.say
    manager = preflight(ctx)
    flows_tls.refuse_out_of_date(ctx)
    rendered = infra.render_site(ctx)
    infra.check_owner(ctx)
    cluster, project = Swarm(engine), config.name
    with held(ctx, "up"):
        clear(ctx, wait_for=())  # one-offs that killed commands left and that ended
        labels = {names.LABEL_PROJECT: project}
        cluster.ensure_overlay(names.edge_network(project), internal=False, labels=labels, step=Step.UP)
        cluster.ensure_overlay(names.data_network(project), internal=True, labels=labels, step=Step.UP)
        without = ", without the cache" if refresh else ""
        say(f"images: edge, database and backup agent, from {engine.where} to {config.registry.url}{without}")  # type: ignore[union-attr]
        if refresh:
            images.pull_base(engine, config.base_image, say, step=Step.UP)
        own = OwnImages(ctx, refresh=refresh)  # each pushed while the next builds
        infra.check_site(ctx, rendered, own.build("edge", push=False))
        own.push("edge")
        if not config.database.image:
            own.build("db")
        own.build("agent")
        refs = own.refs()
        edge_image, backup_image = refs["edge"], refs["agent"]
        db_image = config.database.image or refs["db"]
        data, values = infra.spec(ctx, edge_image=edge_image, db_image=db_image, backup_image=backup_image)
        db_env = envfile.read(config.database.env_file, where=config.path, key="database.env_file").values
        agent = agentconfig.for_config(config, db_env.get("POSTGRES_USER", "postgres")).render()
        secrets = {
            "db_password": cluster.ensure_secret(project, "db-password", values[infra.SECRET_DB_PASSWORD], step=Step.UP)
        }
        if values[infra.SECRET_WEBHOOK]:
            secrets["webhook"] = cluster.ensure_secret(project, "webhook", values[infra.SECRET_WEBHOOK], step=Step.UP)
        agent_config = cluster.ensure_config(project, "agent", agent, step=Step.UP)
        db = stack_rule.database(config, data, manager_id=manager, secrets=secrets, configs={"agent": agent_config})
        db = swarm_dbguard.settle(ctx, cluster, db, recreate=recreate_db)  # exit 2 before a restart nobody asked for
        cluster.deploy(stack_rule.db_stack(project), db, step=Step.UP)
        configs = {
            what: cluster.ensure_config(project, what, content, step=Step.UP)
            for what, content in (
                ("site", rendered),
                ("sync-control", stack_rule.sync_conf(project, "control")),
                ("sync-replica", stack_rule.sync_conf(project, "replica")),
            )
        }
        edge_secrets = {"sync": _sync_token(cluster, project)}
        if config.edge.tls:  # every public replica reads it at start: a new one rolls them
            edge_secrets["tls"] = cluster.ensure_secret(
                project, "tls", flows_tls.pem(ctx).decode("ascii"), step=Step.UP
            )
        edge = stack_rule.infra(
            config, edge_image=edge_image, manager_id=manager, configs=configs, secrets=edge_secrets
        )
        cluster.deploy(stack_rule.infra_stack(project), edge, step=Step.UP)
        if "tls" in edge_secrets:
            say(f"edge: certificate in the swarm secret {edge_secrets['tls']}, read by each edge replica as it starts")
        infra_stack, db_stack = stack_rule.infra_stack(project), stack_rule.db_stack(project)
        replicas = {
            stack_rule.service_name(infra_stack, "control"): 1,
            stack_rule.service_name(infra_stack, "edge"): config.swarm.edge_replicas,  # type: ignore[union-attr]
            stack_rule.service_name(db_stack, "db"): 1,
            stack_rule.service_name(db_stack, "backup"): 1,
        }
        wait_tasks(ctx, replicas, deadline=180, step=Step.UP)
        ctx.edge.refresh()  # type: ignore[attr-defined]
        ctx.edge.require()
        ctx.edge.mark_deployment(step=Step.UP)
        if ctx.edge.apply_site(rendered, step=Step.UP):
            say("edge: site config applied to control and reloaded")
        cluster.prune_objects(project, keep=set())  # configs and secrets no service uses any more
    nodes = {n.id: n.hostname for n in cluster.nodes()}
    where = sorted(
        nodes.get(t["NodeID"], t["NodeID"]) for t in cluster.tasks(stack_rule.service_name(infra_stack, "edge"))
        if t.get("DesiredState") == "running"
    )  # fmt: skip
    say(f"edge: live port {config.edge.public_port} on {', '.join(where)} (host mode); control on {engine.where}")


def _db_node(ctx: Context, cluster: Swarm) -> tuple[str, str]:
    """(the id of the node that holds the database's volume, the edge image a task there can
    run): the node its task runs on, else the one db_constraints names; ("", "") unknown."""
    project = ctx.config.name
    db_tasks = cluster.tasks(stack_rule.service_name(stack_rule.db_stack(project), "db"))
    node = next((t["NodeID"] for t in db_tasks if t.get("DesiredState") == "running" and t.get("NodeID")), "")
    manager = cluster.manager_id()
    if not node:
        found = stack_rule.matching(cluster.nodes(), stack_rule.db_constraints(ctx.config, manager))
        node = found[0].id if len(found) == 1 else ""
    control = cluster.service(stack_rule.service_name(stack_rule.infra_stack(project), "control")) or {}
    image = (((control.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
    if node and node != manager and not image:
        raise EngineError(
            f"the database volume is on another node than {ctx.engine.where}, and removing it there needs the "
            "edge's image, which no control service names: run `deployer up`, then `deployer down --volumes`",
            step=Step.DOWN,
        )
    return node, image


def volume_doubts(ctx: Context) -> list[str]:
    """Before `down --volumes` removes anything: the volumes that cannot be shown to be this
    deployment's, on the manager and, when the database runs on a worker, its volume there
    (read by a one-shot task on that node, which changes nothing)."""
    cluster = Swarm(ctx.engine)
    manager = cluster.manager_id()
    infra.check_owner(ctx)
    found = ownership.doubts(ctx)
    node, tool = _db_node(ctx, cluster)
    if node and node != manager:
        data = names.volume(ctx.config.name, "db-data")
        owner = (ctx.config.name, ctx.config.deployment)
        ours = node_task.check_volume(
            cluster, node, data, image=tool, auth=registry_auth(ctx), step=Step.DOWN, owner=owner
        )
        if ours is False:
            host = {n.id: n.hostname for n in cluster.nodes()}.get(node, node)
            found.append(f"volume {data} on node {host} carries no label of this deployment")
    return found


def down(
    ctx: Context, *, volumes: bool, backup: bool = True, typed: bool = False, doubts: list[str] | None = None
) -> None:
    """Remove every release, the edge and the database (its volume only with volumes=True,
    after a final verified dump unless backup=False); the dumps stay. As on one host, the
    lock is held until everything is gone, and volumes not shown to be ours need `typed`.
    `doubts`: volume_doubts's answer when the command asked for it already (for its prompt)."""
    config, engine, say = ctx.config, ctx.engine, ctx.say
    Swarm(engine).manager_id()
    infra.check_owner(ctx)
    if volumes and not typed and (doubts := volume_doubts(ctx) if doubts is None else doubts):
        raise ownership.refusal(doubts)
    cluster, project = Swarm(engine), config.name
    with held(ctx, "down") as lease:
        db = cluster.local_container(stack_rule.service_name(stack_rule.db_stack(project), "backup"))
        db_node, tool = _db_node(ctx, cluster) if volumes else ("", "")
        if volumes and backup and not db:
            raise BackupError(down_flow.NO_FINAL_DUMP, step=Step.DOWN)
        teardown(ctx, lease, final_dump=volumes and backup)
        stacks = [stack_rule.infra_stack(project), stack_rule.db_stack(project)]
        for stack in stacks:
            cluster.remove_stack(stack)
        cluster.wait_gone(stacks + [s for s, *_ in release_stacks(ctx)], limit=90)
        for name in (names.edge_network(project), names.data_network(project)):
            cluster.remove_network(name)
        cluster.prune_objects(project, keep=set())
        if volumes:
            _remove_volumes(ctx, cluster, db_node, tool, typed=typed)
    if not volumes:
        say("removed (database volume kept)")


def _remove_volumes(ctx: Context, cluster: Swarm, db_node: str, tool: str, *, typed: bool) -> None:
    config, engine, project = ctx.config, ctx.engine, ctx.config.name
    volumes_adapter.remove(engine, names.volume(project, "edge-state"), step=Step.DOWN)
    data, manager = names.volume(project, "db-data"), cluster.manager_id()
    if not db_node and config.swarm.db_constraints:  # type: ignore[union-attr]
        raise EngineError(
            f"everything else was removed, but not the database volume {data}: its node is unknown (no database "
            f"task, and swarm.db_constraints match no single ready node); remove it there: docker volume rm {data}",
            step=Step.DOWN,
        )
    if db_node in ("", manager):
        volumes_adapter.remove(engine, data, step=Step.DOWN)
        where = engine.where
    else:  # the database's node is a worker: a one-shot task there removes it
        host = {n.id: n.hostname for n in cluster.nodes()}.get(db_node, db_node)
        owner = None if typed else (project, config.deployment)
        removed = node_task.remove_volume(
            cluster, db_node, data, image=tool, auth=registry_auth(ctx), step=Step.DOWN, owner=owner
        )
        if not removed:
            ctx.say(f"the database volume {data} was not on {host}")
        where = f"node {host}"
    ctx.say(f"removed, database volume too (on {where}); the dumps are kept (on {engine.where})")
