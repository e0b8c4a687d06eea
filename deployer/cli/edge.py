"""`deployer edge reload`."""

from __future__ import annotations

import typer

from deployer.cli.common import ConfigOption, EnvOption, context, handled, say

app = typer.Typer(no_args_is_help=True, help="The edge: its certificate.")


@app.command("reload")
@handled
def reload(config: ConfigOption = None, env: EnvOption = None) -> None:
    """Upload the certificate and key of [edge.tls] again (after a renewal: certbot's
    --deploy-hook). The next TLS handshake presents them; nginx does not reload, so no
    connection is closed and no request fails. On a swarm, a changed certificate replaces
    each edge replica with it, one node at a time."""
    from deployer.flows import tls

    with context(config, env, check_paths=False) as ctx:
        about = tls.reload(ctx)
    say(f"edge: certificate installed: {about}")
