"""`deployer page`: the edge's status page and metrics on this machine's 127.0.0.1, for a
remote host and a swarm alike (docs/observability.md#the-status-page)."""

from __future__ import annotations

from typing import Annotated

import typer

from deployer.cli.common import ConfigOption, EnvOption, context, handled
from deployer.config.model import Edge

# edge.preview_port's default: the URLs of the docs and of an ssh tunnel hold on this machine too
PORT = Edge.preview_port


@handled
def page(
    port: Annotated[int, typer.Option("--port", help="The port on this machine's 127.0.0.1 (1-65535).")] = PORT,
    config: ConfigOption = None,
    env: EnvOption = None,
) -> None:
    """Serve the edge's status page and its metrics (for Prometheus) on 127.0.0.1:PORT of this
    machine, each request fetched from the edge through the engine (on a swarm, the control's:
    every public replica summed). Ctrl-C ends it."""
    from deployer.adapters.pageserver import listen, serve

    server = listen(port)  # bad input first: a port in use changes nothing
    try:
        with context(config, env, check_paths=False) as ctx:
            ctx.edge.require()
            url = f"http://127.0.0.1:{port}"
            print(f"{url}/_deployer/page/  (metrics: {url}/_deployer/metrics; Ctrl-C ends it)", flush=True)
            try:
                serve(server, ctx.edge)
            except KeyboardInterrupt:  # how it ends, not a failure
                return
    finally:
        server.server_close()
