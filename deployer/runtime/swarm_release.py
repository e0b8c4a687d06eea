"""The steps of a release that differ on a swarm (engine.mode = "swarm"); flows/release.py
reaches them through the swarm runtime (runtime/swarm.py), and keeps every other step.

    images   each service's image is pinned by a registry digest of the image the release
             records (a promotion's recorded digest, one the manager's image was pulled or
             pushed by, or the manager pushes it): never by what the tag names now
    start    the release is a stack <name>-<colour>-<id>: `replicas` tasks per service
    health   every task runs (the Engine API), each task's own address answers its health
             path, and the edge's health route answers for this release
    retire   the stacks the route state no longer names are removed
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from deployer.adapters import images as moving
from deployer.adapters.polling import until
from deployer.adapters.swarm import Swarm
from deployer.config import envfile
from deployer.core import digests, names, references
from deployer.core import probe as probe_rule
from deployer.core import stack as stack_rule
from deployer.core.state import EdgeState
from deployer.core.steps import Step
from deployer.errors import EngineError, HealthError
from deployer.flows.artifacts import Pinned
from deployer.flows.context import Context

BAD_TASK = ("failed", "rejected")


def preflight(ctx: Context) -> str:
    """The manager's node id, once the engine is a swarm manager and the cluster's ready nodes
    can meet every placement (else exit 2, nothing changed)."""
    cluster = Swarm(ctx.engine)
    manager = cluster.manager_id()
    stack_rule.check_placement(ctx.config, cluster.nodes(), manager)
    return manager


def registry_auth(ctx: Context) -> dict[str, str] | None:
    """The registry's login from registry.env_file; None: the CLI's Docker login, or none."""
    registry = ctx.config.registry
    if registry is None or registry.env_file is None:
        return None
    values = envfile.read(registry.env_file, where=ctx.config.path, key="registry.env_file").values
    return {
        "username": values["REGISTRY_USERNAME"],
        "password": values["REGISTRY_PASSWORD"],
        "serveraddress": registry.host,
    }


def images(ctx: Context, version: str, *, pinned: Pinned | None = None) -> dict[str, str]:
    """Each service's image as the nodes pull it: pinned by a registry digest of the very image
    artifacts.ensure left on the manager, whose ID the history records, never by what the tag
    names now (core/digests.py). `pinned`: a promotion's, whose recorded digests come first."""
    registry, cluster, auth = ctx.config.registry, Swarm(ctx.engine), registry_auth(ctx)
    assert registry is not None
    found = {}
    for s in ctx.config.services.values():
        repository, ref = registry.repository(s.image), s.image_ref(version)
        info = moving.image(ctx.engine, ref) or {}
        image_id, want = info.get("Id", ""), pinned.ids[s.name] if pinned else ""
        if not image_id or (want and image_id != want):
            raise EngineError(
                f"{ref} on {ctx.engine.where} is {image_id[:19] or 'missing'}, not the {want[:19] or 'image'} this "
                "release records: nothing was deployed",
                step=Step.IMAGES,
            )
        first = pinned.digests.get(s.name, "") if pinned else ""
        digest = digests.choose(
            repository, info.get("RepoDigests") or [], lambda d: cluster.digest(d, auth) == d.partition("@")[2], first
        )
        if not digest:
            ctx.say(f"images: pushing {ref} ({image_id[7:19]}) to {repository}: the registry has no digest of it")
            digest = moving.push(ctx.engine, image_id, repository, version, auth, step=Step.IMAGES)
        found[s.name] = digests.pinned(digest, version)
    return found


