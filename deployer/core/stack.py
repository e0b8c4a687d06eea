"""Swarm stacks as data, and where a swarm may place them (docs/scale-out.md).

Pure, like core/compose.py, whose builders these reuse: a release's services, the database
and the backup agent are the same services, given replicas, placement (the database and the
agent each pinned to one node) and DNS round-robin endpoints, for `docker stack deploy`.

    <name>-infra          control (1 replica, on the manager engine.host names, with the
                          edge volume: every edge script runs there) and edge (N public
                          replicas, ports published in host mode, one per node)
    <name>-db             db, pinned with its volume to the one node [swarm] db_constraints
                          matches (default: the manager), and backup, the agent with the
                          dumps volume, always on the manager: the deployer execs into it
                          through the manager's engine, and it reaches the database over
                          the data overlay (host `db`), wherever that runs
    <name>-<colour>-<id>  one release: every [services.*], `replicas` tasks each

Every service uses `endpoint_mode: dnsrr`: its name (and each release service's alias,
<service>-<colour>-<id>) resolves to its tasks' addresses, which the edge balances over
itself. A virtual IP and the ingress mesh need IPVS, which not every kernel has.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from deployer.core import compose, edgelayout, names
from deployer.core import volumes as ownership
from deployer.errors import ConfigError

VERSION = "3.8"
RESTART = {"no": "none", "on-failure": "on-failure", "always": "any", "unless-stopped": "any"}
# Keys of core/compose.py's services that a swarm service does not take (shm_size becomes a tmpfs).
NOT_SWARM = ("restart", "shm_size", "security_opt", "container_name")


def infra_stack(project: str) -> str:
    return f"{project}-infra"


def db_stack(project: str) -> str:
    return f"{project}-db"


def service_name(stack: str, service: str) -> str:
    """What swarm calls a stack's service (and its DNS name on the stack's networks)."""
    return f"{stack}_{service}"


# -- placement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One node of the swarm, as placement constraints see it."""

    id: str
    hostname: str
    role: str  # manager, worker
    labels: dict[str, str] = field(default_factory=dict)
    engine_labels: dict[str, str] = field(default_factory=dict)
    os: str = "linux"
    arch: str = "x86_64"
    ready: bool = True  # state ready and availability active: it can take new tasks
    engine_version: str = ""  # its Docker Engine's (deployer status warns below 28: core/exposure.py)

    def value(self, attribute: str) -> str | None:
        if attribute.startswith("node.labels."):
            return self.labels.get(attribute.removeprefix("node.labels."))
        if attribute.startswith("engine.labels."):
            return self.engine_labels.get(attribute.removeprefix("engine.labels."))
        return {
            "node.id": self.id,
            "node.hostname": self.hostname,
            "node.role": self.role,
            "node.platform.os": self.os,
            "node.platform.arch": self.arch,
        }.get(attribute)


def satisfies(node: Node, constraint: str) -> bool:
    """Swarm's rule: `==` matches an equal value (a missing label never does), `!=` the rest."""
    operator = "==" if "==" in constraint else "!="
    attribute, _, wanted = (part.strip() for part in constraint.partition(operator))
    have = node.value(attribute)
    equal = have is not None and (have == wanted if attribute.startswith(("node.labels", "engine.labels"))
                                  else have.lower() == wanted.lower())  # fmt: skip
    return equal if operator == "==" else not equal


def matching(nodes: list[Node], constraints: tuple[str, ...] | list[str]) -> list[Node]:
    return [n for n in nodes if n.ready and all(satisfies(n, c) for c in constraints)]


def db_constraints(config, manager_id: str) -> list[str]:
    """Where the database runs: [swarm] db_constraints, or else the manager engine.host names."""
    return list(config.swarm.db_constraints) or on_manager(manager_id)


def on_manager(manager_id: str) -> list[str]:
    """Where control and the backup agent run: the manager engine.host names, through whose
    engine the deployer execs into them."""
    return [f"node.id == {manager_id}"]


