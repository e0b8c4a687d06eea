"""The swarm adapter: what the deployer asks of a swarm manager, through the engine's client.

Stacks go through `docker stack deploy` / `docker stack rm` (python-on-whales, pointed at the
engine's own connection, as compose is); everything else is the Engine API: the swarm's
nodes, services and tasks, overlay networks, secrets and configs, and the registry.

`SwarmEdge` is the edge adapter of a swarm deployment: every script runs in the `control`
service's container, which swarm pins to the manager that engine.host names, so the
manager's API can exec into it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets as random
import tempfile
import time
from typing import Any

from deployer.adapters import docker_cli
from deployer.adapters.edge import Edge
from deployer.adapters.engine import Engine, debug
from deployer.adapters.failures import reason as _reason
from deployer.adapters.polling import until
from deployer.core import masking, names
from deployer.core import stack as stack_rule
from deployer.core.steps import Step
from deployer.errors import EdgeError, EngineError, InputError

SERVICE_LABEL = "com.docker.swarm.service.name"
STACK_LABEL = "com.docker.stack.namespace"
SECRET_LABEL = "deployer.secret"
LIVE = ("new", "pending", "assigned", "accepted", "preparing", "starting", "running")


class Swarm:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def api(self) -> Any:
        return self.engine.sdk.api

    # -- the cluster ------------------------------------------------------------------------
    def manager_id(self) -> str:
        """This engine's node id; InputError (nothing changed) unless it is a swarm manager."""
        info = self.api.info()
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            state = "not part of a swarm" if swarm.get("LocalNodeState") != "active" else "a swarm worker"
            raise InputError(
                f'engine.mode = "swarm" needs a swarm manager, but the engine at {self.engine.where} is {state} '
                "(run `docker swarm init` there, or point engine.host at a manager): nothing was changed"
            )
        return swarm["NodeID"]

    def nodes(self) -> list[stack_rule.Node]:
        found = []
        for n in self.api.nodes():
            spec, desc = n.get("Spec") or {}, n.get("Description") or {}
            platform = desc.get("Platform") or {}
            found.append(
                stack_rule.Node(
                    id=n["ID"],
                    hostname=desc.get("Hostname", ""),
                    role=spec.get("Role", ""),
                    labels=spec.get("Labels") or {},
                    engine_labels=(desc.get("Engine") or {}).get("Labels") or {},
                    os=platform.get("OS", ""),
                    arch=platform.get("Architecture", ""),
                    ready=(n.get("Status") or {}).get("State") == "ready" and spec.get("Availability") == "active",
                    engine_version=(desc.get("Engine") or {}).get("EngineVersion", ""),
                )
            )
        return found

    # -- networks, secrets, configs ---------------------------------------------------------
    def ensure_overlay(self, name: str, *, internal: bool, labels: dict[str, str], step: str) -> None:
        found = [n for n in self.api.networks(names=[name]) if n.get("Name") == name]
        if not found:
            debug(f"create overlay {name}")
            self.api.create_network(name, driver="overlay", attachable=True, internal=internal, labels=labels)
            return
        net = found[0]
        if net.get("Driver") != "overlay" or bool(net.get("Internal")) != internal:
            raise EngineError(
                f"network {name} exists as driver={net.get('Driver')} internal={net.get('Internal')}; swarm mode "
                f"needs an overlay network with internal={internal}: remove it first",
                step=step,
            )

    def remove_network(self, name: str, *, wait: float = 30) -> None:
        """Remove a network once no task uses it any more (bounded)."""

        def removed() -> bool:
            try:
                self.api.remove_network(name)
                return True
            except Exception as exc:
                return "not found" in str(exc).lower()

        # A removed service's tasks leave the network one by one; no event tells the last.
        until(removed, seconds=wait, every=0.5)

    def ensure_secret(self, project: str, what: str, value: str, *, step: str) -> str:
        """A swarm secret holding `value`, reused while the value is the same (a salted digest
        in its labels tells; the value itself is never readable through the API)."""
        mine = self.api.secrets(filters={"label": [f"{names.LABEL_PROJECT}={project}", f"{SECRET_LABEL}={what}"]})
        for s in sorted(mine, key=lambda s: s.get("CreatedAt", ""), reverse=True):
            labels = (s.get("Spec") or {}).get("Labels") or {}
            if labels.get("deployer.digest") == _digest(labels.get("deployer.salt", ""), value):
                return s["Spec"]["Name"]
        salt = random.token_hex(8)
        name = f"{project}-{what}-{random.token_hex(4)}"
        labels = {names.LABEL_PROJECT: project, SECRET_LABEL: what, "deployer.salt": salt,
                  "deployer.digest": _digest(salt, value)}  # fmt: skip
        try:
            self.api.create_secret(name, value.encode(), labels=labels)
        except Exception as exc:
            raise EngineError(f"cannot create the swarm secret {name}: {_reason(exc)}", step=step) from None
        return name

    def ensure_config(self, project: str, what: str, content: str, *, step: str) -> str:
        """A swarm config named by its content (configs cannot change: a new content is a new config)."""
        name = f"{project}-{what}-{hashlib.sha256(content.encode()).hexdigest()[:12]}"
        if not self.api.configs(filters={"name": [name]}):
            try:
                self.api.create_config(
                    name, content.encode(), labels={names.LABEL_PROJECT: project, SECRET_LABEL: what}
                )
            except Exception as exc:
                if "already exists" not in str(exc).lower():
                    raise EngineError(f"cannot create the swarm config {name}: {_reason(exc)}", step=step) from None
        return name

    def prune_objects(self, project: str, *, keep: set[str]) -> None:
        """Remove this project's secrets and configs that nothing names any more (in use: kept)."""
        for kind, listing, remove in (
            ("secret", self.api.secrets, self.api.remove_secret),
            ("config", self.api.configs, self.api.remove_config),
        ):
            for obj in listing(filters={"label": [f"{names.LABEL_PROJECT}={project}"]}):
                if obj["Spec"]["Name"] not in keep:
                    try:
                        remove(obj["ID"])
                    except Exception:  # still used by a task that is going away
                        debug(f"keep {kind} {obj['Spec']['Name']}")

    # -- stacks -----------------------------------------------------------------------------
    def deploy(self, stack: str, data: dict[str, Any], *, step: str) -> None:
        """`docker stack deploy` of this data (a JSON file in a private folder); returns at once:
        the caller waits on the tasks."""
        debug(f"stack deploy {stack}")
        _ = self.engine.sdk
        with tempfile.TemporaryDirectory(prefix="deployer-stack-") as tmp:
            path = os.path.join(tmp, "stack.json")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            cli = docker_cli.client(self.engine).stack.docker_cmd
            docker_cli.run([*cli, "stack", "deploy", "--compose-file", path, "--resolve-image", "never",
                            "--with-registry-auth", "--detach=true", "--quiet", stack],
                           what=f"docker stack deploy of {stack}", step=step, command="docker stack deploy")  # fmt: skip

    def remove_stack(self, stack: str) -> None:
        """Remove every service of a stack (swarm stops its tasks with their stop grace)."""
        for service in self.api.services(filters={"label": [f"{STACK_LABEL}={stack}"]}):
            try:
                self.api.remove_service(service["ID"])
            except Exception as exc:
                if "not found" not in str(exc).lower():
                    raise EngineError(
                        f"cannot remove {service['Spec']['Name']}: {_reason(exc)}", step=Step.REMOVE
                    ) from None

    def stacks(self, project: str) -> dict[str, list[dict[str, Any]]]:
        """Every stack of this project: its name and its services (Engine API objects)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for service in self.api.services(filters={"label": [f"{names.LABEL_PROJECT}={project}"]}):
            stack = (service["Spec"].get("Labels") or {}).get(STACK_LABEL, "")
            found.setdefault(stack, []).append(service)
        return found

    def service(self, name: str) -> dict[str, Any] | None:
        found = [s for s in self.api.services(filters={"name": name}) if s["Spec"]["Name"] == name]
        return found[0] if found else None

    def tasks(self, service: str) -> list[dict[str, Any]]:
        return self.api.tasks(filters={"service": service})

    def wait_gone(self, stacks: list[str], *, limit: float = 60) -> None:
        """Until no task of these stacks runs any more, and this node holds none of their
        containers (their volumes are free then); bounded."""

        def gone() -> bool:
            left = []
            for stack in stacks:
                label = {"label": f"{STACK_LABEL}={stack}"}
                left += [t for t in self.api.tasks(filters=label) if (t.get("Status") or {}).get("State") in LIVE]
                left += self.api.containers(all=True, filters=label)
            return not left

        # `docker stack rm` returns at once; the tasks and containers stop after it, unannounced.
        until(gone, seconds=limit, every=0.5)

    def logs(self, service: str, lines: int = 20) -> str:
        try:
            raw = self.api.service_logs(service, stdout=True, stderr=True, tail=lines, timestamps=False)
            text = b"".join(raw) if not isinstance(raw, bytes) else raw
        except Exception:
            return ""
        return masking.mask(text.decode(errors="replace").rstrip())

    # -- images -----------------------------------------------------------------------------
    def digest(self, ref: str, auth: dict[str, str] | None = None) -> str | None:
        """The registry's digest of an image reference, asked by the manager (None: not there)."""
        try:
            return self.api.inspect_distribution(ref, auth_config=auth)["Descriptor"]["digest"]
        except Exception as exc:
            debug(f"distribution {ref}: {_reason(exc)}")
            return None

    def push(self, local: str, target: str, *, auth: dict[str, str] | None, step: str) -> None:
        """Tag an image of the manager's engine as `target` and push it to its registry."""
        repo, _, tag = target.rpartition(":")
        debug(f"push {target}")
        try:
            self.api.tag(local, repo, tag)
            errors = [
                line.get("error") or str(line.get("errorDetail"))
                for line in self.api.push(repo, tag=tag, stream=True, decode=True, auth_config=auth)
                if "error" in line or "errorDetail" in line
            ]
        except Exception as exc:
            raise EngineError(f"pushing {target} failed: {_reason(exc)}", step=step, command="push") from None
        if errors:
            raise EngineError(f"pushing {target} failed: {masking.mask(errors[-1])}", step=step, command="push")

    # -- containers of this node ------------------------------------------------------------
    def local_container(self, service: str) -> str | None:
        """The running container of a service's task on this engine's node, if there is one."""
        found = self.api.containers(filters={"label": [f"{SERVICE_LABEL}={service}"], "status": "running"})
        return found[0]["Names"][0].lstrip("/") if found else None


