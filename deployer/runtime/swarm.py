"""A swarm (engine.mode = "swarm", docs/scale-out.md): each release is a stack
<name>-<colour>-<id> of `replicas` tasks per service (runtime/swarm_release.py), up and down
place the infrastructure on the cluster (runtime/swarm_infra.py), status reads services and
tasks (runtime/swarm_status.py), and every edge script runs in the control service."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from deployer.adapters.models import Container
from deployer.adapters.operate import SERVICE, Source
from deployer.adapters.swarm import Swarm, SwarmEdge
from deployer.core import names
from deployer.core import stack as stack_rule
from deployer.core.state import EdgeState
from deployer.core.steps import Step
from deployer.errors import DeployerError
from deployer.flows.context import Context
from deployer.runtime.base import Healthy


class SwarmRuntime:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def edge(self) -> SwarmEdge:
        return SwarmEdge(self.ctx.engine, self.ctx.config.name, self.ctx.config.deployment)

    def prepare(self) -> None:
        from deployer.runtime import swarm_release

        swarm_release.preflight(self.ctx)  # a manager, placements the nodes can meet; exit 2 before anything changes

    def pin(self, version: str, pinned: Any = None) -> dict[str, str]:
        from deployer.runtime import swarm_release

        return swarm_release.images(self.ctx, version, pinned=pinned)  # the nodes pull each image by digest

    def start(
        self, colour: str, release_id: str, version: str, env: dict[str, dict[str, str]], images: dict[str, str]
    ) -> None:
        from deployer.runtime import swarm_release

        swarm_release.start(self.ctx, colour, release_id, version, images, env)

    def wait_healthy(self, colour: str, release_id: str) -> Healthy:
        from deployer.runtime import swarm_release

        return Healthy(swarm_release.wait_healthy(self.ctx, colour, release_id))

    def containers(self, colour: str, release_id: str) -> list[dict[str, Any]]:
        cluster = Swarm(self.ctx.engine)
        stack = names.release_project(self.ctx.config.name, colour, release_id)
        return [
            task
            for s in self.ctx.config.services
            for task in cluster.tasks(stack_rule.service_name(stack, s))
            if task.get("DesiredState") == "running"
        ]

    def logs(self, colour: str, release_id: str) -> str:
        from deployer.flows import checks

        return checks.failing_logs(self.ctx, colour, release_id)  # the tasks' containers on this node

    def log_sources(self, colour: str, release_id: str, services: list[str]) -> list[Source]:
        stack = names.release_project(self.ctx.config.name, colour, release_id)
        return [Source(s, SERVICE, stack_rule.service_name(stack, s)) for s in services]

    def _infra_service(self, role: str) -> str:
        project = self.ctx.config.name
        stack = stack_rule.infra_stack(project) if role == "edge" else stack_rule.db_stack(project)
        return stack_rule.service_name(stack, role)

    def infra_log(self, role: str) -> Source:
        return Source(role, SERVICE, self._infra_service(role))

    def exec_container(self, colour: str, release_id: str, service: str) -> str:
        stack = names.release_project(self.ctx.config.name, colour, release_id)
        return self._local(stack_rule.service_name(stack, service))

    def infra_container(self, role: str) -> str:
        return self._local(self._infra_service(role))

    def _local(self, service: str) -> str:
        """A task's container on this engine's node: another node's engine is not reachable from here."""
        cluster = Swarm(self.ctx.engine)
        found = cluster.local_container(service)
        if found:
            return found
        nodes = sorted({t.get("NodeID", "")[:12] for t in cluster.tasks(service) if t.get("DesiredState") == "running"})
        raise DeployerError(
            f"no task of {service} runs on this engine's node; its tasks run on node {', '.join(nodes) or '(none)'}: "
            f"point DOCKER_HOST at that node's engine to exec there",
            step=Step.EXEC,
        )

    def agent_container(self) -> str:
        """The agent's task container on this engine's node."""
        service = stack_rule.service_name(stack_rule.db_stack(self.ctx.config.name), "backup")
        return Swarm(self.ctx.engine).local_container(service) or service

    def explain(self, colour: str, exc: Exception) -> None:
        pass  # the tasks run on other nodes too: the edge's answer is the explanation

    def remove(self, colour: str, release_id: str) -> None:
        from deployer.runtime import swarm_release

        swarm_release.remove(self.ctx, colour, release_id)

    def clear_told(self, keep: set[tuple[str, str]]) -> Future | None:
        return None  # the stacks go in retire

    def retire(
        self,
        state: EdgeState | None = None,
        *,
        wait: bool = True,
        among: list[Container] | None = None,
        keep: set[tuple[str, str]] | None = None,
    ) -> list[str]:
        from deployer.runtime import swarm_release

        return swarm_release.retire(self.ctx, state)

    def up(self, *, recreate_db: bool = False, refresh: bool = False) -> None:
        from deployer.runtime import swarm_infra

        swarm_infra.up(self.ctx, recreate_db=recreate_db, refresh=refresh)

    def install_certificate(self) -> str:
        from deployer.runtime import swarm_infra

        swarm_infra.up(self.ctx)  # a new certificate is a new secret: swarm rolls the replicas to it
        return "every edge replica presents it (a changed certificate replaced them one node at a time)"

    def volume_doubts(self) -> list[str]:
        from deployer.runtime import swarm_infra

        self._doubts = swarm_infra.volume_doubts(self.ctx)  # a task on the database's node: asked once
        return self._doubts

    def down(self, *, volumes: bool, backup: bool = True, typed: bool = False) -> None:
        from deployer.runtime import swarm_infra

        checked = getattr(self, "_doubts", None)
        swarm_infra.down(self.ctx, volumes=volumes, backup=backup, typed=typed, doubts=checked)

    def observe(self):
        from deployer.runtime.swarm_status import SwarmObserved

        return SwarmObserved(self.ctx)
