"""One Docker host (engine.mode = "compose", the default): each release is a compose project
<name>-<colour>-<id> (core/compose.py), its containers labelled with colour and release; up
and down are flows/infra.py, the removals flows/cleanup.py, the health wait flows/checks.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployer.adapters.edge import Edge
from deployer.adapters.models import Container
from deployer.adapters.operate import CONTAINER, Source
from deployer.core import names
from deployer.core import probe as probe_rule
from deployer.core.steps import Step
from deployer.errors import DeployerError
from deployer.flows import checks
from deployer.flows.context import Context
from deployer.runtime.base import Healthy

if TYPE_CHECKING:  # a switch, which needs the edge alone, imports none of these
    from concurrent.futures import Future

    from deployer.core.state import EdgeState


class ComposeRuntime:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def edge(self) -> Edge:
        return Edge(self.ctx.engine, self.ctx.config.name, self.ctx.config.deployment)

    def prepare(self) -> None:
        from deployer.adapters import docker_cli

        docker_cli.warm_up()  # its import overlaps the waits on the engine before `compose up`

    def pin(self, version: str, pinned: Any = None) -> dict[str, str]:
        return {}  # the engine runs the tag that artifacts.ensure checked

    def start(
        self, colour: str, release_id: str, version: str, env: dict[str, dict[str, str]], images: dict[str, str]
    ) -> None:
        from deployer.adapters import compose as compose_adapter
        from deployer.core import compose

        config = self.ctx.config
        compose_adapter.up(  # env: data, and secrets delivered as files
            self.ctx.engine,
            names.release_project(config.name, colour, release_id),
            compose.release(config, colour, release_id, version, deployment=config.deployment, env=env),
            step=Step.START,
            secrets=compose.release_secrets(config, env),
        )

    def wait_healthy(self, colour: str, release_id: str) -> Healthy:
        return checks.wait_healthy(self.ctx, colour, release_id)  # its last exec runs the smoke probes too

    def containers(self, colour: str, release_id: str) -> list[Container]:
        return checks.release_containers(self.ctx, colour, release_id)

    def logs(self, colour: str, release_id: str) -> str:
        return checks.failing_logs(self.ctx, colour, release_id)

    def log_sources(self, colour: str, release_id: str, services: list[str]) -> list[Source]:
        found = sorted((c.service, c.name) for c in self.containers(colour, release_id) if c.service in services)
        return [Source(service, CONTAINER, name) for service, name in found]

    def infra_log(self, role: str) -> Source:
        return Source(role, CONTAINER, names.infra_container(self.ctx.config.name, role))

    def exec_container(self, colour: str, release_id: str, service: str) -> str:
        for c in self.containers(colour, release_id):
            if c.service == service and c.running:
                return c.name
        raise DeployerError(f"no container of {service} runs in {colour} ({release_id})", step=Step.EXEC)

    def infra_container(self, role: str) -> str:
        return names.infra_container(self.ctx.config.name, role)

    def agent_container(self) -> str:
        return names.infra_container(self.ctx.config.name, "backup")

    def explain(self, colour: str, exc: Exception) -> None:
        """Name the services that failed, and why, from the edge and the engine."""
        ctx = self.ctx
        state = ctx.edge.state(step=Step.CHECK)
        record = state.record(colour)
        if record is None:
            return
        answer = ctx.edge.run(f"curl -s --max-time 5 {probe_rule.health_url(colour)}", step=Step.CHECK).stdout
        codes = dict(line.split(" ", 1) for line in answer.splitlines() if line.count(" ") == 1)
        containers = {c.service: c for c in self.containers(colour, record.release)}
        problems = []
        for service in record.services:
            c = containers.get(service)
            if c is None:
                problems.append(f"its {service} container is gone (release to it again)")
            elif not c.running:
                problems.append(f"its {service} is {c.status}")
            elif not codes.get(service, "0").startswith(("2", "3")):
                problems.append(f"its {service} answers {codes.get(service, 'nothing')} on its health path")
        if problems:
            exc.args = (f"cannot switch to {colour} ({record.version}): it is not healthy: {'; '.join(problems)}",)

    def remove(self, colour: str, release_id: str) -> None:
        from deployer.flows import cleanup

        cleanup.remove(self.ctx, self.containers(colour, release_id))

    def clear_told(self, keep: set[tuple[str, str]]) -> Future | None:
        from deployer.flows import cleanup

        return cleanup.clear_told(self.ctx, keep)

    def retire(
        self,
        state: EdgeState | None = None,
        *,
        wait: bool = True,
        among: list[Container] | None = None,
        keep: set[tuple[str, str]] | None = None,
    ) -> list[str]:
        from deployer.flows import cleanup

        return cleanup.retire(self.ctx, state, wait=wait, among=among, keep=keep)

    def up(self, *, recreate_db: bool = False, refresh: bool = False) -> None:
        from deployer.flows import infra

        infra.up(self.ctx, recreate_db=recreate_db, refresh=refresh)

    def install_certificate(self) -> str:
        from deployer.core import edgelayout
        from deployer.flows import tls

        about = tls.install(self.ctx, step=Step.TLS)  # the next handshake presents it: no reload
        if self.ctx.edge.published_port(edgelayout.HTTPS_PORT) is None:
            self.ctx.say("warning: the edge has no HTTPS port yet: run `deployer up` to open it")
        return about

    def volume_doubts(self) -> list[str]:
        from deployer.flows import teardown

        return teardown.volume_doubts(self.ctx)

    def down(self, *, volumes: bool, backup: bool = True, typed: bool = False) -> None:
        from deployer.flows import teardown

        teardown.down(self.ctx, volumes=volumes, backup=backup, typed=typed)

    def observe(self):
        from deployer.runtime.compose_status import ComposeObserved

        return ComposeObserved(self.ctx)
