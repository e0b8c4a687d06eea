"""[engine] mode, [swarm] and each service's `replicas` and `placement`: a deployment on a
Docker Swarm cluster instead of one Docker host (docs/scale-out.md).

    [engine]
    mode = "swarm"                       # default "compose": one Docker host
    host = "ssh://deploy@manager-1"      # a manager of the swarm

    [swarm]
    edge_replicas = 2                    # public edge replicas, one per node, ports in host mode
    edge_constraints = ["node.labels.deployer.edge == true"]
    db_constraints = ["node.labels.deployer.db == true"]   # default: the manager engine.host names
                                         # exactly one node, any node; the backup agent and the
                                         # dumps stay on the manager (deployer/core/stack.py)

    [services.backend]
    replicas = 3                         # default 1
    placement = ["node.role == worker"]

What is checked here is the text; whether any node satisfies a constraint is checked
against the cluster before anything starts (deployer/core/stack.py, runtime/swarm_infra.py).
"""

from __future__ import annotations

import re

from deployer.config.model import Edge, Engine, Registry, Service, Swarm
from deployer.config.reader import Reader

MODES = ("compose", "swarm")
MAX_REPLICAS = 100
# What swarm's placement constraints can name, compared with == or != to a plain value.
CONSTRAINT = re.compile(
    r"(node\.(?:id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+)|engine\.labels\.[A-Za-z0-9_.-]+)"
    r" *(==|!=) *([A-Za-z0-9_.:/-]+)"
)
CONSTRAINT_HELP = "placement constraints such as 'node.labels.tier == app' or 'node.role != manager'"


def mode(r: Reader) -> str:
    value = r.string("engine.mode", default=Engine.mode)
    if value not in MODES:
        raise r.error("engine.mode", f"must be one of {', '.join(MODES)}: {value!r}")
    return value


def constraints(r: Reader, key: str) -> tuple[str, ...]:
    found = tuple(" ".join(v.split()) for v in r.names(key, CONSTRAINT, CONSTRAINT_HELP))
    if len(set(found)) != len(found):
        raise r.error(key, "lists the same constraint twice")
    return found


def service(r: Reader, prefix: str) -> dict:
    """A service's `replicas` and `placement` (checked against the mode by `read`)."""
    return {
        "replicas": r.integer(f"{prefix}.replicas", default=Service.replicas, low=1, high=MAX_REPLICAS),
        "placement": constraints(r, f"{prefix}.placement"),
    }


def read(
    r: Reader, engine_mode: str, services: dict[str, Service], edge: Edge, registry: Registry | None
) -> Swarm | None:
    """[swarm] in swarm mode; in compose mode, every swarm-only key is an error that names it."""
    if engine_mode != "swarm":
        if r.get("swarm") is not None:
            raise r.error("swarm", 'only meaningful with [engine] mode = "swarm"')
        for s in services.values():
            if s.replicas != 1:
                raise r.error(f"services.{s.name}.replicas", 'above 1 needs [engine] mode = "swarm" (one Docker host)')
            if s.placement:
                raise r.error(f"services.{s.name}.placement", 'only meaningful with [engine] mode = "swarm"')
        return None
    r.table("swarm", required=False)
    if registry is None:
        raise r.error("registry", 'required with [engine] mode = "swarm": the nodes pull every image from it')
    if edge.acme_webroot is not None:
        raise r.error(
            "edge.acme_webroot",
            "a folder of one Docker host, which a swarm's edge replicas on other nodes do not have: with [engine] mode = "
            '"swarm", renew the certificate where its challenge is served and run `deployer edge reload`',
        )
    return Swarm(
        edge_replicas=r.integer("swarm.edge_replicas", default=Swarm.edge_replicas, low=1, high=MAX_REPLICAS),
        edge_constraints=constraints(r, "swarm.edge_constraints"),
        db_constraints=constraints(r, "swarm.db_constraints"),
    )
