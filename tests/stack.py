"""A throwaway deployer project on the real engine, for integration tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from deployer.core import edgelayout


class Stack:
    """One project: its config, its images, its containers; destroy() removes them all."""

    def __init__(self, name: str, folder: Path, docker_client, app_image: str) -> None:
        self.name = name
        self.folder = folder
        self.docker = docker_client
        self.app_image = app_image
        self.images: list[str] = []
        db_env = folder / "db.env"
        db_env.write_text("POSTGRES_USER=app\nPOSTGRES_PASSWORD=test-secret-pw\n")
        db_env.chmod(0o600)
        self.config = folder / "deployer.toml"
        self.write_config()

    def write_config(
        self,
        extra: str = "",
        deadline: float = 40,
        services: str | None = None,
        edge: str = "",
        watch: str = 'window = "0"',
        disk: str = "prune_after_release = false",
        expose_colour: bool = True,
        backend: str = "",
        database: str = 'env_file = "db.env"',
    ) -> None:
        """The project's deployer.toml: backend (/api/) and frontend (/) from the test app,
        unless `services` gives other [services.*] tables; `edge` adds keys to [edge];
        `watch` and `disk` are the bodies of [watch] and [disk] (by default no watch after the
        switch and no pruning after a release, unless a test asks). The public route shows
        the answering colour (edge.expose_colour) unless `expose_colour` is False; `backend`
        adds keys to the default backend's table; `database` is the body of [database]."""
        if services is None:
            services = f"""
                [services.backend]
                image = "{self.name}-backend"
                port = 8080
                health = "/health"
                routes = ["/api/"]
                stop_grace = 5
                {backend}

                [services.frontend]
                image = "{self.name}-frontend"
                port = 8081
                health = "/health"
                routes = ["/"]
                stop_grace = 5
                """
        self.config.write_text(
            textwrap.dedent(
                f"""
                [project]
                name = "{self.name}"
                restart = "no"
                """
            )
            + textwrap.dedent(services)
            + textwrap.dedent(
                f"""
                [edge]
                public_port = 0
                preview_port = 0
                public_bind = "127.0.0.1"
                expose_colour = {"true" if expose_colour else "false"}
                """
            )
            + textwrap.dedent(edge)
            + textwrap.dedent(
                f"""
                [database]
                {database}

                [timeouts]
                health_deadline = {deadline}
                request_timeout = 2

                [smoke]
                paths = ["/api/version", "/"]
                """
            )
            + f"\n[watch]\n{textwrap.dedent(watch)}\n\n[disk]\n{textwrap.dedent(disk)}\n"
            + extra
        )

    # -- images ----------------------------------------------------------------
    def tag(
        self,
        version: str,
        backend_env: dict | None = None,
        frontend_env: dict | None = None,
        services: tuple[str, ...] = ("backend", "frontend"),
        env: dict[str, dict] | None = None,
    ) -> None:
        """Tag the test app as each service at a version, with env baked in to change its behaviour."""
        envs = {"backend": backend_env, "frontend": frontend_env, **(env or {})}
        for service, env in ((s, envs.get(s)) for s in services):
            ref = f"{self.name}-{service}:{version}"
            if env:
                lines = "".join(f"ENV {k}={v}\n" for k, v in env.items())
                dockerfile = f"FROM {self.app_image}\n{lines}"
                import io

                self.docker.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
            else:
                self.docker.images.get(self.app_image).tag(ref)
            self.images.append(ref)

    def release_all(self, *versions: str) -> None:
        """Tag the test app as each version, bring the project up and release them in order."""
        for version in versions:
            self.tag(version)
        self.ok("up")
        for version in versions:
            self.ok("release", version, "--no-backup")

    # -- the CLI ---------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "deployer", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def raw_cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """The CLI with exactly these arguments (no --config added)."""
        return subprocess.run(
            [sys.executable, "-m", "deployer", *args], capture_output=True, text=True, timeout=timeout, cwd=self.folder
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        result = self.cli(*args)
        assert result.returncode == 0, f"deployer {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def popen(self, *args: str) -> subprocess.Popen:
        return self.popen_env({}, *args)

    def popen_env(self, env: dict[str, str], *args: str) -> subprocess.Popen:
        """The CLI in the background, with extra environment (test hooks)."""
        import os

        return subprocess.Popen(
            [sys.executable, "-m", "deployer", *args, "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
            # Ctrl-C reaches the CLI even when the test run itself was started in the
            # background, where the shell leaves SIGINT ignored (and children inherit that)
            preexec_fn=_default_sigint,
        )

    # -- the edge --------------------------------------------------------------
    @property
    def edge(self):
        return self.docker.containers.get(f"{self.name}-infra-edge-1")

    @property
    def ports_holder(self):
        """The container that holds the edge's network namespace and published ports."""
        return self.docker.containers.get(f"{self.name}-infra-ports-1")

    def port(self, container_port: int) -> int:
        return int(self.ports_holder.attrs["NetworkSettings"]["Ports"][f"{container_port}/tcp"][0]["HostPort"])

    @property
    def live_url(self) -> str:
        return f"http://127.0.0.1:{self.port(edgelayout.PUBLIC_PORT)}"

    @property
    def preview_url(self) -> str:
        return f"http://127.0.0.1:{self.port(edgelayout.PREVIEW_PORT)}"

    def get(self, path: str = "/", **kw) -> httpx.Response:
        return httpx.get(self.live_url + path, timeout=5, **kw)

    def serving(self, path: str = "/api/version") -> tuple[str, str]:
        """(version, colour) that the live route answers with."""
        body = self.get(path).json()
        return body["version"], body["colour"]

    def _infra(self, change) -> None:
        """compose up of the infrastructure as the deployer would write it for what runs now,
        after `change(data)` edits the compose data and `change` says which services to up."""
        from deployer import config
        from deployer.adapters import compose as compose_adapter
        from deployer.flows import edge_roll, infra
        from deployer.runtime.mode import context

        ctx = context(config.load(self.config), say=print)
        try:
            images = {p: self.docker.api.inspect_container(f"{self.name}-infra-{p}-1")["Config"]["Image"]
                      for p in ("edge", "db", "backup")}  # fmt: skip
            edge_id = ctx.engine.image_id(images["edge"]) or ""
            data, secrets = infra.spec(
                ctx, edge_image=images["edge"], db_image=images["db"], backup_image=images["backup"],
                ports_image=edge_roll.ports_image(ctx, edge_id), edge_image_id=edge_id,
            )  # fmt: skip
            options = change(data)
            compose_adapter.up(
                ctx.engine, f"{self.name}-infra", data, step="test", secrets=secrets, wait=True, **options
            )
        finally:
            ctx.engine.close()

    def to_earlier_layout(self) -> None:
        """Put the infrastructure back as a deployer before the ports holder made it: the edge
        container publishes its ports and sits on the edge network itself."""

        def earlier(data: dict) -> dict:
            holder = data["services"].pop("ports")
            edge = data["services"]["edge"]
            del edge["network_mode"]
            edge.update(ports=holder["ports"], networks=["edge"])
            for part in ("edge", "ports"):
                self.docker.containers.get(f"{self.name}-infra-{part}-1").remove(force=True)
            return {}

        self._infra(earlier)

    def second_edge(self) -> None:
        """Start a second edge beside the running one, as a replacement does first."""
        self._infra(lambda data: {"services": ["edge"], "scales": {"edge": 2}, "beside": True})

    def edge_file(self, path: str) -> str:
        """The file's text, '' when it does not exist. Under load the engine may report an exec's
        exit code as None (asked before the exec was reaped) or fail the exec: ask again."""
        for _ in range(5):  # bounded
            code, out = self.edge.exec_run(["cat", path])
            if code in (0, 1):  # cat: 1 when the file does not exist
                break
            time.sleep(0.2)
        return out.decode() if code == 0 else ""

    def containers(self, colour: str | None = None) -> list:
        labels = [f"deployer.project={self.name}"]
        if colour:
            labels.append(f"deployer.colour={colour}")
        return self.docker.containers.list(all=True, filters={"label": labels})

    # -- cleanup ---------------------------------------------------------------
    def destroy(self) -> None:
        """Remove containers, volumes, networks and images of this project, whatever state it is in.

        Straight through the Engine API, not `deployer down` (which test_down.py and
        test_release.py check): a graceful stop of every container costs seconds per test."""
        from concurrent.futures import ThreadPoolExecutor

        from docker.errors import NotFound

        def each(do, items) -> None:  # side by side: one at a time cost seconds per test
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(do, items))

        def remove_container(cid: str) -> None:
            try:
                self.docker.containers.get(cid).remove(force=True, v=True)
            except NotFound:
                pass

        def remove_volume(v) -> None:
            try:
                v.remove(force=True)
            except Exception:
                pass

        def remove_image(ref: str) -> None:
            try:
                self.docker.images.remove(ref, force=True, noprune=False)
            except Exception:
                pass

        mine = {"label": f"deployer.project={self.name}"}
        found = self.docker.containers.list(all=True, filters=mine, sparse=True) + self.docker.containers.list(
            all=True, filters={"name": f"^{self.name}-"}, sparse=True
        )
        each(remove_container, sorted({c.id for c in found}))
        each(remove_volume, [v for v in self.docker.volumes.list() if v.name.startswith(f"{self.name}-")])
        from deployer.adapters.engine import Engine

        engine = Engine()  # its remove_network waits out an endpoint that outlives its container
        try:
            mine_networks = [n.name for n in self.docker.networks.list() if n.name.startswith(f"{self.name}-")]
            each(lambda name: _stays(name, engine.remove_network(name, wait=10)), mine_networks)
        finally:
            engine.close()
        for ref in self.images:  # one at a time: tags of one image, removed side by side, race
            remove_image(ref)


def _stays(name: str, why: str) -> None:
    """Says which network a teardown could not remove, and why: a warning, which the run's
    summary shows beside the leak report (a passing test's own output is not shown)."""
    if why:
        import warnings

        warnings.warn(f"teardown: network {name} stays: {why}", stacklevel=2)


def _default_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