def start(
    ctx: Context, colour: str, release_id: str, version: str, pinned: dict[str, str], env: dict[str, dict[str, str]]
) -> None:
    """`env`: the services' env files as the release read them. The stack is deployed
    --with-registry-auth (the login of the CLI's Docker config for each image's registry),
    so every image must be a digest in the configured registry's repository of its service."""
    config, cluster = ctx.config, Swarm(ctx.engine)
    assert config.registry is not None
    for service, image in pinned.items():
        repository = config.registry.repository(config.services[service].image)
        if references.problem(digests.unpinned(image), repository):
            raise EngineError(
                f"{service}'s image {image} is not in {repository}: nothing was deployed", step=Step.START
            )
    secrets = {
        key: cluster.ensure_secret(config.name, key.replace("__", "-").lower(), value, step=Step.START)
        for key, value in stack_rule.secret_values(config, env).items()
    }
    data = stack_rule.release(config, colour, release_id, version, images=pinned, env=env, secrets=secrets)
    cluster.deploy(names.release_project(config.name, colour, release_id), data, step=Step.START)


# -- waiting on tasks -----------------------------------------------------------------------


SPEC_KEYS = ("Image", "Env", "Args", "Command", "Configs", "Secrets", "Labels")


def _current(task: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether a task runs the service's current spec (not one an update is replacing)."""
    have = (task.get("Spec") or {}).get("ContainerSpec") or {}
    return all((have.get(k) or None) == (spec.get(k) or None) for k in SPEC_KEYS)


def task_state(cluster: Swarm, service: str, replicas: int) -> tuple[list[dict[str, Any]], str, str]:
    """(running tasks, why it cannot get there by waiting, what it waits for)."""
    found = cluster.service(service)
    if found is None:
        return [], "", f"{service}: not created yet"
    update = found.get("UpdateStatus") or {}
    if update.get("State") in ("paused", "rollback_completed", "rollback_paused"):
        return [], f"the update of {service} failed ({update.get('State')}): {update.get('Message', '')}", ""
    spec = found["Spec"]["TaskTemplate"].get("ContainerSpec") or {}
    tasks = [t for t in cluster.tasks(service) if _current(t, spec)]
    for t in tasks:
        status = t.get("Status") or {}
        if status.get("State") in BAD_TASK:
            exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
            why = status.get("Err") or status.get("Message") or status.get("State")
            return (
                [],
                f"a task of {service} {status.get('State')}: {why}"
                + (f" (exit code {exit_code})" if exit_code else ""),
                "",
            )
    wanted = [t for t in tasks if t.get("DesiredState") == "running"]
    running = [t for t in wanted if (t.get("Status") or {}).get("State") == "running"]
    updating = update.get("State") in ("updating", "rollback_started")
    if len(running) >= replicas and len(wanted) == len(running) and not updating:
        return running, "", ""
    waiting = [(t.get("Status") or {}) for t in wanted if (t.get("Status") or {}).get("State") != "running"]
    detail = "; ".join(sorted({f"{w.get('State')}{': ' + w['Err'] if w.get('Err') else ''}" for w in waiting}))
    detail += ("; " if detail else "") + ("updating" if updating else "")
    return (
        [],
        "",
        f"{service}: {len(running)} of {replicas} tasks running" + (f" ({detail.strip('; ')})" if detail else ""),
    )


def wait_tasks(ctx: Context, services: dict[str, int], *, deadline: float, step: str) -> dict[str, list]:
    """Until every service has its replicas running; HealthError at once when a task failed,
    and at the deadline. Returns each service's running tasks."""
    cluster = Swarm(ctx.engine)
    found: dict[str, list] = {}
    waiting: list[str] = []

    def running() -> bool:
        found.clear()
        waiting.clear()
        for service, replicas in services.items():
            tasks, fatal, wait = task_state(cluster, service, replicas)
            if fatal:
                raise HealthError(f"{fatal}", step=step, logs=cluster.logs(service))
            if wait:
                waiting.append(wait)
            found[service] = tasks
        return not waiting

    # Swarm schedules, pulls and starts each task on its own; the manager's task list is read again.
    if until(running, seconds=deadline, every=0.3):
        return found
    raise HealthError(f"not running after {deadline:g}s: {'; '.join(waiting)}", step=step)


def addresses(task: dict[str, Any], network: str) -> list[str]:
    return [
        str(ipaddress.ip_interface(addr).ip)
        for att in task.get("NetworksAttachments") or []
        if att["Network"]["Spec"]["Name"] == network
        for addr in att.get("Addresses") or []
    ]


def wait_healthy(ctx: Context, colour: str, release_id: str) -> float:
    """Every replica of every service runs and answers its health path, and the edge's
    health route answers for this release. Returns the seconds waited."""
    config = ctx.config
    t = config.timeouts
    started = time.monotonic()
    stack = names.release_project(config.name, colour, release_id)
    by_name = {stack_rule.service_name(stack, s.name): s for s in config.services.values()}
    tasks = wait_tasks(
        ctx, {name: s.replicas for name, s in by_name.items()}, deadline=t.health_deadline, step=Step.HEALTH
    )
    network = names.edge_network(config.name)
    targets = [
        (s.name, ip, s.port, s.health) for name, s in by_name.items() for task in tasks[name] for ip in addresses(task, network)
    ]  # fmt: skip
    probes = [
        probe_rule.Probe(probe_rule.health_url(colour, s, release_id), colour, release_id) for s in config.services
    ]
    last: list[str] = []

    def healthy() -> bool:
        left = t.health_deadline - (time.monotonic() - started)
        out = ctx.edge.run(stack_rule.replica_probe_script(targets, t.request_timeout), step=Step.HEALTH).stdout
        last[:] = stack_rule.replica_failures(targets, out)
        if not last:
            last[:] = ctx.edge.poll(probes, t.request_timeout, budget=max(0.05, min(1.0, left)),
                                    interval=t.health_interval, step=Step.HEALTH)  # fmt: skip
        return not last

    # Every replica is asked in turn: a task's health check reaches the manager late, and says
    # nothing of the edge's route to it.
    left = t.health_deadline - (time.monotonic() - started)
    if until(healthy, seconds=left, every=min(t.health_interval, 0.5)):
        return time.monotonic() - started
    from deployer.flows.checks import explained

    said = "; ".join(explained(ctx, last, colour, release_id))
    raise HealthError(f"{colour} was not healthy after {t.health_deadline:g}s: {said}", step=Step.HEALTH)


# -- removing releases ----------------------------------------------------------------------


def release_stacks(ctx: Context) -> list[tuple[str, str, str, str]]:
    """(stack, colour, release id, version) of every release stack of this deployment."""
    found = []
    for stack, services in Swarm(ctx.engine).stacks(ctx.config.name).items():
        labels = services[0]["Spec"].get("Labels") or {}
        if labels.get(names.LABEL_ROLE) != "app" or labels.get(names.LABEL_DEPLOYMENT, "") != ctx.config.deployment:
            continue
        found.append((stack, labels.get(names.LABEL_COLOUR, ""), labels.get(names.LABEL_RELEASE, ""),
                      labels.get(names.LABEL_VERSION, "")))  # fmt: skip
    return found


def _remove(ctx: Context, stacks: list[str], *, prune: bool = True) -> None:
    if not stacks:
        return
    cluster = Swarm(ctx.engine)
    for stack in stacks:
        cluster.remove_stack(stack)
    grace = max((s.stop_grace for s in ctx.config.services.values()), default=10)
    cluster.wait_gone(stacks, limit=grace + 15)
    if prune:
        cluster.prune_objects(ctx.config.name, keep=set())  # secrets no release uses any more


def retire(ctx: Context, state: EdgeState | None = None) -> list[str]:
    """Remove every release stack the route state no longer names (see cleanup.retire)."""
    state = state or ctx.edge.state(step=Step.RETIRE)
    keep = {(c, r.release) for c, r in state.records.items() if r}
    if state.pending:  # a release that started since (the lock was freed at the switch)
        keep.add((state.pending.colour, state.pending.release))
    doomed = [item for item in release_stacks(ctx) if (item[1], item[2]) not in keep]
    # while a release is under way, the secrets it has just made are not yet in a stack
    _remove(ctx, [stack for stack, *_ in doomed], prune=not state.pending)
    return sorted(f"{colour}-{release} ({version})" for _, colour, release, version in doomed)


def remove(ctx: Context, colour: str, release_id: str) -> None:
    """Remove one release's stack (the undo of a release that did not complete)."""
    _remove(ctx, [names.release_project(ctx.config.name, colour, release_id)])