def check_placement(config, nodes: list[Node], manager_id: str) -> None:
    """ConfigError (exit 2) naming the key of the first placement no node can satisfy."""
    swarm = config.swarm

    def hosts(found: list[Node]) -> str:
        return ", ".join(sorted(n.hostname for n in found)) or "none"

    for s in config.services.values():
        if s.placement and not matching(nodes, s.placement):
            raise ConfigError(config.path, f"services.{s.name}.placement", "no ready node of the swarm satisfies it")
    edge = matching(nodes, swarm.edge_constraints)
    if len(edge) < swarm.edge_replicas:
        key = "swarm.edge_constraints" if swarm.edge_constraints else "swarm.edge_replicas"
        raise ConfigError(
            config.path,
            key,
            f"{swarm.edge_replicas} edge replicas need as many nodes (their ports are published on each node), "
            f"but only {len(edge)} ready node(s) satisfy swarm.edge_constraints: {hosts(edge)}",
        )
    db = matching(nodes, db_constraints(config, manager_id))
    if len(db) != 1:  # any node, the manager or a worker: the backup agent stays on the manager
        raise ConfigError(
            config.path,
            "swarm.db_constraints",
            f"must match exactly one ready node (the database's volume lives on one node), "
            f"but {len(db)} do: {hosts(db)}",
        )


# -- stacks ---------------------------------------------------------------------------------


def _swarm_service(spec: dict[str, Any], deploy: dict[str, Any]) -> dict[str, Any]:
    """A service of core/compose.py as a swarm service: restart and limits move into deploy."""
    out = {k: v for k, v in spec.items() if k not in NOT_SWARM}
    limits = (spec.get("deploy") or {}).get("resources")
    out["deploy"] = {**deploy, **({"resources": limits} if limits else {})}
    if "shm_size" in spec:
        out.setdefault("volumes", []).append({"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": 256 << 20}})
    return out


def _deploy(config, replicas: int, constraints: list[str], labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "replicas": replicas,
        "endpoint_mode": "dnsrr",
        "placement": {"constraints": list(constraints), **extra.pop("placement", {})},
        "restart_policy": {"condition": RESTART.get(config.restart, "any"), "delay": "2s"},
        "labels": labels,
        **extra,
    }


def _external(names_by_key: dict[str, str]) -> dict[str, Any]:
    return {key: {"external": True, "name": name} for key, name in names_by_key.items()}


