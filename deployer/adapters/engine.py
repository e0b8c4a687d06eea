"""The engine adapter: the one place that talks to Docker. Engine API calls go through the
docker SDK (one client per command, created on first use); compose goes through
python-on-whales, pointed at the same engine. Every failure becomes an EngineError carrying
what was run, its exit code and its stderr, masked of secrets. With DEPLOYER_DEBUG=1 each
call is printed (masked) on stderr. The engine is the local one (DOCKER_HOST or the default
socket) or, with `engine.host = "ssh://..."` or DOCKER_HOST=ssh://..., a remote one reached
through one ssh tunnel; waits on it are adapters/polling.py's."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from deployer.adapters.failures import reason, unreachable
from deployer.adapters.models import TOLD_CPU_SHARES, Container, ExecResult
from deployer.adapters.polling import until
from deployer.core import masking, names
from deployer.core.steps import Step
from deployer.errors import ENGINE_HOST, EngineError, UnreachableError


def debug(what: str) -> None:
    if os.environ.get("DEPLOYER_DEBUG"):
        print(f"[engine] {masking.mask(what)}", file=sys.stderr, flush=True)


# Why a network with no container on it is refused ("has active endpoints"): Docker 20.10
# can keep counting an endpoint after its container is gone (remove_network, tests/conftest.py)
LOST_COUNT = "the engine lost count; restarting dockerd frees it"


class Engine:
    def __init__(self, host: str | None = None, *, timeout: float = 120, connect_timeout: float = 10) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or None
        # Bad input (exit 2) before anything connects: DOCKER_HOST, DEPLOYER_SSH_COMMAND (a
        # unix socket passes: it needs no import of the ssh adapter)
        if self.host and not self.host.startswith("unix://"):
            from deployer.adapters.ssh import check_host

            check_host(self.host)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._tunnel: Any = None
        self._client: Any = None
        self._base_url: str | None = None

    @property
    def where(self) -> str:
        """The engine, for messages: ssh://host, or 'the local engine'."""
        return self.host if self.host else "the local engine"

    @property
    def remote(self) -> bool:
        return bool(self.host and self.host.startswith("ssh://"))

    def base_url(self) -> str | None:
        """The URL both the SDK and compose use (None: the SDK's and the CLI's defaults)."""
        if self._base_url is None and self.remote:
            from deployer.adapters.ssh import Tunnel

            self._tunnel = Tunnel(self.host, connect_timeout=self.connect_timeout)  # type: ignore[arg-type]
            self._base_url = f"unix://{self._tunnel.open()}"
        elif self._base_url is None and self.host:
            self._base_url = self.host
        return self._base_url

    @property
    def sdk(self) -> Any:
        ENGINE_HOST.set(self.where)  # an EngineError raised after this call names this engine
        if self._client is None:
            import docker

            try:
                url = self.base_url()
                client = (
                    docker.DockerClient(base_url=url, timeout=self.timeout)
                    if url
                    else docker.from_env(timeout=self.timeout)
                )
                client.api.ping()
            except Exception as exc:  # DockerException, requests' ConnectionError and friends
                raise UnreachableError(
                    f"cannot reach the Docker engine at {self.where}: {unreachable(exc)}", step=Step.ENGINE
                ) from None
            self._client = client
        return self._client

    def unix_api(self) -> Any:
        """The Engine API on a unix socket without the SDK (engine_api.py), or None over TCP."""
        url = self.base_url() or "unix:///var/run/docker.sock"  # the SDK's default, as from_env's
        if not url.startswith("unix://"):
            return None
        from deployer.adapters.engine_api import Api

        ENGINE_HOST.set(self.where)
        return Api(url.removeprefix("unix://"), self.where, self.timeout)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._tunnel is not None:
            self._tunnel.close()
            self._tunnel = None
        self._base_url = None

    # -- exec: the one path into a container ------------------------------------------------
    def exec(
        self,
        container: str,
        argv: list[str],
        *,
        step: str,
        env: dict[str, str] | None = None,
        user: str = "",
    ) -> ExecResult:
        """Run argv in a running container and return its exit code and output. Interrupted
        (Ctrl-C, SIGTERM) while the program runs, it waits for the program to end before the
        interrupt goes on: an edge script that is switching traffic finishes (or undoes
        itself), so what runs next can read the truth. On a unix socket, without the SDK."""
        debug(f"exec {container} {argv[:2]}")
        if fast := self.unix_api():
            return fast.exec(container, argv, step=step, env=env or {}, user=user)
        from docker.errors import APIError

        api = self.sdk.api
        with self._exec_errors(container, argv, step, "cannot run"):
            exec_id = api.exec_create(container, argv, environment=env or {}, user=user, stdout=True, stderr=True)["Id"]
        try:
            out, err = api.exec_start(exec_id, demux=True)
        except KeyboardInterrupt:
            self._wait_exec(exec_id, limit=120)
            raise
        except APIError as exc:
            raise EngineError(
                f"running {argv[0]} in {container} failed: {reason(exc)}", step=step, command=argv[0]
            ) from None
        code = self._wait_exec(exec_id, limit=10)
        return ExecResult(code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace"))

    @contextmanager
    def _exec_errors(self, container: str, argv: list[str], step: str, doing: str) -> Iterator[None]:
        """The Engine API's errors of an exec, as one EngineError naming the container and the program."""
        from docker.errors import APIError, NotFound

        try:
            yield
        except NotFound:
            raise EngineError(
                f"container {container} does not exist (run `deployer up`)", step=step, command=argv[0]
            ) from None
        except APIError as exc:
            raise EngineError(f"{doing} {argv[0]} in {container}: {reason(exc)}", step=step, command=argv[0]) from None

    def _wait_exec(self, exec_id: str, *, limit: float) -> int:
        def code() -> list[int]:  # [] while it runs
            info = self.sdk.api.exec_inspect(exec_id)
            done = not info.get("Running") and info.get("ExitCode") is not None
            return [int(info["ExitCode"])] if done else []

        # The exec's output ended; its exit code comes a moment later, and only when asked for.
        return (until(code, seconds=limit, every=0.02) or [-1])[0]

    def exec_stream(
        self,
        container: str,
        argv: list[str],
        sink: BinaryIO | Callable[[bytes], Any],
        *,
        step: str,
        env: dict[str, str] | None = None,
        user: str = "",
    ) -> ExecResult:
        """Run argv, passing its stdout to sink as it comes (a dump of any size never sits in
        memory); returns the exit code and the last of stderr."""

        api = self.sdk.api
        write = sink if callable(sink) else sink.write
        debug(f"exec-stream {container} {argv[:2]}")
        errors: list[bytes] = []
        with self._exec_errors(container, argv, step, "running"):
            exec_id = api.exec_create(container, argv, environment=env or {}, user=user, stdout=True, stderr=True)["Id"]
            for out, err in api.exec_start(exec_id, stream=True, demux=True):
                if out:
                    write(out)
                if err:
                    errors.append(err)
                    del errors[:-50]
        return ExecResult(self._wait_exec(exec_id, limit=30), "", b"".join(errors).decode(errors="replace").strip())

    # -- files into a container (the edge's certificate) -------------------------------------
    def put_files(self, container: str, folder: str, files: dict[str, bytes], *, step: str, mode: int = 0o600) -> None:
        """Write files (relative paths, folders made 0700) under `folder` of a container, as
        one tar archive in the body of an Engine API call: their content is in no argv, no
        environment and no `docker inspect`, and it reaches a remote engine as well."""
        from docker.errors import APIError, NotFound

        from deployer.core.archive import tar_of

        debug(f"put {sorted(files)} into {container}:{folder}")
        try:
            ok = self.sdk.api.put_archive(container, folder, tar_of(files, mode=mode, now=time.time()))
        except NotFound:
            raise EngineError(f"container {container} or its {folder} does not exist", step=step) from None
        except APIError as exc:
            raise EngineError(f"cannot write files into {container}: {reason(exc)}", step=step) from None
        if not ok:
            raise EngineError(f"cannot write files into {container}:{folder}", step=step)

    # -- containers -------------------------------------------------------------------------
    def containers(self, project: str, *, deployment: str | None = None, **labels: str) -> list[Container]:
        """Every container of a deployment with these labels (role, colour, release, ...), in any
        state; with `deployment`, only those of that deployment id (another config's are not ours)."""
        from docker.errors import NotFound

        filters = [f"{names.LABEL_PROJECT}={project}"] + [f"deployer.{k}={v}" for k, v in labels.items()]
        api = self.sdk.api
        found = []
        try:
            for summary in api.containers(all=True, filters={"label": filters}):
                try:
                    found.append(Container.from_attrs(api.inspect_container(summary["Id"])))
                except NotFound:
                    continue  # removed since the listing (an old standby being retired)
        except Exception as exc:  # docker.errors.APIError, requests errors
            raise EngineError(f"cannot list containers on {self.where}: {reason(exc)}", step=Step.INSPECT) from None
        if deployment is not None:
            found = [c for c in found if c.labels.get(names.LABEL_DEPLOYMENT, "") == deployment]
        return found

    def inspect(self, name: str) -> dict[str, Any] | None:
        if fast := self.unix_api():
            return fast.inspect(name, step=Step.INSPECT)
        from docker.errors import NotFound

        try:
            return self.sdk.api.inspect_container(name)
        except NotFound:
            return None

    def container(self, name: str) -> Container | None:
        return Container.from_attrs(attrs) if (attrs := self.inspect(name)) else None

    def logs(self, name: str, lines: int = 30) -> str:
        try:
            raw = self.sdk.api.logs(name, tail=lines, stdout=True, stderr=True)
        except Exception:  # gone already
            return ""
        return masking.mask(raw.decode(errors="replace").rstrip())

    def stop_and_remove(self, name: str, grace: float, *, signal: str | None = None) -> None:
        """SIGTERM, SIGKILL after `grace` seconds, then remove with its anonymous volumes. With
        `signal` ('' is SIGTERM): only send it, not waiting; restart policy off (the exit is
        final), CPU weight TOLD_CPU_SHARES (the mark that it was told). Gone already is fine."""
        from docker.errors import APIError, NotFound

        api = self.sdk.api
        try:
            if signal is not None:
                api.update_container(name, restart_policy={"Name": "no"}, cpu_shares=TOLD_CPU_SHARES)
                return api.kill(name, signal=signal or "SIGTERM")
            api.stop(name, timeout=max(1, round(grace)))
            api.remove_container(name, v=True, force=True)
        except NotFound:
            pass
        except APIError as exc:  # 409: another remover got there first, or it is not running any more
            if exc.status_code != 409 or (signal is None and "in progress" not in str(exc)):
                raise EngineError(f"cannot remove {name}: {reason(exc)}", step=Step.REMOVE) from None

    def published_port(self, name: str, container_port: int) -> int | None:
        attrs = self.inspect(name) or {}
        for binding in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{container_port}/tcp") or []:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
        return None

    # -- images -----------------------------------------------------------------------------
    def image_id(self, ref: str) -> str | None:
        from docker.errors import ImageNotFound, NotFound

        try:
            return self.sdk.api.inspect_image(ref)["Id"]
        except (ImageNotFound, NotFound):
            return None

    # -- networks ---------------------------------------------------------------------------
    def ensure_network(self, name: str, *, internal: bool, labels: dict[str, str], step: str) -> bool:
        """True when it was made now."""
        from docker.errors import NotFound

        try:
            net = self.sdk.networks.get(name)
        except NotFound:
            self.sdk.networks.create(name, driver="bridge", internal=internal, labels=labels)
            return True
        if bool(net.attrs.get("Internal")) != internal:
            raise EngineError(
                f"network {name} exists with internal={net.attrs.get('Internal')}, expected {internal}; remove it first",
                step=step,
            )
        return False

    def remove_network(self, name: str, *, wait: float = 5) -> str:
        """Remove a network; '' once it is gone, else why it stays. An endpoint can outlive its
        removed container for a moment, so a refusal is retried for `wait` seconds first."""
        from docker.errors import NotFound

        why = [""]

        def removed() -> bool:
            try:
                self.sdk.api.remove_network(name)
            except NotFound:
                pass
            except Exception as exc:  # in use, for now or by someone else's container
                why[0] = reason(exc)
                return False
            return True

        # A removed container's endpoint leaves the network a moment after it, unannounced.
        if until(removed, seconds=wait, every=0.25):
            return ""
        try:
            users = sorted(
                c.get("Name", "?") for c in (self.sdk.api.inspect_network(name).get("Containers") or {}).values()
            )
        except Exception:
            return why[0]
        if users:
            return f"still used by {', '.join(users)}"
        if "active endpoints" in why[0]:  # yet none is listed: the engine lost count of one
            return f"{why[0]}, with no container on it: {LOST_COUNT}"
        return why[0]

    def version(self) -> str:  # `docker version`'s Server.Version
        return self.sdk.version().get("Version", "")

    def memory_in_use(self, name: str) -> int | None:
        """Bytes a running container uses, less the page cache it could drop; None when the
        engine cannot say (gone, or no stats)."""
        try:
            stats = (self.sdk.api.stats(name, stream=False, one_shot=True) or {}).get("memory_stats") or {}
        except Exception:  # gone, or stats unsupported
            return None
        usage = stats.get("usage")
        return usage - (stats.get("stats") or {}).get("inactive_file", 0) if usage else None