def _digest(salt: str, value: str) -> str:
    return hashlib.sha256(f"{salt}\0{value}".encode()).hexdigest()


class SwarmEdge(Edge):
    """The edge adapter on a swarm: the same scripts, run in the control service's container."""

    def __init__(self, engine: Engine, project: str, deployment: str = "") -> None:
        super().__init__(engine, project, deployment)
        self.service = stack_rule.service_name(stack_rule.infra_stack(project), "control")
        self._found: str | None = None

    @property  # type: ignore[override]
    def container(self) -> str:
        if self._found is None:
            self._found = Swarm(self.engine).local_container(self.service)
        return self._found or self.service  # no such container: every use says it does not exist

    @container.setter
    def container(self, value: str) -> None:
        pass

    def refresh(self) -> None:
        """Look the control container up again (after `up` replaced it)."""
        self._found = None

    def run(self, script: str, *, step: str, env: dict[str, str] | None = None):
        try:
            return super().run(script, step=step, env=env)
        except EngineError as exc:
            if "does not exist" not in str(exc) and "is not running" not in str(exc):
                raise
            self.refresh()  # swarm replaced the control container: once more, on the new one
            if self.container == self.service:  # none at all: on a worker, that is bad input (exit 2)
                Swarm(self.engine).manager_id()
            return super().run(script, step=step, env=env)

    def require(self) -> None:
        self.refresh()
        super().require()

    # -- a change that not every public replica took: say which, and that none switched ----
    def _replicas_refused(self, since: float) -> str:
        """The control's own account of its last failed publish (lua/deployer/sync.lua)."""
        try:
            raw = self.engine.sdk.api.logs(self.container, stdout=False, stderr=True, since=int(since) - 1, tail=50)
        except Exception:
            return ""
        lines = [x for x in raw.decode(errors="replace").splitlines() if "route state not published" in x]
        return lines[-1].split("previous one: ", 1)[-1].split(", client:")[0].strip() if lines else ""

    def _explained(self, call, *args, **kwargs):
        started = time.time()
        try:
            return call(*args, **kwargs)
        except EdgeError as exc:
            why = self._replicas_refused(started)
            if why:
                exc.args = (
                    "not every edge replica took the new route state, so none did and live is unchanged: " + why,
                )
            raise

    def switch(self, *args, **kwargs):
        return self._explained(super().switch, *args, **kwargs)

    def commit(self, *args, **kwargs) -> None:
        return self._explained(super().commit, *args, **kwargs)

    def write_record(self, *args, **kwargs) -> None:
        return self._explained(super().write_record, *args, **kwargs)