def release(
    config,
    colour: str,
    release_id: str,
    version: str,
    *,
    images: dict[str, str],
    env: dict[str, dict[str, str]] | None = None,
    secrets: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One release as a stack. `images` holds each service's pinned reference (by digest);
    `secrets` the swarm secret created for each of compose's secret names."""
    data = compose.release(config, colour, release_id, version, deployment=config.deployment, env=env)
    services = {}
    for s in config.services.values():
        spec = {**data["services"][s.name], "image": images[s.name]}
        services[s.name] = _swarm_service(spec, _deploy(config, s.replicas, list(s.placement), spec["labels"]))
    stack: dict[str, Any] = {"version": VERSION, "services": services, "networks": data["networks"]}
    if data.get("secrets"):
        stack["secrets"] = _external({key: (secrets or {})[key] for key in data["secrets"]})
    return stack


def secret_values(config, env: dict[str, dict[str, str]]) -> dict[str, str]:
    """Each of a release's secret names (as core/compose.py names them) and its value."""
    return {
        compose._secret_name(s.name, i): env.get(s.name, {}).get(k, "")
        for s in config.services.values()
        for i, k in enumerate(s.secrets)
    }


def sync_conf(project: str, role: str) -> str:
    """What the edge's lua/deployer/sync.lua reads: its role and where its peers are."""
    stack = infra_stack(project)
    if role == "control":
        return f"role control\nreplicas {service_name(stack, 'edge')}\nport {edgelayout.PREVIEW_PORT}\n"
    return f"role replica\ncontrol {service_name(stack, 'control')}\nport {edgelayout.PREVIEW_PORT}\n"


def infra(
    config,
    *,
    edge_image: str,
    manager_id: str,
    configs: dict[str, str],
    secrets: dict[str, str],
) -> dict[str, Any]:
    """The control service and the public edge replicas (stack <name>-infra). `configs` and
    `secrets` are the swarm objects created for: site, sync-control, sync-replica; sync, and
    tls (the certificate and its key) with [edge.tls]."""
    project, swarm = config.name, config.swarm

    def labels(role: str) -> dict[str, str]:
        return {names.LABEL_PROJECT: project, names.LABEL_DEPLOYMENT: config.deployment, names.LABEL_ROLE: role}

    token = [{"source": "sync", "target": "deployer_sync", "mode": 0o400}]
    control = {
        "image": edge_image,
        "volumes": [edgelayout.MOUNT, compose.edge_temp(config.edge)],
        "networks": ["edge"],
        "configs": [{"source": "sync-control", "target": edgelayout.SYNC_CONF, "mode": 0o444}],
        "secrets": token,
        "labels": labels("control"),
        "logging": compose.LOGGING,
        "deploy": _deploy(config, 1, on_manager(manager_id), labels("control"), update_config={"order": "stop-first"}),
    }
    public = [
        {"target": edgelayout.PUBLIC_PORT, "published": config.edge.public_port, "protocol": "tcp", "mode": "host"}
    ]
    if config.edge.tls:  # its certificate: a secret each replica's nginx reads at start (lua/deployer/tls.lua)
        public.append(
            {"target": edgelayout.HTTPS_PORT, "published": config.edge.tls.port, "protocol": "tcp", "mode": "host"}
        )
        token = [*token, {"source": "tls", "target": edgelayout.TLS_SECRET, "mode": 0o400}]
    edge = {
        "image": edge_image,
        "ports": public,
        "volumes": [compose.edge_temp(config.edge)],
        "networks": ["edge"],
        "configs": [
            {"source": "sync-replica", "target": edgelayout.SYNC_CONF, "mode": 0o444},
            {"source": "site", "target": edgelayout.SITE, "mode": 0o444},
        ],
        "secrets": token,
        "labels": labels("edge"),
        "logging": compose.EDGE_LOGGING,
        "deploy": _deploy(
            config,
            swarm.edge_replicas,
            list(swarm.edge_constraints),
            labels("edge"),
            placement={"max_replicas_per_node": 1},
            # Ports in host mode: a node holds one replica, so an update stops it first.
            update_config={"order": "stop-first", "parallelism": 1, "delay": "5s", "failure_action": "rollback"},
        ),
    }
    return compose.escape(
        {
            "version": VERSION,
            "services": {"control": control, "edge": edge},
            "volumes": {"edge-state": ownership.volume_spec(config.name, config.deployment, "edge-state")},
            "networks": {"edge": {"external": True, "name": names.edge_network(project)}},
            "configs": _external(configs),
            "secrets": _external(secrets),
        }
    )


def database(config, infra_data: dict[str, Any], *, manager_id: str, configs: dict[str, str],
             secrets: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """The database and the backup agent (stack <name>-db), from core/compose.py's infra
    services: the database pinned to its node (db_constraints), the agent and its dumps to
    the manager (the deployer execs into it there; it reaches the database as host `db`)."""
    where = {"db": db_constraints(config, manager_id), "backup": on_manager(manager_id)}
    services = {}
    for name in ("db", "backup"):
        spec = dict(infra_data["services"][name])
        # a secret with no value (no backup.webhook) is left out: swarm keeps none empty
        spec["secrets"] = [s for s in spec.get("secrets", []) if s["source"] in secrets]
        services[name] = _swarm_service(
            spec, _deploy(config, 1, where[name], spec["labels"], update_config={"order": "stop-first"})
        )
    return {
        "version": VERSION,
        "services": services,
        "volumes": {
            k: ownership.volume_spec(config.name, config.deployment, k)
            for k in infra_data["volumes"]
            if k != "edge-state"
        },
        "networks": infra_data["networks"],
        "configs": _external(configs),
        "secrets": _external(secrets),
    }


# -- probes of every replica ----------------------------------------------------------------


def replica_probe_script(targets: list[tuple[str, str, int, str]], timeout: float) -> str:
    """One curl, run in the control container, over each task's own address: (service, IP,
    port, health path) -> `replica <code> <url>` per line. The edge balances over the tasks,
    so a probe through it may never meet a bad one: a release waits until each answers."""
    if not targets:
        return "true"
    urls = " ".join(f"-o /dev/null {shlex.quote(f'http://{ip}:{port}{path}')}" for _, ip, port, path in targets)
    return f"curl -s --max-time {timeout:g} -w 'replica %{{http_code}} %{{url}}\\n' {urls}; true"


def replica_failures(targets: list[tuple[str, str, int, str]], output: str) -> list[str]:
    """Why some replicas did not pass (empty when each answered 2xx or 3xx)."""
    codes = {}
    for line in output.splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "replica":
            codes[parts[2]] = parts[1]
    problems = []
    for service, ip, port, path in targets:
        code = codes.get(f"http://{ip}:{port}{path}", "000")
        if not code.startswith(("2", "3")):
            problems.append(f"{service} replica {ip}: " + ("no answer" if code == "000" else f"HTTP {code}"))
    return problems
