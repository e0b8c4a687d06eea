"""HTTPS at the edge: the certificate from the CLI's machine into the edge, and the
ACME HTTP-01 folder. Used by `deployer up` and by `deployer edge reload` (certbot's
deploy hook after a renewal)."""

from __future__ import annotations

from deployer.config import edge as edge_config
from deployer.config.reader import Reader
from deployer.core import edgelayout, tls
from deployer.errors import ConfigError, EdgeError
from deployer.flows.context import Context, host_folder


def acme_on_host(ctx: Context) -> str | None:
    """The Docker host's folder of ACME challenges (None: none is served)."""
    return host_folder(ctx, ctx.config.edge.acme_webroot, "edge.acme_webroot")


def install(ctx: Context, *, step: str) -> str:
    """Upload the certificate and key of [edge.tls] and make the edge present them from its
    next handshake on. Returns what the edge says of the certificate. Its dates are checked
    again first (the file may have changed since the config was loaded), and a certificate
    that expires within 14 days is said as a warning."""
    pem_bytes = pem(ctx)
    gen = tls.generation(pem_bytes)
    ctx.engine.put_files(ctx.edge.container, edgelayout.HOME, {tls.incoming(gen): pem_bytes}, step=step)
    result = ctx.edge.run(tls.install(gen), step=step)
    out = (result.stdout + result.stderr).strip()
    if not result.ok:
        raise EdgeError(f"the edge refused the certificate; it keeps the one it had: {out}", step=step)
    return out.split("\n", 1)[-1].strip() or "installed"


def pem(ctx: Context) -> bytes:
    """The certificate chain and its key of [edge.tls], as one PEM; its dates are checked
    again first (the file may have changed since the config was loaded), and one that
    expires within 14 days is said as a warning."""
    settings = ctx.config.edge.tls
    assert settings is not None
    soon = edge_config.check_dates(Reader({}, ctx.config.path), settings.cert)
    if soon:
        ctx.say(f"warning: {soon}")
    return tls.bundle(settings.cert.read_text(encoding="ascii"), settings.key.read_text(encoding="ascii"))


def refuse_out_of_date(ctx: Context) -> None:
    """Before `up` or `edge reload` changes anything: a certificate that has expired or is
    not valid yet is bad input (install says the warning of one that expires soon)."""
    if ctx.config.edge.tls:
        edge_config.check_dates(Reader({}, ctx.config.path), ctx.config.edge.tls.cert)


def reload(ctx: Context) -> str:
    """`deployer edge reload`: the certificate files again, e.g. after a renewal."""
    settings = ctx.config.edge.tls
    if settings is None:
        raise ConfigError(ctx.config.path, "edge.tls", "not set: there is no certificate to reload")
    edge_config.check_pair(Reader({}, ctx.config.path), settings.cert, settings.key)
    refuse_out_of_date(ctx)
    ctx.edge.require()
    return ctx.runtime.install_certificate()
